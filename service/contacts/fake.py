"""An in-memory :class:`service.contacts.ContactMatcher` for unit tests of the writer core
(a fake of the port, cosmicpython style; integration tests use the real matcher)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Iterable, Mapping

from service.contacts.policy import Candidate, Policy, choose


class InMemoryMatcher:
    """Answers from ``contacts`` (E.164 → [(id, modified ms)]) under ``policy``; records
    what the writer reports in ``written`` and every ``match`` call in ``asked``."""

    def __init__(
        self, contacts: Mapping[str, list[Candidate]] | None = None, policy: Policy = "latest"
    ) -> None:
        self.contacts = dict(contacts or {})
        self.policy: Policy = policy
        self.asked: list[set[str]] = []
        self.written: list[tuple[str, str, float]] = []
        self._stop = asyncio.Event()

    async def match(
        self, numbers: Collection[str], names: Mapping[str, str] | None = None
    ) -> dict[str, list[str]]:
        self.asked.append(set(numbers))
        return {n: choose(self.policy, self.contacts.get(n, []))[0] for n in numbers}

    def calls_written(self, items: Iterable[tuple[str, str, float]]) -> None:
        self.written.extend(items)

    async def run(self) -> None:
        await self._stop.wait()

    async def aclose(self) -> None:
        self._stop.set()
