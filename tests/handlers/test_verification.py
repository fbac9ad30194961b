"""Authenticity: every provider's request signed the provider's way is accepted; tampered,
wrongly signed, unsigned and stale ones are refused (the ingress answers 401)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import replace

import jwt
import orjson
import pytest
from twilio.request_validator import RequestValidator

from handlers import (
    REGISTRY,
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    WebhookRequest,
    dialpad,
    ringcentral,
    twilio,
    vonage,
    zoom,
)
from tests.handlers.signed import (
    FIXTURES,
    RC_VALIDATION_TOKEN,
    Fixture,
    fixture,
    sign_fixture,
)

SECRET = "s3cret-0123456789abcdef-0123456789"
OTHER = "another-secret-0123456789abcdef-01"
URL = "https://hooks.example.com/webhooks/{provider}"

SIGNED_FIXTURES = [f for f in FIXTURES if not (f.provider == "ringcentral" and f.handshake)]
#: providers whose signature covers the body (Aircall and RingCentral sign nothing).
BODY_SIGNED = {"twilio", "zoom", "vonage", "dialpad"}


def signed(fx: Fixture, secret: str = SECRET, now: float | None = None) -> WebhookRequest:
    when = fx.now if now is None else now
    return sign_fixture(
        fx.provider, fx.name, secret, URL.format(provider=fx.provider), when
    ).webhook_request()


def verify(request: WebhookRequest, provider: str, now: float, secret: str = SECRET) -> None:
    REGISTRY[provider].verify(request, secret, now)


def without(request: WebhookRequest, *names: str) -> WebhookRequest:
    return replace(request, headers={k: v for k, v in request.headers.items() if k not in names})


def tampered(body: bytes) -> bytes:
    """The body with one letter or digit near its middle changed (inside the payload, also
    for a JWT body, whose last characters may carry insignificant base64 bits)."""
    middle = len(body) // 2
    index = min((i for i, b in enumerate(body) if chr(b).isalnum()), key=lambda i: abs(i - middle))
    flipped = b"1" if body[index : index + 1] != b"1" else b"2"
    return body[:index] + flipped + body[index + 1 :]


# --- positive: signed the provider's way -----------------------------------------------------


@pytest.mark.parametrize("fx", SIGNED_FIXTURES, ids=lambda f: f.id)
def test_fixture_signed_the_providers_way_verifies(fx: Fixture) -> None:
    """A documented payload signed with the provider's own scheme is accepted."""
    request = signed(fx)
    assert REGISTRY[fx.provider].accepts(request.content_type)
    verify(request, fx.provider, fx.now)


@pytest.mark.parametrize("fx", SIGNED_FIXTURES, ids=lambda f: f.id)
def test_wrong_secret_is_refused(fx: Fixture) -> None:
    """A request signed with another secret is refused."""
    with pytest.raises(InvalidSignature):
        verify(signed(fx, secret=OTHER), fx.provider, fx.now)


@pytest.mark.parametrize(
    "fx", [f for f in SIGNED_FIXTURES if f.provider in BODY_SIGNED], ids=lambda f: f.id
)
def test_tampered_body_is_refused(fx: Fixture) -> None:
    """Changing one byte of a signed body breaks the signature."""
    request = signed(fx)
    with pytest.raises(InvalidSignature):
        verify(replace(request, body=tampered(request.body)), fx.provider, fx.now)


@pytest.mark.parametrize(
    ("provider", "name", "headers"),
    [
        ("twilio", "status_completed", ["x-twilio-signature"]),
        ("zoom", "callee_ended", ["x-zm-signature"]),
        ("zoom", "callee_ended", ["x-zm-request-timestamp"]),
        ("ringcentral", "disconnected", ["verification-token"]),
        ("vonage", "completed", ["authorization"]),
    ],
)
def test_missing_signature_header_is_refused(provider: str, name: str, headers: list[str]) -> None:
    """A request without the provider's signature header is refused."""
    fx = fixture(provider, name)
    with pytest.raises(InvalidSignature):
        verify(without(signed(fx), *headers), provider, fx.now)


@pytest.mark.parametrize(
    ("provider", "name", "late_by"),
    [
        ("twilio", "status_completed", twilio.TOLERANCE_S + 1),
        ("twilio", "status_completed", -(twilio.TOLERANCE_S + 1)),
        ("zoom", "callee_ended", zoom.TOLERANCE_S + 1),
        ("vonage", "completed", vonage.TOLERANCE_S + 1),
        ("vonage", "completed", -(vonage.TOLERANCE_S + 1)),
    ],
)
def test_stale_timestamp_is_refused(provider: str, name: str, late_by: float) -> None:
    """A correctly signed request verified outside the provider's time window is refused."""
    fx = fixture(provider, name)
    with pytest.raises(InvalidSignature, match="window"):
        verify(signed(fx), provider, fx.now + late_by)


@pytest.mark.parametrize(
    ("provider", "name", "late_by"),
    [
        ("twilio", "status_completed", twilio.TOLERANCE_S),
        ("zoom", "callee_ended", zoom.TOLERANCE_S),
        ("vonage", "completed", vonage.TOLERANCE_S),
    ],
)
def test_timestamp_at_the_window_edge_is_accepted(provider: str, name: str, late_by: float) -> None:
    """A request exactly at the edge of the time window is still accepted."""
    fx = fixture(provider, name)
    verify(signed(fx), provider, fx.now + late_by)


# --- Twilio ------------------------------------------------------------------------------------


def test_twilio_agrees_with_the_official_request_validator() -> None:
    """Our Twilio verification accepts exactly what twilio's RequestValidator validates."""
    fx = fixture("twilio", "status_completed")
    request = signed(fx)
    params = twilio.form_params(request.body)
    flat = {k: v[0] for k, v in params.items()}
    validator = RequestValidator(SECRET)
    assert validator.validate(request.url, flat, request.headers["x-twilio-signature"])
    assert (
        twilio.sign(SECRET, request.url, request.body, request.content_type)
        == (request.headers["x-twilio-signature"])
    )


def test_twilio_url_with_default_port_verifies() -> None:
    """A signature computed on the URL without port verifies when the URL names :443."""
    fx = fixture("twilio", "status_answered")
    request = signed(fx)
    with_port = request.url.replace("hooks.example.com", "hooks.example.com:443")
    verify(replace(request, url=with_port), "twilio", fx.now)


def test_twilio_signature_is_bound_to_the_public_url() -> None:
    """The same request reached through another URL (a proxy's internal one) is refused."""
    fx = fixture("twilio", "status_answered")
    request = signed(fx)
    with pytest.raises(InvalidSignature):
        verify(replace(request, url="http://10.0.0.7:8080/webhooks/twilio"), "twilio", fx.now)


def test_twilio_hmac_sha256_selected_by_signature_settings_header() -> None:
    """``X-Twilio-Webhooks-Signature-Settings: algorithm=HMAC_SHA256`` switches the hash."""
    fx = fixture("twilio", "status_ringing")
    request = signed(fx)
    params = {k: v[0] for k, v in twilio.form_params(request.body).items()}
    sha256 = RequestValidator(SECRET).compute_signature(request.url, params, "HMAC_SHA256")
    headers = {
        **request.headers,
        "x-twilio-signature": sha256,
        "x-twilio-webhooks-signature-settings": "key=webhooks_sharedkey_abc,algorithm=HMAC_SHA256",
    }
    verify(replace(request, headers=headers), "twilio", fx.now)
    # the SHA-1 signature no longer passes once the header names SHA-256
    sha1_headers = {**headers, "x-twilio-signature": request.headers["x-twilio-signature"]}
    with pytest.raises(InvalidSignature):
        verify(replace(request, headers=sha1_headers), "twilio", fx.now)


def test_twilio_unsupported_algorithm_is_refused() -> None:
    """An algorithm the settings header names but we do not know is refused, not ignored."""
    fx = fixture("twilio", "status_ringing")
    request = signed(fx)
    headers = {**request.headers, "x-twilio-webhooks-signature-settings": "algorithm=HMAC_MD5"}
    with pytest.raises(InvalidSignature, match="unsupported"):
        verify(replace(request, headers=headers), "twilio", fx.now)


def test_twilio_json_body_must_match_body_sha256() -> None:
    """The JSON variant: the body must hash to the signed URL's ``bodySHA256``."""
    fx = fixture("twilio", "status_completed_json")
    request = signed(fx)
    assert "bodySHA256=" in request.url
    assert RequestValidator(SECRET).validate(
        request.url, request.body.decode(), request.headers["x-twilio-signature"]
    )
    verify(request, "twilio", fx.now)
    with pytest.raises(InvalidSignature, match="bodySHA256"):
        verify(replace(request, body=request.body + b" "), "twilio", fx.now)


def test_twilio_json_body_with_stale_timestamp_is_refused() -> None:
    """The JSON variant's own ``Timestamp`` (covered by bodySHA256) is held to the window."""
    fx = fixture("twilio", "status_completed_json")
    with pytest.raises(InvalidSignature, match="window"):
        verify(signed(fx), "twilio", fx.now + twilio.TOLERANCE_S + 1)


def test_twilio_recording_callback_has_a_window() -> None:
    """Recording callbacks carry no ``Timestamp``: RecordingStartTime + RecordingDuration
    (when the recording ended) is held to the 15 min window instead."""
    fx = fixture("twilio", "recording_completed")
    verify(signed(fx), "twilio", fx.now)
    for later in (twilio.TOLERANCE_S + 60, 30 * 86400):
        with pytest.raises(InvalidSignature, match="window"):
            verify(signed(fx), "twilio", fx.now + later)


# --- Aircall -----------------------------------------------------------------------------------


def test_aircall_missing_or_wrong_token_is_refused() -> None:
    """Aircall's body token must be present and equal to the configured token."""
    fx = fixture("aircall", "call_ended")
    body = orjson.loads(signed(fx).body)
    for token in (None, "", OTHER):
        body["token"] = token
        request = signed(fx)
        with pytest.raises(InvalidSignature):
            verify(replace(request, body=orjson.dumps(body)), "aircall", fx.now)


def test_aircall_non_json_body_is_refused() -> None:
    """A body that is not an Aircall JSON object cannot carry a token: refused."""
    request = replace(signed(fixture("aircall", "call_ended")), body=b"token=" + SECRET.encode())
    with pytest.raises(InvalidSignature):
        verify(request, "aircall", 0)


# --- Zoom --------------------------------------------------------------------------------------


def test_zoom_url_validation_is_answered_with_the_hmac_of_the_plain_token() -> None:
    """A signed ``endpoint.url_validation`` gets ``{plainToken, encryptedToken}`` back."""
    fx = fixture("zoom", "url_validation")
    verification = zoom.verify(signed(fx), SECRET, fx.now)
    assert verification.reply is not None
    assert verification.reply.status == 200
    expected = hmac.new(SECRET.encode(), b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
    assert orjson.loads(verification.reply.body) == {
        "plainToken": "qgg8vlvZRS6UYooatFL8Aw",
        "encryptedToken": expected,
    }


def test_zoom_unsigned_url_validation_is_refused() -> None:
    """An unsigned challenge is refused: answering it would be a signing oracle."""
    fx = fixture("zoom", "url_validation")
    with pytest.raises(InvalidSignature):
        verify(without(signed(fx), "x-zm-signature"), "zoom", fx.now)


def test_zoom_ordinary_event_has_no_reply() -> None:
    """Only the validation challenge carries a handshake reply."""
    fx = fixture("zoom", "callee_ended")
    assert zoom.verify(signed(fx), SECRET, fx.now).reply is None


def test_zoom_url_validation_reaching_parse_is_refused() -> None:
    """``parse`` cannot answer the challenge (no secret), so it refuses rather than 202."""
    fx = fixture("zoom", "url_validation")
    with pytest.raises(InvalidEvent, match="verification"):
        zoom.parse(signed(fx), NormalizeOptions())


def test_zoom_non_numeric_timestamp_is_refused() -> None:
    """``x-zm-request-timestamp`` must be a Unix time."""
    fx = fixture("zoom", "callee_ended")
    request = signed(fx)
    headers = {**request.headers, "x-zm-request-timestamp": "yesterday"}
    with pytest.raises(InvalidSignature):
        verify(replace(request, headers=headers), "zoom", fx.now)


# --- RingCentral -------------------------------------------------------------------------------


def test_ringcentral_validation_token_is_echoed_without_events() -> None:
    """Subscription set-up: the ``Validation-Token`` comes back in the response header."""
    fx = fixture("ringcentral", "validation")
    request = signed(fx)
    ringcentral.verify(request, SECRET, fx.now)
    outcome = ringcentral.parse(request, NormalizeOptions())
    assert outcome.events == []
    assert outcome.reply is not None
    assert outcome.reply.status == 200
    assert outcome.reply.headers == {"Validation-Token": RC_VALIDATION_TOKEN}


def test_ringcentral_validation_with_wrong_verification_token_is_refused() -> None:
    """A set-up request that names a wrong ``Verification-Token`` is still refused."""
    request = signed(fixture("ringcentral", "validation"))
    headers = {**request.headers, "verification-token": OTHER}
    with pytest.raises(InvalidSignature):
        verify(replace(request, headers=headers), "ringcentral", 0)


def test_ringcentral_validation_never_produces_events_even_with_a_body() -> None:
    """A body smuggled into a set-up request (no Verification-Token) produces nothing."""
    fx = fixture("ringcentral", "disconnected")
    request = without(signed(fx), "verification-token")
    request = replace(request, headers={**request.headers, "validation-token": "abc"})
    ringcentral.verify(request, SECRET, fx.now)
    outcome = ringcentral.parse(request, NormalizeOptions())
    assert outcome.events == []
    assert outcome.reply is not None


def test_ringcentral_header_injection_in_validation_token_is_refused() -> None:
    """A ``Validation-Token`` with control characters is never echoed into a header."""
    request = WebhookRequest("POST", "https://h/x", {"validation-token": "a\r\nSet-Cookie: x"}, b"")
    with pytest.raises(InvalidEvent):
        ringcentral.parse(request, NormalizeOptions())


# --- Vonage ------------------------------------------------------------------------------------


def test_vonage_returns_the_jti_for_the_replay_guard() -> None:
    """The JWT's ``jti`` is handed to the ingress, remembered for the whole iat window."""
    fx = fixture("vonage", "completed")
    request = sign_fixture("vonage", "completed", SECRET, URL, fx.now, jti="jti-42")
    verification = vonage.verify(request.webhook_request(), SECRET, fx.now)
    assert verification.replay_id == "jti-42"
    assert verification.replay_ttl_s >= 2 * vonage.TOLERANCE_S


def _vonage_request(token: str, body: bytes) -> WebhookRequest:
    return WebhookRequest(
        "POST", URL, {"content-type": "application/json", "authorization": f"Bearer {token}"}, body
    )


def test_vonage_payload_hash_of_another_body_is_refused() -> None:
    """A valid JWT whose ``payload_hash`` belongs to another body is refused."""
    token = vonage.sign(SECRET, b'{"status":"ringing"}', 1000, "j1")
    with pytest.raises(InvalidSignature, match="payload_hash"):
        vonage.verify(_vonage_request(token, b'{"status":"completed"}'), SECRET, 1000)


@pytest.mark.parametrize("missing", ["iat", "jti", "payload_hash"])
def test_vonage_jwt_without_required_claim_is_refused(missing: str) -> None:
    """``iat``, ``jti`` and ``payload_hash`` are all required."""
    body = b"{}"
    claims = {"iat": 1000, "jti": "j1", "payload_hash": vonage.payload_hash(body)}
    del claims[missing]
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(InvalidSignature):
        vonage.verify(_vonage_request(token, body), SECRET, 1000)


def test_vonage_unsigned_or_other_algorithm_jwt_is_refused() -> None:
    """``alg: none`` and algorithms other than HS256 are refused."""
    body = b"{}"
    key = "k" * 64  # long enough for HS512, so only the algorithm is wrong
    claims = {"iat": 1000, "jti": "j1", "payload_hash": vonage.payload_hash(body)}
    for token in (
        jwt.encode(claims, None, algorithm="none"),
        jwt.encode(claims, key, algorithm="HS512"),
    ):
        with pytest.raises(InvalidSignature):
            vonage.verify(_vonage_request(token, body), key, 1000)


def test_vonage_expired_jwt_is_refused() -> None:
    """An ``exp`` in the past of the injected clock is refused."""
    body = b"{}"
    token = vonage.sign(SECRET, body, 1000, "j1", exp=1100)
    vonage.verify(_vonage_request(token, body), SECRET, 1050)
    with pytest.raises(InvalidSignature, match="expired"):
        vonage.verify(_vonage_request(token, body), SECRET, 1101)


def test_vonage_short_secret_works_without_warnings() -> None:
    """A short signature secret verifies (PyJWT's key-length warning is not raised)."""
    body = b"{}"
    token = vonage.sign("short", body, 1000, "j1")
    vonage.verify(_vonage_request(token, body), "short", 1000)


# --- Dialpad -----------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/jwt", "text/plain", "", "application/json"])
def test_dialpad_jwt_body_is_accepted_whatever_the_content_type(content_type: str) -> None:
    """Dialpad's JWT body is read as a JWT whatever Content-Type it arrives with."""
    fx = fixture("dialpad", "hangup")
    request = signed(fx)
    request = replace(request, headers={**request.headers, "content-type": content_type})
    assert dialpad.PROVIDER.accepts(request.content_type)
    verify(request, "dialpad", fx.now)


def test_dialpad_plain_json_body_is_refused() -> None:
    """A webhook without a secret sends plain JSON: unauthenticated, refused."""
    for raw in (b'{"call_id": 1, "state": "hangup"}', b"not.a.jwt", b""):
        with pytest.raises(InvalidSignature):
            verify(WebhookRequest("POST", URL, {}, raw), "dialpad", 0)


def test_dialpad_expired_jwt_is_refused() -> None:
    """An ``exp`` claim, when Dialpad sends one, is honoured against ``now``."""
    exp = 1_772_557_300
    payload = {"call_id": 1, "state": "hangup", "exp": exp, "event_timestamp": 1_772_557_200_000}
    request = WebhookRequest("POST", URL, {}, dialpad.sign(SECRET, payload))
    verify(request, "dialpad", exp - 1)
    with pytest.raises(InvalidSignature, match="expired"):
        verify(request, "dialpad", exp + 1)


def test_dialpad_replay_window_is_the_signed_event_time() -> None:
    """Dialpad documents no iat/exp: a JWT whose signed event_timestamp is more than an
    hour from now is refused, and one carrying no time at all is refused."""
    sent = 1_772_557_200_120
    request = WebhookRequest(
        "POST",
        URL,
        {},
        dialpad.sign(SECRET, {"call_id": 1, "state": "hangup", "event_timestamp": sent}),
    )
    verify(request, "dialpad", sent / 1000 + dialpad.TOLERANCE_S - 1)
    for now in (sent / 1000 + dialpad.TOLERANCE_S + 1, sent / 1000 - dialpad.TOLERANCE_S - 1):
        with pytest.raises(InvalidSignature, match="window"):
            verify(request, "dialpad", now)
    timeless = WebhookRequest(
        "POST", URL, {}, dialpad.sign(SECRET, {"call_id": 1, "state": "hangup"})
    )
    with pytest.raises(InvalidSignature, match="neither iat nor event_timestamp"):
        verify(timeless, "dialpad", sent / 1000)


def test_dialpad_alg_none_is_refused() -> None:
    """An unsigned JWT (``alg: none``) is refused."""
    token = jwt.encode({"call_id": 1, "state": "hangup"}, None, algorithm="none").encode()
    with pytest.raises(InvalidSignature):
        verify(WebhookRequest("POST", URL, {}, token), "dialpad", 0)
