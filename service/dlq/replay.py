"""Replay dead letters: back to ``calls.events``, or to the parked topic once out of attempts.

Guarantees, and how they are kept:

- **Resumable, no skips, no duplicates.** The replay's position lives in its own consumer
  group (``checkpoint``); each record is moved with a pending note on that cursor
  (``move``), so a replay stopped anywhere, even between the produce and the commit, picks
  up exactly where it was on the next run. Cancelling a replay (Ctrl-C, SIGTERM) lets the
  record in flight finish first.
- **Only what is pending.** Dead letters that an earlier replay already moved (under any
  selection) are not replayed again, unless ``from_start`` asks for exactly that; the
  writer's exactly-once effect makes that harmless for HubSpot.
- **A bounded snapshot.** A run replays what was in the DLQ when it started; what replays
  dead-letter again meanwhile waits for the next run, so a failing record cannot loop.
- **No flood.** ``rate`` caps records per second, ``max`` the records per run.

Attempts: ``dlq.attempt`` on a dead letter counts how often the record was dead-lettered.
The replayed record carries that count (``replay_headers``), so if it fails again its next
dead letter says ``attempt + 1``. A dead letter whose attempt count reached
``dlq_max_attempts`` is parked instead of replayed: the record gets at most that many
tries through the DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Literal, Protocol

from handlers.event import DEFAULT_PORTAL
from service.clock import Clock, SystemClock
from service.config import Settings
from service.deadletter import (
    DeadLetter,
    parse,
)
from service.dlq.checkpoint import (
    DEFAULT_GROUP,
    Checkpoint,
    Coverage,
    group_for,
)
from service.dlq.filters import Filters
from service.dlq.kafkaio import (
    DEFAULT_TIMEOUT_S,
    Cursor,
    KafkaLink,
    Record,
    talking_to_kafka,
)
from service.dlq.move import Action, Mover, was_moved
from service.kafka import make_producer


@dataclass(frozen=True)
class Step:
    """What a replay did (or, under ``dry_run``, would do) with one dead letter."""

    partition: int
    offset: int
    key: str | None
    action: Action
    attempt: int
    category: str
    portal: str = DEFAULT_PORTAL


@dataclass
class ReplayReport:
    """The running tally of one replay (final once ``replay`` returns)."""

    group: str
    dry_run: bool
    scanned: int = 0  # DLQ records looked at (from the cursor to the snapshot's end)
    matched: int = 0  # ... that are dead letters matching the selection
    replayed: int = 0  # produced to calls.events (under dry_run: would be)
    parked: int = 0  # produced to the parked topic (under dry_run: would be)
    already: int = 0  # matching, but moved by an earlier replay
    unreadable: int = 0  # not dead letters (headers missing): left alone
    recovered: int = 0  # found already moved after an interrupted run (not produced again)
    stopped_by_max: bool = False
    steps: list[Step] = field(default_factory=list)  # under dry_run only

    @property
    def moved(self) -> int:
        return self.replayed + self.parked

    def summary(self) -> str:
        verb = "would replay" if self.dry_run else "replayed"
        park = "would park" if self.dry_run else "parked"
        parts = [f"{verb} {self.replayed}", f"{park} {self.parked}"]
        if self.already:
            parts.append(f"{self.already} already replayed earlier")
        if self.recovered:
            parts.append(f"{self.recovered} found already moved by an interrupted run")
        if self.unreadable:
            parts.append(f"{self.unreadable} unreadable records left alone")
        if self.stopped_by_max:
            parts.append("stopped at --max (run again to continue)")
        return ", ".join(parts) + f" (cursor group {self.group})"


class ReplayProgress(Protocol):
    def begin(self, total: int) -> None:
        """``total`` DLQ records will be looked at."""

    def advance(self, report: ReplayReport, step: Step | None) -> None:
        """One more record looked at; ``step`` when it was (or would be) moved."""


class Pacer:
    """At most ``rate`` records per second, evenly spaced (no burst after a pause)."""

    def __init__(self, rate: float | None, clock: Clock) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.clock = clock
        self._next: float | None = None

    async def wait(self) -> None:
        if self.rate is None:
            return
        now = self.clock.monotonic()
        target = now if self._next is None else max(self._next, now)
        if target > now:
            await self.clock.sleep(target - now)
        self._next = target + 1.0 / self.rate


async def replay(
    settings: Settings,
    filters: Filters,
    *,
    dry_run: bool = False,
    max: int | None = None,
    rate: float | None = None,
    progress: ReplayProgress | None = None,
    group: str = DEFAULT_GROUP,
    from_start: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    clock: Clock | None = None,
) -> ReplayReport:
    """Replay the pending dead letters matching ``filters`` (see the module docstring).

    ``max`` (and ``filters.limit``) bound the records moved in this run; ``rate`` is records
    per second; ``group`` is the family of cursor groups (``checkpoint.group_for``);
    ``from_start`` replays matching dead letters again even if an earlier replay moved them.
    Raises ``DlqError`` for an unreachable broker or a missing topic.
    """
    limits = [n for n in (max, filters.limit) if n is not None]
    if any(n < 1 for n in limits):
        raise ValueError("max must be at least 1")
    runner = _Replay(
        settings,
        filters,
        dry_run=dry_run,
        limit=min(limits) if limits else None,
        progress=progress,
        group=group,
        from_start=from_start,
        timeout_s=timeout_s,
        clock=clock or SystemClock(),
    )
    runner.pacer = Pacer(rate, runner.clock)
    return await runner.run()


class _Replay:
    def __init__(
        self,
        settings: Settings,
        filters: Filters,
        *,
        dry_run: bool,
        limit: int | None,
        progress: ReplayProgress | None,
        group: str,
        from_start: bool,
        timeout_s: float,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.filters = filters
        self.dry_run = dry_run
        self.limit = limit
        self.progress = progress
        self.family = group
        self.from_start = from_start
        self.timeout_s = timeout_s
        self.clock = clock
        self.pacer = Pacer(None, clock)
        self.group = group_for(group, filters)
        self.report = ReplayReport(group=self.group, dry_run=dry_run)
        self.dlq = settings.topic_dlq
        self.events_partitions: list[int] = []
        self.parked_partitions: list[int] = []
        self.base: dict[int, Checkpoint | None] = {}  # the cursor's commit when the run began
        self.starts: dict[int, int] = {}  # where this run began, per DLQ partition

    async def run(self) -> ReplayReport:
        s = self.settings
        async with KafkaLink(s, self.timeout_s) as link:
            link.require(s.topic_dlq, s.topic_events, s.topic_parked)
            self.events_partitions = link.partitions(s.topic_events)
            self.parked_partitions = link.partitions(s.topic_parked)
            begin, end = await link.bounds(self.dlq)
            own = await link.checkpoints(self.group, self.dlq)
            coverage = (
                Coverage({})
                if self.from_start
                else await link.coverage(self.family, self.dlq, exclude=self.group)
            )
            starts = self.starts
            for p in sorted(end):
                cp = self.base[p] = own.get(p)
                start = begin[p] if self.from_start or cp is None else max(begin[p], cp.position)
                if cp is not None and cp.pending is not None and not self.from_start:
                    if cp.pending.offset == start and await was_moved(link, s, p, cp.pending):
                        self.report.recovered += 1
                        self.base[p] = cp.with_moved(start)
                        start += 1
                starts[p] = start
            if self.progress is not None:
                self.progress.begin(sum(max(0, end[p] - starts[p]) for p in end))
            if self.dry_run:
                await self._walk(link, None, starts, end, coverage)
            else:
                producer = make_producer(s, request_timeout_ms=int(self.timeout_s * 1000))
                cursor = Cursor(s, self.group, self.dlq, sorted(end), self.timeout_s)
                try:
                    with talking_to_kafka(s.kafka_bootstrap, "starting the producer"):
                        async with asyncio.timeout(self.timeout_s):
                            await producer.start()
                    await cursor.start()
                    mover = Mover(
                        s,
                        self.filters,
                        producer,
                        cursor,
                        partitions={
                            s.topic_events: self.events_partitions,
                            s.topic_parked: self.parked_partitions,
                        },
                        base=self.base,
                        starts=starts,
                        now=self.clock.now,
                        on_moved=self._count,
                    )
                    await self._walk(link, mover, starts, end, coverage)
                finally:
                    await cursor.stop()
                    with contextlib.suppress(Exception):
                        await producer.stop()
            if self.report.moved == 0 and not self.from_start:
                self.report.already += await self._count_behind(link, begin, starts)
        return self.report

    async def _walk(
        self,
        link: KafkaLink,
        mover: Mover | None,
        starts: dict[int, int],
        end: dict[int, int],
        coverage: Coverage,
    ) -> None:
        """Look at every record from ``starts`` to ``end``, moving what is due; the cursor
        follows (and stays on a record the run stopped at)."""
        report = self.report
        for p in sorted(end):
            position = starts[p]
            try:
                async with contextlib.aclosing(link.scan(self.dlq, p, starts[p], end[p])) as scan:
                    async for record in scan:
                        decision = self._decide(record, coverage)
                        if decision == "stop":
                            break
                        if decision == "stop-all":
                            return
                        report.scanned += 1
                        step = None
                        if decision is not None:
                            step = await self._act(mover, record, decision)
                        position = record.offset + 1
                        if self.progress is not None:
                            self.progress.advance(report, step)
                    else:
                        position = end[p]
            finally:
                if mover is not None:
                    await mover.settle(p, position)

    def _decide(
        self, record: Record, coverage: Coverage
    ) -> Action | Literal["stop", "stop-all"] | None:
        """What to do with one record: move it (replay/park), nothing (None), or stop this
        partition (a dead letter newer than ``until``: the rest is newer still; the cursor
        stays so a later run takes it) or the whole run (``max`` reached)."""
        dead = self._dead(record)
        if dead is None:
            return None
        verdict = self.filters.verdict(dead, record.key_text, record.timestamp_ms)
        if verdict == "later":
            return "stop"
        if verdict == "no":
            return None
        if coverage.covers(
            record.partition, record.offset, dead, record.key_text, record.timestamp_ms
        ):
            self.report.matched += 1
            self.report.already += 1
            return None
        if self.limit is not None and self.report.moved >= self.limit:
            self.report.stopped_by_max = True
            return "stop-all"
        self.report.matched += 1
        return "park" if dead.attempt >= self.settings.dlq_max_attempts else "replay"

    async def _act(self, mover: Mover | None, record: Record, action: Action) -> Step:
        dead = parse(record.headers)
        step = Step(
            record.partition,
            record.offset,
            record.key_text,
            action,
            dead.attempt,
            dead.category,
            dead.portal,
        )
        if mover is None:
            self.report.steps.append(step)
            self._count(action)
        else:
            await self.pacer.wait()
            # a cancel that arrived between records stops here, before the next move
            # starts (a started move is shielded and finishes)
            await asyncio.sleep(0)
            await mover.move_shielded(record, action)
        return step

    def _count(self, action: Action) -> None:
        if action == "park":
            self.report.parked += 1
        else:
            self.report.replayed += 1

    def _dead(self, record: Record) -> DeadLetter | None:
        try:
            return parse(record.headers)
        except ValueError:
            self.report.unreadable += 1
            return None

    async def _count_behind(
        self, link: KafkaLink, begin: dict[int, int], starts: dict[int, int]
    ) -> int:
        """Matching dead letters before this group's own cursor (for "nothing to replay")."""
        count = 0
        for p, start in starts.items():
            async for record in link.scan(self.dlq, p, begin[p], start):
                try:
                    dead = parse(record.headers)
                except ValueError:
                    continue
                if self.filters.matches(dead, record.key_text, record.timestamp_ms):
                    count += 1
        return count
