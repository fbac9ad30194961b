"""The pure batching core: merge rules (property-based), buffering, batching and planning."""

from __future__ import annotations

import itertools
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from service.coalesce import CallRecord, Coalescer, Ref, merge_event, prepare
from service.model import STATUS_RANK, TERMINAL_STATUSES, CallEvent

STATUSES = sorted(STATUS_RANK)


def ev(
    seq: int,
    status: str | None = None,
    call: str = "c1",
    event_id: str | None = None,
    **props: str,
) -> CallEvent:
    properties = dict(props)
    if status:
        properties["hs_call_status"] = status
    properties.setdefault("hs_timestamp", f"2026-03-03T15:{seq % 60:02d}:00.000Z")
    return CallEvent(
        provider="generic",
        call_id=call,
        event_id=event_id or f"{call}:{seq}:{status}",
        type="call.updated",
        occurred_at="2026-03-03T15:00:00.000Z",
        sequence=seq,
        properties=properties,
    )


def ref(offset: int, partition: int = 0) -> Ref:
    return Ref("calls.events", partition, offset, b"k", b"v")


def merged(events: list[CallEvent]) -> dict[str, str]:
    props: dict[str, str] = {}
    seq: dict[str, int] = {}
    for e in events:
        merge_event(props, seq, e)
    return props


events_strategy = st.lists(
    st.builds(
        lambda seq, status, title, dur: ev(
            seq,
            status,
            **({"hs_call_title": title} if title else {}),
            **({"hs_call_duration": dur} if dur else {}),
        ),
        st.integers(0, 10_000),
        st.none() | st.sampled_from(STATUSES),
        st.none() | st.sampled_from(["a", "b", "c"]),
        st.none() | st.sampled_from(["1000", "2000"]),
    ),
    min_size=1,
    max_size=12,
    unique_by=lambda e: e.sequence,
)


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.randoms())
def test_merge_is_independent_of_arrival_order(events: list[CallEvent], rnd: random.Random) -> None:
    """Any permutation of a call's events merges to the same properties."""
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert merged(shuffled) == merged(sorted(events, key=lambda e: e.sequence))


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.randoms())
def test_terminal_status_wins_whatever_the_order(
    events: list[CallEvent], rnd: random.Random
) -> None:
    """If any event is terminal the merged status is the latest terminal one; else the latest status."""
    rnd.shuffle(events)
    status = merged(events).get("hs_call_status")
    with_status = sorted(
        (e for e in events if "hs_call_status" in e.properties), key=lambda e: e.sequence
    )
    terminal = [e for e in with_status if e.properties["hs_call_status"] in TERMINAL_STATUSES]
    if terminal:
        assert status == terminal[-1].properties["hs_call_status"]
    elif with_status:
        assert status == with_status[-1].properties["hs_call_status"]
    else:
        assert status is None


@settings(max_examples=200, deadline=None)
@given(events_strategy)
def test_earliest_timestamp_and_latest_values_win(events: list[CallEvent]) -> None:
    """hs_timestamp is the earliest; other values come from the latest event that has them."""
    props = merged(events)
    assert props["hs_timestamp"] == min(e.properties["hs_timestamp"] for e in events)
    titled = sorted(
        (e for e in events if "hs_call_title" in e.properties), key=lambda e: e.sequence
    )
    assert props.get("hs_call_title") == (
        titled[-1].properties["hs_call_title"] if titled else None
    )


def test_values_once_known_are_never_cleared() -> None:
    """A later event without a duration or with an empty value keeps the known duration."""
    props = merged(
        [ev(1, hs_call_duration="60000"), ev(2, "COMPLETED"), ev(3, hs_call_duration="")]
    )
    assert props["hs_call_duration"] == "60000"


def test_duplicates_are_dropped_in_the_buffer_and_against_the_record() -> None:
    """The same event_id twice in the buffer counts once; events the record applied are skipped."""
    c = Coalescer(linger_s=1.0)
    assert c.add(ev(1, "RINGING", event_id="e1"), ref(0), now=0.0)
    assert not c.add(ev(1, "RINGING", event_id="e1"), ref(1), now=0.0)
    [pending] = c.take(now=5.0)
    assert len(pending.events) == 1 and len(pending.refs) == 2
    record = CallRecord(hubspot_id="7", properties={"hs_call_status": "RINGING"}, events=["e1"])
    write = prepare(pending, record)
    assert write.new_events == [] and write.properties == {}


def test_update_sends_only_the_delta_and_create_sends_everything() -> None:
    """With a HubSpot id the write is the changed properties; without one, all merged properties."""
    c = Coalescer(linger_s=0.0)
    c.add(ev(5, "COMPLETED", hs_call_duration="9000"), ref(0), now=0.0)
    [pending] = c.take(now=1.0)
    known = CallRecord(
        hubspot_id="42",
        properties={"hs_call_status": "IN_PROGRESS", "hs_timestamp": "2026-03-03T15:05:00.000Z"},
        seq={"hs_call_status": 3},
    )
    update = prepare(pending, known)
    assert update.properties == {"hs_call_status": "COMPLETED", "hs_call_duration": "9000"}
    assert update.record.hubspot_id == "42"
    create = prepare(pending, None)
    assert set(create.properties) == {"hs_call_status", "hs_call_duration", "hs_timestamp"}


def test_late_earlier_status_never_downgrades_a_written_terminal_status() -> None:
    """A RINGING that arrives after COMPLETED was written produces no status change."""
    c = Coalescer(linger_s=0.0)
    c.add(ev(1, "RINGING"), ref(3), now=0.0)
    [pending] = c.take(now=1.0)
    record = CallRecord(
        hubspot_id="1", properties={"hs_call_status": "COMPLETED"}, seq={"hs_call_status": 9}
    )
    assert "hs_call_status" not in prepare(pending, record).properties


def test_flush_when_a_batch_is_full_or_the_oldest_lingered() -> None:
    """Not due with 99 fresh calls; due at 100; due at linger with 1; only whole batches before linger."""
    c = Coalescer(linger_s=0.5, max_batch=100)
    for i in range(99):
        c.add(ev(1, call=f"c{i}"), ref(i), now=0.0)
    assert not c.due(now=0.1)
    c.add(ev(1, call="c99"), ref(99), now=0.1)
    c.add(ev(1, call="c100"), ref(100), now=0.1)
    assert c.due(now=0.2)
    taken = c.take(now=0.2)
    assert len(taken) == 100 and len(c) == 1
    assert not c.due(now=0.3)
    assert c.due(now=0.6)
    assert [p.key for p in c.take(now=0.6)] == ["generic:c100"]


def test_restore_delays_retries_and_merges_with_new_events() -> None:
    """Restored calls wait until not_before, then come back merged with events that arrived meanwhile."""
    c = Coalescer(linger_s=0.0)
    c.add(ev(1, "RINGING"), ref(0), now=0.0)
    taken = c.take(now=0.0)
    c.add(ev(2, "COMPLETED"), ref(1), now=0.5)
    c.restore(taken, not_before=2.0)
    assert c.take(now=1.0) == []
    [pending] = c.take(now=2.0)
    assert sorted(e.sequence for e in pending.events) == [1, 2]
    assert sorted(r.offset for r in pending.refs) == [0, 1]


def test_take_and_drop_by_partition() -> None:
    """Revocation takes/drops only the calls of the given partitions."""
    c = Coalescer(linger_s=0.0)
    for i, part in zip(range(6), itertools.cycle([0, 1, 2]), strict=False):
        c.add(ev(1, call=f"c{i}"), ref(i, part), now=0.0)
    assert {p.partition for p in c.take(now=1.0, partitions={1})} == {1}
    assert {p.partition for p in c.drop({2})} == {2}
    assert {p.partition for p in c.take(now=1.0)} == {0}
    assert c.events == 0
