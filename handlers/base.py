"""The provider-handler port: how the ingress talks to a provider module.

A handler is pure (no I/O, no asyncio, no clock it does not receive): given the raw
parts of an HTTP request it proves authenticity (``verify``) and turns the body into
normalized ``CallEvent``s (``parse``), or into an immediate ``Reply`` for a provider's
set-up handshake (Zoom's URL validation, RingCentral's Validation-Token echo).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from handlers.event import DEFAULT_DISPOSITIONS, CallEvent


class InvalidEvent(Exception):
    """The body can never become a valid call event: answered 400, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidSignature(Exception):
    """Authenticity could not be proved (bad, missing or stale signature): answered 401."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class WebhookRequest:
    """The parts of an HTTP request a handler may look at.

    ``url`` is the public URL the provider called (``CALLBRIDGE_PUBLIC_URL`` applied),
    ``headers`` has lower-case names, ``body`` is the raw bytes exactly as received.
    """

    method: str
    url: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case (``""`` when absent)."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Reply:
    """An answer to send back without producing anything (a handshake)."""

    status: int = 200
    body: bytes = b""
    media_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Verification:
    """A successful verification. ``replay_id`` (e.g. a JWT ``jti``, a Standard Webhooks
    ``webhook-id``) must be accepted only once within ``replay_ttl_s``: the ingress refuses
    an id it has already accepted and remembers an id only once Kafka acknowledged the
    events, so that a provider's retry after a 503 is not mistaken for a replay.

    ``reply``, when set, is a handshake answer that needs the secret to compute (Zoom's
    ``endpoint.url_validation``: ``parse`` never sees the secret): the ingress sends it
    at once and neither parses nor produces anything.
    """

    replay_id: str | None = None
    replay_ttl_s: float = 600.0
    #: which of the configured secrets (rotation) verified it: its position, never its value.
    key_index: int = 0
    reply: Reply | None = None


@dataclass(frozen=True)
class Outcome:
    events: list[CallEvent] = field(default_factory=list)
    reply: Reply | None = None


@dataclass(frozen=True)
class NormalizeOptions:
    """Account-specific normalization settings (from ``Settings``)."""

    default_region: str = "US"
    external_account_id: str | None = None
    owner_map: Mapping[str, str] = field(default_factory=dict)
    dispositions: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_DISPOSITIONS))


class Provider(Protocol):
    """What every ``handlers/<provider>.py`` module exposes as its ``PROVIDER`` object."""

    name: str

    def accepts(self, content_type: str) -> bool:
        """Whether this provider ever sends a body of this media type (else 415)."""
        ...

    def verify(self, request: WebhookRequest, secret: str, now: float) -> Verification:
        """Prove authenticity or raise ``InvalidSignature``. ``now`` is Unix seconds."""
        ...

    #: the largest body this provider ever sends (bytes; None: the ingress's limit).
    max_body_bytes: int | None
    #: whether verification needs the public URL the provider called (Twilio signs it).
    needs_public_url: bool

    def parse(
        self, request: WebhookRequest, options: NormalizeOptions, now: float | None = None
    ) -> Outcome:
        """Events (or a handshake reply) from a verified request, or ``InvalidEvent``.
        ``now`` (Unix seconds) bounds event timestamps (see ``handlers.build``)."""
        ...
