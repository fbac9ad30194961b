"""Vonage Voice API: the event webhook (call status events and ``record`` events).

Authenticity (signed webhooks): ``Authorization: Bearer <JWT>`` signed HS256 with the
account's signature secret, verified with PyJWT. Its claims ``payload_hash`` (hex SHA-256
of the raw body) must match the body and ``iat`` must lie within ``TOLERANCE_S`` (300 s) of
``now`` (checked here against the injected clock, not PyJWT's). The ``jti`` is returned as
``Verification.replay_id``: the ingress refuses a second request with the same ``jti``
within ``replay_ttl_s`` (the whole window an ``iat`` can be accepted in).

Events: ``status`` in ``STATUS`` (``completed`` carries ``start_time``, ``end_time`` and
``duration`` in seconds as a string); ``record`` events (``recording_url``) name no call
``uuid`` in Vonage's documented example, only ``conversation_uuid``: they are tied to the
call by a ``uuid`` field when present, else by a ``uuid`` query parameter of the webhook URL
(set the record action's ``eventUrl`` to ``…/webhooks/vonage?uuid=<call uuid>``), and are
dropped (no events) when neither exists. Machine-detection (``human``/``machine``),
``transfer``, ``input`` and other events produce nothing. Numbers arrive in E.164 without
the ``+``.
"""

from __future__ import annotations

import hashlib
import warnings
from datetime import datetime
from typing import Any, Final
from urllib.parse import parse_qs, urlparse

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
    consteq,
    decode_json,
    disposition_guid,
    duration_ms,
    e164,
    epoch_ms,
    iso_ms,
    maybe_time,
    minus_ms,
    parse_time,
    phone,
    put,
)
from service.model import CallEvent

NAME: Final = "vonage"
TOLERANCE_S: Final = 300

#: call ``status`` → (hs_call_status, disposition label); ``unanswered`` inbound is MISSED.
STATUS: Final[dict[str, tuple[str, str | None]]] = {
    "started": ("CONNECTING", None),
    "ringing": ("RINGING", None),
    "answered": ("IN_PROGRESS", None),
    "completed": ("COMPLETED", "connected"),
    "busy": ("BUSY", "busy"),
    "cancelled": ("CANCELED", None),
    "unanswered": ("NO_ANSWER", "no answer"),
    "timeout": ("NO_ANSWER", "no answer"),
    "rejected": ("FAILED", None),
    "failed": ("FAILED", None),
}


class VonageEvent(msgspec.Struct, forbid_unknown_fields=False):
    timestamp: str | None = None
    status: str | None = None
    uuid: str | None = None
    call_uuid: str | None = None
    conversation_uuid: str | None = None
    direction: str | None = None
    from_: str | None = msgspec.field(default=None, name="from")
    to: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    duration: str | int | None = None
    recording_url: str | None = None
    recording_uuid: str | None = None


_event = msgspec.json.Decoder(VonageEvent)


# --- authenticity -------------------------------------------------------------------------


def payload_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign(secret: str, body: bytes, iat: int, jti: str, **claims: Any) -> str:
    """A signed-webhook JWT as Vonage sends it (tests, local senders)."""
    payload = {"iat": iat, "jti": jti, "iss": "Vonage", "payload_hash": payload_hash(body)}
    payload.update(claims)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(payload, secret, algorithm="HS256")


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidSignature("missing Authorization: Bearer <JWT>")
    try:
        # The signature secret is the provider's: its length is not ours to choose, so
        # PyJWT's short-key warning would only repeat on every request.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", InsecureKeyLengthWarning)
            claims = jwt.decode(
                token.strip(),
                secret,
                algorithms=["HS256"],
                options={
                    "verify_iat": False,  # checked below against the injected clock
                    "verify_exp": False,
                    "verify_nbf": False,
                    "require": ["iat", "jti", "payload_hash"],
                },
            )
    except jwt.PyJWTError as exc:
        raise InvalidSignature(f"invalid JWT: {exc}") from exc
    iat, jti, digest = claims.get("iat"), claims.get("jti"), claims.get("payload_hash")
    if not isinstance(iat, int | float) or isinstance(iat, bool):
        raise InvalidSignature("iat is not a number")
    if abs(now - iat) > TOLERANCE_S:
        raise InvalidSignature(f"iat outside the {TOLERANCE_S} s window")
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool) and now > exp:
        raise InvalidSignature("JWT expired")
    if not isinstance(jti, str) or not jti.strip():
        raise InvalidSignature("jti is not a string")
    if not isinstance(digest, str) or not consteq(payload_hash(request.body), digest.lower()):
        raise InvalidSignature("payload_hash does not match the body")
    return Verification(replay_id=jti, replay_ttl_s=2.0 * TOLERANCE_S)


# --- normalization ------------------------------------------------------------------------


def number(value: str | None, region: str) -> str | None:
    """Vonage numbers are E.164 without ``+``; anything else goes through ``phone``."""
    if value and value.isdigit() and len(value) >= 8:
        return e164("+" + value, region)
    return phone(value, region)


def _query_uuid(url: str) -> str | None:
    try:
        values = parse_qs(urlparse(url).query).get("uuid")
    except ValueError:
        return None
    return values[0].strip() if values and values[0].strip() else None


def status_event(event: VonageEvent, call_id: str, options: NormalizeOptions) -> CallEvent:
    status_name = (event.status or "").lower()
    status, disposition = STATUS[status_name]
    direction = {"inbound": "INBOUND", "outbound": "OUTBOUND"}.get((event.direction or "").lower())
    if status_name == "unanswered" and direction == "INBOUND":
        status = "MISSED"
    if not event.timestamp:
        raise InvalidEvent("event without timestamp")
    occurred = parse_time(event.timestamp)
    duration = duration_ms(event.duration, 1000) if status_name == "completed" else None
    start = maybe_time(event.start_time)
    if start is None:
        end = maybe_time(event.end_time) or occurred
        start = minus_ms(end, duration)

    from_number = number(event.from_, options.default_region)
    to_number = number(event.to, options.default_region)
    counterpart = from_number if direction == "INBOUND" else to_number
    props = base_properties(NAME, call_id, options)
    props["hs_timestamp"] = iso_ms(start)
    put(props, "hs_call_direction", direction)
    props["hs_call_status"] = status
    put(props, "hs_call_duration", duration)
    put(props, "hs_call_from_number", from_number)
    put(props, "hs_call_to_number", to_number)
    put(props, "hs_call_disposition", disposition_guid(disposition, options))
    props["hs_call_title"] = call_title(direction, counterpart)
    return CallEvent(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:{status_name}",
        type=f"status.{status_name}",
        occurred_at=iso_ms(occurred),
        sequence=epoch_ms(occurred),
        properties=props,
        counterpart=counterpart,
    )


def record_event(event: VonageEvent, call_id: str, options: NormalizeOptions) -> CallEvent:
    url = (event.recording_url or "").strip()
    stamp = event.start_time or event.timestamp
    if not stamp:
        raise InvalidEvent("record event without start_time or timestamp")
    started: datetime = parse_time(stamp)
    occurred = maybe_time(event.timestamp) or started
    props = base_properties(NAME, call_id, options)
    props["hs_timestamp"] = iso_ms(started)
    props["hs_call_recording_url"] = url
    recording = (event.recording_uuid or "").strip() or url
    return CallEvent(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:record:{recording}",
        type="record",
        occurred_at=iso_ms(occurred),
        sequence=epoch_ms(occurred),
        properties=props,
    )


def parse(request: WebhookRequest, options: NormalizeOptions) -> Outcome:
    event = decode_json(request.body, _event)
    call_id = (event.uuid or event.call_uuid or "").strip()
    if event.recording_url and event.recording_url.strip():
        call_id = call_id or (_query_uuid(request.url) or "")
        if not call_id:
            return Outcome(events=[])  # cannot be tied to a call (see module doc)
        return Outcome(events=[record_event(event, call_id, options)])
    if (event.status or "").lower() not in STATUS:
        return Outcome(events=[])
    if not call_id:
        raise InvalidEvent(f"{event.status} event without uuid")
    return Outcome(events=[status_event(event, call_id, options)])


PROVIDER = ModuleProvider(NAME, verify, parse)
