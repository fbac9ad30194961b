"""Vonage Voice API: the event webhook (call status events and ``record`` events).

Authenticity (signed webhooks): ``Authorization: Bearer <JWT>`` signed HS256 with the
account's signature secret, verified with PyJWT. Its claims ``payload_hash`` (hex SHA-256
of the raw body) must match the body and ``iat`` must lie within ``TOLERANCE_S`` (300 s) of
``now`` (checked here against the injected clock, not PyJWT's). The ``jti`` is returned as
``Verification.replay_id``: the ingress refuses a second request with the same ``jti``
within ``replay_ttl_s`` (the whole window an ``iat`` can be accepted in), remembering a
``jti`` only once Kafka acknowledged its event (a retry after a 503 is not a replay).

Events: ``status`` in ``STATUS`` (``completed`` carries ``start_time``, ``end_time`` and
``duration`` in seconds as a string); ``record`` events (``recording_url``) name no call
``uuid`` in Vonage's documented example, only ``conversation_uuid``: they are tied to the
call by a ``uuid`` field when present, else by a ``uuid`` query parameter of the webhook URL
that carries ``uuid_sig``, an HMAC binding it to the body's ``conversation_uuid`` (build the
record action's ``eventUrl`` with ``record_url``: the JWT does not sign the URL, so an
unsigned ``?uuid=`` is refused 401 and can never retarget a recording), and are dropped (no
events) when neither exists. Machine-detection (``human``/``machine``),
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
    NormalizeOptions,
    Verification,
    WebhookRequest,
)
from handlers.build import CallFacts, direction_of, unanswered
from handlers.common import (
    consteq,
    decode_json,
    duration_ms,
    hmac_sha256_hex,
    maybe_time,
    minus_ms,
    parse_time,
    shown,
)
from handlers.limits import jwt_too_deep
from handlers.phone import e164, phone
from handlers.provider import ModuleProvider, parser

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
    if jwt_too_deep(token.strip()):
        raise InvalidSignature("JWT nested too deeply")
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
    except (jwt.PyJWTError, ValueError, TypeError, RecursionError) as exc:
        raise InvalidSignature(f"invalid JWT: {str(exc)[:200]}") from exc
    iat, jti, digest = claims.get("iat"), claims.get("jti"), claims.get("payload_hash")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or not -1e12 < iat < 1e12:
        raise InvalidSignature("iat is not a Unix time")
    if abs(now - iat) > TOLERANCE_S:
        raise InvalidSignature(f"iat outside the {TOLERANCE_S} s window")
    exp = claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool) and not now <= exp:
        raise InvalidSignature("JWT expired")
    if not isinstance(jti, str) or not jti.strip():
        raise InvalidSignature("jti is not a string")
    if not isinstance(digest, str) or not consteq(payload_hash(request.body), digest.lower()):
        raise InvalidSignature("payload_hash does not match the body")
    check_query_uuid(request.url, request.body, secret)
    return Verification(replay_id=jti[:256], replay_ttl_s=2.0 * TOLERANCE_S)


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


def status_facts(event: VonageEvent, call_id: str, options: NormalizeOptions) -> CallFacts:
    status_name = (event.status or "").lower()
    status, disposition = STATUS[status_name]
    direction = direction_of(event.direction)
    if status_name == "unanswered":
        status = unanswered(direction)
    if not event.timestamp:
        raise InvalidEvent("event without timestamp")
    occurred = parse_time(event.timestamp)
    duration = duration_ms(event.duration, 1000) if status_name == "completed" else None
    start = maybe_time(event.start_time)
    if start is None:
        end = maybe_time(event.end_time) or occurred
        start = minus_ms(end, duration)
    return CallFacts(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:{status_name}",
        type=f"status.{status_name}",
        occurred=occurred,
        started=start,
        direction=direction,
        status=status,
        disposition=disposition,
        duration_ms=duration,
        from_number=number(event.from_, options.default_region),
        to_number=number(event.to, options.default_region),
    )


def record_facts(event: VonageEvent, call_id: str) -> CallFacts:
    url = (event.recording_url or "").strip()
    stamp = event.start_time or event.timestamp
    if not stamp:
        raise InvalidEvent("record event without start_time or timestamp")
    started: datetime = parse_time(stamp)
    occurred = maybe_time(event.timestamp) or started
    recording = (event.recording_uuid or "").strip() or url
    return CallFacts(
        provider=NAME,
        call_id=call_id,
        event_id=f"{call_id}:record:{recording}",
        type="record",
        occurred=occurred,
        started=started,
        recording_url=url,
        titled=False,
    )


def record_url(base_url: str, secret: str, call_uuid: str, conversation_uuid: str) -> str:
    """The ``eventUrl`` to give a ``record`` action of a call (in the NCCO your answer URL
    returns: it receives both ids): ``base_url?uuid=<call uuid>&uuid_sig=<HMAC>``. The HMAC
    binds the call uuid to the recording's ``conversation_uuid`` under the signature
    secret, because Vonage's JWT signs the body but not the URL."""
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}uuid={call_uuid}&uuid_sig={_uuid_sig(secret, call_uuid, conversation_uuid)}"


def _uuid_sig(secret: str, call_uuid: str, conversation_uuid: str) -> str:
    return hmac_sha256_hex(secret, f"vonage-record:{conversation_uuid}:{call_uuid}".encode())[:32]


def check_query_uuid(url: str, body: bytes, secret: str) -> None:
    """Refuse (``InvalidSignature``) a webhook URL whose ``?uuid=`` is not proved by its
    ``uuid_sig`` for this body's ``conversation_uuid`` (see ``record_url``): an unsigned
    or moved ``?uuid=`` can never tie a recording to another call."""
    uuid = _query_uuid(url)
    if uuid is None:
        return
    try:
        query = parse_qs(urlparse(url).query)
        conversation = _event.decode(body).conversation_uuid
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError, RecursionError) as exc:
        raise InvalidSignature("?uuid= given but the body names no conversation") from exc
    sig = (query.get("uuid_sig") or [""])[0].strip()
    if not conversation or not sig:
        raise InvalidSignature("?uuid= without uuid_sig (see vonage.record_url)")
    if not consteq(_uuid_sig(secret, uuid, conversation), sig):
        raise InvalidSignature("uuid_sig does not match ?uuid= and the conversation")


def extract(request: WebhookRequest, options: NormalizeOptions) -> list[CallFacts]:
    event = decode_json(request.body, _event)
    call_id = (event.uuid or event.call_uuid or "").strip()
    if event.recording_url and event.recording_url.strip():
        call_id = call_id or (_query_uuid(request.url) or "")
        if not call_id:
            return []  # cannot be tied to a call (see module doc)
        return [record_facts(event, call_id)]
    if (event.status or "").lower() not in STATUS:
        return []
    if not call_id:
        raise InvalidEvent(f"{shown(event.status)} event without uuid")
    return [status_facts(event, call_id, options)]


parse = parser(extract)
PROVIDER = ModuleProvider(NAME, verify, extract)
