"""Aircall: call webhooks (``{"resource": "call", "event": "call.…", "timestamp", "token",
"data": <Call object>}``).

Authenticity: the body's ``token`` equals the webhook's token (constant-time compare).
Aircall signs nothing, so only HTTPS protects the body; the token is never logged or
produced. Every call event carries the whole Call object, so each event is normalized from
it: ``started_at`` is the call's start, ``duration`` (seconds) its length once it is done.
Events outside ``EVENTS`` (``contact.*``, ``user.*``, ``call.transferred``…) are valid but
irrelevant: no events.
"""

from __future__ import annotations

from typing import Final

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
    decode_json,
    disposition_guid,
    duration_ms,
    epoch_ms,
    ident,
    iso_ms,
    maybe_time,
    owner_id,
    parse_time,
    phone,
    put,
)
from service.model import CallEvent

NAME: Final = "aircall"

#: call events that say something about the call, with the status each one implies
#: (``None``: the status follows from the Call object, or the event adds only notes).
EVENTS: Final[dict[str, str | None]] = {
    "call.created": "CONNECTING",
    "call.ringing_on_agent": "RINGING",
    "call.answered": "IN_PROGRESS",
    "call.hungup": None,
    "call.ended": None,
    "call.voicemail_left": None,
    "call.commented": None,
    "call.tagged": None,
}
ENDING: Final = frozenset({"call.hungup", "call.ended", "call.voicemail_left"})

Id = int | str


class User(msgspec.Struct, forbid_unknown_fields=False):
    id: Id | None = None
    name: str | None = None
    email: str | None = None


class Number(msgspec.Struct, forbid_unknown_fields=False):
    digits: str | None = None
    name: str | None = None


class Comment(msgspec.Struct, forbid_unknown_fields=False):
    content: str | None = None


class Tag(msgspec.Struct, forbid_unknown_fields=False):
    name: str | None = None


class Call(msgspec.Struct, forbid_unknown_fields=False):
    id: Id
    direction: str | None = None
    status: str | None = None
    started_at: int | float | str | None = None
    answered_at: int | float | str | None = None
    ended_at: int | float | str | None = None
    duration: int | float | str | None = None
    raw_digits: str | None = None
    recording: str | None = None
    asset: str | None = None
    voicemail: str | None = None
    missed_call_reason: str | None = None
    user: User | None = None
    assigned_to: User | None = None
    number: Number | None = None
    comments: list[Comment] | None = None
    tags: list[Tag] | None = None


class Envelope(msgspec.Struct, forbid_unknown_fields=False):
    event: str
    timestamp: int | float | str
    resource: str | None = None
    token: str | None = None
    data: msgspec.Raw = msgspec.Raw(b"")


class _TokenOnly(msgspec.Struct, forbid_unknown_fields=False):
    token: str | None = None


_envelope = msgspec.json.Decoder(Envelope)
_call = msgspec.json.Decoder(Call)
_token = msgspec.json.Decoder(_TokenOnly)


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    try:
        token = _token.decode(request.body).token
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
        raise InvalidSignature("no token: the body is not an Aircall JSON object") from exc
    if not token:
        raise InvalidSignature("missing token")
    if not consteq(token, secret):
        raise InvalidSignature("token mismatch")
    return Verification()


def _body(call: Call) -> str | None:
    lines = [
        f"- {c.content.strip()}" for c in call.comments or [] if c.content and c.content.strip()
    ]
    parts = ["Comments:\n" + "\n".join(lines)] if lines else []
    tags = [t.name.strip() for t in call.tags or [] if t.name and t.name.strip()]
    if tags:
        parts.append("Tags: " + ", ".join(tags))
    return "\n".join(parts) or None


def normalize(envelope: Envelope, call: Call, options: NormalizeOptions) -> CallEvent:
    call_id = ident(call.id)
    if call_id is None:
        raise InvalidEvent("data.id must be a non-empty id")
    occurred = parse_time(envelope.timestamp)
    started = maybe_time(call.started_at) or occurred
    answered = maybe_time(call.answered_at)
    direction = {"inbound": "INBOUND", "outbound": "OUTBOUND"}.get((call.direction or "").lower())
    external = phone(call.raw_digits, options.default_region)
    line = phone(call.number.digits if call.number else None, options.default_region)
    from_number, to_number = (external, line) if direction == "INBOUND" else (line, external)

    status = EVENTS[envelope.event]
    disposition: str | None = None
    duration: int | None = None
    recording = call.recording or call.asset
    if envelope.event in ENDING:
        if answered is not None:
            status, disposition = "COMPLETED", "connected"
        else:
            status = "MISSED" if direction == "INBOUND" else "NO_ANSWER"
            disposition = "no answer"
        if call.voicemail:
            disposition = "left voicemail"
            recording = recording or call.voicemail
        if call.status == "done" or envelope.event == "call.ended":
            duration = duration_ms(call.duration, 1000)

    agent = call.user or call.assigned_to
    props = base_properties(NAME, call_id, options)
    props["hs_timestamp"] = iso_ms(started)
    put(props, "hs_call_direction", direction)
    put(props, "hs_call_status", status)
    put(props, "hs_call_duration", duration)
    put(props, "hs_call_from_number", from_number)
    put(props, "hs_call_to_number", to_number)
    if envelope.event in ENDING:
        put(props, "hs_call_recording_url", recording)
    put(props, "hs_call_body", _body(call))
    put(props, "hs_call_disposition", disposition_guid(disposition, options))
    if agent is not None:
        put(props, "hubspot_owner_id", owner_id([agent.email, ident(agent.id)], options))
    props["hs_call_title"] = call_title(direction, external, agent.name if agent else None)
    return CallEvent(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:{envelope.event}:{epoch_ms(occurred)}",
        type=envelope.event,
        occurred_at=iso_ms(occurred),
        sequence=epoch_ms(occurred),
        properties=props,
        counterpart=external,
    )


def parse(request: WebhookRequest, options: NormalizeOptions) -> Outcome:
    envelope = decode_json(request.body, _envelope)
    if envelope.event not in EVENTS or (envelope.resource not in (None, "call")):
        return Outcome(events=[])
    if not envelope.data:
        raise InvalidEvent(f"{envelope.event} without data")
    call = decode_json(bytes(envelope.data), _call)
    return Outcome(events=[normalize(envelope, call, options)])


PROVIDER = ModuleProvider(NAME, verify, parse)
