"""The generic event: callbridge's own documented JSON for in-house telephony backends.

Authenticity, either scheme (both refused outside a 300 s window):
- ``X-Callbridge-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<raw body>")>`` with
  ``X-Callbridge-Timestamp: <unix seconds>``, for a plain secret;
- Standard Webhooks (``webhook-id``, ``webhook-timestamp``, ``webhook-signature:
  v1,<base64>``…) for a ``whsec_<base64>`` key (``handlers.stdwebhooks``); ``webhook-id``
  is the replay id.
Body: one event object, or ``{"events": [...]}`` with at most 100 events.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Final, Literal

import msgspec

from handlers import limits, stdwebhooks
from handlers.base import (
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Verification,
    WebhookRequest,
)
from handlers.build import CallFacts, direction_of
from handlers.common import consteq, minus_ms, parse_time, shown
from handlers.event import STATUS_RANK
from handlers.phone import e164
from handlers.provider import ModuleProvider, parser

NAME: Final = "generic"
TOLERANCE_S: Final = 300
MAX_EVENTS: Final = limits.MAX_EVENTS
MAX_DURATION_MS: Final = limits.MAX_DURATION_MS

EventType = Literal[
    "call.started", "call.ringing", "call.answered", "call.ended", "call.recording", "call.updated"
]

#: the status an event type implies when the event gives none.
TYPE_STATUS: Final[dict[str, str]] = {
    "call.started": "CONNECTING",
    "call.ringing": "RINGING",
    "call.answered": "IN_PROGRESS",
    "call.ended": "COMPLETED",
}


class Agent(msgspec.Struct, forbid_unknown_fields=False):
    id: str | None = None
    email: str | None = None
    name: str | None = None


Id = Annotated[str, msgspec.Meta(min_length=1, max_length=limits.MAX_ID_CHARS)]
Text = Annotated[str, msgspec.Meta(max_length=limits.MAX_TEXT_CHARS)]
ObjectIds = Annotated[
    list[Annotated[str, msgspec.Meta(pattern="^[0-9]{1,19}$")]],
    msgspec.Meta(max_length=limits.MAX_ASSOCIATIONS),
]


class GenericEvent(msgspec.Struct, forbid_unknown_fields=False):
    """The documented generic event; the limits (``handlers.limits``) appear in the
    OpenAPI document, and ``handlers.build`` enforces them on every provider's events."""

    event_id: Id
    call_id: Id
    type: EventType
    occurred_at: Annotated[
        str, msgspec.Meta(max_length=64, extra_json_schema={"format": "date-time"})
    ]
    direction: Literal["inbound", "outbound", "INBOUND", "OUTBOUND"] | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None
    status: str | None = None
    duration_ms: Annotated[int, msgspec.Meta(ge=0, le=limits.MAX_DURATION_MS)] | None = None
    recording_url: Annotated[str, msgspec.Meta(max_length=limits.MAX_URL_CHARS)] | None = None
    title: Text | None = None
    notes: Text | None = None
    disposition: str | None = None
    agent: Agent | None = None
    contact_ids: ObjectIds = msgspec.field(default_factory=list)
    company_ids: ObjectIds = msgspec.field(default_factory=list)
    deal_ids: ObjectIds = msgspec.field(default_factory=list)


class Batch(msgspec.Struct, forbid_unknown_fields=False):
    events: Annotated[list[GenericEvent], msgspec.Meta(max_length=limits.MAX_EVENTS)]


_single = msgspec.json.Decoder(GenericEvent)
_batch = msgspec.json.Decoder(Batch)


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Callbridge-Signature`` value for a body (used by senders and tests)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    """Standard Webhooks headers with a ``whsec_`` key, else ``X-Callbridge-*`` with a plain
    key. Each key verifies only its own scheme (rotation tries every configured key)."""
    if request.headers.get("webhook-signature") is not None:
        if not secret.startswith(stdwebhooks.PREFIX):
            raise InvalidSignature("webhook-signature needs a whsec_ key (none matched)")
        webhook_id = stdwebhooks.verify(request.headers, request.body, secret, now)
        return Verification(replay_id=webhook_id, replay_ttl_s=2.0 * stdwebhooks.TOLERANCE_S)
    if secret.startswith(stdwebhooks.PREFIX):
        raise InvalidSignature("a whsec_ key verifies webhook-* headers only")
    ts = request.headers.get("x-callbridge-timestamp")
    sig = request.headers.get("x-callbridge-signature")
    if not ts or not sig:
        raise InvalidSignature(
            "missing X-Callbridge-Timestamp/X-Callbridge-Signature "
            "(or webhook-id/webhook-timestamp/webhook-signature)"
        )
    if not (ts.isascii() and ts.isdigit() and len(ts) <= 12):
        raise InvalidSignature("X-Callbridge-Timestamp is not unix seconds")
    if abs(now - int(ts)) > TOLERANCE_S:
        raise InvalidSignature("timestamp outside the 300 s window")
    expected = sign(secret, ts, request.body)
    # A header may carry several space-separated signatures (key rotation).
    if not any(consteq(candidate, expected) for candidate in sig.split()[:8]):
        raise InvalidSignature("signature mismatch")
    return Verification()


def decode(body: bytes) -> list[GenericEvent]:
    """The events of a body, or ``InvalidEvent`` naming what is wrong."""
    try:
        head = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidEvent(f"malformed JSON: {str(exc)[:200]}") from exc
    try:
        if isinstance(head, dict) and "events" in head:
            events = _batch.decode(body).events
        else:
            events = [_single.decode(body)]
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(str(exc)[:200]) from exc
    if not events:
        raise InvalidEvent("no events")
    if len(events) > MAX_EVENTS:
        raise InvalidEvent(f"at most {MAX_EVENTS} events per request, got {len(events)}")
    return events


def facts(event: GenericEvent, options: NormalizeOptions) -> CallFacts:
    occurred = parse_time(event.occurred_at)
    status = event.status.upper() if event.status else TYPE_STATUS.get(event.type)
    if status is not None and status not in STATUS_RANK:
        raise InvalidEvent(f"unknown status {shown(event.status)}")
    if event.duration_ms is not None and not 0 <= event.duration_ms <= MAX_DURATION_MS:
        raise InvalidEvent(f"duration_ms must be between 0 and {MAX_DURATION_MS}")
    started = occurred
    if event.type == "call.ended" and event.duration_ms:
        started = minus_ms(occurred, event.duration_ms)
    agent = event.agent
    return CallFacts(
        provider=NAME,
        call_id=event.call_id,
        event_id=event.event_id,
        type=event.type,
        occurred=occurred,
        started=started,
        direction=direction_of(event.direction),
        status=status,
        disposition=event.disposition,
        duration_ms=event.duration_ms,
        from_number=e164(event.from_, options.default_region),
        to_number=e164(event.to, options.default_region),
        recording_url=event.recording_url,
        title=event.title,
        body=event.notes,
        agents=[agent.email, agent.id] if agent else [],
        agent_name=agent.name if agent else None,
        contact_ids=event.contact_ids,
        company_ids=event.company_ids,
        deal_ids=event.deal_ids,
    )


def extract(request: WebhookRequest, options: NormalizeOptions) -> list[CallFacts]:
    return [facts(e, options) for e in decode(request.body)]


parse = parser(extract)
PROVIDER = ModuleProvider(NAME, verify, extract)
