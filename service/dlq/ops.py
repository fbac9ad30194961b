"""Reading the dead-letter topic: list, show and count dead letters (the CLI's read side).

A dead letter is *pending* until a replay has moved it (to ``calls.events``, or to the parked
topic once it ran out of attempts); see ``checkpoint`` for how that is known. Every function
here only reads: it never commits, produces or changes a cursor.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from handlers.event import DEFAULT_PORTAL
from service.config import Settings
from service.deadletter import DeadLetter, parse, utc_iso
from service.dlq.checkpoint import DEFAULT_GROUP, Coverage
from service.dlq.filters import Filters, failed_at
from service.dlq.kafkaio import DEFAULT_TIMEOUT_S, KafkaLink, Record

#: Age buckets of ``stats``, by upper bound in seconds (the last one is open).
AGE_BUCKETS: Final[tuple[tuple[str, float], ...]] = (
    ("<1h", 3600),
    ("1h-6h", 6 * 3600),
    ("6h-24h", 24 * 3600),
    ("1d-7d", 7 * 86400),
    (">=7d", float("inf")),
)


@dataclass(frozen=True)
class Row:
    """One dead letter as ``list`` shows it."""

    partition: int
    offset: int
    key: str | None
    failed_at: str
    category: str
    message: str
    http_status: int | None
    attempt: int
    stage: str
    operation: str
    original_topic: str
    original_partition: int
    original_offset: int
    correlation_id: str | None
    pending: bool
    portal: str = DEFAULT_PORTAL

    @classmethod
    def of(cls, record: Record, dead: DeadLetter, *, pending: bool) -> Row:
        return cls(
            partition=record.partition,
            offset=record.offset,
            key=record.key_text,
            failed_at=dead.failed_at or utc_iso(failed_at(dead, record.timestamp_ms)),
            category=dead.category,
            message=dead.message,
            http_status=dead.http_status,
            attempt=dead.attempt,
            stage=dead.stage,
            operation=dead.operation,
            original_topic=dead.original_topic,
            original_partition=dead.original_partition,
            original_offset=dead.original_offset,
            correlation_id=dead.correlation_id,
            pending=pending,
            portal=dead.portal,
        )

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class Shown:
    """One DLQ record in full for ``show``: every header and the original payload.
    ``row`` is None for a record in the DLQ that is not a well-formed dead letter."""

    partition: int
    offset: int
    timestamp_ms: int
    key: str | None
    headers: list[tuple[str, str]]
    value: bytes | None
    row: Row | None


@dataclass
class Count:
    total: int = 0
    pending: int = 0


@dataclass(frozen=True)
class Stats:
    """What the DLQ holds (within its retention) and what still waits for a replay."""

    as_of: datetime
    total: int
    pending: int
    unreadable: int  # records in the DLQ without the contract's headers
    categories: dict[str, Count]
    ages: dict[str, Count]  # AGE_BUCKETS order, every bucket present
    oldest_pending: datetime | None
    #: by ``dlq.portal``: the counts, and when each portal's oldest pending one failed
    portals: dict[str, Count] = field(default_factory=dict)
    oldest_pending_by_portal: dict[str, datetime] = field(default_factory=dict)

    @property
    def oldest_pending_age_s(self) -> float:
        """Seconds the oldest pending dead letter has waited (0 when none)."""
        if self.oldest_pending is None:
            return 0.0
        return max(0.0, (self.as_of - self.oldest_pending).total_seconds())

    def oldest_pending_age_of(self, portal: str) -> float:
        """Seconds ``portal``'s oldest pending dead letter has waited (0 when none)."""
        oldest = self.oldest_pending_by_portal.get(portal)
        return 0.0 if oldest is None else max(0.0, (self.as_of - oldest).total_seconds())

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": utc_iso(self.as_of),
            "total": self.total,
            "pending": self.pending,
            "unreadable": self.unreadable,
            "categories": {k: vars(v) for k, v in sorted(self.categories.items())},
            "ages": {k: vars(v) for k, v in self.ages.items()},
            "oldest_pending": utc_iso(self.oldest_pending) if self.oldest_pending else None,
            "oldest_pending_age_seconds": round(self.oldest_pending_age_s, 3),
            "portals": {k: vars(v) for k, v in sorted(self.portals.items())},
        }


@dataclass
class _Scan:
    """Every record of the DLQ with its parsed headers (None if not a dead letter)."""

    link: KafkaLink
    topic: str
    coverage: Coverage = field(default_factory=lambda: Coverage({}))

    async def records(self) -> AsyncIterator[tuple[Record, DeadLetter | None]]:
        begin, end = await self.link.bounds(self.topic)
        for partition in sorted(end):
            async for record in self.link.scan(
                self.topic, partition, begin[partition], end[partition]
            ):
                try:
                    dead: DeadLetter | None = parse(record.headers)
                except ValueError:
                    dead = None
                yield record, dead

    def pending(self, record: Record, dead: DeadLetter) -> bool:
        return not self.coverage.covers(
            record.partition, record.offset, dead, record.key_text, record.timestamp_ms
        )


async def _open_scan(link: KafkaLink, settings: Settings, group: str) -> _Scan:
    link.require(settings.topic_dlq)
    return _Scan(link, settings.topic_dlq, await link.coverage(group, settings.topic_dlq))


async def list_dead_letters(
    settings: Settings,
    filters: Filters,
    *,
    pending_only: bool = False,
    group: str = DEFAULT_GROUP,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Row]:
    """The dead letters matching ``filters`` in DLQ order (at most ``filters.limit``)."""
    rows: list[Row] = []
    async with KafkaLink(settings, timeout_s) as link:
        scan = await _open_scan(link, settings, group)
        async for record, dead in scan.records():
            if dead is None or not filters.matches(dead, record.key_text, record.timestamp_ms):
                continue
            pending = scan.pending(record, dead)
            if pending_only and not pending:
                continue
            rows.append(Row.of(record, dead, pending=pending))
            if filters.limit is not None and len(rows) >= filters.limit:
                break
    return rows


async def show_dead_letters(
    settings: Settings,
    *,
    offset: int | None = None,
    partition: int = 0,
    key: str | None = None,
    portal: str | None = None,
    group: str = DEFAULT_GROUP,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> list[Shown]:
    """The DLQ record at ``partition``/``offset``, or every dead letter of call ``key``;
    with ``portal``, only dead letters of that portal (``key`` may then be the call key
    within the portal, ``provider:call_id``)."""
    selection = Filters(
        keys=frozenset([key]) if key is not None else frozenset(),
        portals=frozenset([portal]) if portal is not None else frozenset(),
    )
    if (offset is None) == (key is None):
        raise ValueError("give exactly one of offset or key")
    out: list[Shown] = []
    async with KafkaLink(settings, timeout_s) as link:
        scan = await _open_scan(link, settings, group)
        if offset is not None:
            found = await link.read_one(settings.topic_dlq, partition, offset)
            candidates = [found] if found is not None else []
        else:
            candidates = [
                rec
                async for rec, dead in scan.records()
                if (rec.key_text == key if portal is None else _selected(selection, rec, dead))
            ]
        for record in candidates:
            try:
                dead: DeadLetter | None = parse(record.headers)
            except ValueError:
                dead = None
            if portal is not None and not _selected(selection, record, dead):
                continue  # the record at OFFSET belongs to another portal
            row = Row.of(record, dead, pending=scan.pending(record, dead)) if dead else None
            out.append(
                Shown(
                    partition=record.partition,
                    offset=record.offset,
                    timestamp_ms=record.timestamp_ms,
                    key=record.key_text,
                    headers=[(k, v.decode("utf-8", "replace")) for k, v in record.headers],
                    value=record.value,
                    row=row,
                )
            )
    return out


def _selected(selection: Filters, record: Record, dead: DeadLetter | None) -> bool:
    return dead is not None and selection.selects(dead, record.key_text)


def _bucket(age_s: float) -> str:
    for name, upper in AGE_BUCKETS:
        if age_s < upper:
            return name
    return AGE_BUCKETS[-1][0]


async def stats(
    settings: Settings,
    *,
    now: datetime | None = None,
    group: str = DEFAULT_GROUP,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    portals: frozenset[str] = frozenset(),
) -> Stats:
    """Dead letters by error category, by age (since ``dlq.failed_at``) and by portal,
    total and pending; with ``portals``, only those portals' dead letters."""
    as_of = (now or datetime.now(UTC)).astimezone(UTC)
    categories: dict[str, Count] = {}
    ages = {name: Count() for name, _ in AGE_BUCKETS}
    total = pending = unreadable = 0
    oldest: datetime | None = None
    by_portal: dict[str, Count] = {}
    oldest_by_portal: dict[str, datetime] = {}
    async with KafkaLink(settings, timeout_s) as link:
        scan = await _open_scan(link, settings, group)
        async for record, dead in scan.records():
            if dead is None:
                unreadable += 1
                continue
            if portals and dead.portal not in portals:
                continue
            when = failed_at(dead, record.timestamp_ms)
            is_pending = scan.pending(record, dead)
            cat = categories.setdefault(dead.category or "UNKNOWN", Count())
            age = ages[_bucket((as_of - when).total_seconds())]
            mine = by_portal.setdefault(dead.portal, Count())
            total += 1
            cat.total += 1
            age.total += 1
            mine.total += 1
            if is_pending:
                pending += 1
                cat.pending += 1
                age.pending += 1
                mine.pending += 1
                oldest = when if oldest is None else min(oldest, when)
                was = oldest_by_portal.get(dead.portal)
                oldest_by_portal[dead.portal] = when if was is None else min(was, when)
    return Stats(
        as_of=as_of,
        total=total,
        pending=pending,
        unreadable=unreadable,
        categories=categories,
        ages=ages,
        oldest_pending=oldest,
        portals=by_portal,
        oldest_pending_by_portal=oldest_by_portal,
    )
