"""Aircall: call webhooks (``{"resource": "call", "event": "call.…", "timestamp", "token",
"data": <Call object>}``).

Authenticity: the body's ``token`` equals the webhook's token (constant-time compare).
Aircall signs nothing, so only HTTPS protects the body; the token is never logged or
produced. The token is static: there is no replay window; a replayed body repeats an
``event_id`` (call, event, timestamp) that the writer drops as a duplicate. Every call event carries the whole Call object, so each event is normalized from
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
    NormalizeOptions,
    Verification,
    WebhookRequest,
)
from handlers.build import CallFacts, direction_of, unanswered
from handlers.common import (
    consteq,
    decode_json,
    duration_ms,
    epoch_ms,
    ident,
    maybe_time,
    parse_time,
)
from handlers.phone import phone
from handlers.provider import ModuleProvider, parser

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
    except (
        msgspec.DecodeError,
        msgspec.ValidationError,
        UnicodeDecodeError,
        RecursionError,
    ) as exc:
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


def facts(envelope: Envelope, call: Call, options: NormalizeOptions) -> CallFacts:
    call_id = ident(call.id)
    if call_id is None:
        raise InvalidEvent("data.id must be a non-empty id")
    occurred = parse_time(envelope.timestamp)
    answered = maybe_time(call.answered_at)
    direction = direction_of(call.direction)
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
            status, disposition = unanswered(direction), "no answer"
        if call.voicemail:
            disposition = "left voicemail"
            recording = recording or call.voicemail
        if call.status == "done" or envelope.event == "call.ended":
            duration = duration_ms(call.duration, 1000)

    agent = call.user or call.assigned_to
    return CallFacts(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:{envelope.event}:{epoch_ms(occurred)}",
        type=envelope.event,
        occurred=occurred,
        started=maybe_time(call.started_at) or occurred,
        direction=direction,
        status=status,
        disposition=disposition,
        duration_ms=duration,
        from_number=from_number,
        to_number=to_number,
        recording_url=recording if envelope.event in ENDING else None,
        body=_body(call),
        agents=[agent.email, ident(agent.id)] if agent else [],
        agent_name=agent.name if agent else None,
    )


def extract(request: WebhookRequest, options: NormalizeOptions) -> list[CallFacts]:
    envelope = decode_json(request.body, _envelope)
    if envelope.event not in EVENTS or (envelope.resource not in (None, "call")):
        return []
    if not envelope.data:
        raise InvalidEvent(f"{envelope.event} without data")
    call = decode_json(bytes(envelope.data), _call)
    return [facts(envelope, call, options)]


parse = parser(extract)
PROVIDER = ModuleProvider(NAME, verify, extract)
