"""``ModuleProvider``: a provider module's ``verify`` and ``extract`` bound as a ``Provider``.

A module's ``extract(request, options)`` reads the body into ``CallFacts`` (or a handshake
``Reply``); ``parse`` builds every event from them with ``handlers.build.build_event``, the
one place where events are made and edge limits enforced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from handlers.base import NormalizeOptions, Outcome, Reply, Verification, WebhookRequest
from handlers.build import CallFacts, build_event

JSON: frozenset[str] = frozenset({"application/json"})

Extracted = Sequence[CallFacts] | Reply
Extract = Callable[[WebhookRequest, NormalizeOptions], Extracted]


def parser(extract: Extract) -> Callable[[WebhookRequest, NormalizeOptions, float | None], Outcome]:
    """``parse(request, options, now=None)`` for a module's ``extract``."""

    def parse(
        request: WebhookRequest, options: NormalizeOptions, now: float | None = None
    ) -> Outcome:
        extracted = extract(request, options)
        if isinstance(extracted, Reply):
            return Outcome(reply=extracted)
        return Outcome(events=[build_event(facts, options, now) for facts in extracted])

    return parse


@dataclass(frozen=True)
class ModuleProvider:
    """``media_types`` are the bodies the provider sends (others are answered 415);
    ``None`` accepts any (Dialpad's JWT body has no documented Content-Type)."""

    name: str
    verify: Callable[[WebhookRequest, str, float], Verification]
    extract: Extract
    media_types: frozenset[str] | None = JSON
    max_body_bytes: int | None = None
    needs_public_url: bool = False

    def accepts(self, content_type: str) -> bool:
        return self.media_types is None or content_type in self.media_types

    def parse(
        self, request: WebhookRequest, options: NormalizeOptions, now: float | None = None
    ) -> Outcome:
        return parser(self.extract)(request, options, now)
