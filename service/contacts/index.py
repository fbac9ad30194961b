"""The portal's phone index, kept in sync with HubSpot at a cost that does not grow with calls.

- **Build**: page through ``GET /crm/v3/objects/contacts`` (the list endpoint, not search:
  it spends only the general budget), 100 contacts a page, asking for the phone
  properties and ``lastmodifieddate`` only. Each page is committed with its cursor, so a
  restart resumes where the build stopped. The index is *warm* once a build completed.
- **Refresh**: every ``CALLBRIDGE_CONTACT_INDEX_REFRESH_S`` one search for contacts with
  ``lastmodifieddate`` after the *synced point*, sorted ascending; more pages only when
  more than 200 contacts changed. Whatever the call volume, that is one search per
  interval. The synced point is the earliest modification a past pass may have missed:
  the start of the last completed build minus ``CLOCK_SKEW_MS`` (the list endpoint is
  consistent: it missed only what changed while it paged), or the start of the last
  completed refresh minus ``LAG_MS`` (HubSpot's search index trails writes, and clocks
  differ). It moves with our clock, not with the newest contact seen, so contacts
  imported in bulk are read again by the next refresh or two, not by every refresh.
- **Rebuild**: every ``CALLBRIDGE_CONTACT_INDEX_REBUILD_S`` a new generation is listed
  while the old one keeps serving; rows it did not see (deleted or merged contacts, which
  search cannot report) are dropped at the end.
- **Late matches**: calls written without any contact are remembered with their number
  (``calls_written``); when the index learns that number, the calls of the last
  ``CALLBRIDGE_CONTACT_LATE_MATCH_DAYS`` get v4 call→contact associations, chosen by the
  same policy as at write time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

import msgspec
import structlog

from service.contacts import metrics
from service.contacts.phones import MODIFIED, contact_numbers
from service.contacts.policy import Policy, choose
from service.contacts.search import parse_ms
from service.contacts.store import IndexStore
from service.hubspot import HubSpotClient, HubSpotError
from service.hubspot.models import CrmObject, Filter, FilterGroup, SearchRequest, Sort

log = structlog.get_logger()

#: how far behind a refresh's start the next refresh looks again (search lag, clock skew)
LAG_MS = 60_000
#: how far behind a build's start the first refresh looks (clock skew only)
CLOCK_SKEW_MS = 10_000
PAGE = 100
SEARCH_PAGE = 200
#: HubSpot stops search paging at 10,000 results; restart from the last date before that
SEARCH_RESULT_CAP = 10_000
Wall = Callable[[], float]


class PhoneIndex:
    """Builds and refreshes one portal's :class:`IndexStore` through a :class:`HubSpotClient`."""

    def __init__(
        self,
        client: HubSpotClient,
        store: IndexStore,
        *,
        region: str,
        phone_properties: Sequence[str],
        policy: Policy = "latest",
        refresh_s: float = 30.0,
        rebuild_s: float = 86_400.0,
        build_rate: int = 0,
        late_match_days: float = 7.0,
        wall: Wall = time.time,
        portal: str = "default",
    ) -> None:
        self.portal = portal
        self.client = client
        self.store = store
        self.region = region
        self.phone_properties = list(phone_properties)
        self.policy: Policy = policy
        self.refresh_s = refresh_s
        self.rebuild_s = rebuild_s
        self.build_interval_s = 10.0 / build_rate if build_rate else 0.0
        self.late_match_days = late_match_days
        self.wall = wall
        self.requests = {"list": 0, "search": 0, "associate": 0}
        self._last_refresh = float("-inf")
        self._retry_late = True  # sweep every remembered call once at start
        self._stop = asyncio.Event()
        #: set once the index is warm (by the first completed build, or at start)
        self.warmed = asyncio.Event()
        if store.warm:
            self.warmed.set()

    # -- properties -----------------------------------------------------------------------

    @property
    def warm(self) -> bool:
        return self.store.warm

    @property
    def gen(self) -> int:
        """The generation rows are written with now (the one being built, if any)."""
        return self.store.meta_int("gen", 1)

    def _now_ms(self) -> int:
        return int(self.wall() * 1000)

    def _fetch(self) -> list[str]:
        return [*self.phone_properties, MODIFIED]

    def _rows(self, contacts: Sequence[CrmObject]) -> list[tuple[str, int, set[str]]]:
        return [
            (
                c.id,
                parse_ms(c.properties.get(MODIFIED)),
                contact_numbers(c.properties, self.phone_properties, self.region),
            )
            for c in contacts
        ]

    # -- build ----------------------------------------------------------------------------

    def _rebuild_due(self) -> bool:
        if not self.warm:
            return True
        if self.store.meta("building") is not None:
            return True
        if not self.rebuild_s:
            return False
        return self._now_ms() - self.store.meta_int("built_at_ms") >= self.rebuild_s * 1000

    async def build(self) -> None:
        """List every contact into the index (resuming a build that was interrupted)."""
        store = self.store
        if store.meta("building") is None:
            gen = store.meta_int("gen", 0) + 1
            started = self._now_ms()
            store.set_meta(
                gen=gen,
                building=started,
                cursor=None,
                # what changes after a page was listed is after ``started`` (the refresh
                # looks LAG_MS further back, for clock skew and search lag)
                watermark_ms=store.meta("watermark_ms") or started,
            )
            log.info("contact_index_build_started", gen=gen, warm=self.warm)
        gen = self.gen
        after = store.meta("cursor")
        started_at = time.monotonic()
        while not self._stop.is_set():
            page = await self.client.list_contacts(
                limit=PAGE, after=after, properties=self._fetch()
            )
            self.requests["list"] += 1
            after = page.after
            learned = store.apply(self._rows(page.results), gen, {"cursor": after})
            await self._late_match(learned)
            if after is None:
                break
            if self.warm and time.monotonic() - self._last_refresh >= self.refresh_s:
                await self.refresh()  # a rebuild keeps the warm index fresh meanwhile
            if self.build_interval_s:
                await self._sleep(self.build_interval_s)
        if self._stop.is_set():
            return
        dropped = store.sweep(gen)
        building_since = store.meta_int("building", self._now_ms())
        # seen now: what was modified before the build started (listed), and what the
        # refreshes during a rebuild synced
        synced = max(building_since - CLOCK_SKEW_MS, store.meta_int("synced_ms", 0))
        store.set_meta(
            warm_gen=gen,
            building=None,
            cursor=None,
            built_at_ms=self._now_ms(),
            synced_ms=synced,
        )
        rows, contacts = store.size()
        metrics.INDEX_ROWS.labels(self.portal).set(rows)
        metrics.INDEX_WARM.labels(self.portal).set(1)
        self.warmed.set()
        log.info(
            "contact_index_built",
            gen=gen,
            contacts=contacts,
            numbers=rows,
            dropped=dropped,
            seconds=round(time.monotonic() - started_at, 3),
        )
        self._retry_late = True

    # -- refresh --------------------------------------------------------------------------

    async def refresh(self) -> int:
        """One incremental pass: contacts modified since the watermark. Answers how many."""
        self._last_refresh = time.monotonic()
        store = self.store
        started_ms = self._now_ms()
        since = self._synced_ms(started_ms)
        seen = 0
        newest = store.meta_int("watermark_ms")
        after: str | None = None
        while not self._stop.is_set():
            request = SearchRequest(
                filter_groups=[
                    FilterGroup(
                        filters=[Filter(property_name=MODIFIED, operator="GT", value=str(since))]
                    )
                ],
                sorts=[Sort(property_name=MODIFIED, direction="ASCENDING")],
                properties=self._fetch(),
                limit=SEARCH_PAGE,
                after=after,
            )
            page = await self.client.search_contacts(request)
            self.requests["search"] += 1
            metrics.SEARCHES.labels("refresh", self.portal).inc()
            rows = self._rows(page.results)
            seen += len(rows)
            newest = max([newest, *(r[1] for r in rows)])
            learned = store.apply(rows, self.gen, {"watermark_ms": newest})
            await self._late_match(learned)
            after = page.after
            if not after or not page.results:
                break
            if not after.isdigit() or int(after) + SEARCH_PAGE > SEARCH_RESULT_CAP:
                since, after = newest, None  # past HubSpot's paging cap: start again later on
        if not self._stop.is_set():  # a completed pass: what it could see is synced
            store.set_meta(synced_ms=max(since, started_ms - LAG_MS))
        if self._retry_late:
            await self._late_match(None)
        return seen

    def _synced_ms(self, now_ms: int) -> int:
        """The earliest ``lastmodifieddate`` a refresh must read again (module docstring);
        for stores written before the synced point existed, the newest seen minus LAG_MS."""
        synced = self.store.meta("synced_ms")
        if synced is not None:
            return int(synced)
        return self.store.meta_int("watermark_ms", now_ms) - LAG_MS

    # -- late matches ---------------------------------------------------------------------

    def remember(self, items: Sequence[tuple[str, str, int]]) -> None:
        """Calls written without a contact: ``(E.164 number, call id, at ms)``."""
        if items and self.late_match_days > 0:
            self.store.record_calls(items)

    async def _late_match(self, learned: set[str] | None) -> None:
        """Associate remembered calls whose number now has contacts (``learned`` numbers,
        or every remembered call when None)."""
        if learned is not None and not learned:
            return
        since = self._now_ms() - int(self.late_match_days * 86_400_000)
        if learned is None:
            self.store.prune_calls(since)
            calls = self.store.matched_calls(since)
            self._retry_late = False
        else:
            calls = self.store.calls_for(learned, since)
        if not calls:
            return
        candidates = self.store.lookup({n for n, _ in calls})
        pairs: list[tuple[str, str]] = []
        for number, call_id in calls:
            ids, _shared = choose(self.policy, candidates.get(number, []))
            pairs.extend((call_id, contact_id) for contact_id in ids)
        try:
            for start in range(0, len(pairs), 100):
                answer = await self.client.batch_create_call_contact_associations(
                    pairs[start : start + 100]
                )
                self.requests["associate"] += 1
                for error in answer.errors:
                    log.warning("contact_late_match_refused", error=error.message)
        except HubSpotError as exc:
            log.warning("contact_late_match_failed", error=str(exc), calls=len(calls))
            self._retry_late = True
            return
        self.store.forget_calls(calls)
        metrics.LATE_MATCHES.labels(self.portal).inc(len(pairs))
        log.info("contact_late_matched", calls=len(calls), associations=len(pairs))

    # -- the background loop --------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)
        except TimeoutError:
            pass

    async def run(self) -> None:
        """Build, then refresh every interval (and rebuild when due) until :meth:`stop`.
        HubSpot errors are logged and retried at the next interval; nothing is lost."""
        if self.warm:
            metrics.INDEX_WARM.labels(self.portal).set(1)
        while not self._stop.is_set():
            try:
                if self._rebuild_due():
                    await self.build()
                else:
                    await self.refresh()
            except HubSpotError as exc:
                log.warning("contact_index_sync_failed", error=str(exc))
            except msgspec.DecodeError as exc:
                log.warning("contact_index_bad_answer", error=str(exc))
            await self._sleep(self.refresh_s)

    def stop(self) -> None:
        self._stop.set()
