"""Typed request and response bodies of the HubSpot Calls API (and the contacts and v4
association endpoints callbridge also uses), derived from the seed spec's schemas.

Why msgspec ``Struct``s rather than pydantic models: the writer encodes and decodes
thousands of batch inputs per second, and msgspec does both straight from/to bytes in
C, 5-20x faster than pydantic with far less memory per object, while still validating
types on decode. Field names are snake_case in Python and camelCase on the wire
(``rename="camel"``); request structs omit unset fields (``omit_defaults``), so a body
never carries ``"associations": []`` or ``"after": null`` that the caller did not ask
for. Unknown response fields are ignored, so HubSpot adding a field breaks nothing.

Pure data: no I/O, importable by the sans-I/O wire layer.
"""

from __future__ import annotations

from typing import Final, Generic, Literal, TypeVar, get_args

import msgspec

AssociationCategory = Literal["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"]
Operator = Literal[
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
]
OPERATORS: Final[tuple[str, ...]] = get_args(Operator)
BatchStatus = Literal["PENDING", "PROCESSING", "CANCELED", "COMPLETE"]


class _Request(msgspec.Struct, rename="camel", kw_only=True, omit_defaults=True):
    """Base of request bodies: camelCase on the wire, unset fields left out."""


class _Response(msgspec.Struct, rename="camel", kw_only=True):
    """Base of response bodies: camelCase on the wire, unknown fields ignored."""


# --- requests -------------------------------------------------------------------------


class ObjectId(_Request):
    """``{"id": "..."}``: the target of an association, or a batch read/archive input."""

    id: str


class AssociationSpec(_Request):
    """One association type: ``{associationCategory, associationTypeId}`` (both required)."""

    association_category: AssociationCategory
    association_type_id: int


class AssociationInput(_Request):
    """An association created together with a call: ``{to: {id}, types: [...]}``."""

    to: ObjectId
    types: list[AssociationSpec]


class CallCreateInput(_Request):
    """``CallCreateRequest``, plus HubSpot's ``objectWriteTraceId`` for batch creates.

    HubSpot echoes ``objectWriteTraceId`` on the created object and in the context of an
    item error, which is how a 207 answer is matched back to the inputs.
    """

    properties: dict[str, str]
    associations: list[AssociationInput] = msgspec.field(default_factory=list)
    object_write_trace_id: str | None = None


class CallUpdateInput(_Request):
    """``CallUpdateRequest``: only the properties given are changed."""

    properties: dict[str, str]


class BatchUpdateInput(_Request):
    """``BatchUpdateInput``: one call's id and the properties to change."""

    id: str
    properties: dict[str, str]
    id_property: str | None = None
    object_write_trace_id: str | None = None


class BatchCreateRequest(_Request):
    inputs: list[CallCreateInput]


class BatchUpsertInput(_Request):
    """One input of ``batch/upsert``: the record whose unique ``id_property`` has the value
    ``id`` is updated with ``properties``, or created with them (and that value)."""

    id: str
    properties: dict[str, str]
    id_property: str
    object_write_trace_id: str | None = None


class BatchUpsertRequest(_Request):
    inputs: list[BatchUpsertInput]


class PropertyCreate(_Request):
    """A custom property definition (``POST /crm/v3/properties/{objectType}``).

    ``has_unique_value`` makes HubSpot refuse a second record with the same value and
    lets the property serve as ``idProperty``; it can only be set when the property is
    created, on ``string`` or ``number`` properties, at most 10 per object type.
    """

    name: str
    label: str
    group_name: str
    type: str = "string"
    field_type: str = "text"
    description: str | None = None
    has_unique_value: bool = False
    form_field: bool | None = None


class PropertyGroupCreate(_Request):
    """A property group (``POST /crm/v3/properties/{objectType}/groups``)."""

    name: str
    label: str
    display_order: int = -1


class BatchUpdateRequest(_Request):
    inputs: list[BatchUpdateInput]


class BatchReadRequest(_Request):
    """``BatchReadCallsRequest`` (also used for contacts)."""

    inputs: list[ObjectId]
    properties: list[str] = msgspec.field(default_factory=list)
    properties_with_history: list[str] = msgspec.field(default_factory=list)
    id_property: str | None = None


class BatchArchiveRequest(_Request):
    inputs: list[ObjectId]


class Filter(_Request):
    """One search filter; ``values`` for IN/NOT_IN, ``high_value`` for BETWEEN."""

    property_name: str
    operator: Operator
    value: str | None = None
    values: list[str] | None = None
    high_value: str | None = None


class FilterGroup(_Request):
    """Filters ANDed together; groups are ORed."""

    filters: list[Filter]


class Sort(msgspec.Struct, rename="camel", kw_only=True):
    """A sort order; ``direction`` is always sent (HubSpot's default is not the spec's)."""

    property_name: str
    direction: Literal["ASCENDING", "DESCENDING"] = "DESCENDING"


class SearchRequest(_Request):
    """``CallSearchRequest`` (the contacts search body has the same shape)."""

    filter_groups: list[FilterGroup] = msgspec.field(default_factory=list)
    sorts: list[Sort] = msgspec.field(default_factory=list)
    query: str | None = None
    properties: list[str] = msgspec.field(default_factory=list)
    limit: int = 10
    after: str | None = None


class GdprDeleteRequest(_Request):
    object_id: str
    id_property: str | None = None


class ContactCreateInput(_Request):
    properties: dict[str, str]
    associations: list[AssociationInput] = msgspec.field(default_factory=list)


class ObjectRef(_Request):
    id: str


class AssociationPairInput(_Request):
    """A v4 batch association input: ``{from: {id}, to: {id}, types: [...]}``."""

    from_: ObjectRef = msgspec.field(name="from")
    to: ObjectRef
    types: list[AssociationSpec]


class AssociationBatchCreateRequest(_Request):
    inputs: list[AssociationPairInput]


# --- responses ------------------------------------------------------------------------


class PropertyHistory(_Response):
    value: str | None = None
    timestamp: str | None = None
    source_type: str | None = None
    source_id: str | None = None
    source_label: str | None = None
    updated_by_user_id: int | None = None


class AssociatedObject(_Response):
    """One associated object in a v3 read: its id and the association type's label."""

    id: str
    type: str | None = None


class AssociatedObjects(_Response):
    """``{"results": [{id, type}, ...]}``: an object's associations with one type."""

    results: list[AssociatedObject] = msgspec.field(default_factory=list)


class CrmObject(_Response):
    """A CRM object as HubSpot answers it (``Call`` in the spec; contacts look the same).

    Property values are strings, or ``null`` when a requested property has no value;
    ``associations`` (when requested) maps an object type to the associated ids.
    """

    id: str
    properties: dict[str, str | None] = msgspec.field(default_factory=dict)
    properties_with_history: dict[str, list[PropertyHistory]] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    archived: bool = False
    archived_at: str | None = None
    object_write_trace_id: str | None = None
    associations: dict[str, AssociatedObjects] | None = None
    #: ``batch/upsert`` results only: whether the record was created (else updated)
    new: bool | None = None


Call = CrmObject
Contact = CrmObject


class NextPage(_Response):
    after: str
    link: str | None = None


class Paging(_Response):
    next: NextPage | None = None


class CollectionResponse(_Response):
    """``CallCollectionResponse``: one page of a list."""

    results: list[CrmObject]
    paging: Paging | None = None

    @property
    def after(self) -> str | None:
        """The cursor of the next page, or None on the last page."""
        return self.paging.next.after if self.paging and self.paging.next else None


class SearchResponse(_Response):
    """``CallSearchResponse``: one page of search results."""

    total: int
    results: list[CrmObject]
    paging: Paging | None = None

    @property
    def after(self) -> str | None:
        return self.paging.next.after if self.paging and self.paging.next else None


class Property(_Response):
    """A property definition as HubSpot answers it."""

    name: str
    label: str = ""
    type: str = ""
    field_type: str = ""
    group_name: str = ""
    description: str = ""
    has_unique_value: bool = False
    hidden: bool = False
    calculated: bool = False
    archived: bool = False


class PropertyGroup(_Response):
    name: str
    label: str = ""
    display_order: int = -1
    archived: bool = False


class ErrorDetail(_Response):
    message: str
    code: str | None = None
    in_: str | None = msgspec.field(default=None, name="in")
    sub_category: str | None = None
    context: dict[str, list[str]] | None = None


class BatchError(_Response):
    """One item error inside a 207: ``context`` names the inputs it concerns."""

    status: str = "error"
    category: str = ""
    message: str = ""
    sub_category: str | None = None
    context: dict[str, list[str]] = msgspec.field(default_factory=dict)
    errors: list[ErrorDetail] = msgspec.field(default_factory=list)


class ErrorBody(_Response):
    """HubSpot's error body (``Error`` in the spec, plus the 429 body's fields)."""

    message: str = ""
    category: str | None = None
    correlation_id: str | None = None
    status: str | None = None
    sub_category: str | None = None
    context: dict[str, list[str]] | None = None
    links: dict[str, str] | None = None
    errors: list[ErrorDetail] | None = None
    # 429 bodies: {"errorType": "RATE_LIMIT", "policyName": "DAILY" | "TEN_SECONDLY_ROLLING"}
    error_type: str | None = None
    policy_name: str | None = None
    request_id: str | None = None


class AssociationResult(_Response):
    """A v4 association created: object type ids like ``0-48`` (calls) / ``0-1`` (contacts)."""

    from_object_id: int | str
    to_object_id: int | str
    from_object_type_id: str | None = None
    to_object_type_id: str | None = None
    labels: list[str | None] = msgspec.field(default_factory=list)


T = TypeVar("T")


class BatchResponse(_Response, Generic[T]):
    """``BatchCallsResponse`` (and the v4 association batch answer).

    ``http_status`` is not part of the body: the client sets it to the response status
    (200/201 all done, 207 some items failed; see ``errors``).
    """

    results: list[T] = msgspec.field(default_factory=list)
    status: str = "COMPLETE"
    errors: list[BatchError] = msgspec.field(default_factory=list)
    requested_at: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    links: dict[str, str] | None = None
    num_errors: int | None = None
    http_status: int = 0
    #: the answer's ``X-HubSpot-Correlation-Id`` (item errors of a 207 carry none of their own)
    correlation_id: str | None = None


CallBatchResponse = BatchResponse[CrmObject]
AssociationBatchResponse = BatchResponse[AssociationResult]

# --- codecs ---------------------------------------------------------------------------

encoder: Final = msgspec.json.Encoder()


def encode(body: msgspec.Struct) -> bytes:
    """A request body as JSON bytes."""
    return encoder.encode(body)


_object_decoder: Final = msgspec.json.Decoder(CrmObject)
_collection_decoder: Final = msgspec.json.Decoder(CollectionResponse)
_search_decoder: Final = msgspec.json.Decoder(SearchResponse)
_batch_decoder: Final = msgspec.json.Decoder(CallBatchResponse)
_association_batch_decoder: Final = msgspec.json.Decoder(AssociationBatchResponse)
_error_decoder: Final = msgspec.json.Decoder(ErrorBody)
_property_decoder: Final = msgspec.json.Decoder(Property)
_group_decoder: Final = msgspec.json.Decoder(PropertyGroup)


def decode_object(raw: bytes) -> CrmObject:
    return _object_decoder.decode(raw)


def decode_collection(raw: bytes) -> CollectionResponse:
    return _collection_decoder.decode(raw)


def decode_search(raw: bytes) -> SearchResponse:
    return _search_decoder.decode(raw)


def decode_batch(
    raw: bytes, http_status: int = 0, correlation_id: str | None = None
) -> CallBatchResponse:
    """A batch answer; an empty body (204) reads as an empty, complete batch."""
    out = _batch_decoder.decode(raw) if raw else CallBatchResponse()
    out.http_status = http_status
    out.correlation_id = correlation_id
    return out


def decode_association_batch(raw: bytes, http_status: int = 0) -> AssociationBatchResponse:
    out = _association_batch_decoder.decode(raw) if raw else AssociationBatchResponse()
    out.http_status = http_status
    return out


def decode_property(raw: bytes) -> Property:
    return _property_decoder.decode(raw)


def decode_property_group(raw: bytes) -> PropertyGroup:
    return _group_decoder.decode(raw)


def decode_error(raw: bytes) -> ErrorBody:
    """HubSpot's error body; anything unreadable (a proxy's HTML page) becomes its text."""
    try:
        return _error_decoder.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ErrorBody(message=raw[:500].decode("utf-8", "replace"))
