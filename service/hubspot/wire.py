"""The HubSpot wire format, sans I/O: building batch payloads, splitting inputs into
HubSpot's 100-input batches, and reading a batch answer into one outcome per input.

Every input of a batch create carries an ``objectWriteTraceId``; HubSpot echoes it on the
object it created and lists it in ``context.objectWriteTraceId`` of an item error, so a
207 multi-status answer can be matched back to the inputs without relying on order.
Batch update/read/archive item errors name the inputs by ``context.ids`` instead; callers
pass the ids alongside the trace ids so those map back too.

:func:`outcomes` gives every trace id exactly one :data:`ItemOutcome`:

- :class:`Ok` (the object id): HubSpot did it.
- :class:`Dead`: HubSpot refused this input for a reason retrying will not change
  (``VALIDATION_ERROR``, ``OBJECT_NOT_FOUND``, ...): dead-letter it.
- :class:`Retry`: not settled (a rate limit, a server error, or the answer does not
  mention this input at all): send it again.

Unique-value conflicts (:func:`unique_conflict`): a create or update that would give a
second record a value of a property with unique values is refused by HubSpot with 400
``VALIDATION_ERROR`` and the message ``Cannot set PropertyValueCoordinates{portalId=…,
objectTypeId=…, propertyName=<p>, value=<v>} on <id being written>. <holder id> already
has that value.`` — a whole-request error, or a 207 item error of a traced batch. For
an idempotent create keyed by a unique property that means "it exists already: read it
by key". :func:`outcomes` still reads such an item as :class:`Dead`; ask
:func:`conflicts_by_trace` first.

Imports no httpx, asyncio or clock, and nothing of callbridge's event model: HubSpot's
own constants (association type ids) live here; the writer's tests and this module's
own run on plain values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from typing import Final, Protocol, TypeVar

import msgspec

from service.hubspot.models import (
    AssociationCategory,
    AssociationInput,
    AssociationPairInput,
    AssociationSpec,
    BatchResponse,
    BatchUpdateInput,
    BatchUpsertInput,
    CallCreateInput,
    CrmObject,
    ErrorBody,
    ObjectId,
    ObjectRef,
    decode_batch,
    decode_error,
)

MAX_BATCH: Final = 100
#: HubSpot's default (``HUBSPOT_DEFINED``) association type ids from a call to an object
CALL_ASSOCIATION_TYPE_IDS: Final[Mapping[str, int]] = {
    "contacts": 194,
    "companies": 182,
    "deals": 206,
    "tickets": 220,
}
CALL_TO_CONTACT: Final = CALL_ASSOCIATION_TYPE_IDS["contacts"]

#: item-error categories that a later attempt may get through.
RETRYABLE_CATEGORIES: Final = frozenset(
    {"RATE_LIMITS", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "TIMEOUT", "LOCKED"}
)
#: the HTTP status an item error's category stands for (207 items carry no status).
CATEGORY_STATUS: Final[dict[str, int]] = {
    "VALIDATION_ERROR": 400,
    "INVALID_AUTHENTICATION": 401,
    "MISSING_SCOPES": 403,
    "OBJECT_NOT_FOUND": 404,
    "CONFLICT": 409,
    "RATE_LIMITS": 429,
}

T = TypeVar("T")


# --- outcomes -------------------------------------------------------------------------


class Ok(msgspec.Struct, frozen=True):
    """HubSpot applied this input; ``id`` is the object's id."""

    id: str


class Retry(msgspec.Struct, frozen=True):
    """Not settled: send this input again (``reason`` says why, for logs)."""

    reason: str = "not in the answer"


class Dead(msgspec.Struct, frozen=True):
    """HubSpot refused this input for good: what the dead-letter headers carry."""

    category: str
    message: str
    status: int
    correlation_id: str | None = None


ItemOutcome = Ok | Retry | Dead


# --- payloads -------------------------------------------------------------------------


def chunks(items: Sequence[T], size: int = MAX_BATCH) -> Iterator[list[T]]:
    """``items`` in consecutive lists of at most ``size`` (HubSpot batches take 100)."""
    if size < 1:
        raise ValueError("chunk size must be at least 1")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def check_batch(inputs: Sized, limit: int = MAX_BATCH) -> None:
    """Refuse a batch HubSpot would refuse: more than 100 inputs (use :func:`chunks`)."""
    if len(inputs) > limit:
        raise ValueError(f"a HubSpot batch takes at most {limit} inputs, got {len(inputs)}")


def association(
    to_id: str,
    type_id: int = CALL_TO_CONTACT,
    category: AssociationCategory = "HUBSPOT_DEFINED",
) -> AssociationInput:
    """``{to: {id}, types: [{associationCategory, associationTypeId}]}`` (default: a contact)."""
    spec = AssociationSpec(association_category=category, association_type_id=type_id)
    return AssociationInput(to=ObjectId(id=to_id), types=[spec])


def create_input(
    properties: Mapping[str, str],
    *,
    trace_id: str | None = None,
    associations: Mapping[str, Iterable[str]] | None = None,
    type_ids: Mapping[str, int] = CALL_ASSOCIATION_TYPE_IDS,
) -> CallCreateInput:
    """A call create input; ``associations`` maps an object type (``contacts``,
    ``companies``, ``deals``, ``tickets``) to ids, associated with the type ``type_ids``
    gives (default: HubSpot's default call association types)."""
    unknown = set(associations or {}) - set(type_ids)
    if unknown:
        raise ValueError(f"no association type id for {', '.join(sorted(unknown))}")
    assoc = [
        association(to_id, type_ids[object_type])
        for object_type, ids in (associations or {}).items()
        for to_id in ids
    ]
    return CallCreateInput(
        properties=dict(properties), associations=assoc, object_write_trace_id=trace_id
    )


def update_input(
    id: str, properties: Mapping[str, str], *, trace_id: str | None = None
) -> BatchUpdateInput:
    """A batch update input for the call ``id``."""
    return BatchUpdateInput(id=id, properties=dict(properties), object_write_trace_id=trace_id)


def upsert_input(
    key: str,
    properties: Mapping[str, str],
    *,
    id_property: str,
    trace_id: str | None = None,
) -> BatchUpsertInput:
    """A ``batch/upsert`` input: the call whose unique ``id_property`` is ``key`` gets
    ``properties``, created (with ``id_property = key``) if there is none."""
    return BatchUpsertInput(
        id=key,
        properties=dict(properties),
        id_property=id_property,
        object_write_trace_id=trace_id,
    )


def object_ids(ids: Iterable[str]) -> list[ObjectId]:
    """``[{"id": ...}, ...]``: batch read and archive inputs."""
    return [ObjectId(id=i) for i in ids]


def association_pair(
    from_id: str,
    to_id: str,
    type_id: int = CALL_TO_CONTACT,
    category: AssociationCategory = "HUBSPOT_DEFINED",
) -> AssociationPairInput:
    """A v4 batch association input ``{from: {id}, to: {id}, types: [...]}``."""
    spec = AssociationSpec(association_category=category, association_type_id=type_id)
    return AssociationPairInput(from_=ObjectRef(id=from_id), to=ObjectRef(id=to_id), types=[spec])


# --- reading answers ------------------------------------------------------------------


def is_retryable_status(status: int) -> bool:
    """A whole-request status that another attempt may get through."""
    return status in (408, 423, 429) or status >= 500


def outcomes(
    response_status: int,
    body: bytes | BatchResponse[CrmObject] | ErrorBody,
    trace_ids: Sequence[str],
    *,
    ids: Sequence[str | None] | None = None,
    correlation_id: str | None = None,
) -> dict[str, ItemOutcome]:
    """One outcome per input of a batch, keyed by its trace id.

    ``trace_ids[i]`` is input *i*'s ``objectWriteTraceId`` (unique); for batch update,
    read and archive, ``ids[i]`` is input *i*'s object id, which item errors reference in
    ``context.ids`` and results carry as ``id``. ``body`` is the raw answer or its decoded
    form. A whole-request failure settles every input the same way: retryable statuses
    (429, 5xx) give :class:`Retry`, others (a 400 of the whole batch) :class:`Dead`.
    """
    if len(set(trace_ids)) != len(trace_ids):
        raise ValueError("trace ids must be unique within a batch")
    if ids is not None and len(ids) != len(trace_ids):
        raise ValueError("ids must be parallel to trace_ids")

    if response_status == 204:  # batch archive: everything done, nothing returned
        return {t: Ok((ids[i] if ids else None) or "") for i, t in enumerate(trace_ids)}
    if response_status not in (200, 201, 207):
        err = body if isinstance(body, ErrorBody) else _error_of(body)
        if is_retryable_status(response_status):
            return {t: Retry(f"HTTP {response_status}") for t in trace_ids}
        category = err.category or "ERROR"
        cid = err.correlation_id or correlation_id
        gone = Dead(category, err.message or f"HTTP {response_status}", response_status, cid)
        return dict.fromkeys(trace_ids, gone)

    batch = decode_batch(body, response_status) if isinstance(body, bytes) else body
    if isinstance(batch, ErrorBody):
        raise TypeError("a 2xx batch answer must be a batch response")
    known = set(trace_ids)
    by_id: dict[str, str] = {}
    if ids is not None:
        for trace, object_id in zip(trace_ids, ids, strict=True):
            if object_id is not None:
                by_id.setdefault(object_id, trace)

    result: dict[str, ItemOutcome] = {}
    for obj in batch.results:
        echoed = obj.object_write_trace_id
        matched = echoed if echoed in known else by_id.get(obj.id)
        if matched is not None and matched not in result:
            result[matched] = Ok(obj.id)

    for error in batch.errors:
        referenced = [t for t in error.context.get("objectWriteTraceId", ()) if t in known]
        referenced += [by_id[i] for i in error.context.get("ids", ()) if i in by_id]
        if error.category in RETRYABLE_CATEGORIES:
            item: ItemOutcome = Retry(f"{error.category}: {error.message}")
        else:
            status = CATEGORY_STATUS.get(error.category, response_status)
            item = Dead(error.category or "ERROR", error.message, status, correlation_id)
        for trace in referenced:
            result.setdefault(trace, item)

    for trace in trace_ids:
        result.setdefault(trace, Retry())
    return result


# --- unique-value conflicts -----------------------------------------------------------


class UniqueConflict(msgspec.Struct, frozen=True):
    """A write HubSpot refused because another record holds a unique value.

    ``existing_id`` is the record holding it (the one to read or update). ``property``
    and ``value`` are the unique property and the contested value, when the message
    names them (HubSpot's "Cannot set PropertyValueCoordinates{...}" does; a contact's
    409 "Contact already exists. Existing ID: …" does not). ``object_id`` is the id the
    refused write had (for a create, one HubSpot allocated and dropped): never use it.
    """

    existing_id: str
    property: str | None = None
    value: str | None = None
    object_id: str | None = None


_COORDINATES: Final = re.compile(
    r"Cannot set PropertyValueCoordinates\{(?P<coords>.*)\} on (?P<object>\d+)\. "
    r"(?P<holder>\d+) already has that value",
    re.DOTALL,
)
_PROPERTY_VALUE: Final = re.compile(
    r"propertyName=(?P<prop>[^,}]*), value=(?P<value>.*)$", re.DOTALL
)
_EXISTING: Final = re.compile(r"already exists\. Existing ID: (?P<holder>\d+)")


class HasMessage(Protocol):
    """Anything with HubSpot's error ``message``: ``BatchError``, ``ErrorBody``,
    ``HubSpotError``."""

    @property
    def message(self) -> str: ...


def unique_conflict(error: HasMessage | str) -> UniqueConflict | None:
    """The conflict ``error`` reports (an item error of a 207, a whole-request error body,
    a :class:`~service.hubspot.errors.HubSpotError`, or a message), else None."""
    message = error if isinstance(error, str) else error.message
    found = _COORDINATES.search(message)
    if found is not None:
        pv = _PROPERTY_VALUE.search(found["coords"])
        return UniqueConflict(
            existing_id=found["holder"],
            property=pv["prop"] if pv else None,
            value=pv["value"] if pv else None,
            object_id=found["object"],
        )
    existing = _EXISTING.search(message)
    if existing is not None:
        return UniqueConflict(existing_id=existing["holder"])
    return None


def is_unique_conflict(error: HasMessage | str, property: str | None = None) -> bool:
    """Whether ``error`` is a unique-value conflict (on ``property``, when given)."""
    found = unique_conflict(error)
    return found is not None and (property is None or found.property == property)


def conflicts_by_trace(
    batch: BatchResponse[CrmObject], trace_ids: Sequence[str]
) -> dict[str, UniqueConflict]:
    """The inputs of a traced batch that a 207 refused for a unique value, by trace id."""
    known = set(trace_ids)
    out: dict[str, UniqueConflict] = {}
    for error in batch.errors:
        found = unique_conflict(error)
        if found is None:
            continue
        for trace in error.context.get("objectWriteTraceId", ()):
            if trace in known:
                out.setdefault(trace, found)
    return out


def _error_of(body: bytes | BatchResponse[CrmObject]) -> ErrorBody:
    if isinstance(body, bytes):
        return decode_error(body)
    first = body.errors[0] if body.errors else None
    return ErrorBody(
        message=first.message if first else "", category=first.category if first else None
    )
