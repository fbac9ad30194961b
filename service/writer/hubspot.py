"""The HubSpot adapters of the writer's ports: ``HubSpotCalls`` (``CallsPort``) and
``HubSpotContacts`` (``ContactsPort``), turning the client's answers and exceptions into
per-input outcomes (``service.writer.ports``).

Which HubSpot trouble means what:
- a 207's item error: ``CONFLICT`` on a create is ``Exists`` (the call key is taken);
  other categories are ``Refused`` (dead-letter that input); retryable categories are
  ``Unknown`` for a create (it may have been applied), ``Transient`` otherwise;
- a whole batch refused (400, 409, 404) is ``Refused(whole_batch=True)``: the flush splits
  it until the input at fault is alone;
- 429 and 5xx after the client's own retries: ``Transient`` (``Unknown`` for a create);
- 401/403, a refused OAuth refresh and the daily limit: ``Blocked`` (an OAuth refresh
  that could not be made: ``Transient``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Final, TypeVar

import structlog

from service.contacts import ContactMatcher
from service.deadletter import Failure
from service.hubspot import HubSpotClient
from service.hubspot.errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotDailyLimitExceeded,
    HubSpotError,
    HubSpotFenced,
    HubSpotMissingScopes,
    HubSpotRateLimited,
    HubSpotUnavailable,
    HubSpotUnknownOutcome,
    HubSpotValidationError,
)
from service.hubspot.models import Filter, FilterGroup, SearchRequest
from service.hubspot.oauth import OAuthRefreshError
from service.hubspot.wire import Dead, Ok, create_input, outcomes, unique_conflict, update_input
from service.writer.ports import (
    AssociateInput,
    Blocked,
    ContactsUnavailable,
    CreateInput,
    Exists,
    Fence,
    Found,
    LookupOutcome,
    Refused,
    Transient,
    Unknown,
    UpdateInput,
    WriteOutcome,
    Written,
)

log = structlog.get_logger()

BATCH: Final = 100
In = TypeVar("In", CreateInput, UpdateInput)

EXTERNAL_ID: Final = "hs_call_external_id"
KEY_PROPERTY: Final = "callbridge_call_key"


def _failure(operation: str, exc: HubSpotError) -> Failure:
    return Failure("hubspot", operation, exc.status, exc.category, exc.message, exc.correlation_id)


def trouble(
    exc: HubSpotError, operation: str, inputs: int, *, create: bool = False
) -> WriteOutcome:
    """What a failed request means for each of its ``inputs``."""
    if isinstance(exc, OAuthRefreshError):  # no request was sent: nothing applied
        if exc.retryable:
            return Transient(f"OAuth token refresh failed: {exc.message}")
        return Blocked(f"OAuth token refresh refused ({exc.category}): {exc.message}", "auth")
    if isinstance(exc, HubSpotDailyLimitExceeded):
        return Blocked("HubSpot daily limit reached", "daily")
    if isinstance(exc, HubSpotAuthError | HubSpotMissingScopes):
        return Blocked(f"HubSpot refused the token ({exc.status} {exc.category})", "auth")
    if isinstance(exc, HubSpotUnknownOutcome):
        return Unknown(str(exc))
    if isinstance(exc, HubSpotFenced):  # not sent: its calls are no longer ours
        return Transient(str(exc))
    if isinstance(exc, HubSpotRateLimited):
        return Transient(str(exc), exc.retry_after_s)
    if isinstance(exc, HubSpotUnavailable):
        return Unknown(str(exc)) if create else Transient(str(exc))
    if create and isinstance(exc, HubSpotConflict | HubSpotValidationError):
        conflict = unique_conflict(exc)
        if conflict is not None and inputs == 1:
            return Exists(conflict.existing_id)
        if isinstance(exc, HubSpotConflict) and inputs == 1:
            return Exists(None)
    return Refused(_failure(operation, exc), whole_batch=inputs > 1)


def _item(
    outcome: Ok | Dead | object, operation: str, *, create: bool, status: int
) -> WriteOutcome:
    """One input's outcome; a refusal carries the status of the answer it came in (207)."""
    if isinstance(outcome, Ok):
        return Written(outcome.id)
    if isinstance(outcome, Dead):
        conflict = unique_conflict(outcome.message) if create else None
        if conflict is not None:
            return Exists(conflict.existing_id)
        failure = Failure(
            "hubspot",
            operation,
            status,
            outcome.category,
            outcome.message,
            outcome.correlation_id,
        )
        return Refused(failure)
    reason = getattr(outcome, "reason", "not in the answer")
    return Unknown(reason) if create else Transient(reason)


def search_chunks(values: Sequence[str], budget: int = 2000, most: int = 100) -> list[list[str]]:
    """Split IN-filter values so a search body stays under HubSpot's 3,000 characters."""
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for value in values:
        cost = len(value) + 4
        if current and (size + cost > budget or len(current) >= most):
            out.append(current)
            current, size = [], 0
        current.append(value)
        size += cost
    if current:
        out.append(current)
    return out


async def _batched(
    send: Callable[[Sequence[In]], Awaitable[Mapping[str, WriteOutcome]]], inputs: Sequence[In]
) -> dict[str, WriteOutcome]:
    """``inputs`` in HubSpot's batches of 100, sent concurrently (the client paces them)."""
    chunks = [inputs[start : start + BATCH] for start in range(0, len(inputs), BATCH)]
    answers = await asyncio.gather(*(send(chunk) for chunk in chunks))
    return {k: v for answer in answers for k, v in answer.items()}


class HubSpotCalls:
    """``CallsPort`` over the HubSpot client. ``key_property``: the unique call-key
    property creates carry and lookups read by (None: search ``hs_call_external_id``)."""

    def __init__(self, client: HubSpotClient, key_property: str | None) -> None:
        self.client = client
        self.key_property = key_property

    async def create(
        self, inputs: Sequence[CreateInput], *, fence: Fence | None = None
    ) -> Mapping[str, WriteOutcome]:
        return await _batched(functools.partial(self._create, fence=fence), inputs)

    async def update(
        self, inputs: Sequence[UpdateInput], *, fence: Fence | None = None
    ) -> Mapping[str, WriteOutcome]:
        return await _batched(functools.partial(self._update, fence=fence), inputs)

    async def _create(
        self, inputs: Sequence[CreateInput], *, fence: Fence | None
    ) -> Mapping[str, WriteOutcome]:
        keys = [i.key for i in inputs]
        payload = [
            create_input(
                {
                    **i.properties,
                    EXTERNAL_ID: i.key,
                    **({self.key_property: i.key} if self.key_property else {}),
                },
                trace_id=i.key,
                associations=i.associations,
            )
            for i in inputs
        ]
        try:
            response = await self.client.batch_create_calls(payload, fence=fence)
        except HubSpotError as exc:
            return dict.fromkeys(keys, trouble(exc, "batchCreateCalls", len(keys), create=True))
        items = outcomes(
            response.http_status, response, keys, correlation_id=response.correlation_id
        )
        # Matched by trace id where HubSpot echoes it, else by the key the record carries.
        for created in response.results:
            key = created.properties.get(EXTERNAL_ID)
            if key in items and not isinstance(items[key], Ok | Dead):
                items[key] = Ok(created.id)
        status = response.http_status
        return {
            k: _item(o, "batchCreateCalls", create=True, status=status) for k, o in items.items()
        }

    async def _update(
        self, inputs: Sequence[UpdateInput], *, fence: Fence | None
    ) -> Mapping[str, WriteOutcome]:
        keys = [i.key for i in inputs]
        payload = [update_input(i.hubspot_id, i.properties, trace_id=i.key) for i in inputs]
        try:
            response = await self.client.batch_update_calls(payload, fence=fence)
        except HubSpotError as exc:
            return dict.fromkeys(keys, trouble(exc, "batchUpdateCalls", len(keys)))
        items = outcomes(
            response.http_status,
            response,
            keys,
            ids=[i.hubspot_id for i in inputs],
            correlation_id=response.correlation_id,
        )
        status = response.http_status
        return {
            k: _item(o, "batchUpdateCalls", create=False, status=status) for k, o in items.items()
        }

    async def associate(self, inputs: Sequence[AssociateInput]) -> Mapping[str, WriteOutcome]:
        """Every input's pairs, 100 pairs a request, the requests concurrent; an input is
        written once all of its pairs are."""
        pairs = [(i.key, i.hubspot_id, c) for i in inputs for c in i.contacts]
        out: dict[str, WriteOutcome] = {i.key: Written(i.hubspot_id) for i in inputs}
        chunks = [pairs[start : start + 100] for start in range(0, len(pairs), 100)]
        await asyncio.gather(*(self._associate_chunk(chunk, out) for chunk in chunks))
        return out

    async def _associate_chunk(
        self, chunk: list[tuple[str, str, str]], out: dict[str, WriteOutcome]
    ) -> None:
        owners = {k for k, _, _ in chunk}
        try:
            response = await self.client.batch_create_call_contact_associations(
                [(call, contact) for _, call, contact in chunk]
            )
        except HubSpotError as exc:
            bad = trouble(exc, "batchCreateCallContactAssociations", len(owners))
            for key in owners:
                if isinstance(out[key], Written):
                    out[key] = bad
            return
        for error in response.errors:
            failure = Failure(
                "hubspot",
                "batchCreateCallContactAssociations",
                response.http_status,
                error.category or "ERROR",
                error.message,
            )
            named = {v for vs in error.context.values() for v in vs}
            hit = {k for k, call, contact in chunk if call in named or contact in named}
            for key in hit or owners:
                out[key] = Refused(failure, whole_batch=not hit and len(owners) > 1)

    async def lookup(self, keys: Sequence[str]) -> Mapping[str, LookupOutcome]:
        try:
            if self.key_property is not None:
                found = await self._read(keys, self.key_property)
            else:
                found = await self._search(keys)
        except HubSpotError as exc:
            bad = trouble(exc, "lookup", len(keys))
            if isinstance(bad, Written | Exists | Unknown):  # not for a read
                bad = Transient(str(exc))
            return dict.fromkeys(keys, bad)
        return {k: Found(found.get(k)) for k in keys}

    async def _read(self, keys: Sequence[str], prop: str) -> dict[str, str]:
        response = await self.client.batch_read_calls(keys, id_property=prop, properties=[prop])
        return {value: obj.id for obj in response.results if (value := obj.properties.get(prop))}

    async def _search(self, keys: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in search_chunks(keys):
            request = SearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[Filter(property_name=EXTERNAL_ID, operator="IN", values=chunk)]
                    )
                ],
                properties=[EXTERNAL_ID],
                limit=100,
            )
            async for call in self.client.iter_search_calls(request):
                key = call.properties.get(EXTERNAL_ID)
                if key and key not in found:
                    found[key] = call.id
        return found


class HubSpotContacts:
    """``ContactsPort`` over the portal's contact matcher (``service.contacts``: the local
    phone index, its cold-path search, and the matching policies)."""

    def __init__(self, matcher: ContactMatcher) -> None:
        self.matcher = matcher

    async def match(self, numbers: Collection[str]) -> Mapping[str, Sequence[str]]:
        try:
            return await self.matcher.match(numbers)
        except HubSpotValidationError as exc:  # a lookup HubSpot refuses: write without
            log.error("contact_lookup_refused", error=str(exc))
            return {}
        except HubSpotError as exc:
            outcome = trouble(exc, "searchContacts", 1)
            if isinstance(outcome, Transient | Blocked):
                raise ContactsUnavailable(outcome) from exc
            raise ContactsUnavailable(Transient(str(exc))) from exc
