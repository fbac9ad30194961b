"""The rolling-window budget arithmetic, on a fake clock (no server, no sleeping)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.hubspot.pacing import RollingWindow, reserve_all


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def max_in_any_window(times: list[float], interval: float) -> int:
    """The most send times in any half-open window (t - interval, t]."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] <= t - interval:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_first_requests_up_to_the_limit_go_at_once() -> None:
    """Within budget, reserve() asks for no wait."""
    clock = FakeClock()
    window = RollingWindow(5, 10.0, clock, margin_s=0)
    assert [window.reserve() for _ in range(5)] == [0.0] * 5
    assert window.remaining() == 0


def test_request_over_the_limit_waits_until_the_oldest_leaves_the_window() -> None:
    """The (limit+1)th request is booked one interval (plus margin) after the first."""
    clock = FakeClock()
    window = RollingWindow(3, 10.0, clock, margin_s=0.5)
    window.reserve()
    clock.advance(2)
    window.reserve()
    window.reserve()
    clock.advance(1)  # t = 3
    assert window.reserve() == pytest.approx(10.0 + 0.5 - 3)  # first slot at 0 + 10.5
    # the next ones queue behind the other two slots, in order
    assert window.reserve() == pytest.approx(2 + 10.5 - 3)
    assert window.reserve() == pytest.approx(2 + 10.5 - 3)
    assert window.reserve() == pytest.approx(10.5 + 10.5 - 3)


def test_budget_recovers_as_time_passes() -> None:
    """Once the interval has passed, the whole budget is available again."""
    clock = FakeClock()
    window = RollingWindow(4, 10.0, clock, margin_s=0.1)
    for _ in range(4):
        window.reserve()
    clock.advance(10.2)
    assert window.remaining() == 4
    assert window.reserve() == 0.0


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 3, allow_nan=False), min_size=1, max_size=120),
)
def test_booked_send_times_never_exceed_the_limit_in_any_window(
    limit: int, gaps: list[float]
) -> None:
    """Whatever the arrival pattern, no window of the interval holds more than the limit."""
    clock = FakeClock()
    window = RollingWindow(limit, 10.0, clock, margin_s=1e-6)  # margin absorbs float error
    sent = []
    for gap in gaps:
        clock.advance(gap)
        sent.append(clock.now + window.reserve())
    assert max_in_any_window(sent, 10.0) <= limit
    assert sent == sorted(sent)  # first come, first served


def test_headers_lower_the_limit_to_hubspots_max() -> None:
    """X-HubSpot-RateLimit-Max below the configured rate tightens the budget."""
    clock = FakeClock()
    window = RollingWindow(100, 10.0, clock)
    window.observe_headers(max=10, remaining=None, interval_ms=10_000)
    assert window.limit == 10
    window.observe_headers(max=500, remaining=None, interval_ms=10_000)
    assert window.limit == 100  # never above what this deployment may spend


def test_headers_in_another_interval_are_scaled() -> None:
    """A max given per 1 s is scaled to the 10 s window."""
    clock = FakeClock()
    window = RollingWindow(100, 10.0, clock)
    window.observe_headers(max=5, remaining=None, interval_ms=1000)
    assert window.limit == 50


def test_remaining_below_own_count_books_the_others_usage() -> None:
    """When HubSpot reports more used than this process sent, the difference is spent."""
    clock = FakeClock()
    window = RollingWindow(10, 10.0, clock, margin_s=0)
    window.reserve()
    window.reserve()  # we sent 2; HubSpot says 10 - 4 = 6 used
    window.observe_headers(max=10, remaining=4, interval_ms=10_000)
    assert window.remaining() == 4
    for _ in range(4):
        assert window.reserve() == 0.0
    assert window.reserve() == pytest.approx(10.0)
    # the same report again adds nothing: it is already accounted for
    window.observe_headers(max=10, remaining=4, interval_ms=10_000)
    assert window.in_window() == 11


def test_remaining_zero_blocks_until_the_window_moves() -> None:
    """Remaining 0 from HubSpot means the next request waits."""
    clock = FakeClock()
    window = RollingWindow(100, 10.0, clock, margin_s=0)
    window.observe_headers(max=100, remaining=0, interval_ms=10_000)
    assert window.reserve() == pytest.approx(10.0)


def test_penalize_blocks_every_request_until_retry_after() -> None:
    """After a 429, nothing goes before Retry-After, however much budget is left."""
    clock = FakeClock()
    window = RollingWindow(100, 10.0, clock)
    window.penalize(2.5)
    assert window.reserve() == pytest.approx(2.5)
    clock.advance(3)
    assert window.reserve() == 0.0


def test_reserve_all_books_both_budgets_at_the_same_time() -> None:
    """A search waits for the stricter of the general and the search budget."""
    clock = FakeClock()
    general = RollingWindow(100, 10.0, clock, margin_s=0)
    search = RollingWindow(5, 1.0, clock, margin_s=0)
    waits = [reserve_all([general, search]) for _ in range(6)]
    assert waits[:5] == [0.0] * 5
    assert waits[5] == pytest.approx(1.0)
    assert general.in_window() == 6
    assert reserve_all([general]) == pytest.approx(1.0)  # in order behind the search


def test_invalid_limits_are_refused() -> None:
    """A zero limit or interval is a configuration error."""
    with pytest.raises(ValueError):
        RollingWindow(0, 10.0, FakeClock())
    with pytest.raises(ValueError):
        RollingWindow(1, 0, FakeClock())


def test_a_request_booked_ahead_waits_for_requests_that_left_late() -> None:
    """Eight requests booked at once under a limit of 4: four at t=0, four at 10.2 (the
    booked times plus the margin). The first four leave (and are answered) only at t=0.6,
    the event loop being busy; HubSpot counts them from their arrival, so at 10.2 the gate
    holds the next ones until 10.8. The budget test on a loaded machine saw 429s from
    exactly this."""
    clock = FakeClock(0.0)
    window = RollingWindow(4, 10.0, clock, margin_s=0.2)
    waits = [window.reserve() for _ in range(8)]
    assert waits == [0.0] * 4 + [pytest.approx(10.2)] * 4
    clock.advance(0.6)
    handles = [window.begin() for _ in range(4)]
    assert window.gate() == pytest.approx(10.2 + 0.0)  # four in flight: the window is full
    clock.advance(0.05)
    for handle in handles:
        window.end(handle)  # answered at 0.65: counted from then
    clock.now = 10.2  # the next four wake up as booked
    assert window.gate() == pytest.approx(0.65 + 10.2 - 10.2)
    clock.now = 10.85
    assert window.gate() == 0.0
    for _ in range(4):
        window.begin()
    assert window.gate() > 0  # and these four fill it again


def test_the_gate_lets_requests_within_the_limit_go_at_once() -> None:
    clock = FakeClock(0.0)
    window = RollingWindow(3, 10.0, clock, margin_s=0.2)
    for _ in range(3):
        assert window.gate() == 0.0
        window.begin()
    assert window.gate() == pytest.approx(10.2)
