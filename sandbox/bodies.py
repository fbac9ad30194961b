"""Request bodies, decoded with msgspec: fast on the hot path, clear 400s on bad input.

HubSpot accepts JSON scalars as property values (and stores them as strings);
unknown fields are ignored, as HubSpot's own deserializer does.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from sandbox.errors import ApiError, validation_error

Scalar = str | int | float | bool | None
Props = dict[str, Scalar]
T = TypeVar("T")


class AssocTypeIn(msgspec.Struct):
    associationCategory: str
    associationTypeId: int


class AssocTo(msgspec.Struct):
    id: str | int


class AssocIn(msgspec.Struct):
    to: AssocTo
    types: list[AssocTypeIn]


class CreateIn(msgspec.Struct):
    properties: Props
    associations: list[AssocIn] | None = None
    objectWriteTraceId: str | None = None


class BatchCreateIn(msgspec.Struct):
    inputs: list[CreateIn]


class UpdateIn(msgspec.Struct):
    properties: Props


class BatchUpdateItem(msgspec.Struct):
    id: str | int
    properties: Props
    idProperty: str | None = None
    objectWriteTraceId: str | None = None


class BatchUpdateIn(msgspec.Struct):
    inputs: list[BatchUpdateItem]


class IdIn(msgspec.Struct):
    id: str | int


class BatchReadIn(msgspec.Struct):
    inputs: list[IdIn]
    properties: list[str] | None = None
    propertiesWithHistory: list[str] | None = None
    idProperty: str | None = None


class BatchArchiveIn(msgspec.Struct):
    inputs: list[IdIn]


class FilterIn(msgspec.Struct):
    propertyName: str
    operator: str
    value: Scalar = None
    values: list[Scalar] | None = None
    highValue: Scalar = None


class FilterGroupIn(msgspec.Struct):
    filters: list[FilterIn] = msgspec.field(default_factory=list)


class SortIn(msgspec.Struct):
    propertyName: str
    direction: str = "DESCENDING"


class SearchIn(msgspec.Struct):
    filterGroups: list[FilterGroupIn] = msgspec.field(default_factory=list)
    sorts: list[SortIn | str] = msgspec.field(default_factory=list)
    query: str | None = None
    properties: list[str] | None = None
    limit: int | None = None
    after: str | int | None = None


class GdprIn(msgspec.Struct):
    objectId: str | int
    idProperty: str | None = None


class V4Ref(msgspec.Struct):
    id: str | int


class V4AssocIn(msgspec.Struct):
    from_: V4Ref = msgspec.field(name="from")
    to: V4Ref
    types: list[AssocTypeIn] | None = None


class V4BatchCreateIn(msgspec.Struct):
    inputs: list[V4AssocIn]


class V4BatchReadIn(msgspec.Struct):
    inputs: list[V4Ref]


class OptionIn(msgspec.Struct):
    value: str
    label: str = ""


class PropertyIn(msgspec.Struct):
    name: str
    type: str = "string"
    label: str = ""
    fieldType: str = ""
    groupName: str = ""
    hasUniqueValue: bool = False
    options: list[OptionIn] | None = None


class GroupIn(msgspec.Struct):
    name: str
    label: str = ""
    displayOrder: int = -1


_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}


def decode(body: bytes, kind: type[T]) -> T:
    """Decode ``body`` as ``kind`` or raise HubSpot's 400 ``VALIDATION_ERROR``."""
    dec = _decoders.get(kind)
    if dec is None:
        dec = _decoders[kind] = msgspec.json.Decoder(kind)
    if not body.strip():
        raise validation_error("Invalid input JSON: a request body was expected, but none found")
    try:
        return dec.decode(body)  # type: ignore[no-any-return]
    except msgspec.ValidationError as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from None
    except msgspec.DecodeError as exc:
        raise validation_error(f"Invalid input JSON: {exc}") from None


def check_batch_size(n: int, limit: int = 100) -> None:
    """HubSpot's batch endpoints take at most 100 inputs."""
    if n > limit:
        raise ApiError(
            400,
            "VALIDATION_ERROR",
            f"Batch input limit exceeded: got {n} inputs, the limit is {limit}.",
            context={"limit": [str(limit)], "size": [str(n)]},
        )


def id_text(value: str | int) -> str:
    """An id given as a JSON string or number, as text."""
    return value if isinstance(value, str) else str(value)


class UpsertItem(msgspec.Struct):
    id: str | int
    properties: Props
    idProperty: str | None = None
    objectWriteTraceId: str | None = None


class BatchUpsertIn(msgspec.Struct):
    inputs: list[UpsertItem]
