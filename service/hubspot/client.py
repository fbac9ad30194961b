"""``HubSpotClient``: every operation of the Calls API, plus the contacts and v4
association calls the writer needs, as typed async methods.

Methods are named after the spec's operationIds in snake_case and take the spec's
parameters. Each is one :meth:`Session.request` (paced, retried, logged, measured); this
module only builds paths, query parameters and bodies, and decodes answers. Batch methods
take at most 100 inputs (split with :func:`service.hubspot.wire.chunks`) and answer a
:class:`BatchResponse` whose ``http_status`` is 200/201, or 207 with item ``errors``; a
whole-batch 400 raises :class:`HubSpotValidationError`.

Creates are not idempotent: when their outcome is unknown the client raises
:class:`HubSpotUnknownOutcome` rather than risk a duplicate, unless the caller passes
``retry_unknown=True``. Everything else is retried within the deadline — including
``batch/upsert`` by a unique property, which cannot make a second record for one key.

The client takes plain arguments (base URL, token, rates); building one from the app's
settings is the composition code's job (``service.wiring.hubspot_client``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Final, Self
from urllib.parse import quote

import httpx
import msgspec

from service.hubspot.models import (
    AssociationBatchCreateRequest,
    AssociationBatchResponse,
    AssociationCategory,
    BatchArchiveRequest,
    BatchCreateRequest,
    BatchReadRequest,
    BatchUpdateInput,
    BatchUpdateRequest,
    BatchUpsertInput,
    BatchUpsertRequest,
    CallBatchResponse,
    CallCreateInput,
    CallUpdateInput,
    CollectionResponse,
    ContactCreateInput,
    CrmObject,
    GdprDeleteRequest,
    Property,
    PropertyCreate,
    PropertyGroup,
    PropertyGroupCreate,
    SearchRequest,
    SearchResponse,
    decode_association_batch,
    decode_batch,
    decode_collection,
    decode_object,
    decode_property,
    decode_property_group,
    decode_search,
    encode,
)
from service.hubspot.oauth import TokenProvider
from service.hubspot.pacing import Clock
from service.hubspot.paths import LEGACY, ApiPaths
from service.hubspot.session import CORRELATION_HEADER, Fence, Params, Session
from service.hubspot.wire import CALL_TO_CONTACT, association_pair, check_batch, object_ids

_V3 = ApiPaths.of(LEGACY)
# the legacy family's prefixes (a client's own are in ``HubSpotClient.paths``)
CALLS: Final = _V3.calls
CONTACTS: Final = _V3.contacts
CALL_CONTACT_ASSOCIATIONS: Final = _V3.call_contact_associations
PROPERTIES: Final = _V3.properties


def _query(
    *,
    limit: int | None = None,
    after: str | None = None,
    properties: Sequence[str] = (),
    properties_with_history: Sequence[str] = (),
    associations: Sequence[str] = (),
    archived: bool | None = None,
    id_property: str | None = None,
) -> dict[str, str | int]:
    """Query parameters as the spec has them: arrays comma-joined (form, no explode)."""
    out: dict[str, str | int] = {}
    if limit is not None:
        out["limit"] = limit
    if after:
        out["after"] = after
    if properties:
        out["properties"] = ",".join(properties)
    if properties_with_history:
        out["propertiesWithHistory"] = ",".join(properties_with_history)
    if associations:
        out["associations"] = ",".join(associations)
    if archived is not None:
        out["archived"] = "true" if archived else "false"
    if id_property:
        out["idProperty"] = id_property
    return out


def _id(object_id: str) -> str:
    return quote(object_id, safe="")


class HubSpotClient:
    """An async HubSpot client: one pooled connection set, one rate budget per process.

    ``rate`` is requests per rolling 10 s (``CALLBRIDGE_HUBSPOT_RATE``), ``search_rate``
    search requests per second, ``timeout_s`` each attempt's HTTP timeout, ``deadline_s``
    how long one call may keep retrying 429s and transient failures. ``transport`` and
    ``clock`` are for embedding and tests. ``token`` is a private-app token or an OAuth
    :class:`~service.hubspot.oauth.TokenProvider` (asked for the current access token on
    every request). ``api_version`` is ``"v3"`` (the ``/crm/v3/…`` paths) or a date
    version such as ``"2026-03"`` (``/crm/objects/2026-03/…``), see
    :mod:`service.hubspot.paths`. ``portal`` labels its metrics (one client per portal).

    Use it as ``async with HubSpotClient(url, token) as hs: ...`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        token: str | TokenProvider,
        *,
        rate: int = 100,
        search_rate: int = 5,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        deadline_s: float = 60.0,
        clock: Clock = time.monotonic,
        api_version: str = LEGACY,
        portal: str = "default",
    ) -> None:
        self.paths = ApiPaths.of(api_version)
        self.session = Session(
            base_url,
            token,
            rate=rate,
            search_rate=search_rate,
            timeout_s=timeout_s,
            transport=transport,
            deadline_s=deadline_s,
            clock=clock,
            portal=portal,
        )

    def __repr__(self) -> str:
        return f"HubSpotClient({self.session.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.session.aclose()

    async def _send(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: msgspec.Struct | None = None,
        search: bool = False,
        idempotent: bool = True,
        retry_unknown: bool = False,
        fence: Fence | None = None,
    ) -> httpx.Response:
        return await self.session.request(
            operation,
            method,
            path,
            params=params,
            body=encode(body) if body is not None else None,
            search=search,
            idempotent=idempotent,
            retry_unknown=retry_unknown,
            fence=fence,
        )

    # --- Calls: basic -----------------------------------------------------------------

    async def list_calls(
        self,
        *,
        limit: int = 10,
        after: str | None = None,
        properties: Sequence[str] = (),
        properties_with_history: Sequence[str] = (),
        associations: Sequence[str] = (),
        archived: bool = False,
    ) -> CollectionResponse:
        """One page of calls (``listCalls``); ``.after`` is the next page's cursor."""
        params = _query(
            limit=limit,
            after=after,
            properties=properties,
            properties_with_history=properties_with_history,
            associations=associations,
            archived=archived,
        )
        response = await self._send("listCalls", "GET", self.paths.calls, params=params)
        return decode_collection(response.content)

    async def iter_calls(
        self,
        *,
        page_size: int = 100,
        properties: Sequence[str] = (),
        properties_with_history: Sequence[str] = (),
        associations: Sequence[str] = (),
        archived: bool = False,
    ) -> AsyncIterator[CrmObject]:
        """Every call, page after page."""
        after: str | None = None
        while True:
            page = await self.list_calls(
                limit=page_size,
                after=after,
                properties=properties,
                properties_with_history=properties_with_history,
                associations=associations,
                archived=archived,
            )
            for call in page.results:
                yield call
            after = page.after
            if not after:
                return

    async def create_call(
        self,
        properties: Mapping[str, str] | CallCreateInput,
        *,
        retry_unknown: bool = False,
    ) -> CrmObject:
        """Create one call (``createCall``); a :class:`CallCreateInput` may carry
        associations. Raises :class:`HubSpotUnknownOutcome` when the outcome is unknown,
        unless ``retry_unknown``."""
        body = (
            properties
            if isinstance(properties, CallCreateInput)
            else CallCreateInput(properties=dict(properties))
        )
        response = await self._send(
            "createCall",
            "POST",
            self.paths.calls,
            body=body,
            idempotent=False,
            retry_unknown=retry_unknown,
        )
        return decode_object(response.content)

    async def get_call_by_id(
        self,
        call_id: str,
        *,
        properties: Sequence[str] = (),
        properties_with_history: Sequence[str] = (),
        associations: Sequence[str] = (),
        archived: bool = False,
        id_property: str | None = None,
    ) -> CrmObject:
        """One call (``getCallById``); raises :class:`HubSpotNotFound` if there is none."""
        params = _query(
            properties=properties,
            properties_with_history=properties_with_history,
            associations=associations,
            archived=archived,
            id_property=id_property,
        )
        response = await self._send(
            "getCallById", "GET", f"{self.paths.calls}/{_id(call_id)}", params=params
        )
        return decode_object(response.content)

    async def update_call(
        self, call_id: str, properties: Mapping[str, str], *, id_property: str | None = None
    ) -> CrmObject:
        """Change some properties of one call (``updateCall``)."""
        response = await self._send(
            "updateCall",
            "PATCH",
            f"{self.paths.calls}/{_id(call_id)}",
            params=_query(id_property=id_property),
            body=CallUpdateInput(properties=dict(properties)),
        )
        return decode_object(response.content)

    async def archive_call(self, call_id: str) -> None:
        """Move one call to the recycling bin (``archiveCall``)."""
        await self._send("archiveCall", "DELETE", f"{self.paths.calls}/{_id(call_id)}")

    # --- Calls: batch -----------------------------------------------------------------

    async def batch_create_calls(
        self,
        inputs: Sequence[CallCreateInput],
        *,
        retry_unknown: bool = False,
        fence: Fence | None = None,
    ) -> CallBatchResponse:
        """Create up to 100 calls (``batchCreateCalls``). Give every input an
        ``object_write_trace_id`` to match a 207's item errors (:func:`wire.outcomes`).
        Raises :class:`HubSpotUnknownOutcome` when the outcome is unknown, unless
        ``retry_unknown``; :class:`HubSpotFenced` when ``fence`` refused an attempt."""
        check_batch(inputs)
        response = await self._send(
            "batchCreateCalls",
            "POST",
            f"{self.paths.calls}/batch/create",
            body=BatchCreateRequest(inputs=list(inputs)),
            idempotent=False,
            retry_unknown=retry_unknown,
            fence=fence,
        )
        return _batch(response)

    async def batch_read_calls(
        self,
        ids: Sequence[str],
        *,
        properties: Sequence[str] = (),
        properties_with_history: Sequence[str] = (),
        id_property: str | None = None,
        archived: bool = False,
    ) -> CallBatchResponse:
        """Read up to 100 calls by id, or by a unique property (``batchReadCalls``);
        missing ones are item errors of a 207."""
        check_batch(ids)
        body = BatchReadRequest(
            inputs=object_ids(ids),
            properties=list(properties),
            properties_with_history=list(properties_with_history),
            id_property=id_property,
        )
        response = await self._send(
            "batchReadCalls",
            "POST",
            f"{self.paths.calls}/batch/read",
            params=_query(archived=archived),
            body=body,
        )
        return _batch(response)

    async def batch_upsert_calls(self, inputs: Sequence[BatchUpsertInput]) -> CallBatchResponse:
        """Create or update up to 100 calls by a unique property (``batchUpsertCalls``).

        Each input (:func:`wire.upsert_input`) names its ``id_property`` (a property with
        unique values, e.g. ``callbridge_call_key``) and its value ``id``: the call holding
        that value is updated, else one is created carrying it. Results say ``new``;
        answer 200, or 207 with item errors (matched by ``objectWriteTraceId`` when every
        input has one, else a failing input fails the whole batch: 400). Keyed by a unique
        value, a repeat cannot create a second call, so this is retried like a read."""
        check_batch(inputs)
        response = await self._send(
            "batchUpsertCalls",
            "POST",
            f"{self.paths.calls}/batch/upsert",
            body=BatchUpsertRequest(inputs=list(inputs)),
        )
        return _batch(response)

    async def batch_update_calls(
        self, inputs: Sequence[BatchUpdateInput], *, fence: Fence | None = None
    ) -> CallBatchResponse:
        """Update up to 100 calls (``batchUpdateCalls``); item errors name ``context.ids``.
        :class:`HubSpotFenced` when ``fence`` refused an attempt (not sent)."""
        check_batch(inputs)
        response = await self._send(
            "batchUpdateCalls",
            "POST",
            f"{self.paths.calls}/batch/update",
            body=BatchUpdateRequest(inputs=list(inputs)),
            fence=fence,
        )
        return _batch(response)

    async def batch_archive_calls(self, ids: Sequence[str]) -> None:
        """Archive up to 100 calls (``batchArchiveCalls``)."""
        check_batch(ids)
        await self._send(
            "batchArchiveCalls",
            "POST",
            f"{self.paths.calls}/batch/archive",
            body=BatchArchiveRequest(inputs=object_ids(ids)),
        )

    # --- Calls: search and GDPR -------------------------------------------------------

    async def search_calls(self, request: SearchRequest) -> SearchResponse:
        """One page of a call search (``searchCalls``); spends the search budget too."""
        response = await self._send(
            "searchCalls", "POST", f"{self.paths.calls}/search", body=request, search=True
        )
        return decode_search(response.content)

    async def iter_search_calls(self, request: SearchRequest) -> AsyncIterator[CrmObject]:
        """Every call the search matches, page after page (from ``request.after``)."""
        after = request.after
        while True:
            page = await self.search_calls(msgspec.structs.replace(request, after=after))
            for found in page.results:
                yield found
            after = page.after
            if not after or not page.results:
                return

    async def gdpr_delete_call(self, object_id: str, *, id_property: str | None = None) -> None:
        """Delete one call for good (``gdprDeleteCall``)."""
        await self._send(
            "gdprDeleteCall",
            "POST",
            f"{self.paths.calls}/gdpr-delete",
            body=GdprDeleteRequest(object_id=object_id, id_property=id_property),
        )

    # --- Contacts ---------------------------------------------------------------------

    async def search_contacts(self, request: SearchRequest) -> SearchResponse:
        """One page of a contact search (e.g. by ``phone``); spends the search budget."""
        response = await self._send(
            "searchContacts", "POST", f"{self.paths.contacts}/search", body=request, search=True
        )
        return decode_search(response.content)

    async def batch_read_contacts(
        self,
        ids: Sequence[str],
        *,
        properties: Sequence[str] = (),
        id_property: str | None = None,
        archived: bool = False,
    ) -> CallBatchResponse:
        """Read up to 100 contacts by id or by a unique property (e.g. ``email``)."""
        check_batch(ids)
        body = BatchReadRequest(
            inputs=object_ids(ids), properties=list(properties), id_property=id_property
        )
        response = await self._send(
            "batchReadContacts",
            "POST",
            f"{self.paths.contacts}/batch/read",
            params=_query(archived=archived),
            body=body,
        )
        return _batch(response)

    async def create_contact(
        self, properties: Mapping[str, str], *, retry_unknown: bool = False
    ) -> CrmObject:
        """Create one contact (handy for tests and set-up)."""
        response = await self._send(
            "createContact",
            "POST",
            self.paths.contacts,
            body=ContactCreateInput(properties=dict(properties)),
            idempotent=False,
            retry_unknown=retry_unknown,
        )
        return decode_object(response.content)

    async def list_contacts(
        self,
        *,
        limit: int = 100,
        after: str | None = None,
        properties: Sequence[str] = (),
        archived: bool = False,
    ) -> CollectionResponse:
        """One page of contacts (``GET /crm/v3/objects/contacts``, at most 100); not a
        search, so it spends only the general budget. ``.after`` is the next cursor."""
        params = _query(limit=limit, after=after, properties=properties, archived=archived)
        response = await self._send("listContacts", "GET", self.paths.contacts, params=params)
        return decode_collection(response.content)

    async def batch_create_contacts(
        self, inputs: Sequence[CallCreateInput], *, retry_unknown: bool = False
    ) -> CallBatchResponse:
        """Create up to 100 contacts (``batchCreateContacts``); give every input an
        ``object_write_trace_id`` to match a 207's item errors. Raises
        :class:`HubSpotUnknownOutcome` when the outcome is unknown, unless ``retry_unknown``."""
        check_batch(inputs)
        response = await self._send(
            "batchCreateContacts",
            "POST",
            f"{self.paths.contacts}/batch/create",
            body=BatchCreateRequest(inputs=list(inputs)),
            idempotent=False,
            retry_unknown=retry_unknown,
        )
        return _batch(response)

    # --- Properties -------------------------------------------------------------------

    async def get_property(self, object_type: str, name: str) -> Property:
        """One property definition; raises :class:`HubSpotNotFound` if there is none."""
        response = await self._send(
            "getProperty", "GET", f"{self.paths.properties}/{_id(object_type)}/{_id(name)}"
        )
        return decode_property(response.content)

    async def create_property(self, object_type: str, definition: PropertyCreate) -> Property:
        """Define a custom property; raises :class:`HubSpotConflict` (409) if the name is
        taken. Repeating it is harmless (the repeat is a 409), so it is retried."""
        response = await self._send(
            "createProperty", "POST", f"{self.paths.properties}/{_id(object_type)}", body=definition
        )
        return decode_property(response.content)

    async def get_property_group(self, object_type: str, name: str) -> PropertyGroup:
        """One property group; raises :class:`HubSpotNotFound` if there is none."""
        response = await self._send(
            "getPropertyGroup",
            "GET",
            f"{self.paths.properties}/{_id(object_type)}/groups/{_id(name)}",
        )
        return decode_property_group(response.content)

    async def create_property_group(
        self, object_type: str, group: PropertyGroupCreate
    ) -> PropertyGroup:
        """Define a property group; raises :class:`HubSpotConflict` (409) if it exists."""
        response = await self._send(
            "createPropertyGroup",
            "POST",
            f"{self.paths.properties}/{_id(object_type)}/groups",
            body=group,
        )
        return decode_property_group(response.content)

    async def get_call_property(self, name: str) -> Property:
        """One call property definition (:meth:`get_property` for ``calls``)."""
        return await self.get_property("calls", name)

    async def create_call_property(self, definition: PropertyCreate) -> Property:
        """Define a custom call property (:meth:`create_property` for ``calls``)."""
        return await self.create_property("calls", definition)

    # --- Associations (v4) ------------------------------------------------------------

    async def batch_create_call_contact_associations(
        self,
        pairs: Iterable[tuple[str, str]],
        *,
        type_id: int = CALL_TO_CONTACT,
        category: AssociationCategory = "HUBSPOT_DEFINED",
    ) -> AssociationBatchResponse:
        """Associate up to 100 ``(call_id, contact_id)`` pairs (v4 batch create; default
        type 194, HubSpot-defined call→contact). Creating an existing one is a no-op."""
        inputs = [association_pair(c, p, type_id, category) for c, p in pairs]
        check_batch(inputs)
        response = await self._send(
            "batchCreateCallContactAssociations",
            "POST",
            self.paths.call_contact_associations,
            body=AssociationBatchCreateRequest(inputs=inputs),
        )
        return decode_association_batch(response.content, response.status_code)


def _batch(response: httpx.Response) -> CallBatchResponse:
    """A batch answer with its status and correlation id (207 item errors carry none)."""
    return decode_batch(
        response.content, response.status_code, response.headers.get(CORRELATION_HEADER)
    )
