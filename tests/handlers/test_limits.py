"""Edge limits: enforced once, where every provider's events are built (``handlers.build``),
and cheap refusals (nesting, form size) before any decoder runs."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime

import orjson
import pytest

from handlers import (
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    WebhookRequest,
    dialpad,
    generic,
    limits,
    twilio,
    vonage,
)
from handlers.build import CallFacts, build_event, direction_of, unanswered
from handlers.phone import E164_CACHE_SIZE, MAX_NUMBER_CHARS, _e164, e164

NOW = datetime(2026, 3, 3, 15, 4, 5, tzinfo=UTC).timestamp()
OPTIONS = NormalizeOptions()
FACTS = CallFacts(
    provider="generic",
    call_id="c-1",
    event_id="e-1",
    type="call.ended",
    occurred=datetime(2026, 3, 3, 15, 0, tzinfo=UTC),
)


def build(**changes: object) -> object:
    return build_event(replace(FACTS, **changes), OPTIONS, NOW)  # type: ignore[arg-type]


def generic_event(**fields: object) -> bytes:
    event = {
        "event_id": "e-1",
        "call_id": "c-1",
        "type": "call.ended",
        "occurred_at": "2026-03-03T15:00:00Z",
        "direction": "inbound",
    }
    event.update(fields)
    return orjson.dumps(event)


def parse_generic(body: bytes, now: float | None = NOW) -> object:
    request = WebhookRequest("POST", "https://h/webhooks/generic", {}, body)
    return generic.parse(request, OPTIONS, now)


def test_ids_are_bounded_and_not_empty() -> None:
    """call_id and event_id: 256 characters at most, never empty (any provider)."""
    build(call_id="c" * limits.MAX_ID_CHARS, event_id="e" * limits.MAX_ID_CHARS)
    for field in ("call_id", "event_id"):
        with pytest.raises(InvalidEvent, match=field):
            build(**{field: "x" * (limits.MAX_ID_CHARS + 1)})
        with pytest.raises(InvalidEvent, match=field):
            build(**{field: "   "})


def test_a_3000_character_call_id_and_a_400_kb_event_id_are_refused_at_the_edge() -> None:
    """The inputs that stalled the writer are now 400s."""
    with pytest.raises(InvalidEvent):
        parse_generic(generic_event(call_id="c" * 3000))
    with pytest.raises(InvalidEvent):
        parse_generic(generic_event(event_id="e" * 400_000))


def test_association_ids_are_numeric_and_at_most_100() -> None:
    """contact/company/deal ids: ≤ 100 each, numeric HubSpot ids."""
    event = build(contact_ids=[str(n) for n in range(100)], deal_ids=["7"])
    assert len(event.contact_ids) == 100  # type: ignore[attr-defined]
    for field in ("contact_ids", "company_ids", "deal_ids"):
        with pytest.raises(InvalidEvent, match=field):
            build(**{field: [str(n) for n in range(101)]})
        for bad in (["abc"], ["1e5"], ["-1"], ["1" * 20], ["١٢"]):
            with pytest.raises(InvalidEvent, match=field):
                build(**{field: bad})


@pytest.mark.parametrize(
    "when",
    [
        "9999-12-31T23:59:59-05:00",
        "0001-01-01T00:00:00+05:00",
        "1999-12-31T23:59:59Z",
        "2026-03-05T15:04:06Z",  # more than a day after NOW
        "9" * 500,
        "-1",
    ],
)
def test_timestamps_outside_the_window_are_invalid_events(when: str) -> None:
    """Dates before 2000 or after now + 1 day (incl. offsets that overflow) are 400s, not 500s."""
    with pytest.raises(InvalidEvent):
        parse_generic(generic_event(occurred_at=when))


def test_the_window_follows_the_clock() -> None:
    """now + 1 day is measured from the ingress clock; without one, up to 2100."""
    tomorrow = "2026-03-04T15:00:00Z"
    parse_generic(generic_event(occurred_at=tomorrow), now=NOW)
    parse_generic(generic_event(occurred_at="2090-01-01T00:00:00Z"), now=None)
    with pytest.raises(InvalidEvent):
        parse_generic(generic_event(occurred_at=tomorrow), now=NOW - 86400)


def test_numbers_are_bounded() -> None:
    """Durations beyond a week, negative or 500-digit, and sequences outside int64 are refused."""
    with pytest.raises(InvalidEvent):
        parse_generic(generic_event(duration_ms=limits.MAX_DURATION_MS + 1))
    with pytest.raises(InvalidEvent):
        parse_generic(
            generic_event().replace(b'"inbound"', b'"inbound","duration_ms":' + b"9" * 500)
        )
    with pytest.raises(InvalidEvent):
        build(sequence=-1)
    with pytest.raises(InvalidEvent):
        build(sequence=2**63)
    completed = {
        "uuid": "u-1",
        "status": "completed",
        "timestamp": "2026-03-03T15:00:00Z",
        "duration": "9" * 500,
    }
    request = WebhookRequest("POST", "https://h/webhooks/vonage", {}, orjson.dumps(completed))
    with pytest.raises(InvalidEvent, match="duration"):
        vonage.parse(request, OPTIONS, NOW)


def test_text_properties_have_hubspots_limit() -> None:
    """Title and notes up to 65,536 characters; recording URLs 2,048, http(s) only; numbers 64."""
    build(title="t" * limits.MAX_TEXT_CHARS, body="b" * limits.MAX_TEXT_CHARS)
    with pytest.raises(InvalidEvent, match="hs_call_title"):
        build(title="t" * (limits.MAX_TEXT_CHARS + 1))
    with pytest.raises(InvalidEvent, match="hs_call_body"):
        build(body="b" * (limits.MAX_TEXT_CHARS + 1))
    with pytest.raises(InvalidEvent, match="recording URL"):
        build(recording_url="https://e/" + "r" * limits.MAX_URL_CHARS)
    with pytest.raises(InvalidEvent, match="recording URL"):
        build(recording_url="javascript:alert(1)")
    with pytest.raises(InvalidEvent, match="number"):
        build(from_number="+1" + "5" * MAX_NUMBER_CHARS)


def test_an_unencodable_string_is_an_invalid_event() -> None:
    """A lone surrogate (JSON "\\ud800", which PyJWT's json decodes into a str) cannot
    become UTF-8: 400 at the edge, not a failure at produce time."""
    payload = orjson.dumps(
        {
            "call_id": 1,
            "state": "transcription",
            "event_timestamp": int(NOW * 1000),
            "transcription_text": "@",
        }
    ).replace(b'"@"', b'"\\ud800"')
    request = WebhookRequest("POST", "https://h", {}, _jwt("s3cret", payload))
    dialpad.verify(request, "s3cret", NOW)
    with pytest.raises(InvalidEvent, match="unencodable"):
        dialpad.parse(request, OPTIONS, NOW)


def _jwt(secret: str, payload: bytes, header: bytes = b'{"alg":"HS256","typ":"JWT"}') -> bytes:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing = b64(header) + b"." + b64(payload)
    return signing + b"." + b64(hmac.new(secret.encode(), signing, hashlib.sha256).digest())


def test_one_direction_map_and_one_unanswered_rule() -> None:
    """Provider direction words map to INBOUND/OUTBOUND; an unanswered inbound call is MISSED."""
    assert [direction_of(v) for v in ("inbound", "OUTBOUND", "outbound-api", "x", None)] == [
        "INBOUND",
        "OUTBOUND",
        "OUTBOUND",
        None,
        None,
    ]
    assert (unanswered("INBOUND"), unanswered("OUTBOUND"), unanswered(None)) == (
        "MISSED",
        "NO_ANSWER",
        "NO_ANSWER",
    )


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b"[" * 6000 + b"]" * 6000, True),
        (b'{"a":' * 33 + b"1" + b"}" * 33, True),
        (b'{"a":' * 32 + b"1" + b"}" * 32, False),
        (b'{"a": "' + b"[" * 5000 + b'"}', False),  # brackets inside a string do not nest
        (b"[1]," * 10_000, False),
        (b"]]]]" * 100, False),
    ],
)
def test_nesting_is_measured_without_a_decoder(body: bytes, deep: bool) -> None:
    """Bracket depth beyond 32 is found by a linear scan, strings excluded."""
    assert limits.too_deep(body) is deep


def test_a_megabyte_of_brackets_is_refused_in_milliseconds() -> None:
    """The cheap refusal is cheap: 1 MiB of '[' scans in well under 50 ms."""
    started = time.perf_counter()
    assert limits.too_deep(b"[" * (1 << 20))
    assert time.perf_counter() - started < 0.05


def test_deeply_nested_jwts_are_refused_before_pyjwt_decodes_them() -> None:
    """A JWT header or payload nested 5,000 deep is InvalidSignature, not RecursionError."""
    secret = "s3cret"
    for header, payload in (
        (b'{"alg":"HS256","x":' + b"[" * 5000 + b"]" * 5000 + b"}", b"{}"),
        (b'{"alg":"HS256"}', b'{"a":' + b"[" * 6000 + b"]" * 6000 + b"}"),
    ):
        token = _jwt(secret, payload, header)
        assert limits.jwt_too_deep(token)
        with pytest.raises(InvalidSignature, match="nested"):
            dialpad.verify(WebhookRequest("POST", "https://h", {}, token), secret, NOW)
        with pytest.raises(InvalidSignature, match="nested"):
            vonage.verify(
                WebhookRequest(
                    "POST", "https://h", {"authorization": "Bearer " + token.decode()}, b"{}"
                ),
                secret,
                NOW,
            )


def test_twilio_refuses_forms_with_too_many_parameters_before_parsing() -> None:
    """More than 256 form parameters is refused before parse_qsl runs (a 1 MiB form cost 0.5 s)."""
    body = b"&".join(b"P%d=v" % n for n in range(limits.MAX_FORM_PARAMS + 1))
    request = WebhookRequest(
        "POST",
        "https://h/webhooks/twilio",
        {"x-twilio-signature": "x", "content-type": "application/x-www-form-urlencoded"},
        body,
    )
    started = time.perf_counter()
    with pytest.raises(InvalidSignature, match="form parameters"):
        twilio.verify(request, "token", NOW)
    assert time.perf_counter() - started < 0.01
    assert twilio.PROVIDER.max_body_bytes == 64 * 1024


def test_phone_normalization_is_cached_and_bounded() -> None:
    """E.164 results are memoized in a bounded LRU; over-long inputs are never parsed nor cached."""
    _e164.cache_clear()
    assert e164("(415) 555-0142", "US") == "+14155550142"
    assert e164("(415) 555-0142", "US") == "+14155550142"
    info = _e164.cache_info()
    assert (info.hits, info.misses, info.maxsize) == (1, 1, E164_CACHE_SIZE)
    huge = "4" * 100_000
    assert e164(huge, "US") == huge
    assert _e164.cache_info().currsize == 1
