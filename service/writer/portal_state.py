"""Each portal's pause state and the order portals are flushed in (pure).

A portal is one more dimension of the same decisions: each has its own ``Flusher`` (its
own calls and contacts ports, pacing, reconcile mode and contact index) and its own
``PortalState``. A 429, the daily limit, a refused token or a failed OAuth refresh in a
flush of one portal pauses *that* portal: its calls stay buffered, uncommitted and not
dead-lettered, and are tried again when the pause ends; the other portals keep flushing.

Fairness: every portal with ready work gets its own flush, at most ``FAIR_CALLS`` calls at a
time, launched in round-robin order (``rotation``), so a portal with a huge backlog takes
its turn like the others and never holds their calls back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from service.writer.ports import Blocked, Transient

#: calls one portal's flush takes at most (ten of HubSpot's batches)
FAIR_CALLS: Final = 1000


@dataclass
class PortalState:
    """What the writer knows of one portal now (monotonic times)."""

    id: str
    api_version: str = "v3"
    #: "key" (the unique callbridge_call_key exists there), "search", or "unknown"
    mode: str = "unknown"
    paused_until: float = 0.0
    #: None, "transient" (429, 5xx, a refresh that could not be made), "daily", "auth"
    kind: str | None = None
    reason: str | None = None
    failures: int = 0
    pauses: int = 0

    def paused(self, now: float) -> bool:
        return now < self.paused_until

    @property
    def blocked(self) -> bool:
        """Nothing will be written here until an operator or the clock acts."""
        return self.kind in ("daily", "auth")

    @property
    def ready(self) -> bool:
        """The portal can write (it may be backing off a transient pause)."""
        return not self.blocked


def after_flush(
    state: PortalState,
    pause: Transient | Blocked | None,
    settled_any: bool,
    now: float,
    *,
    daily_retry_s: float,
) -> float | None:
    """Update ``state`` from a flush of its portal; the pause's length in seconds, or None
    when the flush did not pause it. A flush that settled calls without trouble clears a
    transient pause; one that settled nothing and met no trouble leaves the state as it
    was. A block (a refused token, the daily limit) is lifted only by a write HubSpot
    accepted (the flush's ``on_written``): calls settled without one (no-ops, dead
    letters) say nothing of the token."""
    if pause is None:
        if settled_any and not state.blocked:
            state.failures = 0
            state.kind = None
            state.reason = None
        return None
    state.failures += 1
    state.pauses += 1
    backoff = min(30.0, 0.5 * 2 ** min(state.failures, 6))
    if isinstance(pause, Blocked) and pause.kind == "daily":
        backoff = daily_retry_s
    elif isinstance(pause, Blocked):
        backoff = max(backoff, 10.0)
    backoff = pause.retry_after_s or backoff
    state.kind = pause.kind if isinstance(pause, Blocked) else "transient"
    state.reason = pause.reason
    state.paused_until = now + backoff
    return backoff


def rotation(portals: Sequence[str], turn: int) -> list[str]:
    """``portals`` starting at position ``turn`` (round-robin: each flush round starts one
    portal later, so no portal is always first)."""
    if not portals:
        return []
    start = turn % len(portals)
    return [*portals[start:], *portals[:start]]
