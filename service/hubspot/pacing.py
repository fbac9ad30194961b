"""Rate-limit arithmetic, sans I/O: when may the next HubSpot request go?

HubSpot counts requests per account in a rolling window (``TEN_SECONDLY_ROLLING``: e.g.
100 or 190 per 10 s; search: 5 per second). :class:`RollingWindow` keeps the send times
it handed out and books the next request at the earliest time that keeps every window
of ``interval_s`` at or under the limit. Booking (rather than counting after the fact)
means concurrent callers get distinct slots without a lock, and a caller that must wait
knows exactly how long.

The budget is tightened by what HubSpot says about the account, which other apps and
processes share: ``X-HubSpot-RateLimit-Max`` lowers the limit, and when
``X-HubSpot-RateLimit-Remaining`` shows more used than this process sent, the difference
is booked as if sent now. A 429 blocks the window until HubSpot's ``Retry-After``.

Time comes from the injected ``clock`` (seconds, monotonic); nothing here sleeps, so the
arithmetic is tested with a fake clock and the client wraps it in ``asyncio.sleep``.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Sequence

#: the monotonic time source pacing measures windows by (the client package stands alone:
#: the same shape as ``service.clock.Now``, not an import of it)
Clock = Callable[[], float]


class RollingWindow:
    """At most ``limit`` requests in any ``interval_s``, with ``margin_s`` to spare.

    ``margin_s`` (default 2 % of the interval, at least 50 ms) keeps a request from
    landing on the window's edge on HubSpot's side, where network jitter would count it
    in the window we thought it had left.
    """

    def __init__(
        self,
        limit: int,
        interval_s: float,
        clock: Clock,
        *,
        margin_s: float | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        if interval_s <= 0:
            raise ValueError("interval must be positive")
        self.configured_limit = limit
        self.interval_s = interval_s
        self.margin_s = max(interval_s * 0.02, 0.05) if margin_s is None else margin_s
        self.clock = clock
        self._server_limit: int | None = None
        self._slots: deque[float] = deque()  # booked send times, sorted
        self._blocked_until = -math.inf
        #: requests actually sent: handle -> send time, then answer time (``gate``)
        self._sent: dict[int, float] = {}
        self._handles = 0

    @property
    def limit(self) -> int:
        """The limit in force: the configured one, lowered by what HubSpot reported."""
        if self._server_limit is None:
            return self.configured_limit
        return max(1, min(self.configured_limit, self._server_limit))

    def _prune(self, now: float) -> None:
        horizon = now - self.interval_s - self.margin_s
        while self._slots and self._slots[0] <= horizon:
            self._slots.popleft()

    def earliest(self) -> float:
        """The earliest clock time the next request may be sent (not booked)."""
        now = self.clock()
        self._prune(now)
        at = max(now, self._blocked_until)
        if self._slots:
            at = max(at, self._slots[-1])
            if len(self._slots) >= self.limit:
                at = max(at, self._slots[-self.limit] + self.interval_s + self.margin_s)
        return at

    def commit(self, at: float) -> None:
        """Book a request at clock time ``at`` (not before :meth:`earliest`)."""
        if self._slots and at < self._slots[-1]:
            raise ValueError("slots are booked in order")
        self._slots.append(at)

    def reserve(self) -> float:
        """Book the next request; the seconds to wait before sending it (0: now)."""
        at = self.earliest()
        self.commit(at)
        return max(0.0, at - self.clock())

    def in_window(self) -> int:
        """Requests booked in the current window, including ones booked ahead."""
        now = self.clock()
        self._prune(now)
        horizon = now - self.interval_s
        return len(self._slots) - bisect.bisect_right(self._slots, horizon)

    def remaining(self) -> int:
        """Requests still available in the current window (the budget gauge)."""
        return max(0, self.limit - self.in_window())

    def observe_headers(
        self,
        max: int | None,
        remaining: int | None,
        interval_ms: int | None,
    ) -> None:
        """Tighten the budget by HubSpot's ``X-HubSpot-RateLimit-Max``/``-Remaining``/
        ``-Interval-Milliseconds`` (each may be absent)."""
        if max is None or max < 1:
            return
        server_interval = interval_ms / 1000 if interval_ms else self.interval_s
        same_interval = math.isclose(server_interval, self.interval_s, rel_tol=0.01)
        scaled = max if same_interval else math.floor(max * self.interval_s / server_interval)
        self._server_limit = scaled
        if remaining is None or not same_interval:
            return
        now = self.clock()
        self._prune(now)
        horizon = now - self.interval_s
        sent = bisect.bisect_right(self._slots, now) - bisect.bisect_right(self._slots, horizon)
        unseen = (max - remaining) - sent  # used by someone else, as far as we can tell
        room = self.limit - self.in_window()
        for _ in range(min(unseen, room)):
            bisect.insort(self._slots, now)

    def gate(self) -> float:
        """Seconds to wait before sending a request *now*, by what was actually sent.
        Bookings are made ahead (concurrent callers book at once), but a request may
        leave later than booked (a busy event loop, a slow connection), and HubSpot counts
        it from its arrival: the requests sent (each counted from its answer once
        answered, see ``begin``/``end``) must leave room in the window."""
        now = self.clock()
        horizon = now - self.interval_s - self.margin_s
        self._sent = {h: t for h, t in self._sent.items() if t > horizon}
        if len(self._sent) < self.limit:
            return 0.0
        oldest = sorted(self._sent.values())[-self.limit]
        return max(0.0, oldest + self.interval_s + self.margin_s - now)

    def begin(self) -> int:
        """A request leaves now; a handle for ``end``."""
        self._handles += 1
        self._sent[self._handles] = self.clock()
        return self._handles

    def end(self, handle: int) -> None:
        """The request ``begin`` started was answered (or failed): count it from now, the
        latest HubSpot can have seen it."""
        self._sent[handle] = self.clock()

    def penalize(self, wait_s: float) -> None:
        """HubSpot answered 429: send nothing for ``wait_s`` seconds."""
        self._blocked_until = max(self._blocked_until, self.clock() + wait_s)


def reserve_all(windows: Sequence[RollingWindow]) -> float:
    """Book one request in every window at the same time (a search spends both the
    general and the search budget); the seconds to wait before sending it."""
    if not windows:
        return 0.0
    at = max(w.earliest() for w in windows)
    for w in windows:
        w.commit(at)
    return max(0.0, at - windows[0].clock())
