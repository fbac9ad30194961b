"""One flush of the writer: due calls → HubSpot batch creates/updates → settled or retried.

Exactly one HubSpot record per call:
1. a call whose durable record has a HubSpot id is *updated* (only the changed properties);
2. a call with no record is *created*, but first its create intent is recorded durably in
   ``calls.ids``; every input carries ``objectWriteTraceId`` = the call key;
3. a call whose record shows an intent but no id had a create of unknown outcome (a crash,
   a timeout): once HubSpot's search index has caught up (``writer_reconcile_after_s``)
   it is looked up by ``hs_call_external_id`` and updated if found, created otherwise.
The id is recorded before the events' offsets are committed (the caller commits).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from service import metrics
from service.coalesce import CallRecord, CallWrite, Pending, explicit_ids, prepare
from service.config import Settings
from service.contacts import ContactResolver, find_contacts
from service.dlq.format import Failure
from service.hubspot import (
    HubSpotClient,
    HubSpotDailyLimitExceeded,
    HubSpotError,
    HubSpotValidationError,
)
from service.hubspot.models import Filter, FilterGroup, SearchRequest
from service.hubspot.wire import (
    Dead,
    ItemOutcome,
    Ok,
    Retry,
    chunks,
    create_input,
    outcomes,
    update_input,
)
from service.idstore import IdStore

log = structlog.get_logger()

EXTERNAL_ID = "hs_call_external_id"
#: an intent time that is always due: "search HubSpot before creating"
ANCIENT = 1.0
PHONE_PROPERTIES = ("phone", "mobilephone")

DeadLetter = Callable[[list[Pending], Failure], Awaitable[None]]


class Paused(Exception):
    """HubSpot cannot take writes now (rate limits, outage, daily budget): pause and retry."""

    def __init__(
        self, reason: str, retry_after_s: float | None = None, daily: bool = False
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after_s = retry_after_s
        self.daily = daily


@dataclass
class FlushResult:
    settled: list[Pending] = field(default_factory=list)
    retry: list[Pending] = field(default_factory=list)
    retry_after_s: float = 1.0


@dataclass
class _Call:
    write: CallWrite
    contacts: list[str]
    previous: CallRecord | None


class Flusher:
    def __init__(
        self,
        *,
        settings: Settings,
        hubspot: HubSpotClient,
        store: IdStore,
        contacts: ContactResolver,
        dead_letter: DeadLetter,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.hs = hubspot
        self.store = store
        self.contacts = contacts
        self.dead_letter = dead_letter
        self.wall = wall

    async def flush(self, pendings: list[Pending]) -> FlushResult:
        """Write these calls. Raises ``Paused`` (nothing settled) when HubSpot is unavailable
        before anything was written; otherwise settles what it can and returns the rest."""
        result = FlushResult()
        calls = [self._call(p) for p in pendings]
        try:
            calls = await self._reconcile(calls, result)
            if not calls:
                return result
            await self._resolve_contacts(calls)
        except HubSpotDailyLimitExceeded as exc:
            raise Paused(
                "hubspot daily limit", retry_after_s=self.settings.writer_daily_retry_s, daily=True
            ) from exc
        except HubSpotError as exc:
            raise Paused(f"hubspot search failed: {exc}") from exc
        creates = [c for c in calls if c.write.record.hubspot_id is None]
        updates = [c for c in calls if c.write.record.hubspot_id is not None]
        noop = [c for c in updates if not c.write.properties and not self._new_contacts(c)]
        updates = [c for c in updates if c not in noop]
        result.settled += [c.write.pending for c in noop]
        metrics.WRITER_COALESCED.inc(sum(max(0, len(p.refs) - 1) for p in pendings))
        try:
            if creates:
                await self._create(creates, result)
            if updates:
                await self._update(updates, result)
        except HubSpotDailyLimitExceeded as exc:
            self._unsettled(calls, result)
            raise Paused(
                "hubspot daily limit", retry_after_s=self.settings.writer_daily_retry_s, daily=True
            ) from exc
        except HubSpotError as exc:
            self._unsettled(calls, result)
            if not result.settled:
                raise Paused(f"hubspot unavailable: {exc}") from exc
            result.retry_after_s = 5.0
        return result

    @staticmethod
    def _unsettled(calls: list[_Call], result: FlushResult) -> None:
        """Everything neither settled nor already queued for retry goes back for retry."""
        done = {id(p) for p in result.settled} | {id(p) for p in result.retry}
        result.retry += [c.write.pending for c in calls if id(c.write.pending) not in done]

    def _call(self, pending: Pending) -> _Call:
        previous = self.store.get(pending.key)
        call = _Call(prepare(pending, previous), [], previous)
        if previous is None and self._older_than_the_store(pending):
            # its record may have been dropped from the store: look in HubSpot first
            call.write.record.intent_at = ANCIENT
        return call

    def _older_than_the_store(self, pending: Pending) -> bool:
        """Whether the call started before the store's retention window (minus a day)."""
        horizon = self.wall() - (self.settings.writer_ids_retention_days - 1) * 86400
        return any(_epoch(e.occurred_at) < horizon for e in pending.events)

    # -- reconciliation of creates of unknown outcome ------------------------------------

    async def _reconcile(self, calls: list[_Call], result: FlushResult) -> list[_Call]:
        unknown = [
            c for c in calls if c.write.record.hubspot_id is None and c.write.record.intent_at
        ]
        if not unknown:
            return calls
        now = self.wall()
        lag = self.settings.writer_reconcile_after_s
        waiting = [c for c in unknown if now - (c.write.record.intent_at or 0) < lag]
        due = [c for c in unknown if c not in waiting]
        if waiting:
            result.retry += [c.write.pending for c in waiting]
            result.retry_after_s = max(
                0.2, min(lag - (now - (c.write.record.intent_at or 0)) for c in waiting)
            )
        if due:
            found = await self.hs_find_calls([c.write.key for c in due])
            for c in due:
                record = c.write.record
                record.intent_at = None
                hubspot_id = found.get(c.write.key)
                if hubspot_id is not None:
                    record.hubspot_id = hubspot_id
                    c.write.properties = dict(record.properties)  # unknown what landed: all
            log.info("creates_reconciled", checked=len(due), found=len(found))
        return [c for c in calls if c not in waiting]

    async def hs_find_calls(self, keys: Sequence[str]) -> dict[str, str]:
        """HubSpot ids of existing calls by ``hs_call_external_id`` (search, ≤100 per request)."""
        found: dict[str, str] = {}
        for chunk in search_chunks(list(keys)):
            request = SearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[Filter(property_name=EXTERNAL_ID, operator="IN", values=chunk)]
                    )
                ],
                properties=[EXTERNAL_ID],
                limit=100,
            )
            async for call in self.hs.iter_search_calls(request):
                key = call.properties.get(EXTERNAL_ID)
                if key and key not in found:
                    found[key] = call.id
        return found

    # -- contacts ------------------------------------------------------------------------

    async def _resolve_contacts(self, calls: list[_Call]) -> None:
        numbers = {n for c in calls for n in c.write.pending.counterparts()}
        try:
            resolved = await self.contacts.resolve(numbers) if numbers else {}
        except HubSpotValidationError as exc:  # a lookup HubSpot refuses: write without
            log.error("contact_lookup_refused", error=str(exc))
            resolved = {}
        for c in calls:
            ids = set(explicit_ids(c.write.pending.events).get("contacts", []))
            for number in c.write.pending.counterparts():
                ids.update(resolved.get(number, []))
            c.contacts = sorted(ids)

    @staticmethod
    def _new_contacts(c: _Call) -> list[str]:
        known = set(c.write.record.contacts)
        return [i for i in c.contacts if i not in known]

    # -- creates -------------------------------------------------------------------------

    async def _create(self, creates: list[_Call], result: FlushResult) -> None:
        intent_at = self.wall()
        intents: list[tuple[str, int, CallRecord | None]] = []
        for c in creates:
            base = c.previous or CallRecord()
            intents.append((c.write.key, c.write.pending.partition, _with_intent(base, intent_at)))
        await self.store.put_many(intents)
        for chunk in chunks(creates):
            metrics.BATCH_SIZE.labels("create").observe(len(chunk))
            outcome = await self._create_batch(chunk)
            await self._settle(chunk, outcome, "batchCreateCalls", result)

    async def _create_batch(self, chunk: list[_Call]) -> dict[str, ItemOutcome]:
        inputs = [
            create_input(
                c.write.properties,
                trace_id=c.write.key,
                associations={
                    **explicit_ids(c.write.pending.events),
                    **({"contacts": c.contacts} if c.contacts else {}),
                },
            )
            for c in chunk
        ]
        try:
            response = await self.hs.batch_create_calls(inputs)
        except HubSpotValidationError as exc:
            return await self._bisect(chunk, exc, self._create_batch)
        result = outcomes(
            response.http_status,
            response,
            [c.write.key for c in chunk],
            correlation_id=response.correlation_id,
        )
        # Results are matched by trace id where HubSpot echoes it, else by the call key
        # the created record carries in hs_call_external_id.
        for created in response.results:
            key = created.properties.get(EXTERNAL_ID)
            if key is not None and isinstance(result.get(key), Retry):
                result[key] = Ok(created.id)
        return _with_status(result, response.http_status)

    # -- updates -------------------------------------------------------------------------

    async def _update(self, updates: list[_Call], result: FlushResult) -> None:
        for chunk in chunks(updates):
            metrics.BATCH_SIZE.labels("update").observe(len(chunk))
            outcome = await self._update_batch(chunk)
            pairs = [
                (c.write.record.hubspot_id or "", contact)
                for c in chunk
                if isinstance(outcome.get(c.write.key), Ok)
                for contact in self._new_contacts(c)
            ]
            if pairs:
                await self.hs.batch_create_call_contact_associations(pairs)
            await self._settle(chunk, outcome, "batchUpdateCalls", result)

    async def _update_batch(self, chunk: list[_Call]) -> dict[str, ItemOutcome]:
        with_props = [c for c in chunk if c.write.properties]
        out: dict[str, ItemOutcome] = {
            c.write.key: Ok(c.write.record.hubspot_id or "")
            for c in chunk
            if not c.write.properties
        }
        if not with_props:
            return out
        inputs = [
            update_input(c.write.record.hubspot_id or "", c.write.properties, trace_id=c.write.key)
            for c in with_props
        ]
        try:
            response = await self.hs.batch_update_calls(inputs)
        except HubSpotValidationError as exc:
            return out | await self._bisect(with_props, exc, self._update_batch)
        return out | _with_status(
            outcomes(
                response.http_status,
                response,
                [c.write.key for c in with_props],
                ids=[c.write.record.hubspot_id for c in with_props],
                correlation_id=response.correlation_id,
            ),
            response.http_status,
        )

    async def _bisect(
        self,
        chunk: list[_Call],
        exc: HubSpotValidationError,
        send: Callable[[list[_Call]], Awaitable[dict[str, ItemOutcome]]],
    ) -> dict[str, ItemOutcome]:
        """A whole batch answered 400: split it to isolate the bad inputs."""
        if len(chunk) == 1:
            return {
                chunk[0].write.key: Dead(
                    exc.category or "VALIDATION_ERROR", exc.message, exc.status, exc.correlation_id
                )
            }
        mid = len(chunk) // 2
        log.info("batch_bisected", size=len(chunk))
        return await send(chunk[:mid]) | await send(chunk[mid:])

    # -- settling ------------------------------------------------------------------------

    async def _settle(
        self,
        chunk: list[_Call],
        outcome: dict[str, ItemOutcome],
        operation: str,
        result: FlushResult,
    ) -> None:
        puts: list[tuple[str, int, CallRecord | None]] = []
        dead: list[tuple[_Call, Dead]] = []
        for c in chunk:
            item = outcome.get(c.write.key)
            if isinstance(item, Ok):
                record = c.write.record
                record.hubspot_id = record.hubspot_id or item.id
                record.intent_at = None
                record.touched_at = self.wall()
                record.contacts = sorted(set(record.contacts) | set(c.contacts))
                puts.append((c.write.key, c.write.pending.partition, record))
                result.settled.append(c.write.pending)
            elif isinstance(item, Dead):
                dead.append((c, item))
                if operation == "batchCreateCalls":  # known not created: clear the intent
                    puts.append((c.write.key, c.write.pending.partition, c.previous))
                result.settled.append(c.write.pending)
            else:
                result.retry.append(c.write.pending)
        await self.store.put_many(puts)
        for c, item in dead:
            failure = Failure(
                stage="hubspot",
                operation=operation,
                http_status=item.status,
                category=item.category,
                message=item.message,
                correlation_id=item.correlation_id,
            )
            await self.dead_letter([c.write.pending], failure)


def _with_intent(record: CallRecord, intent_at: float) -> CallRecord:
    return CallRecord(
        hubspot_id=record.hubspot_id,
        properties=dict(record.properties),
        seq=dict(record.seq),
        events=list(record.events),
        contacts=list(record.contacts),
        intent_at=intent_at,
        touched_at=intent_at,
    )


def _with_status(outcome: dict[str, ItemOutcome], http_status: int) -> dict[str, ItemOutcome]:
    """Item errors carry the status of the answer they came in (207 multi-status)."""
    return {
        k: Dead(v.category, v.message, http_status, v.correlation_id) if isinstance(v, Dead) else v
        for k, v in outcome.items()
    }


async def find_contacts_by_phone(
    hs: HubSpotClient, numbers: list[str], region: str
) -> dict[str, list[str]]:
    """Contact ids holding one of ``numbers`` (E.164) in ``phone`` or ``mobilephone``, as
    typed in any format: searched on HubSpot's calculated phone forms and confirmed by
    E.164 comparison (:func:`service.contacts.find_contacts`)."""
    return await find_contacts(hs, numbers, region)


def search_chunks(values: list[str], budget: int = 2000, most: int = 100) -> list[list[str]]:
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


def _epoch(iso: str) -> float:
    try:
        return datetime.fromisoformat(iso).timestamp()
    except ValueError:
        return float("inf")  # unreadable: treat as new (the ingress wrote it, it is valid)
