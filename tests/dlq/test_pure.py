"""The pure parts of the DLQ tools: time filters, selections, cursors, headers, pacing."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from service.deadletter import (
    ATTEMPT,
    PARKED_AT,
    PARKED_FROM,
    REPLAYED_FROM,
    REPLAYED_FROM_PARTITION,
    DeadLetter,
    Failure,
    attempts_so_far,
    dlq_headers,
    header_map,
    parked_headers,
    parse,
    replay_headers_from,
)
from service.dlq.checkpoint import Checkpoint, Coverage, Pending, advance, group_for
from service.dlq.filters import BadFilter, Filters, parse_when
from service.dlq.move import target_partition
from service.dlq.replay import Pacer

NOW = datetime(2026, 3, 3, 12, 0, 0, tzinfo=UTC)


def dead(category: str = "VALIDATION_ERROR", failed_at: str = "2026-03-03T11:00:00Z") -> DeadLetter:
    return DeadLetter(
        original_topic="calls.events",
        original_partition=0,
        original_offset=1,
        stage="hubspot",
        operation="batchCreateCalls",
        http_status=207,
        category=category,
        message="bad",
        correlation_id=None,
        attempt=1,
        failed_at=failed_at,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("7d", NOW - timedelta(days=7)),
        ("1h30m", NOW - timedelta(minutes=90)),
        ("45s", NOW - timedelta(seconds=45)),
        ("1w", NOW - timedelta(days=7)),
        ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T12:00:00+02:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01T10:00:00", datetime(2026, 3, 1, 10, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
    ],
)
def test_times_absolute_and_relative(text: str, expected: datetime) -> None:
    """Times parse as ISO-8601 (no zone = UTC) or as a span before now."""
    assert parse_when(text, NOW) == expected


@pytest.mark.parametrize("text", ["yesterday", "2x", "-2h", "2026-13-01"])
def test_bad_time_is_a_clear_error(text: str) -> None:
    """An unreadable time is refused with a message naming the accepted forms."""
    with pytest.raises(BadFilter, match="ISO-8601"):
        parse_when(text, NOW)


def test_since_must_precede_until() -> None:
    """An empty time window is refused rather than silently matching nothing."""
    with pytest.raises(BadFilter, match="not before"):
        Filters.parse(now=NOW, since="1h", until="2h")


def test_filters_match_category_key_and_window() -> None:
    """Category (any case), key and the [since, until) window each narrow the selection."""
    f = Filters.parse(
        now=NOW, since="2h", until="30m", categories=["validation_error"], keys=["g:1"]
    )
    assert f.matches(dead(), "g:1", 0)
    assert not f.matches(dead(category="OBJECT_NOT_FOUND"), "g:1", 0)
    assert not f.matches(dead(), "g:2", 0)
    assert f.matches(dead(failed_at="2026-03-03T10:00:00Z"), "g:1", 0)  # since is inclusive
    assert not f.matches(dead(failed_at="2026-03-03T09:59:59Z"), "g:1", 0)
    assert not f.matches(dead(failed_at="2026-03-03T11:30:00Z"), "g:1", 0)  # until exclusive
    assert Filters().matches(dead(category="X"), None, 0)


def test_window_falls_back_to_record_timestamp() -> None:
    """A dead letter without a readable failed_at is placed by its Kafka timestamp."""
    f = Filters.parse(now=NOW, since="2h")
    inside = int((NOW - timedelta(hours=1)).timestamp() * 1000)
    outside = int((NOW - timedelta(hours=3)).timestamp() * 1000)
    assert f.matches(dead(failed_at=""), None, inside)
    assert not f.matches(dead(failed_at="garbage"), None, outside)


def test_identity_names_the_command_line() -> None:
    """The same options name the same cursor; other options, another; no options, the base."""
    a = Filters.parse(now=NOW, since="2h", categories=["A", "b"])
    b = Filters.parse(now=NOW + timedelta(minutes=5), since="2h", categories=["B", "a"], limit=3)
    c = Filters.parse(now=NOW, since="3h", categories=["A", "B"])
    assert a.identity() == b.identity() != c.identity()
    assert group_for("base", Filters()) == "base"
    assert group_for("base", a) == f"base.{a.identity()}"


def test_checkpoint_round_trip_and_coverage() -> None:
    """A cursor's metadata keeps its selection, ranges and pending note; it covers exactly the
    matching dead letters in the ranges its runs looked at."""
    f = Filters.parse(now=NOW, categories=["VALIDATION_ERROR"], since="2h")
    pending = Pending(offset=7, topic="calls.events", partition=2, at_ms=123)
    cp = Checkpoint.decode(
        7, advance(None, start=0, position=7, filters=f, pending=pending).encode()
    )
    assert cp.pending == pending
    assert cp.covers(6, dead(), None, 0)
    assert not cp.covers(7, dead(), None, 0)
    assert not cp.covers(6, dead(category="OTHER"), None, 0)
    assert not cp.covers(6, dead(failed_at="2026-03-03T09:00:00Z"), None, 0)  # before since
    assert not Checkpoint.decode(9, "not json").covers(1, dead(), None, 0)
    assert Coverage({0: [cp]}).covers(0, 3, dead(), None, 0)
    assert not Coverage({0: [cp]}).covers(1, 3, dead(), None, 0)


def test_coverage_stays_exact_when_a_relative_window_moves() -> None:
    """Re-running `--since 2h` later keeps earlier replays covered, and does not claim a dead
    letter the later window excludes."""
    run1 = advance(None, start=0, position=5, filters=Filters.parse(now=NOW, since="2h"))
    later = NOW + timedelta(hours=1)
    run2 = advance(run1, start=5, position=9, filters=Filters.parse(now=later, since="2h"))
    cp = Checkpoint.decode(9, run2.encode())
    old = dead(failed_at="2026-03-03T10:30:00Z")  # inside run 1's window, before run 2's
    assert cp.covers(2, old, None, 0)
    assert not cp.covers(6, old, None, 0)
    assert cp.covers(6, dead(failed_at="2026-03-03T12:30:00Z"), None, 0)
    assert len(cp.segments) == 2
    same = advance(run1, start=5, position=9, filters=Filters.parse(now=NOW, since="2h"))
    assert len(same.segments) == 1  # same window: one range


def test_from_start_rewrites_only_the_range_it_covers() -> None:
    """A forced re-run replaces the ranges it looked at and keeps the rest."""
    base = advance(None, start=0, position=10, filters=Filters.parse(now=NOW, since="1h"))
    again = advance(base, start=0, position=4, filters=Filters())
    assert [(s.start, s.end, s.since_us is None) for s in again.segments] == [
        (0, 4, True),
        (4, 10, False),
    ]
    assert again.covers(2, dead(failed_at="2026-03-01T00:00:00Z"), None, 0)
    assert not again.covers(6, dead(failed_at="2026-03-01T00:00:00Z"), None, 0)


def test_found_moved_record_is_covered_whatever_the_window() -> None:
    """A record found moved after an interrupted run counts as moved, and the cursor passes it."""
    f = Filters.parse(now=NOW, since="1h")
    note = Pending(3, "calls.events", 0, 1)
    cp = advance(None, start=0, position=3, filters=f, pending=note).with_moved(3)
    assert (cp.position, cp.pending) == (4, None)
    assert cp.covers(3, dead(failed_at="2026-03-01T00:00:00Z"), None, 0)


def test_metadata_stays_within_kafkas_limit() -> None:
    """A long history forgets its oldest ranges; a huge selection keeps only the cursor."""
    cp: Checkpoint | None = None
    for run in range(300):
        f = Filters.parse(now=NOW + timedelta(minutes=run), since="1h")
        cp = advance(cp, start=run, position=run + 1, filters=f)
    assert cp is not None
    text = cp.encode()
    assert len(text) < 4096
    kept = Checkpoint.decode(300, text).segments
    assert 10 < len(kept) < 300 and kept[-1].end == 300
    f = Filters.parse(now=NOW, keys=[f"generic:{i:040d}" for i in range(200)])
    text = advance(None, start=0, position=5, filters=f).encode()
    assert len(text) < 4096
    assert Checkpoint.decode(5, text).selection is None


def test_until_verdict_says_later() -> None:
    """A dead letter that fails only --until is "later" (the replay stops there), not "no"."""
    f = Filters.parse(now=NOW, until="30m", categories=["VALIDATION_ERROR"])
    assert f.verdict(dead(failed_at="2026-03-03T11:00:00Z"), None, 0) == "match"
    assert f.verdict(dead(failed_at="2026-03-03T11:45:00Z"), None, 0) == "later"
    assert f.verdict(dead(category="X", failed_at="2026-03-03T11:45:00Z"), None, 0) == "no"


def failure() -> Failure:
    return Failure("hubspot", "batchCreateCalls", 207, "VALIDATION_ERROR", "bad value")


def test_attempts_count_dead_lettering_across_replays() -> None:
    """A replayed record carries its dead letter's attempt count, so the writer's next dead
    letter for it says attempt + 1."""
    first = dlq_headers(
        [("event_id", b"e1")],
        topic="calls.events",
        partition=0,
        offset=5,
        failure=failure(),
        failed_at=NOW,
    )
    assert parse(first).attempt == 1
    replayed = replay_headers_from(first, 2, 17)
    h = header_map(replayed)
    assert (h[ATTEMPT], h[REPLAYED_FROM], h[REPLAYED_FROM_PARTITION], h["event_id"]) == (
        "1",
        "17",
        "2",
        "e1",
    )
    assert attempts_so_far(replayed) == 1
    second = dlq_headers(
        replayed, topic="calls.events", partition=0, offset=9, failure=failure(), failed_at=NOW
    )
    assert parse(second).attempt == 2


def test_parked_headers_keep_the_dead_letter() -> None:
    """A parked record keeps every header of its dead letter and says when and whence."""
    first = dlq_headers(
        [("event_id", b"e1")], topic="t", partition=0, offset=5, failure=failure(), failed_at=NOW
    )
    parked = parked_headers(first, partition=1, dlq_offset=3, parked_at=NOW)
    assert parked[: len(first)] == first
    h = header_map(parked)
    assert (h[PARKED_AT], h[PARKED_FROM]) == ("2026-03-03T12:00:00Z", "3")
    assert parse(parked) == parse(first)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return NOW

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.t += seconds


async def test_pacer_spaces_records_evenly() -> None:
    """--rate R spaces sends 1/R apart and does not burst to catch up after a pause."""
    clock = FakeClock()
    pacer = Pacer(4.0, clock)
    for _ in range(3):
        await pacer.wait()
    assert clock.sleeps == [0.25, 0.25]
    clock.t += 10  # a long pause (e.g. a slow broker)
    await pacer.wait()
    await pacer.wait()
    assert clock.sleeps == [0.25, 0.25, 0.25]


def test_target_partition_is_the_default_partitioners() -> None:
    """A replayed record goes to the partition Kafka's murmur2 partitioner gives its key."""
    # Java: Utils.murmur2 test vectors from Kafka's UtilsTest; partition = toPositive(h) % n
    for key, java_hash in [(b"21", -973932308), (b"foobar", -790332482), (b"abc", 479470107)]:
        for n in (1, 3, 6, 7):
            assert target_partition(key, list(range(n))) == (java_hash & 0x7FFFFFFF) % n
    assert target_partition(b"generic:c1", [0, 1, 2]) == target_partition(b"generic:c1", [2, 1, 0])


def test_pure_modules_import_no_io() -> None:
    """The record format, filters and cursors import no asyncio, aiokafka or HTTP."""
    code = (
        "import sys; import service.deadletter, service.dlq.filters, service.dlq.checkpoint; "
        "print(sorted(m for m in ('asyncio','aiokafka','httpx','starlette') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_dead_letters_name_their_portal() -> None:
    """``dlq.portal`` says whose call it is; a dead letter without it (written before
    portals existed) is the default portal's."""
    acme = dlq_headers(
        [("event_id", b"e1")],
        topic="t",
        partition=0,
        offset=5,
        failure=failure(),
        failed_at=NOW,
        portal="acme",
    )
    assert header_map(acme)["dlq.portal"] == "acme"
    assert parse(acme).portal == "acme"
    legacy = [(k, v) for k, v in acme if k != "dlq.portal"]
    assert parse(legacy).portal == "default"
