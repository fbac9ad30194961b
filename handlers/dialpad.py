"""Dialpad: call events of a call event subscription, delivered to a webhook with a secret.

Authenticity: with a secret, Dialpad sends the whole body as a compact JWT signed HS256 with
it; decoding it (PyJWT, HS256 only) proves authenticity and yields the event. Its
Content-Type is not documented, so the body is read as a JWT whatever the header says.
Dialpad includes no ``jti``, so there is no replay guard beyond the writer's de-duplication
by ``event_id``; an ``exp`` claim, if Dialpad ever sends one, is honoured against ``now``.
A webhook without a secret sends plain JSON: that is unauthenticated and refused.

Events: one per call state (``calling``, ``ringing``, ``connected``, ``hold``,
``voicemail``, ``missed``, ``hangup``, ``recording``, ``transcription``…); times are Unix
milliseconds, durations milliseconds. The call key is ``call_id`` (``master_call_id`` ties
legs together but each leg is its own call here).
"""

from __future__ import annotations

import warnings
from typing import Any, Final

import jwt
import msgspec
from jwt.warnings import InsecureKeyLengthWarning

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
    disposition_guid,
    duration_ms,
    epoch_ms,
    ident,
    iso_ms,
    maybe_time,
    owner_id,
    phone,
    put,
)
from service.model import CallEvent

NAME: Final = "dialpad"

#: call ``state`` → hs_call_status (``None``: decided below, or the event only adds data).
STATES: Final[dict[str, str | None]] = {
    "preanswer": "CONNECTING",
    "calling": "CONNECTING",
    "ringing": "RINGING",
    "connected": "IN_PROGRESS",
    "hold": "IN_PROGRESS",
    "voicemail": None,
    "voicemail_uploaded": None,
    "missed": None,
    "hangup": None,
    "recording": None,
    "transcription": None,
}

Id = int | str


class Party(msgspec.Struct, forbid_unknown_fields=False):
    id: Id | None = None
    type: str | None = None
    name: str | None = None
    email: str | None = None
    phone: str | None = None


class RecordingDetail(msgspec.Struct, forbid_unknown_fields=False):
    url: str | None = None


class DialpadEvent(msgspec.Struct, forbid_unknown_fields=False):
    call_id: Id
    state: str
    event_timestamp: int | float | None = None
    date_started: int | float | None = None
    date_connected: int | float | None = None
    date_ended: int | float | None = None
    direction: str | None = None
    external_number: str | None = None
    internal_number: str | None = None
    duration: int | float | None = None
    target: Party | None = None
    contact: Party | None = None
    voicemail_link: str | None = None
    recording_url: str | list[str] | None = None
    recording_details: list[RecordingDetail] | None = None
    transcription_text: str | None = None


_event = msgspec.json.Decoder(DialpadEvent)


def _jwt_decode(token: str, secret: str | None) -> dict[str, Any]:
    with warnings.catch_warnings():
        # The secret is chosen on Dialpad's side: its length is not ours to enforce.
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        if secret is None:
            return jwt.decode(token, options={"verify_signature": False})
        return jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False},
        )


def sign(secret: str, payload: dict[str, Any]) -> bytes:
    """The body Dialpad sends for ``payload`` on a webhook with ``secret`` (tests)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm="HS256").encode()


def _token(body: bytes, error: type[Exception]) -> str:
    try:
        token = body.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise error("the body is not a JWT") from exc
    if token.count(".") != 2:
        raise error("the body is not a compact JWT (unsigned JSON is refused)")
    return token


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    token = _token(request.body, InvalidSignature)
    try:
        claims = _jwt_decode(token, secret)
    except jwt.PyJWTError as exc:
        raise InvalidSignature(f"invalid JWT: {exc}") from exc
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool) and now > exp:
        raise InvalidSignature("JWT expired")
    return Verification()


def decode(body: bytes) -> DialpadEvent:
    """The event inside an (already verified) JWT body."""
    token = _token(body, InvalidEvent)
    try:
        claims = _jwt_decode(token, None)
    except jwt.PyJWTError as exc:
        raise InvalidEvent(f"malformed JWT: {exc}") from exc
    try:
        return msgspec.convert(claims, DialpadEvent)
    except msgspec.ValidationError as exc:
        raise InvalidEvent(f"malformed payload: {exc}") from exc


def _recording(event: DialpadEvent) -> str | None:
    urls = event.recording_url
    if isinstance(urls, str):
        return urls.strip() or None
    for url in urls or []:
        if url.strip():
            return url.strip()
    for detail in event.recording_details or []:
        if detail.url:
            return detail.url
    return None


def normalize(event: DialpadEvent, options: NormalizeOptions) -> CallEvent | None:
    call_id = ident(event.call_id)
    if call_id is None:
        raise InvalidEvent("call_id must be a non-empty id")
    state = event.state.strip().lower()
    if state not in STATES:
        return None
    occurred = maybe_time(event.event_timestamp) or maybe_time(event.date_started)
    if occurred is None:
        raise InvalidEvent("event without event_timestamp")
    started = maybe_time(event.date_started) or occurred
    direction = {"inbound": "INBOUND", "outbound": "OUTBOUND"}.get((event.direction or "").lower())
    external = phone(event.external_number, options.default_region)
    internal = phone(event.internal_number, options.default_region)
    from_number, to_number = (
        (external, internal) if direction == "INBOUND" else (internal, external)
    )
    unanswered = "MISSED" if direction == "INBOUND" else "NO_ANSWER"

    status = STATES[state]
    disposition: str | None = None
    duration: int | None = None
    recording: str | None = None
    body: str | None = None
    if state == "hangup":
        if event.date_connected:
            status, disposition = "COMPLETED", "connected"
        else:
            status, disposition = unanswered, "no answer"
        duration = duration_ms(event.duration)
    elif state == "missed":
        status, disposition = unanswered, "no answer"
    elif state in ("voicemail", "voicemail_uploaded"):
        status, disposition = unanswered, "left voicemail"
        recording = (event.voicemail_link or "").strip() or None
    elif state == "recording":
        recording = _recording(event)
    elif state == "transcription":
        text = (event.transcription_text or "").strip()
        body = f"Transcription:\n{text}" if text else None

    agent = event.target
    props = base_properties(NAME, call_id, options)
    props["hs_timestamp"] = iso_ms(started)
    put(props, "hs_call_direction", direction)
    put(props, "hs_call_status", status)
    put(props, "hs_call_duration", duration)
    put(props, "hs_call_from_number", from_number)
    put(props, "hs_call_to_number", to_number)
    put(props, "hs_call_recording_url", recording)
    put(props, "hs_call_body", body)
    put(props, "hs_call_disposition", disposition_guid(disposition, options))
    if agent is not None:
        put(props, "hubspot_owner_id", owner_id([agent.email, ident(agent.id)], options))
    props["hs_call_title"] = call_title(direction, external, agent.name if agent else None)
    return CallEvent(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:{state}:{epoch_ms(occurred)}",
        type=state,
        occurred_at=iso_ms(occurred),
        sequence=epoch_ms(occurred),
        properties=props,
        counterpart=external,
    )


def parse(request: WebhookRequest, options: NormalizeOptions) -> Outcome:
    event = normalize(decode(request.body), options)
    return Outcome(events=[event] if event else [])


# the JWT body's Content-Type is undocumented: accept any
PROVIDER = ModuleProvider(NAME, verify, parse, None)
