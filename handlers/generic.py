"""The generic event: callbridge's own documented JSON for in-house telephony backends.

Authenticity: ``X-Callbridge-Signature: v1=<hex HMAC-SHA256(secret, "<ts>.<raw body>")>``
with ``X-Callbridge-Timestamp: <unix seconds>``, refused outside a 300 s window.
Body: one event object, or ``{"events": [...]}`` with at most 100 events.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Final, Literal

import msgspec

from handlers.base import (
    InvalidEvent,
    InvalidSignature,
    ModuleProvider,
    NormalizeOptions,
    Outcome,
    Verification,
    WebhookRequest,
)
from handlers.common import (
    base_properties,
    call_title,
    consteq,
    disposition_guid,
    e164,
    epoch_ms,
    iso_ms,
    owner_id,
    parse_time,
    put,
)
from service.model import STATUS_RANK, CallEvent

NAME: Final = "generic"
TOLERANCE_S: Final = 300
MAX_EVENTS: Final = 100
MAX_DURATION_MS: Final = 7 * 24 * 3600 * 1000

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


class GenericEvent(msgspec.Struct, forbid_unknown_fields=False):
    event_id: str
    call_id: str
    type: EventType
    occurred_at: str
    direction: Literal["inbound", "outbound", "INBOUND", "OUTBOUND"] | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None
    status: str | None = None
    duration_ms: int | None = None
    recording_url: str | None = None
    title: str | None = None
    notes: str | None = None
    disposition: str | None = None
    agent: Agent | None = None
    contact_ids: list[str] = msgspec.field(default_factory=list)
    company_ids: list[str] = msgspec.field(default_factory=list)
    deal_ids: list[str] = msgspec.field(default_factory=list)


class Batch(msgspec.Struct, forbid_unknown_fields=False):
    events: list[GenericEvent]


_single = msgspec.json.Decoder(GenericEvent)
_batch = msgspec.json.Decoder(Batch)


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``X-Callbridge-Signature`` value for a body (used by senders and tests)."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    ts = request.headers.get("x-callbridge-timestamp")
    sig = request.headers.get("x-callbridge-signature")
    if not ts or not sig:
        raise InvalidSignature("missing X-Callbridge-Timestamp or X-Callbridge-Signature")
    try:
        ts_value = int(ts)
    except ValueError as exc:
        raise InvalidSignature("X-Callbridge-Timestamp is not unix seconds") from exc
    if abs(now - ts_value) > TOLERANCE_S:
        raise InvalidSignature("timestamp outside the 300 s window")
    expected = sign(secret, ts, request.body)
    # A header may carry several space-separated signatures (key rotation).
    if not any(consteq(candidate, expected) for candidate in sig.split()):
        raise InvalidSignature("signature mismatch")
    return Verification()


def decode(body: bytes) -> list[GenericEvent]:
    """The events of a body, or ``InvalidEvent`` naming what is wrong."""
    try:
        head = msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise InvalidEvent(f"malformed JSON: {exc}") from exc
    try:
        if isinstance(head, dict) and "events" in head:
            events = _batch.decode(body).events
        else:
            events = [_single.decode(body)]
    except (msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise InvalidEvent(str(exc)) from exc
    if not events:
        raise InvalidEvent("no events")
    if len(events) > MAX_EVENTS:
        raise InvalidEvent(f"at most {MAX_EVENTS} events per request, got {len(events)}")
    return events


def normalize(event: GenericEvent, options: NormalizeOptions) -> CallEvent:
    if not event.call_id.strip() or not event.event_id.strip():
        raise InvalidEvent("call_id and event_id must not be empty")
    occurred = parse_time(event.occurred_at)
    status = event.status.upper() if event.status else TYPE_STATUS.get(event.type)
    if status is not None and status not in STATUS_RANK:
        raise InvalidEvent(f"unknown status {event.status!r}")
    if event.duration_ms is not None and not 0 <= event.duration_ms <= MAX_DURATION_MS:
        raise InvalidEvent(f"duration_ms must be between 0 and {MAX_DURATION_MS}")
    direction = event.direction.upper() if event.direction else None
    from_number = e164(event.from_, options.default_region)
    to_number = e164(event.to, options.default_region)
    counterpart = from_number if direction == "INBOUND" else to_number
    started = occurred
    if event.type == "call.ended" and event.duration_ms:
        started = occurred - timedelta(milliseconds=event.duration_ms)

    props = base_properties(NAME, event.call_id, options)
    props["hs_timestamp"] = iso_ms(started)
    put(props, "hs_call_direction", direction)
    put(props, "hs_call_status", status)
    put(props, "hs_call_duration", event.duration_ms)
    put(props, "hs_call_from_number", from_number)
    put(props, "hs_call_to_number", to_number)
    put(props, "hs_call_recording_url", event.recording_url)
    put(props, "hs_call_body", event.notes)
    put(props, "hs_call_disposition", disposition_guid(event.disposition, options))
    agent = event.agent
    if agent is not None:
        put(props, "hubspot_owner_id", owner_id([agent.email, agent.id], options))
    put(
        props,
        "hs_call_title",
        event.title or call_title(direction, counterpart, agent.name if agent else None),
    )
    return CallEvent(
        provider=NAME,
        call_id=event.call_id,
        event_id=event.event_id,
        type=event.type,
        occurred_at=iso_ms(occurred),
        sequence=epoch_ms(occurred),
        properties=props,
        counterpart=counterpart,
        contact_ids=list(event.contact_ids),
        company_ids=list(event.company_ids),
        deal_ids=list(event.deal_ids),
    )


def parse(request: WebhookRequest, options: NormalizeOptions) -> Outcome:
    return Outcome(events=[normalize(e, options) for e in decode(request.body)])


PROVIDER = ModuleProvider(NAME, verify, parse)
