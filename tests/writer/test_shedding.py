"""Shedding's bookkeeping: fair shares, eviction order, the re-read filter and where a
partition is read again from (pure), and a model of a shared partition log read through it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.writer.buffer import Pending
from service.writer.shedding import Shedding, fair_share, to_evict
from tests.writer.helpers import ref


def test_the_share_is_the_whole_buffer_for_one_portal_and_shedding_is_off() -> None:
    """One portal: share = the bound, and even a portal over it never sheds."""
    assert fair_share(60, 1) == 60
    assert fair_share(60, 3) == 20
    assert fair_share(2, 3) == 1
    one = Shedding(portals=1, max_events=60)
    assert one.share == 60 and not one.enabled
    assert one.over({"default": 500}, full=True) == {}
    three = Shedding(portals=3, max_events=60)
    assert three.over({"a": 50, "b": 10, "c": 0}, full=True) == {"a": 30}
    assert three.over({"a": 50, "b": 10, "c": 0}, full=False) == {}
    assert three.over({"a": 20, "b": 20, "c": 20}, full=True) == {}  # all within their share


def test_eviction_takes_the_newest_calls_until_the_excess_is_covered() -> None:
    """Last seen first, whole calls (all their records), just enough events."""
    pendings = []
    for i, seen in enumerate([1.0, 5.0, 3.0, 4.0]):
        p = Pending(f"acme/generic:c{i}", 0, seen)
        p.refs = [ref(10 * i + j) for j in range(i + 1)]  # c0: 1 record ... c3: 4
        pendings.append(p)
    assert [p.key for p in to_evict(pendings, 2)] == ["acme/generic:c1"]  # 2 records
    assert [p.key for p in to_evict(pendings, 3)] == ["acme/generic:c1", "acme/generic:c3"]
    assert to_evict(pendings, 0) == []
    assert len(to_evict(pendings, 100)) == 4


def test_the_reread_filter_takes_shed_and_new_records_only_once() -> None:
    """Consumed up to 9: a shed offset is taken once; a consumed one that was not shed is
    skipped; one past 9 is new."""
    s = Shedding(portals=3, max_events=60)
    assert s.start("a")
    for offset in (3, 5):
        s.shed("a", 0, offset)
    s.shed("b", 0, 7)
    assert s.counts == {"a": 2, "b": 1}
    assert not s.reread(0, 2, consumed_up_to=9)
    assert s.reread(0, 3, consumed_up_to=9)
    assert not s.reread(0, 3, consumed_up_to=9)  # only once
    assert not s.reread(0, 4, consumed_up_to=9)
    assert s.reread(0, 10, consumed_up_to=9)
    assert not s.reread(1, 3, consumed_up_to=9)  # another partition's offset 3 was not shed
    assert s.counts["a"] == 1 and s.offsets == {0: {5: "a", 7: "b"}}


def test_a_portal_stops_below_the_low_water_mark_when_not_paused() -> None:
    """share 20, low 10: held 11 sheds on, 10 stops; paused never stops; blocked only
    when it holds nothing (it needs calls to find out whether it can write)."""
    s = Shedding(portals=3, max_events=60)
    s.start("a")
    assert s.low == 10
    assert not s.should_stop("a", 11, paused=False, blocked=False)
    assert s.should_stop("a", 10, paused=False, blocked=False)
    assert not s.should_stop("a", 0, paused=True, blocked=True)
    assert not s.should_stop("a", 5, paused=False, blocked=True)
    assert s.should_stop("a", 0, paused=False, blocked=True)
    assert not s.should_stop("b", 0, paused=False, blocked=False)  # not shedding


def test_stopping_reads_each_partition_again_from_its_first_shed_offset_not_still_shed() -> None:
    """a shed 4, 8 in p0 and 6 in p1; b shed 2 in p0 and still sheds: a's stop seeks p0 to
    4 (b's 2 would only be shed again) and p1 to 6; once the re-read of p1 is past, a new
    start of b leaves p0 re-read (a's 8 waits there) and p1 alone."""
    s = Shedding(portals=3, max_events=60)
    s.start("a")
    s.start("b")
    s.shed("b", 0, 2)
    for p, o in ((0, 4), (0, 8), (1, 6)):
        s.shed("a", p, o)
    assert s.seeks({0: 9, 1: 9}) == {}
    assert s.stop("a") == {0, 1}
    assert s.seeks({0: 9, 1: 9}) == {0: 4, 1: 6}
    assert s.rereading == {0, 1}
    assert s.reread(0, 4, 9) and s.reread(1, 6, 9) and s.reread(1, 10, 9)
    assert s.rereading == {0}
    s.stop("b")
    assert s.seeks({0: 9, 1: 10}) == {0: 2}  # b's 2 first, then a's 8


def test_a_start_during_a_reread_moves_the_partition_on_past_what_is_shed_again() -> None:
    """a stopped and its re-read of p0 is under way when a sheds again: the rest up to what
    was consumed is only a's (shed again) or already taken, so p0 moves on to 21; with c's
    stopped offset 15 there, p0 moves to 15."""
    s = Shedding(portals=3, max_events=60)
    s.start("a")
    for o in (3, 12, 18):
        s.shed("a", 0, o)
    s.stop("a")
    assert s.seeks({0: 20}) == {0: 3}
    assert s.reread(0, 3, 20)
    assert s.start("a")
    s.shed("a", 0, 3)  # read again while a sheds: shed again
    assert s.seeks({0: 20}) == {0: 21}
    assert 0 not in s.rereading and s.offsets[0] == {3: "a", 12: "a", 18: "a"}
    s.stop("a")
    assert s.seeks({0: 20}) == {0: 3}
    s.start("c")
    s.shed("c", 0, 15)
    s.stop("c")
    s.start("a")
    assert s.seeks({0: 20}) == {0: 15}


def test_forgetting_a_partition_drops_its_shed_offsets() -> None:
    """Revoked or rewound: nothing of it is remembered, nor sought."""
    s = Shedding(portals=2, max_events=10)
    s.start("a")
    s.shed("a", 0, 1)
    s.shed("a", 1, 1)
    s.stop("a")
    s.forget({0})
    assert s.offsets == {1: {1: "a"}} and s.counts["a"] == 1
    assert s.seeks({1: 1}) == {1: 1}


@settings(max_examples=2000, deadline=None)
@given(
    logs=st.lists(
        st.lists(st.sampled_from("abc"), min_size=1, max_size=40), min_size=2, max_size=2
    ),
    actions=st.lists(
        st.tuples(
            st.sampled_from(["read", "read", "start", "stop", "evict"]),
            st.sampled_from("abc"),
            st.integers(0, 1),
        ),
        max_size=250,
    ),
)
def test_shared_logs_read_through_shedding_take_every_record_exactly_once(
    logs: list[list[str]], actions: list[tuple[str, str, int]]
) -> None:
    """Two partitions of records of portals a, b, c; any interleaving of reads, starts,
    stops and evictions of buffered records: a record is never held twice, each consumed
    one is held or shed, and once every portal stops and the logs are read to their end,
    every record is held exactly once (nothing lost, nothing taken twice)."""
    s = Shedding(portals=3, max_events=30)
    position = [0, 0]
    consumed_up_to = [-1, -1]
    held: list[tuple[int, int]] = []

    def read(p: int) -> None:
        for q, target in s.seeks(dict(enumerate(consumed_up_to))).items():
            position[q] = target
        if position[p] >= len(logs[p]):
            return
        offset = position[p]
        position[p] += 1
        if not s.reread(p, offset, consumed_up_to[p]):
            return
        consumed_up_to[p] = max(consumed_up_to[p], offset)
        if logs[p][offset] in s.active:
            s.shed(logs[p][offset], p, offset)
        else:
            assert (p, offset) not in held
            held.append((p, offset))

    for action, portal, p in actions:
        if action == "read":
            read(p)
        elif action == "start":
            s.start(portal)
        elif action == "stop":
            s.stop(portal)
        else:  # the buffer is full: the portal's newest held record is evicted, it sheds
            mine = [(q, o) for q, o in held if logs[q][o] == portal]
            if mine:
                held.remove(mine[-1])
                s.shed(portal, *mine[-1])
                s.start(portal)
        shed = {(q, o) for q, offsets in s.offsets.items() for o in offsets}
        assert not shed & set(held) and len(held) == len(set(held))
        consumed = {(q, o) for q in (0, 1) for o in range(consumed_up_to[q] + 1)}
        assert shed | set(held) == consumed
    for portal in "abc":
        s.stop(portal)
    for _ in range(len(logs[0]) + len(logs[1]) + 2):
        read(0)
        read(1)
    assert sorted(held) == [(q, o) for q in (0, 1) for o in range(len(logs[q]))]
    assert s.offsets == {} and sum(s.counts.values()) == 0


def test_a_partition_moved_on_past_its_shed_offsets_is_read_again_at_the_next_stop() -> None:
    """a shed 2 in p1; it stops (p1 sought to 2), sheds again before p1's re-read got there
    (p1 moved on to 6: its 2 was not read again), and stops again: p1 is read from 2."""
    s = Shedding(portals=3, max_events=30)
    s.start("a")
    s.shed("a", 1, 2)
    s.shed("a", 0, 0)
    s.stop("a")
    assert s.seeks({0: 5, 1: 5}) == {0: 0, 1: 2}
    assert s.reread(0, 0, 5)
    s.start("a")
    s.shed("a", 0, 0)  # read again while a sheds: shed again
    assert s.seeks({0: 5, 1: 5}) == {0: 6, 1: 6}
    assert s.stop("a") == {0, 1}
    assert s.seeks({0: 5, 1: 5}) == {0: 0, 1: 2}
