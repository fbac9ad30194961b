"""Admission: the ingress's policy as pure functions, no I/O (h11's way).

``select`` finds the policy of the request's portal (``/webhooks/{provider}/{portal}``; an
unknown portal is 404 ``unknown portal``, before anything else is looked at); ``preflight``
decides what can be decided from the route and the headers alone (unknown or disabled
provider, declared size, media type) before a byte of the body is read; ``admit``
takes the whole request and returns either ``Accept`` (events to produce, a replay id to
remember once Kafka acknowledged them) or ``Answer`` (what to send back, nothing produced).

Every failure becomes an answer: ``InvalidSignature`` → 401, ``InvalidEvent`` → 400, and
anything unexpected is caught here too, as 401 if it happened before authenticity was
proved and 400 after, carrying the exception so that the route can log it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from handlers import (
    REGISTRY,
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Provider,
    Reply,
    Verification,
    WebhookRequest,
)
from handlers.event import DEFAULT_PORTAL, CallEvent, portal_key
from handlers.limits import too_deep
from service.portals import PORTAL_ID

#: media types whose body is not JSON (no nesting to measure).
FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})


@dataclass(frozen=True)
class Answer:
    """A response to send as is; nothing is produced. ``error`` and ``detail`` form the
    JSON error body (``reply`` instead for a handshake). ``failure`` is an unexpected
    exception caught on the way (logged by the route, never shown to the caller)."""

    status: int
    error: str = ""
    detail: str = ""
    reply: Reply | None = None
    failure: BaseException | None = None


@dataclass(frozen=True)
class Accept:
    """Events to produce; once Kafka acknowledged them, remember ``replay_key``."""

    events: list[CallEvent]
    replay_key: str | None = None
    replay_ttl_s: float = 0.0


@dataclass(frozen=True)
class Policy:
    """What admission needs to know: secrets per provider (empty: disabled), the body
    limit, normalization options, the registry."""

    secrets: Mapping[str, Sequence[str]]
    max_body_bytes: int
    options: NormalizeOptions = field(default_factory=NormalizeOptions)
    registry: Mapping[str, Provider] = field(default_factory=lambda: dict(REGISTRY))

    def body_limit(self, provider: Provider) -> int:
        own = provider.max_body_bytes
        return self.max_body_bytes if own is None else min(own, self.max_body_bytes)


@dataclass(frozen=True)
class Inbound:
    """The request as admission sees it. ``url`` is the URL the provider called when it
    can be known (``CALLBRIDGE_PUBLIC_URL`` or a trusted proxy's forwarded headers), else
    ``None``; ``local_url`` is the URL as received (its query is still the request's)."""

    provider: str
    method: str
    url: str | None
    local_url: str
    headers: Mapping[str, str]
    body: bytes
    #: the portal of the route (``/webhooks/{provider}/{portal}``; ``default`` without one)
    portal: str = DEFAULT_PORTAL

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def select(portal: str, policies: Mapping[str, Policy]) -> Policy | Answer:
    """The policy of ``portal``, or 404 ``unknown portal`` (not configured, or not a portal
    id at all: then the detail does not echo it)."""
    if PORTAL_ID.fullmatch(portal) is None:
        return Answer(404, "unknown portal", "not a portal id ([a-z0-9-]{1,40})")
    policy = policies.get(portal)
    if policy is None:
        return Answer(404, "unknown portal", portal)
    return policy


def preflight(
    name: str, declared_length: str | None, content_type: str, policy: Policy
) -> Provider | Answer:
    """The provider to read the body for, or the answer that needs no body."""
    provider = policy.registry.get(name)
    if provider is None:
        return Answer(404, "unknown provider", name[:64])
    if not policy.secrets.get(name):
        return Answer(404, "provider not enabled", name)
    limit = policy.body_limit(provider)
    if declared_length is not None:
        length = declared_length.strip()
        if not (length.isascii() and length.isdigit()):
            return Answer(400, "invalid request", "Content-Length is not a number")
        if len(length) > 12 or int(length) > limit:
            return Answer(413, "payload too large", f"limit is {limit} bytes")
    if not provider.accepts(content_type):
        return Answer(415, "unsupported media type", content_type[:64] or "none given")
    return provider


def admit(
    inbound: Inbound,
    provider: Provider,
    policy: Policy,
    now: float,
    seen: Callable[[str], bool],
) -> Accept | Answer:
    """Verify, check replay, answer handshakes and parse: ``Accept`` or ``Answer``.

    ``policy`` is the portal's (``select``): only its secrets verify. Replay ids are kept
    per portal (``portal/provider:id``; ``provider:id`` in ``default``) and every event
    carries ``inbound.portal``."""
    if len(inbound.body) > policy.body_limit(provider):
        limit = policy.body_limit(provider)
        return Answer(413, "payload too large", f"limit is {limit} bytes")
    if inbound.content_type not in FORM_TYPES and too_deep(inbound.body):
        return Answer(400, "invalid event", "JSON nested too deeply")
    if provider.needs_public_url and inbound.url is None:
        return Answer(
            401,
            "invalid signature",
            "the public URL is unknown: set CALLBRIDGE_PUBLIC_URL or CALLBRIDGE_TRUSTED_PROXIES",
        )
    request = WebhookRequest(
        method=inbound.method,
        url=inbound.url if inbound.url is not None else inbound.local_url,
        headers=inbound.headers,
        body=inbound.body,
    )
    verified = _verify(provider, request, policy.secrets.get(inbound.provider, ()), now)
    if isinstance(verified, Answer):
        return verified
    replay_key = None
    if verified.replay_id is not None:
        replay_key = portal_key(inbound.portal, f"{inbound.provider}:{verified.replay_id}")
        if seen(replay_key):
            return Answer(401, "replayed request", "this request was already accepted")
    if verified.reply is not None:  # a handshake answered by verify (Zoom)
        return Answer(verified.reply.status, reply=verified.reply)
    try:
        outcome = provider.parse(request, policy.options, now)
    except InvalidEvent as exc:
        return Answer(400, "invalid event", exc.reason)
    except Exception as exc:  # a bug or an input nobody foresaw: still never a 500
        return Answer(400, "invalid event", "the payload could not be read", failure=exc)
    if outcome.reply is not None:
        return Answer(outcome.reply.status, reply=outcome.reply)
    # the constant itself for the default portal: msgspec omits a default by identity, and
    # a "default" read from the URL is an equal but other string (it would be encoded)
    portal = DEFAULT_PORTAL if inbound.portal == DEFAULT_PORTAL else inbound.portal
    for event in outcome.events:
        event.portal = portal
    return Accept(outcome.events, replay_key, verified.replay_ttl_s)


def _verify(
    provider: Provider, request: WebhookRequest, secrets: Sequence[str], now: float
) -> Verification | Answer:
    """The first configured secret that verifies (rotation), else the first refusal."""
    first: Answer | None = None
    for index, secret in enumerate(secrets):
        try:
            return replace(provider.verify(request, secret, now), key_index=index)
        except InvalidSignature as exc:
            first = first or Answer(401, "invalid signature", exc.reason)
        except Exception as exc:  # before authentication: refuse, never 500
            first = first or Answer(401, "invalid signature", "could not verify", failure=exc)
    return first or Answer(404, "provider not enabled", provider.name)
