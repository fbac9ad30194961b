"""Provider handlers: one pure module per telephony provider, registered by name.

``REGISTRY`` maps the ``{provider}`` path segment of ``POST /webhooks/{provider}`` to the
module's ``PROVIDER`` object (see ``handlers.base.Provider``).

Beside the provider modules: ``event`` (the ``CallEvent`` model and the merge-relevant
constants, owned here so that ``service`` depends on ``handlers`` and never the reverse),
``build`` (``CallFacts`` → ``CallEvent``, the one builder, where edge limits are enforced),
``limits`` (the numbers), ``phone`` (E.164 with a bounded cache), ``stdwebhooks``
(Standard Webhooks verification), ``provider`` (``ModuleProvider``), ``common`` (helpers).
"""

from __future__ import annotations

from importlib import import_module

from handlers.base import (
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Outcome,
    Provider,
    Reply,
    Verification,
    WebhookRequest,
)

#: provider modules under handlers/, each exposing ``PROVIDER``.
PROVIDER_MODULES: tuple[str, ...] = (
    "generic",
    "twilio",
    "aircall",
    "zoom",
    "ringcentral",
    "vonage",
    "dialpad",
)


def _load() -> dict[str, Provider]:
    registry: dict[str, Provider] = {}
    for name in PROVIDER_MODULES:
        provider: Provider = import_module(f"handlers.{name}").PROVIDER
        registry[provider.name] = provider
    return registry


REGISTRY: dict[str, Provider] = _load()

__all__ = [
    "REGISTRY",
    "InvalidEvent",
    "InvalidSignature",
    "NormalizeOptions",
    "Outcome",
    "Provider",
    "Reply",
    "Verification",
    "WebhookRequest",
]
