"""Zoom Phone: call status events (``phone.caller_*`` for outbound, ``phone.callee_*`` for
inbound), call logs, recordings and voicemails, plus the ``endpoint.url_validation`` challenge.

Authenticity: ``x-zm-signature: v0=<hex HMAC-SHA256(secret token,
"v0:{x-zm-request-timestamp}:{raw body}")>``, refused outside a ``TOLERANCE_S`` (300 s)
window. The URL-validation challenge is answered only when it is itself signed: its answer
is an HMAC of a sender-chosen string under the same secret, so answering unsigned
challenges would hand anyone a signing oracle. Because the answer needs the secret,
``verify`` returns it as ``Verification.reply`` (``parse`` never sees the secret).

Zoom sends no event id: ``event_id`` is (call_id, event, ``event_ts`` or the item id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import msgspec
import orjson

from handlers.base import (
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Reply,
    Verification,
    WebhookRequest,
)
from handlers.build import CallFacts, direction_of, unanswered
from handlers.common import (
    between_ms,
    consteq,
    decode_json,
    duration_ms,
    epoch_ms,
    hmac_sha256_hex,
    ident,
    maybe_time,
    parse_time,
)
from handlers.phone import phone
from handlers.provider import ModuleProvider, parser

NAME: Final = "zoom"
TOLERANCE_S: Final = 300
URL_VALIDATION: Final = "endpoint.url_validation"

#: call status events → (direction, status; ``None``: decided by whether it was answered).
CALL_EVENTS: Final[dict[str, tuple[str, str | None]]] = {
    "phone.caller_ringing": ("OUTBOUND", "RINGING"),
    "phone.caller_connected": ("OUTBOUND", "IN_PROGRESS"),
    "phone.caller_ended": ("OUTBOUND", None),
    "phone.callee_ringing": ("INBOUND", "RINGING"),
    "phone.callee_answered": ("INBOUND", "IN_PROGRESS"),
    "phone.callee_missed": ("INBOUND", "MISSED"),
    "phone.callee_rejected": ("INBOUND", "MISSED"),
    "phone.callee_ended": ("INBOUND", None),
}
CALL_LOG_EVENTS: Final = frozenset(
    {"phone.caller_call_log_completed", "phone.callee_call_log_completed"}
)
RECORDING_EVENT: Final = "phone.recording_completed"
VOICEMAIL_EVENT: Final = "phone.voicemail_received"

#: call-log ``result`` → disposition label.
LOG_RESULTS: Final[dict[str, str]] = {
    "call connected": "connected",
    "connected": "connected",
    "no answer": "no answer",
    "missed": "no answer",
    "busy": "busy",
    "voicemail": "left voicemail",
}

Id = int | str


class Party(msgspec.Struct, forbid_unknown_fields=False):
    phone_number: str | None = None
    extension_number: Id | None = None
    user_id: str | None = None
    name: str | None = None


class Owner(msgspec.Struct, forbid_unknown_fields=False):
    id: str | None = None
    name: str | None = None


class CallLog(msgspec.Struct, forbid_unknown_fields=False):
    id: Id | None = None
    call_id: Id | None = None
    direction: str | None = None
    caller_number: str | None = None
    callee_number: str | None = None
    callee_name: str | None = None
    caller_name: str | None = None
    date_time: str | None = None
    duration: int | float | str | None = None
    result: str | None = None


class Recording(msgspec.Struct, forbid_unknown_fields=False):
    id: Id | None = None
    call_id: Id | None = None
    direction: str | None = None
    caller_number: str | None = None
    callee_number: str | None = None
    date_time: str | None = None
    download_url: str | None = None
    owner: Owner | None = None


class Object(msgspec.Struct, forbid_unknown_fields=False):
    call_id: Id | None = None
    caller: Party | None = None
    callee: Party | None = None
    ringing_start_time: str | None = None
    connected_start_time: str | None = None
    answer_start_time: str | None = None
    call_end_time: str | None = None
    handup_result: str | None = None
    # call logs
    user_id: str | None = None
    call_logs: list[CallLog] | None = None
    # recordings
    recordings: list[Recording] | None = None
    # voicemail
    id: Id | None = None
    caller_number: str | None = None
    callee_number: str | None = None
    callee_user_id: str | None = None
    callee_name: str | None = None
    date_time: str | None = None
    download_url: str | None = None


class Payload(msgspec.Struct, forbid_unknown_fields=False):
    account_id: str | None = None
    object: Object | None = None
    plainToken: str | None = None


class Event(msgspec.Struct, forbid_unknown_fields=False):
    event: str
    event_ts: int | None = None
    payload: Payload | None = None


class _Challenge(msgspec.Struct, forbid_unknown_fields=False):
    event: str | None = None
    payload: Payload | None = None


_event = msgspec.json.Decoder(Event)
_challenge = msgspec.json.Decoder(_Challenge)


# --- authenticity -------------------------------------------------------------------------


def sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """The ``x-zm-signature`` value Zoom sends for ``body`` at ``timestamp``."""
    return "v0=" + hmac_sha256_hex(secret, f"v0:{timestamp}:".encode() + body)


def challenge_reply(secret: str, plain_token: str) -> Reply:
    """The answer to ``endpoint.url_validation``: the token and its HMAC under the secret."""
    encrypted = hmac_sha256_hex(secret, plain_token.encode())
    return Reply(200, orjson.dumps({"plainToken": plain_token, "encryptedToken": encrypted}))


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    signature = request.headers.get("x-zm-signature")
    timestamp = request.headers.get("x-zm-request-timestamp")
    if not signature or not timestamp:
        raise InvalidSignature("missing x-zm-signature or x-zm-request-timestamp")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 16:
        raise InvalidSignature("x-zm-request-timestamp is not a Unix time")
    sent = int(timestamp)
    sent_s = sent / 1000 if sent > 10_000_000_000 else sent  # seconds; tolerate milliseconds
    if abs(now - sent_s) > TOLERANCE_S:
        raise InvalidSignature(f"timestamp outside the {TOLERANCE_S} s window")
    if not consteq(sign(secret, timestamp, request.body), signature.strip()):
        raise InvalidSignature("signature mismatch")
    try:
        head = _challenge.decode(request.body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return Verification()  # authentic but malformed: parse answers 400
    if head.event == URL_VALIDATION:
        token = head.payload.plainToken if head.payload else None
        if token and len(token) <= 256:
            return Verification(reply=challenge_reply(secret, token))
    return Verification()


# --- normalization ------------------------------------------------------------------------


def _event_id(call_id: str, event: str, discriminator: object) -> str:
    return f"{call_id}:{event}:{discriminator}"


def _party_number(party: Party | None) -> str | None:
    if party is None:
        return None
    return party.phone_number or ident(party.extension_number)


def _sequence(event: Event, fallback: datetime) -> int:
    return event.event_ts if event.event_ts is not None else epoch_ms(fallback)


def call_facts(event: Event, obj: Object, options: NormalizeOptions) -> CallFacts:
    call_id = ident(obj.call_id)
    if call_id is None:
        raise InvalidEvent(f"{event.event} without payload.object.call_id")
    direction, status = CALL_EVENTS[event.event]
    ringing = maybe_time(obj.ringing_start_time)
    answered = maybe_time(obj.answer_start_time) or maybe_time(obj.connected_start_time)
    ended = maybe_time(obj.call_end_time)
    sent = parse_time(event.event_ts) if event.event_ts is not None else None
    occurred = ended or answered or ringing or sent
    if occurred is None:
        raise InvalidEvent(f"{event.event} carries no time")

    disposition = None
    duration = None
    if status is None:  # an *_ended event
        if answered is not None:
            status, disposition = "COMPLETED", "connected"
            duration = between_ms(answered, ended)
        else:
            status, disposition = unanswered(direction), "no answer"
    elif status == "MISSED":
        disposition = "no answer"
    agent = obj.callee if direction == "INBOUND" else obj.caller
    return CallFacts(
        provider=NAME,
        call_id=call_id,
        event_id=_event_id(call_id, event.event, event.event_ts or epoch_ms(occurred)),
        type=event.event,
        occurred=occurred,
        started=ringing or answered or ended or occurred,
        sequence=_sequence(event, occurred),
        direction=direction,
        status=status,
        disposition=disposition,
        duration_ms=duration,
        from_number=phone(_party_number(obj.caller), options.default_region),
        to_number=phone(_party_number(obj.callee), options.default_region),
        agents=[agent.user_id, ident(agent.extension_number)] if agent else [],
        agent_name=agent.name if agent else None,
    )


#: call-log disposition label → status (inbound calls that were not answered are MISSED).
def _log_status(disposition: str | None, direction: str | None) -> str | None:
    if disposition == "connected":
        return "COMPLETED"
    if disposition == "busy":
        return "BUSY"
    if disposition == "no answer":
        return unanswered(direction)
    if disposition == "left voicemail":
        return "MISSED" if direction == "INBOUND" else "COMPLETED"
    return None


def call_log_facts(event: Event, obj: Object, options: NormalizeOptions) -> list[CallFacts]:
    found = []
    for log in obj.call_logs or []:
        call_id = ident(log.call_id)
        if call_id is None or not log.date_time:
            continue  # a log that names no call cannot be tied to one
        started = parse_time(log.date_time)
        direction = direction_of(log.direction)
        disposition = LOG_RESULTS.get((log.result or "").strip().lower())
        found.append(
            CallFacts(
                provider=NAME,
                call_id=call_id,
                event_id=_event_id(call_id, event.event, ident(log.id) or epoch_ms(started)),
                type=event.event,
                occurred=started,
                sequence=_sequence(event, started),
                direction=direction,
                status=_log_status(disposition, direction),
                disposition=disposition,
                duration_ms=duration_ms(log.duration, 1000),
                from_number=phone(log.caller_number, options.default_region),
                to_number=phone(log.callee_number, options.default_region),
                agents=[obj.user_id],
                agent_name=log.callee_name if direction == "INBOUND" else log.caller_name,
            )
        )
    return found


def recording_facts(event: Event, obj: Object, options: NormalizeOptions) -> list[CallFacts]:
    found = []
    for rec in obj.recordings or []:
        call_id = ident(rec.call_id)
        if call_id is None or not rec.download_url or not rec.date_time:
            continue
        started = parse_time(rec.date_time)
        found.append(
            CallFacts(
                provider=NAME,
                call_id=call_id,
                event_id=_event_id(call_id, event.event, ident(rec.id) or epoch_ms(started)),
                type=event.event,
                occurred=started,
                sequence=_sequence(event, started),
                direction=direction_of(rec.direction),
                from_number=phone(rec.caller_number, options.default_region),
                to_number=phone(rec.callee_number, options.default_region),
                recording_url=rec.download_url,
                agents=[rec.owner.id] if rec.owner else [],
                titled=False,
            )
        )
    return found


def voicemail_facts(event: Event, obj: Object, options: NormalizeOptions) -> list[CallFacts]:
    call_id = ident(obj.call_id)
    if call_id is None or not obj.download_url or not obj.date_time:
        return []  # a voicemail that names no call cannot be tied to one
    started = parse_time(obj.date_time)
    return [
        CallFacts(
            provider=NAME,
            call_id=call_id,
            event_id=_event_id(call_id, event.event, ident(obj.id) or epoch_ms(started)),
            type=event.event,
            occurred=started,
            sequence=_sequence(event, started),
            direction="INBOUND",
            status="MISSED",
            disposition="left voicemail",
            from_number=phone(obj.caller_number, options.default_region),
            to_number=phone(obj.callee_number, options.default_region),
            recording_url=obj.download_url,
            agents=[obj.callee_user_id],
            agent_name=obj.callee_name,
        )
    ]


def extract(request: WebhookRequest, options: NormalizeOptions) -> list[CallFacts]:
    event = decode_json(request.body, _event)
    if event.event == URL_VALIDATION:
        # Answered from ``verify`` (Verification.reply), which holds the secret.
        raise InvalidEvent("endpoint.url_validation is answered at verification")
    obj = event.payload.object if event.payload else None
    handled = (
        event.event in CALL_EVENTS
        or event.event in CALL_LOG_EVENTS
        or event.event in (RECORDING_EVENT, VOICEMAIL_EVENT)
    )
    if not handled:
        return []
    if obj is None:
        raise InvalidEvent(f"{event.event} without payload.object")
    if event.event in CALL_EVENTS:
        return [call_facts(event, obj, options)]
    if event.event in CALL_LOG_EVENTS:
        return call_log_facts(event, obj, options)
    if event.event == RECORDING_EVENT:
        return recording_facts(event, obj, options)
    return voicemail_facts(event, obj, options)


parse = parser(extract)
PROVIDER = ModuleProvider(NAME, verify, extract)
