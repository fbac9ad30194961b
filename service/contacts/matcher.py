"""The contact matcher: numbers in, contact ids to associate out, after the portal's policies.

Warm, it answers from the local index and spends no request. Cold (the first build has
not finished), a lookup first waits for the build, up to ``CALLBRIDGE_CONTACT_INDEX_WARM_WAIT_S``
after :meth:`IndexedMatcher.run` started: a build pages 100 contacts per request, a search
confirms about 17 numbers at 5 per second, so for all but the largest portals waiting is both
cheaper (the request budget goes to creates) and sooner. Past that deadline it searches
HubSpot in batches (:mod:`service.contacts.search`), cached like the legacy resolver. Either way every candidate was confirmed by E.164 comparison.

Unknown callers under ``CALLBRIDGE_UNKNOWN_CALLER=create`` get a contact (phone in
E.164, the caller's name where given), once per number. It is not a marketing contact:
HubSpot makes contacts an app creates non-marketing (``hs_marketable_status`` is
read-only to the API) unless the portal's "Marketing contacts" integration setting opts
the app in, which operators must leave off. Once per number:

1. the intent (number, time) is committed to the index store *before* the create is sent;
2. the created contact's id is committed with the intent and indexed at once;
3. an intent without an id is a create of unknown outcome (a crash, a timeout). It is not
   sent again before ``CALLBRIDGE_CONTACT_CREATE_RECONCILE_S`` (HubSpot's search lag);
   then HubSpot is searched for the number, the contact found is adopted, and only if
   there is none is it created again. Calls meanwhile go unassociated and are late-matched.
4. an intent with an id is never created again, even if that contact is later deleted.

Guarantee: one contact per number per index store, provided HubSpot's search shows a
created contact within the reconcile delay. Writers sharing a portal but not a store
(several replicas, each with its own directory) can each create one.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Collection, Iterable, Mapping, Sequence

import structlog

from service.contacts import metrics
from service.contacts.index import PhoneIndex, Wall
from service.contacts.phones import e164, masked, split_name
from service.contacts.policy import Candidate, Policy, choose
from service.contacts.resolver import NumberCache
from service.contacts.search import search_candidates
from service.contacts.store import IndexStore
from service.hubspot import HubSpotClient, HubSpotError, HubSpotUnknownOutcome
from service.hubspot.models import CallCreateInput

log = structlog.get_logger()


class IndexedMatcher:
    """:class:`service.contacts.ContactMatcher` over a :class:`PhoneIndex`."""

    def __init__(
        self,
        client: HubSpotClient,
        store: IndexStore,
        index: PhoneIndex,
        *,
        region: str,
        custom_properties: Sequence[str] = (),
        policy: Policy = "latest",
        unknown_caller: str = "ignore",
        reconcile_s: float = 10.0,
        cache_ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        warm_wait_s: float = 0.0,
        wall: Wall = time.time,
        monotonic: Wall = time.monotonic,
        portal: str = "default",
    ) -> None:
        self.portal = portal
        self.client = client
        self.store = store
        self.index = index
        self.region = region
        self.custom = list(custom_properties)
        self.policy: Policy = policy
        self.create_unknown = unknown_caller == "create"
        self.reconcile_ms = int(reconcile_s * 1000)
        self.wall = wall
        self.monotonic = monotonic
        self.warm_wait_s = warm_wait_s
        #: until when a cold lookup waits for the build (set when :meth:`run` starts)
        self._warm_deadline: float | None = None
        self._fallback: NumberCache[Candidate] = NumberCache(
            self._search, ttl_s=cache_ttl_s, negative_ttl_s=negative_ttl_s, chunk=200
        )
        self._create_lock = asyncio.Lock()
        self._done = asyncio.Event()
        self._done.set()
        self._closed = False
        self._task: asyncio.Task[None] | None = None

    # -- ContactMatcher -------------------------------------------------------------------

    async def match(
        self, numbers: Collection[str], names: Mapping[str, str] | None = None
    ) -> dict[str, list[str]]:
        """Contact ids to associate per number (every number in ``numbers`` is a key)."""
        normal = {n: e164(n, self.region) for n in numbers}
        wanted = {v for v in normal.values() if v is not None}
        if wanted and not self.index.warm and self._warm_deadline is not None:
            remaining = self._warm_deadline - self.monotonic()
            if remaining > 0:
                metrics.WARM_WAITS.labels(self.portal).inc()
                await self.wait_warm(remaining)
        if self.index.warm:
            candidates = self.store.lookup(wanted)
        else:
            candidates = {k: v for k, v in (await self._fallback.resolve(wanted)).items() if v}
        chosen: dict[str, list[str]] = {}
        for number in wanted:
            found = candidates.get(number)
            if not found:
                continue
            ids, shared = choose(self.policy, found)
            chosen[number] = ids
            if ids:
                metrics.MATCHES.labels("matched", self.portal).inc()
            if shared and not ids:
                metrics.MATCHES.labels("shared_unassociated", self.portal).inc()
                log.info(
                    "contact_match_shared",
                    number=masked(number),
                    contacts=len(found),
                    policy=self.policy,
                    contact_match_shared=True,
                )
        unknown = sorted(wanted - set(chosen))
        metrics.MATCHES.labels("unknown", self.portal).inc(len(unknown))
        if unknown and self.create_unknown:
            by_e164: dict[str, str] = {}
            for k, v in (names or {}).items():
                key = normal.get(k) or e164(k, self.region)
                if key is not None:
                    by_e164[key] = v
            created = await self._create(unknown, by_e164)
            chosen.update({n: [c] for n, c in created.items()})
        out: dict[str, list[str]] = {}
        for original, normalized in normal.items():
            out[original] = list(chosen.get(normalized, [])) if normalized else []
        return out

    def calls_written(self, items: Iterable[tuple[str, str, float]]) -> None:
        """Remember written calls whose number has no contact, for late matching."""
        rows = [(e164(n, self.region), call_id, at) for n, call_id, at in items]
        valid = [(n, c, int(at * 1000)) for n, c, at in rows if n is not None and c]
        if not valid:
            return
        known = self.store.known({n for n, _, _ in valid})
        unmatched = [r for r in valid if r[0] not in known]
        if not self.index.warm:  # what the fallback search found is not in the index
            unmatched = [r for r in unmatched if not self._fallback.cached(r[0])]
        self.index.remember(unmatched)

    @property
    def warm(self) -> bool:
        """True once the index is built: matching spends no HubSpot request."""
        return self.index.warm

    async def wait_warm(self, timeout_s: float) -> bool:
        """Wait (while :meth:`run` builds) until the index is warm or ``timeout_s`` passed;
        whether it is warm. A writer may wait a little at start rather than search."""
        if not self.index.warm:
            try:
                await asyncio.wait_for(self.index.warmed.wait(), timeout=timeout_s)
            except TimeoutError:
                pass
        return self.index.warm

    async def run(self) -> None:
        """Build and refresh the index until :meth:`aclose`."""
        self._done.clear()
        self._task = asyncio.current_task()
        if not self.index.warm and self.warm_wait_s > 0:
            self._warm_deadline = self.monotonic() + self.warm_wait_s
        try:
            await self.index.run()
        finally:
            self._done.set()

    async def aclose(self) -> None:
        """Stop the background work (waiting for it briefly) and close the store."""
        if self._closed:
            return
        self._closed = True
        self.index.stop()
        try:
            await asyncio.wait_for(self._done.wait(), timeout=10.0)
        except TimeoutError:  # a request still retrying: give up on it
            log.warning("contact_index_stop_timeout")
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(self._done.wait(), timeout=5.0)
        self.store.close()

    # -- internals ------------------------------------------------------------------------

    async def _search(self, numbers: list[str]) -> dict[str, list[Candidate]]:
        return await search_candidates(
            self.client, numbers, region=self.region, custom=self.custom, portal=self.portal
        )

    async def _create(self, unknown: list[str], names: Mapping[str, str]) -> dict[str, str]:
        """Contacts for unknown numbers, created at most once per number (see module doc)."""
        async with self._create_lock:
            now = int(self.wall() * 1000)
            # an earlier match() in this lock may just have created some of them
            indexed = self.store.lookup(unknown)
            out = {n: choose(self.policy, c)[0] for n, c in indexed.items()}
            result = {n: ids[0] for n, ids in out.items() if ids}
            intents = self.store.intents([n for n in unknown if n not in indexed])
            stale = [
                n
                for n, (started, cid) in intents.items()
                if cid is None and now - started >= self.reconcile_ms
            ]
            fresh = [n for n in unknown if n not in indexed and n not in intents]
            if stale:
                try:
                    found = await search_candidates(
                        self.client,
                        stale,
                        region=self.region,
                        custom=self.custom,
                        reason="reconcile",
                        portal=self.portal,
                    )
                except HubSpotError as exc:  # re-check later; never create blind
                    log.warning("contact_create_recheck_failed", count=len(stale), error=str(exc))
                    stale, found = [], {}
                adopted = {n: choose("latest", c)[0][0] for n, c in found.items() if c}
                if adopted:
                    self.store.finish_creates(adopted, now, self.index.gen)
                    result.update(adopted)
                fresh.extend(n for n in stale if n not in adopted)
            if fresh:
                result.update(await self._send_creates(sorted(fresh), names, now))
            return result

    async def _send_creates(
        self, numbers: list[str], names: Mapping[str, str], now: int
    ) -> dict[str, str]:
        self.store.begin_creates(numbers, now)
        created: dict[str, str] = {}
        for start in range(0, len(numbers), 100):
            chunk = numbers[start : start + 100]
            inputs = [
                CallCreateInput(
                    properties={"phone": n, **split_name(names.get(n))},
                    object_write_trace_id=n,
                )
                for n in chunk
            ]
            try:
                answer = await self.client.batch_create_contacts(inputs)
            except HubSpotUnknownOutcome as exc:
                log.warning("contact_create_unknown_outcome", count=len(chunk), error=str(exc))
                continue
            except HubSpotError as exc:
                log.error("contact_create_failed", count=len(chunk), error=str(exc))
                continue
            for contact in answer.results:
                number = contact.object_write_trace_id or contact.properties.get("phone")
                if number is not None and number in chunk:
                    created[number] = contact.id
            for error in answer.errors:
                log.error("contact_create_refused", error=error.message)
        if created:
            self.store.finish_creates(created, now, self.index.gen)
            metrics.MATCHES.labels("created", self.portal).inc(len(created))
            log.info("contacts_created", count=len(created))
        return created
