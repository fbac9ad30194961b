"""Replay memory of the ingress: ids (Vonage ``jti``, Standard Webhooks ``webhook-id``)
that were accepted, until their window ends.

An id is remembered only after Kafka acknowledged the request's events: a provider that
got a 503 retries with the same id and must not be told "replayed". The memory is per
replica: a replay that reaches another replica within the window is produced again, with
the same ``event_id``, and the writer drops it as a duplicate (README "Security").
"""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]


class ReplayGuard:
    def __init__(self, clock: Clock, max_entries: int = 100_000) -> None:
        self._seen: dict[str, float] = {}
        self._clock = clock
        self._max = max_entries

    def seen(self, key: str) -> bool:
        """Whether ``key`` was accepted and its window has not ended."""
        expires = self._seen.get(key)
        return expires is not None and expires > self._clock()

    def remember(self, key: str, ttl_s: float) -> None:
        now = self._clock()
        if len(self._seen) >= self._max:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            while len(self._seen) >= self._max:  # still full of live ids: drop the oldest
                self._seen.pop(next(iter(self._seen)))
        self._seen[key] = now + ttl_s
