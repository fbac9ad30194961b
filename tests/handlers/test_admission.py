"""Pure admission (``service.ingress.admission``): accept-or-answer without I/O; secret
rotation; the catch-all; replay memory; public URL rules; Vonage's signed ``?uuid=``."""

from __future__ import annotations

from dataclasses import dataclass, replace

import orjson
import pytest

from handlers import (
    REGISTRY,
    InvalidSignature,
    NormalizeOptions,
    Verification,
    WebhookRequest,
    generic,
    vonage,
)
from handlers.provider import ModuleProvider
from service.config import Settings
from service.ingress import ReplayGuard, startup_problem
from service.ingress.admission import Accept, Answer, Inbound, Policy, admit, preflight
from service.ingress.proxy import ConfigError, PublicUrl, parse_proxies
from tests.handlers.signed import fixture, sign_fixture

NOW = 1_772_550_245.0
BODY = orjson.dumps(
    {
        "event_id": "e-1",
        "call_id": "c-1",
        "type": "call.ended",
        "occurred_at": "2026-03-03T15:00:00Z",
    }
)


def policy(**secrets: tuple[str, ...]) -> Policy:
    return Policy(secrets=secrets, max_body_bytes=1024 * 1024)


def generic_inbound(secret: str, body: bytes = BODY, **headers: str) -> Inbound:
    ts = str(int(NOW))
    return Inbound(
        provider="generic",
        method="POST",
        url="https://h/webhooks/generic",
        local_url="http://127.0.0.1/webhooks/generic",
        headers={
            "content-type": "application/json",
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": generic.sign(secret, ts, body),
            **headers,
        },
        body=body,
    )


def never_seen(_: str) -> bool:
    return False


def test_any_rotated_secret_verifies() -> None:
    """With "old,new" configured, a request signed with either is accepted; others are 401."""
    rules = policy(generic=("old-secret", "new-secret"))
    for secret in ("old-secret", "new-secret"):
        decision = admit(generic_inbound(secret), REGISTRY["generic"], rules, NOW, never_seen)
        assert isinstance(decision, Accept) and len(decision.events) == 1
    refused = admit(generic_inbound("other"), REGISTRY["generic"], rules, NOW, never_seen)
    assert isinstance(refused, Answer) and refused.status == 401


def test_settings_split_comma_separated_secrets() -> None:
    """CALLBRIDGE_<PROVIDER>_SECRET="a, b," holds two secrets; an empty value disables."""
    settings = Settings(generic_secret=" a, b,", aircall_token="")  # type: ignore[arg-type]
    assert settings.provider_secrets("generic") == ("a", "b")
    assert settings.provider_secrets("aircall") == ()
    assert "aircall" not in settings.enabled_providers


def test_preflight_answers_what_needs_no_body() -> None:
    """Unknown / disabled provider → 404, declared size over the limit → 413, type → 415."""
    rules = policy(generic=("s",))
    assert preflight("nope", None, "application/json", rules) == Answer(
        404, "unknown provider", "nope"
    )
    assert preflight("zoom", None, "application/json", rules) == Answer(
        404, "provider not enabled", "zoom"
    )
    too_big = preflight("generic", str(2 * 1024 * 1024), "application/json", rules)
    assert isinstance(too_big, Answer) and too_big.status == 413
    assert isinstance(preflight("generic", "1" * 40, "application/json", rules), Answer)
    assert isinstance(preflight("generic", "12", "text/plain", rules), Answer)
    assert preflight("generic", "12", "application/json", rules) is REGISTRY["generic"]
    twilio_rules = policy(twilio=("t",))
    big_form = preflight(
        "twilio", str(65 * 1024), "application/x-www-form-urlencoded", twilio_rules
    )
    assert isinstance(big_form, Answer) and big_form.status == 413


def test_unexpected_errors_become_401_before_and_400_after_authentication() -> None:
    """A verify that crashes → 401; a parse that crashes → 400; both carry the exception."""

    def crash_verify(request: WebhookRequest, secret: str, now: float) -> Verification:
        raise KeyError("boom")

    def crash_extract(request: WebhookRequest, options: NormalizeOptions) -> list:  # type: ignore[type-arg]
        raise ZeroDivisionError("boom")

    generic_provider = REGISTRY["generic"]
    assert isinstance(generic_provider, ModuleProvider)
    bad_verify = replace(generic_provider, verify=crash_verify)
    bad_parse = replace(generic_provider, extract=crash_extract)
    rules = policy(generic=("s",))
    before = admit(generic_inbound("s"), bad_verify, rules, NOW, never_seen)
    after = admit(generic_inbound("s"), bad_parse, rules, NOW, never_seen)
    assert isinstance(before, Answer) and before.status == 401
    assert isinstance(before.failure, KeyError)
    assert isinstance(after, Answer) and after.status == 400
    assert isinstance(after.failure, ZeroDivisionError)
    assert "boom" not in before.detail + after.detail


def test_deep_nesting_is_refused_before_verification() -> None:
    """A body nested 6,000 deep is 400 before any signature or decoder runs."""
    calls = []

    def spy(request: WebhookRequest, secret: str, now: float) -> Verification:
        calls.append(1)
        return Verification()

    provider = replace(REGISTRY["generic"], verify=spy)  # type: ignore[type-var]
    body = b"[" * 6000 + b"]" * 6000
    decision = admit(generic_inbound("s", body), provider, policy(generic=("s",)), NOW, never_seen)
    assert decision == Answer(400, "invalid event", "JSON nested too deeply")
    assert calls == []


def test_replay_ids_are_refused_once_remembered_and_remembered_only_when_told() -> None:
    """Standard Webhooks' webhook-id: accepted (with the key to remember) until the ingress
    remembers it (after Kafka's ack); then 401 replayed; a guard expires ids after their TTL."""
    from tests.handlers.test_stdwebhooks import KEY, signed

    inbound = Inbound("generic", "POST", "https://h", "http://l", signed(BODY, ts=int(NOW)), BODY)
    clock = Clock()
    guard = ReplayGuard(clock)
    rules = policy(generic=(KEY,))
    first = admit(inbound, REGISTRY["generic"], rules, NOW, guard.seen)
    assert isinstance(first, Accept) and first.replay_key == "generic:msg_1"
    again = admit(inbound, REGISTRY["generic"], rules, NOW, guard.seen)
    assert isinstance(again, Accept)  # nothing remembered yet (e.g. the produce failed: 503)
    guard.remember(first.replay_key, first.replay_ttl_s)
    replayed = admit(inbound, REGISTRY["generic"], rules, NOW, guard.seen)
    assert isinstance(replayed, Answer) and replayed.error == "replayed request"
    clock.now += first.replay_ttl_s + 1
    assert not guard.seen(first.replay_key)


def test_twilio_without_a_known_public_url_is_refused() -> None:
    """Twilio signs the URL: when it cannot be known, 401 (never verified against Host)."""
    fx = fixture("twilio", "status_completed")
    signed = sign_fixture("twilio", fx.name, "tok", "https://h/webhooks/twilio", fx.now)
    inbound = Inbound("twilio", "POST", None, signed.url, signed.headers, signed.body)
    decision = admit(inbound, REGISTRY["twilio"], policy(twilio=("tok",)), fx.now, never_seen)
    assert isinstance(decision, Answer) and decision.status == 401
    assert "CALLBRIDGE_PUBLIC_URL" in decision.detail
    ok = admit(
        replace(inbound, url=signed.url),
        REGISTRY["twilio"],
        policy(twilio=("tok",)),
        fx.now,
        never_seen,
    )
    assert isinstance(ok, Accept)


def test_public_url_from_setting_or_trusted_proxy_only() -> None:
    """CALLBRIDGE_PUBLIC_URL wins; forwarded headers count only from a trusted proxy, and
    only the entry that proxy wrote (the last one)."""
    headers = {
        "host": "internal:8080",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "evil, hooks.example.com",
    }
    assert PublicUrl("https://pub.example").url("/webhooks/twilio", "a=1", "10.0.0.9", headers) == (
        "https://pub.example/webhooks/twilio?a=1"
    )
    behind = PublicUrl(None, parse_proxies("10.0.0.0/8, 192.168.1.1"))
    assert behind.url("/w", "", "10.1.2.3", headers) == "https://hooks.example.com/w"
    assert behind.url("/w", "", "203.0.113.5", headers) is None
    assert behind.url("/w", "", "10.1.2.3", {"host": "h"}) is None  # no proto: unknown
    port = {**headers, "x-forwarded-port": "8443"}
    assert behind.url("/w", "", "10.1.2.3", port) == "https://hooks.example.com:8443/w"
    with pytest.raises(ConfigError):
        parse_proxies("not-an-ip")


def test_the_ingress_refuses_to_start_with_twilio_and_no_public_url() -> None:
    """Twilio enabled without CALLBRIDGE_PUBLIC_URL or trusted proxies: a clear refusal."""
    problem = startup_problem(Settings(twilio_auth_token="t"))  # type: ignore[arg-type]
    assert problem is not None and "CALLBRIDGE_PUBLIC_URL" in problem
    assert startup_problem(Settings(twilio_auth_token="t", public_url="https://h")) is None  # type: ignore[arg-type]
    assert startup_problem(Settings(twilio_auth_token="t", trusted_proxies="10.0.0.0/8")) is None  # type: ignore[arg-type]
    assert startup_problem(Settings(generic_secret="s")) is None  # type: ignore[arg-type]
    assert startup_problem(Settings(public_url="ftp://x")) is not None
    assert startup_problem(Settings(generic_secret="whsec_!!!")) is not None  # type: ignore[arg-type]


def test_vonage_query_uuid_must_be_signed_for_this_conversation() -> None:
    """A record event's ?uuid= counts only with the uuid_sig record_url issues for its
    conversation: unsigned, forged or moved to another conversation → 401."""
    fx = fixture("vonage", "record")
    secret = "vonage-secret"
    base = "https://h/webhooks/vonage"
    good = sign_fixture("vonage", fx.name, secret, base, fx.now)
    assert "uuid_sig=" in good.url
    vonage.verify(good.webhook_request(), secret, fx.now)
    (event,) = vonage.parse(good.webhook_request(), NormalizeOptions(), fx.now).events
    assert event.call_id == "63f61863-4a51-4f6b-86e1-46edebcf9356"

    conversation = orjson.loads(good.body)["conversation_uuid"]
    forged = [
        base + "?uuid=someone-else",
        base + "?uuid=someone-else&uuid_sig=" + good.url.rsplit("uuid_sig=", 1)[1],
        vonage.record_url(base, secret, "63f61863-4a51-4f6b-86e1-46edebcf9356", "CON-other"),
        vonage.record_url(base, "not-the-secret", "someone-else", conversation),
    ]
    for url in forged:
        with pytest.raises(InvalidSignature):
            vonage.verify(replace(good.webhook_request(), url=url), secret, fx.now)


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


def test_a_handshake_answers_without_events() -> None:
    """RingCentral's Validation-Token set-up is answered by admission (200, echoed header)."""
    inbound = Inbound(
        "ringcentral", "POST", "https://h", "http://l", {"validation-token": "abc"}, b""
    )
    decision = admit(inbound, REGISTRY["ringcentral"], policy(ringcentral=("t",)), NOW, never_seen)
    assert isinstance(decision, Answer) and decision.reply is not None
    assert decision.reply.headers == {"Validation-Token": "abc"}
