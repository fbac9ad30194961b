"""Signed provider requests built from the documented-example fixtures, for unit and end-to-end
tests alike.

Each provider's request is signed the provider's own way: Twilio with the official
``twilio`` package's ``RequestValidator``, Vonage and Dialpad JWTs with PyJWT, Zoom's
``v0`` HMAC, Aircall's body token, RingCentral's ``Verification-Token`` header.

    signed = sign_fixture("twilio", "status_completed", secret, "https://host/webhooks/twilio", now)
    httpx.post(signed.url, headers=signed.headers, content=signed.body)

``signed_request`` is the same without the URL, for fixtures whose URL is the one given
(every fixture but the Twilio JSON variant and Vonage's ``record``, see ``Fixture.query``).
``FIXTURES`` lists every fixture with the call key its events carry and a ``now`` at which
its signature is fresh (Twilio signs the event's own ``Timestamp``: the ingress clock must be
within 15 minutes of it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl

import orjson
from twilio.request_validator import RequestValidator

from handlers import WebhookRequest, dialpad, vonage, zoom
from handlers.common import parse_time

FIXTURES_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "providers"

#: a fixed instant used where a fixture carries no time of its own.
DEFAULT_NOW = 1772550245.0  # 2026-03-03T15:04:05Z


@dataclass(frozen=True)
class Fixture:
    """One documented-example payload and what it must become."""

    provider: str
    name: str
    #: ``provider:call_id`` of the events it produces (None: no events).
    call_key: str | None
    #: a Unix time at which its signature is fresh.
    now: float = DEFAULT_NOW
    #: how many events it produces.
    events: int = 1
    #: a handshake answered without events (Zoom URL validation, RingCentral set-up).
    handshake: bool = False
    #: a query string the provider adds to the configured URL (appended by ``sign_fixture``).
    query: str = ""

    @property
    def id(self) -> str:
        return f"{self.provider}/{self.name}"


def _t(iso: str) -> float:
    return parse_time(iso).timestamp()


def _dp(name: str) -> float:
    """A fresh ``now`` for a Dialpad fixture: its signed ``event_timestamp`` (Dialpad's
    replay window, 1 h, is measured from it)."""
    payload = orjson.loads((FIXTURES_DIR / "dialpad" / f"{name}.json").read_bytes())
    return float(payload["event_timestamp"]) / 1000


TW_OUT = "twilio:CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b"
AC_IN = "aircall:812345678"
ZM_OUT = "zoom:7236018743962338571"
ZM_IN = "zoom:7236018812345678901"
ZM_MISSED = "zoom:7236018899999999999"
RC_IN = "ringcentral:s-a0d7b8c1e2f34a5b9c8d7e6f5a4b3c2d"
RC_MISSED = "ringcentral:s-b1e8c9d2f3a45b6c0d9e8f7a6b5c4d3e"
VN_OUT = "vonage:63f61863-4a51-4f6b-86e1-46edebcf9356"
DP_IN = "dialpad:6243961938313216"
DP_MISSED = "dialpad:4871190391152640"

FIXTURES: tuple[Fixture, ...] = (
    # Twilio: an outbound-api call's status callbacks, its recording, two terminal others.
    Fixture("twilio", "status_initiated", TW_OUT, _t("2026-03-03T15:04:05Z")),
    Fixture("twilio", "status_ringing", TW_OUT, _t("2026-03-03T15:04:06Z")),
    Fixture("twilio", "status_answered", TW_OUT, _t("2026-03-03T15:04:12Z")),
    Fixture("twilio", "status_completed", TW_OUT, _t("2026-03-03T15:06:16Z")),
    Fixture("twilio", "recording_completed", TW_OUT, _t("2026-03-03T15:06:20Z")),
    Fixture(
        "twilio",
        "status_busy",
        "twilio:CA1234567890abcdef1234567890abcdef",
        _t("2026-03-03T16:00:09Z"),
    ),
    Fixture(
        "twilio",
        "status_inbound_no_answer",
        "twilio:CA9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a",
        _t("2026-03-03T17:00:30Z"),
    ),
    Fixture(
        "twilio", "status_completed_json", TW_OUT, _t("2026-03-03T15:06:16Z"), query="bodySHA256"
    ),
    # Aircall: one inbound call through its lifecycle, a voicemail, an unanswered outbound.
    Fixture("aircall", "call_created", AC_IN),
    Fixture("aircall", "call_ringing_on_agent", AC_IN),
    Fixture("aircall", "call_answered", AC_IN),
    Fixture("aircall", "call_hungup", AC_IN),
    Fixture("aircall", "call_ended", AC_IN),
    Fixture("aircall", "call_commented", AC_IN),
    Fixture("aircall", "call_tagged", AC_IN),
    Fixture("aircall", "call_voicemail_left", "aircall:812345999"),
    Fixture("aircall", "call_outbound_hungup_unanswered", "aircall:812346100"),
    Fixture("aircall", "contact_created", None, events=0),
    # Zoom Phone: outbound (caller_*) and inbound (callee_*) calls, logs, recording, voicemail.
    Fixture("zoom", "caller_ringing", ZM_OUT),
    Fixture("zoom", "caller_connected", ZM_OUT),
    Fixture("zoom", "caller_ended", ZM_OUT),
    Fixture("zoom", "callee_ringing", ZM_IN),
    Fixture("zoom", "callee_answered", ZM_IN),
    Fixture("zoom", "callee_ended", ZM_IN),
    Fixture("zoom", "callee_call_log_completed", ZM_IN),
    Fixture("zoom", "recording_completed", ZM_IN),
    Fixture("zoom", "callee_missed", ZM_MISSED),
    Fixture("zoom", "voicemail_received", ZM_MISSED),
    Fixture("zoom", "url_validation", None, events=0, handshake=True),
    Fixture("zoom", "sms_received", None, events=0),
    # RingCentral: an inbound session's party statuses, and a missed one with voicemail.
    Fixture("ringcentral", "setup", RC_IN),
    Fixture("ringcentral", "proceeding", RC_IN),
    Fixture("ringcentral", "answered", RC_IN),
    Fixture("ringcentral", "disconnected", RC_IN),
    Fixture("ringcentral", "voicemail", RC_MISSED),
    Fixture("ringcentral", "missed", RC_MISSED),
    Fixture("ringcentral", "validation", None, events=0, handshake=True),
    # Vonage: an outbound call's event webhooks and its recording, plus terminal others.
    Fixture("vonage", "started", VN_OUT),
    Fixture("vonage", "ringing", VN_OUT),
    Fixture("vonage", "answered", VN_OUT),
    Fixture("vonage", "completed", VN_OUT),
    Fixture("vonage", "record", VN_OUT, query="uuid=63f61863-4a51-4f6b-86e1-46edebcf9356"),
    Fixture("vonage", "busy", "vonage:aaaaaaaa-bbbb-cccc-dddd-0123456789ab"),
    Fixture("vonage", "unanswered_inbound", "vonage:bbbbbbbb-cccc-dddd-eeee-0123456789ab"),
    Fixture("vonage", "transfer", None, events=0),
    # Dialpad: an inbound call's states, a missed call with voicemail, an unanswered outbound.
    Fixture("dialpad", "calling", DP_IN, _dp("calling")),
    Fixture("dialpad", "ringing", DP_IN, _dp("ringing")),
    Fixture("dialpad", "connected", DP_IN, _dp("connected")),
    Fixture("dialpad", "hangup", DP_IN, _dp("hangup")),
    Fixture("dialpad", "recording", DP_IN, _dp("recording")),
    Fixture("dialpad", "transcription", DP_IN, _dp("transcription")),
    Fixture("dialpad", "missed", DP_MISSED, _dp("missed")),
    Fixture("dialpad", "voicemail", DP_MISSED, _dp("voicemail")),
    Fixture(
        "dialpad",
        "outbound_hangup_unanswered",
        "dialpad:5871190391150000",
        _dp("outbound_hangup_unanswered"),
    ),
    Fixture("dialpad", "queued", None, _dp("queued"), events=0),
)
BY_ID: dict[str, Fixture] = {f.id: f for f in FIXTURES}

#: RingCentral's subscription set-up token used by the ``validation`` fixture.
RC_VALIDATION_TOKEN = "1c6d2ea2-8b44-4bd9-8a5c-2f0f0f1b8c2d"


@dataclass(frozen=True)
class Signed:
    """A request ready to post: the URL to post to, lower-case headers, the raw body."""

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def webhook_request(self) -> WebhookRequest:
        return WebhookRequest(method="POST", url=self.url, headers=self.headers, body=self.body)


def fixture(provider: str, name: str) -> Fixture:
    return BY_ID[f"{provider}/{name}"]


def load(provider: str, name: str) -> bytes:
    """The raw fixture file (``.txt`` form-encoded for Twilio, else ``.json``)."""
    for ext in (".txt", ".json"):
        path = FIXTURES_DIR / provider / f"{name}{ext}"
        if path.exists():
            return path.read_bytes()
    if (provider, name) == ("ringcentral", "validation"):
        return b""
    raise FileNotFoundError(f"no fixture {provider}/{name}")


def _with_query(url: str, query: str) -> str:
    return url + ("&" if "?" in url else "?") + query if query else url


def sign_fixture(
    provider: str,
    name: str,
    secret: str,
    url: str,
    now: float,
    *,
    jti: str | None = None,
) -> Signed:
    """The fixture as its provider would send it to ``url`` at ``now``, signed with ``secret``."""
    raw = load(provider, name)
    fx = BY_ID.get(f"{provider}/{name}")
    query = fx.query if fx else ""
    if provider == "twilio":
        validator = RequestValidator(secret)
        if name.endswith("_json"):
            body = orjson.dumps(orjson.loads(raw))
            target = _with_query(url, "bodySHA256=" + hashlib.sha256(body).hexdigest())
            signature = validator.compute_signature(target, {})
            return Signed(
                target,
                {"content-type": "application/json", "x-twilio-signature": signature},
                body,
            )
        params = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        target = _with_query(url, query)
        return Signed(
            target,
            {
                "content-type": "application/x-www-form-urlencoded",
                "x-twilio-signature": validator.compute_signature(target, params),
            },
            raw.strip(),
        )
    if provider == "vonage" and query.startswith("uuid="):
        # the record action's eventUrl as vonage.record_url builds it (uuid_sig binds the
        # call uuid to the recording's conversation)
        conversation = orjson.loads(raw)["conversation_uuid"]
        target = vonage.record_url(url, secret, query.removeprefix("uuid="), conversation)
    else:
        target = _with_query(url, query)
    if provider == "aircall":
        payload = orjson.loads(raw)
        payload["token"] = secret
        return Signed(target, {"content-type": "application/json"}, orjson.dumps(payload))
    if provider == "zoom":
        body = orjson.dumps(orjson.loads(raw))
        timestamp = str(int(now))
        return Signed(
            target,
            {
                "content-type": "application/json; charset=utf-8",
                "x-zm-request-timestamp": timestamp,
                "x-zm-signature": zoom.sign(secret, timestamp, body),
            },
            body,
        )
    if provider == "ringcentral":
        if name == "validation":
            return Signed(target, {"validation-token": RC_VALIDATION_TOKEN}, b"")
        body = orjson.dumps(orjson.loads(raw))
        return Signed(
            target, {"content-type": "application/json", "verification-token": secret}, body
        )
    if provider == "vonage":
        body = orjson.dumps(orjson.loads(raw))
        token_id = jti or hashlib.sha256(f"{name}:{now}".encode() + body).hexdigest()[:32]
        token = vonage.sign(secret, body, int(now), token_id, application_id="aaaaaaaa-bbbb")
        return Signed(
            target,
            {"content-type": "application/json", "authorization": f"Bearer {token}"},
            body,
        )
    if provider == "dialpad":
        return Signed(
            target, {"content-type": "application/jwt"}, dialpad.sign(secret, orjson.loads(raw))
        )
    raise ValueError(f"unknown provider {provider!r}")


def signed_request(
    provider: str, fixture_name: str, secret: str, url: str, now: float
) -> tuple[dict[str, str], bytes]:
    """(headers, body) of the fixture signed for ``url`` at ``now``. Fixtures with a
    ``query`` change the URL: use ``sign_fixture`` for those (it returns the URL)."""
    signed = sign_fixture(provider, fixture_name, secret, url, now)
    if signed.url != url:
        raise ValueError(f"{provider}/{fixture_name} is posted to {signed.url}: use sign_fixture")
    return signed.headers, signed.body
