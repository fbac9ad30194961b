"""The durable call record and the merge rules (pure, property-based)."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from service.model import STATUS_RANK, TERMINAL_STATUSES, CallEvent
from service.writer.records import (
    MAX_REMEMBERED_EVENTS,
    CallRecord,
    decode_record,
    digest,
    encode_record,
    merge,
)
from tests.writer.helpers import ev

STATUSES = sorted(STATUS_RANK)

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


def written(events: list[CallEvent], record: CallRecord | None = None) -> CallRecord:
    m = merge(events, record)
    return m.after


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.randoms())
def test_merge_is_independent_of_arrival_order(events: list[CallEvent], rnd: random.Random) -> None:
    """Any permutation of a call's events merges to the same properties."""
    shuffled = list(events)
    rnd.shuffle(shuffled)
    assert merge(shuffled, None).properties == merge(events, None).properties


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.integers(1, 11), st.randoms())
def test_merging_in_flushes_equals_merging_at_once(
    events: list[CallEvent], cut: int, rnd: random.Random
) -> None:
    """Events merged over two flushes (a record in between) end with the status, start time
    and values one merge of all of them gives: what HubSpot holds does not depend on batching."""
    rnd.shuffle(events)
    first, second = events[:cut], events[cut:]
    once = merge(events, None).after
    record = merge(first, None).after
    twice = merge(second, record).after if second else record
    assert (twice.status, twice.started) == (once.status, once.started)
    assert twice.values == once.values


@settings(max_examples=300, deadline=None)
@given(events_strategy, st.randoms())
def test_terminal_status_wins_whatever_the_order(
    events: list[CallEvent], rnd: random.Random
) -> None:
    """If any event is terminal the merged status is the latest terminal one; else the latest."""
    rnd.shuffle(events)
    status = merge(events, None).properties.get("hs_call_status")
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
    props = merge(events, None).properties
    assert props["hs_timestamp"] == min(e.properties["hs_timestamp"] for e in events)
    titled = sorted(
        (e for e in events if "hs_call_title" in e.properties), key=lambda e: e.sequence
    )
    assert props.get("hs_call_title") == (
        titled[-1].properties["hs_call_title"] if titled else None
    )


def test_values_once_known_are_never_cleared() -> None:
    """A later event without a duration or with an empty value keeps the known duration."""
    m = merge(
        [ev(1, hs_call_duration="60000"), ev(2, "COMPLETED"), ev(3, hs_call_duration="")], None
    )
    assert m.properties["hs_call_duration"] == "60000"


def test_events_the_record_applied_are_skipped() -> None:
    """Redelivered events (same event_id) change nothing and send nothing."""
    record = written([ev(1, "RINGING", event_id="e1")])
    again = merge([ev(1, "RINGING", event_id="e1")], record)
    assert again.fresh == () and again.delta == {}


def test_update_sends_only_the_delta_and_create_sends_everything() -> None:
    """Against a record the write is the changed properties; without one, all merged ones."""
    record = written([ev(3, "IN_PROGRESS")])
    update = merge([ev(5, "COMPLETED", hs_call_duration="9000")], record)
    assert update.delta == {"hs_call_status": "COMPLETED", "hs_call_duration": "9000"}
    create = merge([ev(5, "COMPLETED", hs_call_duration="9000")], None)
    assert set(create.properties) == {"hs_call_status", "hs_call_duration", "hs_timestamp"}


def test_late_earlier_status_never_downgrades_a_written_terminal_status() -> None:
    """A RINGING that arrives after COMPLETED was written produces no status change."""
    record = written([ev(9, "COMPLETED")])
    late = merge([ev(1, "RINGING")], record)
    assert "hs_call_status" not in late.delta and late.after.status == "COMPLETED"


def test_duration_is_derived_from_answered_to_ended_when_no_event_states_one() -> None:
    """RingCentral-like events with no duration: answered at :10, ended at :55 → 45 s."""
    answered = ev(1, "IN_PROGRESS", occurred_at="2026-03-03T15:00:10+00:00")
    ended = ev(2, "COMPLETED", occurred_at="2026-03-03T15:00:55+00:00")
    first = merge([answered], None)
    assert "hs_call_duration" not in first.properties
    second = merge([ended], first.after)
    assert second.delta["hs_call_duration"] == "45000"
    stated = merge([ev(3, hs_call_duration="44000")], second.after)
    assert stated.delta == {"hs_call_duration": "44000"}  # a stated duration wins


def test_a_record_stays_small_whatever_the_events_carry() -> None:
    """Hundreds of events with long ids and 60 KB notes: the encoded record stays under 4 KB."""
    record: CallRecord | None = None
    for n in range(300):
        event = ev(n, "IN_PROGRESS", event_id="e" * 250 + str(n), hs_call_body="x" * 60_000)
        record = merge([event], record).after
    assert record is not None
    assert len(record.events) == MAX_REMEMBERED_EVENTS
    assert len(encode_record(record)) < 4096
    assert decode_record(encode_record(record)) == record


def test_compacted_record_keeps_what_late_events_need() -> None:
    """Past retention: the id, status and start stay, so a late RINGING still cannot regress."""
    record = CallRecord(
        hubspot_id="7", **{"status": "COMPLETED", "started": "x", "touched_at": 1.0}
    )
    small = record.compacted()
    assert (small.hubspot_id, small.status, small.started) == ("7", "COMPLETED", "x")
    assert "hs_call_status" not in merge([ev(1, "RINGING")], small).delta


def test_digest_is_stable() -> None:
    """The digest of a value is the same across processes (stored in calls.ids)."""
    assert digest("generic:c1") == digest("generic:c1") != digest("generic:c2")
    assert len(digest("x" * 10_000)) == 16
