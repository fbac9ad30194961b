"""The buffer: batching, linger, restore, partitions, and its bounds (pure)."""

from __future__ import annotations

import itertools

from service.writer.buffer import Buffer, Ref
from tests.writer.helpers import ev, ref


def key(i: int | str) -> str:
    return f"generic:c{i}"


def test_duplicates_are_dropped_but_their_offsets_kept() -> None:
    """The same event_id twice counts once; both records stay for their offsets."""
    b = Buffer(linger_s=1.0)
    assert b.add(key(1), ev(1, "RINGING", event_id="e1"), ref(0), now=0.0)
    assert not b.add(key(1), ev(1, "RINGING", event_id="e1"), ref(1), now=0.0)
    [pending] = b.take(now=5.0)
    assert len(pending.events) == 1 and len(pending.refs) == 2


def test_flush_when_a_batch_is_full_or_the_oldest_lingered() -> None:
    """Not due with 99 fresh calls; due at 100; due at linger with 1; whole batches first."""
    b = Buffer(linger_s=0.5, max_batch=100)
    for i in range(99):
        b.add(key(i), ev(1, call=f"c{i}"), ref(i), now=0.0)
    assert not b.due(now=0.1)
    b.add(key(99), ev(1, call="c99"), ref(99), now=0.1)
    b.add(key(100), ev(1, call="c100"), ref(100), now=0.1)
    assert b.due(now=0.2)
    taken = b.take(now=0.2)
    assert len(taken) == 100 and len(b) == 1
    assert not b.due(now=0.3)
    assert b.due(now=0.6)
    assert [p.key for p in b.take(now=0.6)] == [key(100)]


def test_restore_delays_retries_and_merges_with_new_events() -> None:
    """Restored calls wait until not_before, then come back merged with newer events."""
    b = Buffer(linger_s=0.0)
    b.add(key(1), ev(1, "RINGING"), ref(0), now=0.0)
    taken = b.take(now=0.0)
    b.add(key(1), ev(2, "COMPLETED"), ref(1), now=0.5)
    b.restore(taken, not_before=2.0)
    assert b.take(now=1.0) == []
    [pending] = b.take(now=2.0)
    assert sorted(e.sequence for e in pending.events) == [1, 2]
    assert sorted(r.offset for r in pending.refs) == [0, 1]
    assert b.events == 0 and b.bytes == 0


def test_take_and_drop_by_partition() -> None:
    """Revocation takes/drops only the calls of the given partitions."""
    b = Buffer(linger_s=0.0)
    for i, part in zip(range(6), itertools.cycle([0, 1, 2]), strict=False):
        b.add(key(i), ev(1, call=f"c{i}"), ref(i, part), now=0.0)
    assert {p.partition for p in b.take(now=1.0, partitions={1})} == {1}
    assert {p.partition for p in b.drop({2})} == {2}
    assert {p.partition for p in b.take(now=1.0)} == {0}
    assert b.events == 0 and b.bytes == 0


def test_the_buffer_is_bounded_by_bytes_as_well_as_events() -> None:
    """Ten 200 KB records fill a 1 MiB buffer long before its event bound."""
    b = Buffer(linger_s=1.0, max_events=5000, max_bytes=1024 * 1024)
    for i in range(10):
        big = Ref("calls.events", 0, i, b"k", b"x" * 200_000)
        b.add(key(i), ev(1, call=f"c{i}"), big, now=0.0)
        if b.full():
            break
    assert b.full() and b.events < 10
