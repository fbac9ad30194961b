"""Offsets are committed only up to the first unsettled event (pure)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.writer.offsets import OffsetTracker


def test_commit_stops_at_the_first_unsettled_offset() -> None:
    """Offsets 0..4 consumed, 0,1,3 settled → commit position 2; after 2 settles → 4; all → 5."""
    t = OffsetTracker()
    for o in range(5):
        t.consumed(0, o)
    for o in (0, 1, 3):
        t.settled(0, o)
    assert t.to_commit() == {0: 2}
    t.committed({0: 2})
    t.settled(0, 2)
    assert t.to_commit() == {0: 4}
    t.settled(0, 4)
    assert t.to_commit() == {0: 5}
    t.committed({0: 5})
    assert t.to_commit() == {}


def test_partitions_are_independent_and_forgotten_on_revoke() -> None:
    """An unsettled offset holds back only its own partition; forget() drops a partition."""
    t = OffsetTracker()
    t.consumed(0, 10)
    t.consumed(1, 7)
    t.settled(1, 7)
    assert t.to_commit() == {0: 10, 1: 8}  # 10 is where partition 0 resumes
    t.forget({0})
    assert t.to_commit() == {1: 8}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), min_size=1, max_size=50))
def test_commit_position_never_passes_an_unsettled_event(settled: list[bool]) -> None:
    """For any settled pattern the position is the first unsettled offset (or the end)."""
    t = OffsetTracker()
    for offset, done in enumerate(settled):
        t.consumed(3, offset)
        if done:
            t.settled(3, offset)
    expected = next((o for o, done in enumerate(settled) if not done), len(settled))
    assert t.to_commit().get(3, 0) == expected
