"""Twilio Programmable Voice: call status callbacks and recording status callbacks.

Authenticity: ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, URL + every POST
parameter name and value, sorted by name)), exactly as ``twilio.request_validator`` computes
it, tried on the public URL with and without its default port as that validator does. JSON
bodies: the URL carries ``bodySHA256=<hex sha256 of the raw body>`` and the URL alone is
signed. ``X-Twilio-Webhooks-Signature-Settings: key=…,algorithm=HMAC_SHA256`` (a Webhook
Setting with a SharedKey) switches the hash to HMAC-SHA256: the configured secret is then
that SharedKey's secret. A signed ``Timestamp`` (recording callbacks: ``RecordingStartTime``
+ ``RecordingDuration``) older or newer than ``TOLERANCE_S`` (15 min) is refused: Twilio signs no nonce, so the window bounds how long a captured request stays
replayable, and it is wide because Twilio's own callback queue can lag by minutes (a replay
inside it only repeats an event the writer de-duplicates by ``event_id``).

Events: status callbacks (``CallStatus`` with ``SequenceNumber`` and ``Timestamp``, sent for
``StatusCallbackEvent`` initiated/ringing/answered/completed) and recording status callbacks
(``RecordingSid``, ``RecordingUrl``, ``RecordingStatus``). Form-encoded; a JSON object of the
same parameters is accepted too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Final
from urllib.parse import parse_qs, parse_qsl, urlparse

import orjson

from handlers.base import (
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Verification,
    WebhookRequest,
)
from handlers.build import CallFacts, direction_of
from handlers.common import (
    consteq,
    duration_ms,
    epoch_ms,
    minus_ms,
    rfc2822_time,
    shown,
)
from handlers.limits import MAX_FORM_PARAMS, too_deep
from handlers.phone import phone
from handlers.provider import ModuleProvider, parser

NAME: Final = "twilio"
TOLERANCE_S: Final = 900
#: Twilio's callbacks are a few KiB of form parameters: a larger body is refused (413)
#: before it is read whole, and a form with more than ``MAX_FORM_PARAMS`` parameters
#: before it is parsed (parsing a 1 MiB form costs half a second of event loop).
MAX_BODY_BYTES: Final = 64 * 1024

_HASHES: Final = {"HMAC_SHA1": hashlib.sha1, "HMAC_SHA256": hashlib.sha256}

#: Twilio ``CallStatus`` → HubSpot ``hs_call_status``.
STATUS: Final[dict[str, str]] = {
    "queued": "QUEUED",
    "initiated": "CONNECTING",
    "ringing": "RINGING",
    "in-progress": "IN_PROGRESS",
    "answered": "IN_PROGRESS",
    "completed": "COMPLETED",
    "busy": "BUSY",
    "no-answer": "NO_ANSWER",
    "canceled": "CANCELED",
    "failed": "FAILED",
}
#: terminal ``CallStatus`` → disposition label (``completed`` depends on ``AnsweredBy``).
DISPOSITION: Final[dict[str, str]] = {"busy": "busy", "no-answer": "no answer"}

Params = Mapping[str, list[str]]


# --- authenticity -------------------------------------------------------------------------


def signature_algorithm(settings_header: str | None) -> str:
    """The algorithm named by ``X-Twilio-Webhooks-Signature-Settings`` (absent: HMAC_SHA1)."""
    for part in (settings_header or "").split(","):
        name, sep, value = part.partition("=")
        if sep and name.strip() == "algorithm" and value.strip():
            return value.strip().upper()
    return "HMAC_SHA1"


def compute_signature(secret: str, url: str, params: Params, algorithm: str = "HMAC_SHA1") -> str:
    """Twilio's signature of ``url`` and the POST ``params`` (``RequestValidator``'s rule:
    names sorted, each name's distinct values sorted, concatenated after the URL)."""
    hash_function = _HASHES.get(algorithm.upper())
    if hash_function is None:
        raise InvalidSignature(f"unsupported signature algorithm {algorithm!r}")
    payload = url
    for name in sorted(params):
        for value in sorted(set(params[name])):
            payload += name + value
    mac = hmac.new(secret.encode(), payload.encode(), hash_function)
    return base64.b64encode(mac.digest()).decode()


def sign(
    secret: str, url: str, body: bytes, content_type: str, algorithm: str = "HMAC_SHA1"
) -> str:
    """The ``X-Twilio-Signature`` Twilio would send for this request (tests, local senders).
    For JSON, ``url`` must already carry ``bodySHA256`` (see ``json_url``)."""
    params: Params = {} if _is_json(content_type) else form_params(body, InvalidEvent)
    return compute_signature(secret, url, params, algorithm)


def json_url(url: str, body: bytes) -> str:
    """``url`` with the ``bodySHA256`` query parameter Twilio adds for JSON bodies."""
    digest = hashlib.sha256(body).hexdigest()
    return url + ("&" if "?" in url else "?") + "bodySHA256=" + digest


def form_params(body: bytes, error: type[Exception] = InvalidEvent) -> dict[str, list[str]]:
    """The form-encoded parameters of ``body`` (every value of a repeated name kept)."""
    if body.count(b"&") + body.count(b";") >= MAX_FORM_PARAMS:
        raise error(f"more than {MAX_FORM_PARAMS} form parameters")
    try:
        pairs = parse_qsl(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, errors="strict"
        )
    except (UnicodeDecodeError, ValueError) as exc:
        raise error(f"malformed form body: {str(exc)[:200]}") from exc
    params: dict[str, list[str]] = {}
    for name, value in pairs:
        params.setdefault(name, []).append(value)
    return params


def _url_variants(url: str) -> tuple[str, str]:
    """The URL without and with its default port: Twilio is inconsistent about which."""
    try:
        parsed = urlparse(url)
        port = parsed.port
    except ValueError as exc:
        raise InvalidSignature(f"unusable URL: {exc}") from exc
    if port:
        return parsed._replace(netloc=parsed.netloc.rsplit(":", 1)[0]).geturl(), parsed.geturl()
    default = 443 if parsed.scheme == "https" else 80
    return parsed.geturl(), parsed._replace(netloc=f"{parsed.netloc}:{default}").geturl()


def verify(request: WebhookRequest, secret: str, now: float) -> Verification:
    signature = request.headers.get("x-twilio-signature")
    if not signature:
        raise InvalidSignature("missing X-Twilio-Signature")
    algorithm = signature_algorithm(request.headers.get("x-twilio-webhooks-signature-settings"))
    try:
        query = parse_qs(urlparse(request.url).query)
    except ValueError as exc:
        raise InvalidSignature(f"unusable URL: {exc}") from exc
    params: Params
    json_body = "bodySHA256" in query
    if json_body:
        if not consteq(hashlib.sha256(request.body).hexdigest(), query["bodySHA256"][0]):
            raise InvalidSignature("bodySHA256 does not match the body")
        params = {}
    else:
        params = form_params(request.body, InvalidSignature)
    if not any(
        consteq(compute_signature(secret, url, params, algorithm), signature.strip())
        for url in _url_variants(request.url)
    ):
        raise InvalidSignature("signature mismatch")
    signed: Params = params
    if json_body:  # the (hash-verified) JSON body carries the signed parameters
        try:
            signed = decode(replace(request, headers={"content-type": "application/json"}))
        except InvalidEvent:
            signed = {}
    fired = signed_time(signed)
    if fired is not None and not abs(now - fired) <= TOLERANCE_S:
        raise InvalidSignature(f"callback time outside the {TOLERANCE_S} s window")
    return Verification()


def signed_time(params: Params) -> float | None:
    """When Twilio sent the callback, from signed parameters: ``Timestamp`` (status
    callbacks), else ``RecordingStartTime`` + ``RecordingDuration`` (recording callbacks
    carry no ``Timestamp``; they are sent when the recording ends). ``None`` when neither
    is present: such a callback produces no event (``parse`` refuses it), so a replay of it
    changes nothing."""
    try:
        timestamp = _first(params, "Timestamp")
        if timestamp is not None:
            return rfc2822_time(timestamp).timestamp()
        started = _first(params, "RecordingStartTime")
        if started is None:
            return None
        seconds = (_first(params, "RecordingDuration") or "0").strip()
        length = int(seconds) if seconds.isascii() and seconds.isdigit() and len(seconds) < 9 else 0
        return rfc2822_time(started).timestamp() + length
    except InvalidEvent as exc:
        raise InvalidSignature("unreadable Timestamp or RecordingStartTime") from exc


# --- normalization ------------------------------------------------------------------------


def _is_json(content_type: str) -> bool:
    return content_type == "application/json"


def _first(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def decode(request: WebhookRequest) -> Params:
    """The callback's parameters, from a form body or a flat JSON object."""
    if not _is_json(request.content_type):
        return form_params(request.body)
    if too_deep(request.body):
        raise InvalidEvent("JSON nested too deeply")
    try:
        obj = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"malformed JSON: {str(exc)[:200]}") from exc
    if not isinstance(obj, dict):
        raise InvalidEvent("the JSON body must be an object")
    params: dict[str, list[str]] = {}
    for name, value in obj.items():
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            params[name] = [str(value)]
    return params


def _client(value: str | None) -> str | None:
    """The agent identity of a ``client:<identity>`` endpoint."""
    if value and value.startswith("client:"):
        return value.removeprefix("client:") or None
    return None


def status_facts(params: Params, call_sid: str, options: NormalizeOptions) -> CallFacts:
    call_status = (_first(params, "CallStatus") or "").strip().lower()
    status = STATUS.get(call_status)
    if status is None:
        raise InvalidEvent(f"unknown CallStatus {shown(call_status)}")
    timestamp = _first(params, "Timestamp")
    if not timestamp:
        raise InvalidEvent("status callback without Timestamp")
    fired = rfc2822_time(timestamp)
    sequence_text = _first(params, "SequenceNumber")
    if sequence_text is not None and not (
        sequence_text.isascii() and sequence_text.strip().isdigit() and len(sequence_text) < 19
    ):
        raise InvalidEvent(f"invalid SequenceNumber {shown(sequence_text)}")
    sequence = int(sequence_text) if sequence_text is not None else epoch_ms(fired)
    duration = (
        duration_ms(_first(params, "CallDuration"), 1000) if call_status == "completed" else None
    )
    direction = direction_of(_first(params, "Direction"))
    raw_from, raw_to = _first(params, "From"), _first(params, "To")
    agent = _client(raw_to) if direction == "INBOUND" else _client(raw_from)
    disposition = DISPOSITION.get(call_status)
    if call_status == "completed":
        answered_by = (_first(params, "AnsweredBy") or "").lower()
        disposition = "left voicemail" if answered_by.startswith("machine") else "connected"
    return CallFacts(
        provider=NAME,
        call_id=call_sid,
        event_id=f"{call_sid}:{sequence_text if sequence_text is not None else call_status}",
        type=f"status.{call_status}",
        occurred=fired,
        started=minus_ms(fired, duration),
        sequence=sequence,
        direction=direction,
        status=status,
        disposition=disposition,
        duration_ms=duration,
        from_number=phone(raw_from, options.default_region),
        to_number=phone(raw_to, options.default_region),
        agents=[agent],
        agent_name=agent,
    )


def recording_facts(params: Params, call_sid: str, recording_sid: str) -> CallFacts | None:
    recording_status = (_first(params, "RecordingStatus") or "completed").strip().lower()
    url = (_first(params, "RecordingUrl") or "").strip()
    if recording_status != "completed" or not url:
        return None  # in-progress / absent / failed recordings carry nothing to keep
    started_text = _first(params, "RecordingStartTime")
    if not started_text:
        raise InvalidEvent("recording callback without RecordingStartTime")
    started: datetime = rfc2822_time(started_text)
    return CallFacts(
        provider=NAME,
        call_id=call_sid,
        event_id=f"{call_sid}:{recording_sid}:{recording_status}",
        type=f"recording.{recording_status}",
        occurred=started,
        recording_url=url if url.endswith((".mp3", ".wav")) else url + ".mp3",
        titled=False,
    )


def extract(request: WebhookRequest, options: NormalizeOptions) -> list[CallFacts]:
    params = decode(request)
    call_sid = (_first(params, "CallSid") or "").strip()
    if not call_sid:
        raise InvalidEvent("missing CallSid")
    recording_sid = (_first(params, "RecordingSid") or "").strip()
    if recording_sid:
        found = recording_facts(params, call_sid, recording_sid)
        return [found] if found else []
    if _first(params, "CallStatus"):
        return [status_facts(params, call_sid, options)]
    return []


parse = parser(extract)
PROVIDER = ModuleProvider(
    NAME,
    verify,
    extract,
    frozenset({"application/x-www-form-urlencoded", "application/json"}),
    max_body_bytes=MAX_BODY_BYTES,
    needs_public_url=True,
)
