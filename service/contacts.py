"""Counterpart phone number → HubSpot contact ids, cached (positive TTL, shorter negative TTL).

Lookups are batched: one contacts search with ``phone IN [...]`` OR ``mobilephone IN
[...]`` per up to 40 numbers (HubSpot refuses search bodies over 3,000 characters), within
the client's 5 searches/s budget.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

Lookup = Callable[[list[str]], Awaitable[dict[str, list[str]]]]


@dataclass
class _Entry:
    ids: list[str]
    expires: float


class ContactResolver:
    def __init__(
        self,
        lookup: Lookup,
        ttl_s: float = 300.0,
        negative_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 100_000,
        chunk: int = 40,
    ) -> None:
        self._lookup = lookup
        self._ttl = ttl_s
        self._neg_ttl = negative_ttl_s
        self._clock = clock
        self._max = max_entries
        self._chunk = chunk
        self._cache: dict[str, _Entry] = {}
        self.lookups = 0

    async def resolve(self, numbers: Iterable[str]) -> dict[str, list[str]]:
        """Contact ids per number (an empty list when no contact has it)."""
        now = self._clock()
        wanted = sorted(set(numbers))
        out: dict[str, list[str]] = {}
        missing: list[str] = []
        for n in wanted:
            entry = self._cache.get(n)
            if entry is not None and entry.expires > now:
                out[n] = entry.ids
            else:
                missing.append(n)
        for start in range(0, len(missing), self._chunk):
            chunk = missing[start : start + self._chunk]
            found = await self._lookup(chunk)
            self.lookups += 1
            if len(self._cache) + len(chunk) > self._max:
                self._cache = {k: e for k, e in self._cache.items() if e.expires > now}
            for n in chunk:
                ids = sorted(set(found.get(n, [])))
                self._cache[n] = _Entry(ids, now + (self._ttl if ids else self._neg_ttl))
                out[n] = ids
        return out
