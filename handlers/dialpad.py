"""Dialpad: call events of a call event subscription, delivered to a webhook with a secret.

Authenticity: with a secret, Dialpad sends the whole body as a compact JWT signed HS256 with
it; decoding it (PyJWT, HS256 only) proves authenticity and yields the event. Its
Content-Type is not documented, so the body is read as a JWT whatever the header says.
Dialpad documents no ``jti``, ``iat`` or ``exp``: the signed ``event_timestamp`` must lie
within ``TOLERANCE_S`` (1 h) of ``now`` (an ``iat``, if sent, is used instead, and an ``exp``
is honoured), so a captured JWT stops working after an hour; within it a replay repeats an
``event_id`` (call, state, event time) that the writer drops as a duplicate.
A webhook without a secret sends plain JSON: that is unauthenticated and refused.

Events: one per call state (``calling``, ``ringing``, ``connected``, ``hold``,
``voicemail``, ``missed``, ``hangup``, ``recording``, ``transcription``…); times are Unix
milliseconds, durations milliseconds. The call key is ``call_id`` (``master_call_id`` ties
legs together but each leg is its own call here).
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Final

import jwt
import msgspec
from jwt.warnings import InsecureKeyLengthWarning

from handlers.base import (
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Verification,
    WebhookRequest,
)
from handlers.build import CallFacts, direction_of, unanswered
from handlers.common import duration_ms, epoch_ms, ident, maybe_time
from handlers.limits import jwt_too_deep
from handlers.phone import phone
from handlers.provider import ModuleProvider, parser

NAME: Final = "dialpad"
#: how far the signed event time (or an ``iat``) may be from the ingress clock: Dialpad
#: retries a failed delivery three times, so the window is wider than a signature's.
TOLERANCE_S: Final = 3600

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
    if jwt_too_deep(token):
        raise InvalidSignature("JWT nested too deeply")
    try:
        claims = _jwt_decode(token, secret)
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidSignature(f"invalid JWT: {str(exc)[:200]}") from exc
    exp = _number(claims.get("exp"))
    if exp is not None and not now <= exp:
        raise InvalidSignature("JWT expired")
    # Dialpad documents no iat/exp: the signed event time bounds how long a captured
    # JWT can be replayed (an iat, if ever sent, is held to the same window).
    fired = _number(claims.get("iat"))
    if fired is None:
        stamp = _number(claims.get("event_timestamp"))
        fired = stamp / 1000 if stamp is not None and stamp > 10_000_000_000 else stamp
    if fired is None:
        raise InvalidSignature("JWT carries neither iat nor event_timestamp")
    if not abs(now - fired) <= TOLERANCE_S:
        raise InvalidSignature(f"event time outside the {TOLERANCE_S} s window")
    return Verification()


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return math.inf
    return number if math.isfinite(number) else math.inf


def decode(body: bytes) -> DialpadEvent:
    """The event inside an (already verified) JWT body."""
    token = _token(body, InvalidEvent)
    if jwt_too_deep(token):
        raise InvalidEvent("JWT nested too deeply")
    try:
        claims = _jwt_decode(token, None)
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidEvent(f"malformed JWT: {str(exc)[:200]}") from exc
    try:
        return msgspec.convert(claims, DialpadEvent)
    except (msgspec.ValidationError, RecursionError) as exc:
        raise InvalidEvent(f"malformed payload: {str(exc)[:200]}") from exc


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


def facts(event: DialpadEvent, options: NormalizeOptions) -> CallFacts | None:
    call_id = ident(event.call_id)
    if call_id is None:
        raise InvalidEvent("call_id must be a non-empty id")
    state = event.state.strip().lower()
    if state not in STATES:
        return None
    occurred = maybe_time(event.event_timestamp) or maybe_time(event.date_started)
    if occurred is None:
        raise InvalidEvent("event without event_timestamp")
    direction = direction_of(event.direction)
    external = phone(event.external_number, options.default_region)
    internal = phone(event.internal_number, options.default_region)
    from_number, to_number = (
        (external, internal) if direction == "INBOUND" else (internal, external)
    )

    status = STATES[state]
    disposition: str | None = None
    duration: int | None = None
    recording: str | None = None
    body: str | None = None
    if state == "hangup":
        if event.date_connected:
            status, disposition = "COMPLETED", "connected"
        else:
            status, disposition = unanswered(direction), "no answer"
        duration = duration_ms(event.duration)
    elif state == "missed":
        status, disposition = unanswered(direction), "no answer"
    elif state in ("voicemail", "voicemail_uploaded"):
        status, disposition = unanswered(direction), "left voicemail"
        recording = (event.voicemail_link or "").strip() or None
    elif state == "recording":
        recording = _recording(event)
    elif state == "transcription":
        text = (event.transcription_text or "").strip()
        body = f"Transcription:\n{text}" if text else None

    agent = event.target
    return CallFacts(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:{state}:{epoch_ms(occurred)}",
        type=state,
        occurred=occurred,
        started=maybe_time(event.date_started) or occurred,
        direction=direction,
        status=status,
        disposition=disposition,
        duration_ms=duration,
        from_number=from_number,
        to_number=to_number,
        recording_url=recording,
        body=body,
        agents=[agent.email, ident(agent.id)] if agent else [],
        agent_name=agent.name if agent else None,
    )


def extract(request: WebhookRequest, options: NormalizeOptions) -> list[CallFacts]:
    found = facts(decode(request.body), options)
    return [found] if found else []


parse = parser(extract)
# the JWT body's Content-Type is undocumented: accept any
PROVIDER = ModuleProvider(NAME, verify, extract, None)
