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
    ModuleProvider,
    NormalizeOptions,
    Outcome,
    Reply,
    Verification,
    WebhookRequest,
)
from handlers.common import (
    base_properties,
    between_ms,
    call_title,
    consteq,
    decode_json,
    disposition_guid,
    duration_ms,
    epoch_ms,
    hmac_sha256_hex,
    ident,
    iso_ms,
    maybe_time,
    owner_id,
    parse_time,
    phone,
    put,
)
from service.model import CallEvent

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
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return Verification()  # authentic but malformed: parse answers 400
    if head.event == URL_VALIDATION:
        token = head.payload.plainToken if head.payload else None
        if token:
            return Verification(reply=challenge_reply(secret, token))
    return Verification()


# --- normalization ------------------------------------------------------------------------


def _event_id(call_id: str, event: str, discriminator: object) -> str:
    return f"{call_id}:{event}:{discriminator}"


def _direction(value: str | None) -> str | None:
    return {"inbound": "INBOUND", "outbound": "OUTBOUND"}.get((value or "").lower())


def _numbers(
    direction: str | None, caller: str | None, callee: str | None, options: NormalizeOptions
) -> tuple[str | None, str | None, str | None]:
    """(from, to, counterpart) in E.164: the customer is the caller on inbound calls."""
    from_number = phone(caller, options.default_region)
    to_number = phone(callee, options.default_region)
    return from_number, to_number, from_number if direction == "INBOUND" else to_number


def _party_number(party: Party | None) -> str | None:
    if party is None:
        return None
    return party.phone_number or ident(party.extension_number)


def call_event(event: Event, obj: Object, options: NormalizeOptions) -> CallEvent:
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
    started = ringing or answered or ended or occurred

    disposition = None
    duration = None
    if status is None:  # an *_ended event
        if answered is not None:
            status, disposition = "COMPLETED", "connected"
            duration = between_ms(answered, ended)
        else:
            status = "MISSED" if direction == "INBOUND" else "NO_ANSWER"
            disposition = "no answer"
    elif status == "MISSED":
        disposition = "no answer"

    from_number, to_number, counterpart = _numbers(
        direction, _party_number(obj.caller), _party_number(obj.callee), options
    )
    agent = obj.callee if direction == "INBOUND" else obj.caller
    props = base_properties(NAME, call_id, options)
    props["hs_timestamp"] = iso_ms(started)
    props["hs_call_direction"] = direction
    props["hs_call_status"] = status
    put(props, "hs_call_duration", duration)
    put(props, "hs_call_from_number", from_number)
    put(props, "hs_call_to_number", to_number)
    put(props, "hs_call_disposition", disposition_guid(disposition, options))
    if agent is not None:
        put(
            props,
            "hubspot_owner_id",
            owner_id([agent.user_id, ident(agent.extension_number)], options),
        )
    props["hs_call_title"] = call_title(direction, counterpart, agent.name if agent else None)
    return CallEvent(
        provider=NAME,
        call_id=call_id,
        event_id=_event_id(call_id, event.event, event.event_ts or epoch_ms(occurred)),
        type=event.event,
        occurred_at=iso_ms(occurred),
        sequence=event.event_ts if event.event_ts is not None else epoch_ms(occurred),
        properties=props,
        counterpart=counterpart,
    )


def _sequence(event: Event, fallback: datetime) -> int:
    return event.event_ts if event.event_ts is not None else epoch_ms(fallback)


def call_log_events(event: Event, obj: Object, options: NormalizeOptions) -> list[CallEvent]:
    events = []
    for log in obj.call_logs or []:
        call_id = ident(log.call_id)
        if call_id is None or not log.date_time:
            continue  # a log that names no call cannot be tied to one
        started = parse_time(log.date_time)
        direction = _direction(log.direction)
        disposition = LOG_RESULTS.get((log.result or "").strip().lower())
        status = {
            "connected": "COMPLETED",
            "busy": "BUSY",
            "no answer": "MISSED" if direction == "INBOUND" else "NO_ANSWER",
            "left voicemail": "MISSED" if direction == "INBOUND" else "COMPLETED",
        }.get(disposition or "")
        from_number, to_number, counterpart = _numbers(
            direction, log.caller_number, log.callee_number, options
        )
        agent_name = log.callee_name if direction == "INBOUND" else log.caller_name
        props = base_properties(NAME, call_id, options)
        props["hs_timestamp"] = iso_ms(started)
        put(props, "hs_call_direction", direction)
        put(props, "hs_call_status", status)
        put(props, "hs_call_duration", duration_ms(log.duration, 1000))
        put(props, "hs_call_from_number", from_number)
        put(props, "hs_call_to_number", to_number)
        put(props, "hs_call_disposition", disposition_guid(disposition, options))
        put(props, "hubspot_owner_id", owner_id([obj.user_id], options))
        props["hs_call_title"] = call_title(direction, counterpart, agent_name)
        events.append(
            CallEvent(
                provider=NAME,
                call_id=call_id,
                event_id=_event_id(call_id, event.event, ident(log.id) or epoch_ms(started)),
                type=event.event,
                occurred_at=iso_ms(started),
                sequence=_sequence(event, started),
                properties=props,
                counterpart=counterpart,
            )
        )
    return events


def recording_events(event: Event, obj: Object, options: NormalizeOptions) -> list[CallEvent]:
    events = []
    for rec in obj.recordings or []:
        call_id = ident(rec.call_id)
        if call_id is None or not rec.download_url or not rec.date_time:
            continue
        started = parse_time(rec.date_time)
        direction = _direction(rec.direction)
        from_number, to_number, counterpart = _numbers(
            direction, rec.caller_number, rec.callee_number, options
        )
        props = base_properties(NAME, call_id, options)
        props["hs_timestamp"] = iso_ms(started)
        put(props, "hs_call_direction", direction)
        put(props, "hs_call_from_number", from_number)
        put(props, "hs_call_to_number", to_number)
        props["hs_call_recording_url"] = rec.download_url
        if rec.owner is not None:
            put(props, "hubspot_owner_id", owner_id([rec.owner.id], options))
        events.append(
            CallEvent(
                provider=NAME,
                call_id=call_id,
                event_id=_event_id(call_id, event.event, ident(rec.id) or epoch_ms(started)),
                type=event.event,
                occurred_at=iso_ms(started),
                sequence=_sequence(event, started),
                properties=props,
                counterpart=counterpart,
            )
        )
    return events


def voicemail_events(event: Event, obj: Object, options: NormalizeOptions) -> list[CallEvent]:
    call_id = ident(obj.call_id)
    if call_id is None or not obj.download_url or not obj.date_time:
        return []  # a voicemail that names no call cannot be tied to one
    started = parse_time(obj.date_time)
    from_number, to_number, counterpart = _numbers(
        "INBOUND", obj.caller_number, obj.callee_number, options
    )
    props = base_properties(NAME, call_id, options)
    props["hs_timestamp"] = iso_ms(started)
    props["hs_call_direction"] = "INBOUND"
    props["hs_call_status"] = "MISSED"
    put(props, "hs_call_from_number", from_number)
    put(props, "hs_call_to_number", to_number)
    props["hs_call_recording_url"] = obj.download_url
    put(props, "hs_call_disposition", disposition_guid("left voicemail", options))
    put(props, "hubspot_owner_id", owner_id([obj.callee_user_id], options))
    props["hs_call_title"] = call_title("INBOUND", counterpart, obj.callee_name)
    return [
        CallEvent(
            provider=NAME,
            call_id=call_id,
            event_id=_event_id(call_id, event.event, ident(obj.id) or epoch_ms(started)),
            type=event.event,
            occurred_at=iso_ms(started),
            sequence=_sequence(event, started),
            properties=props,
            counterpart=counterpart,
        )
    ]


def parse(request: WebhookRequest, options: NormalizeOptions) -> Outcome:
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
        return Outcome(events=[])
    if obj is None:
        raise InvalidEvent(f"{event.event} without payload.object")
    if event.event in CALL_EVENTS:
        return Outcome(events=[call_event(event, obj, options)])
    if event.event in CALL_LOG_EVENTS:
        return Outcome(events=call_log_events(event, obj, options))
    if event.event == RECORDING_EVENT:
        return Outcome(events=recording_events(event, obj, options))
    return Outcome(events=voicemail_events(event, obj, options))


PROVIDER = ModuleProvider(NAME, verify, parse)
