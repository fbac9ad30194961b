"""Property-based tests: whatever arrives, a handler answers with its one typed error or a
well-formed result, never another exception (which the ingress would turn into a 500)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from handlers import (
    REGISTRY,
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Outcome,
    Verification,
    WebhookRequest,
    dialpad,
)
from service.model import decode_event, encode_event
from tests.handlers.signed import FIXTURES, load, sign_fixture

PROVIDERS = sorted(REGISTRY)
SECRET = "s3cret-0123456789abcdef-0123456789"
OPTIONS = NormalizeOptions(owner_map={"alice@example.com": "1"})
SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADER_NAMES = [
    "content-type",
    "x-twilio-signature",
    "x-twilio-webhooks-signature-settings",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "verification-token",
    "validation-token",
    "authorization",
    "x-callbridge-signature",
    "x-callbridge-timestamp",
]
headers_st = st.dictionaries(
    st.sampled_from(HEADER_NAMES),
    st.one_of(
        st.text(max_size=60),
        st.sampled_from(["application/json", "Bearer a.b.c", "v0=00", "1772550245", SECRET]),
    ),
    max_size=5,
)
urls_st = st.one_of(
    st.sampled_from(
        ["https://hooks.example.com/webhooks/x", "https://h/x?bodySHA256=00&uuid=u", "http://[::1"]
    ),
    st.text(max_size=40),
)
json_st = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
now_st = st.floats(min_value=-1e12, max_value=1e13, allow_nan=False)


def check_outcome(outcome: Outcome) -> None:
    assert isinstance(outcome, Outcome)
    for event in outcome.events:
        assert all(isinstance(v, str) for v in event.properties.values())
        assert event.properties["hs_timestamp"]
        assert decode_event(encode_event(event)) == event


def parse_or_invalid(provider: str, request: WebhookRequest) -> None:
    try:
        outcome = REGISTRY[provider].parse(request, OPTIONS)
    except InvalidEvent:
        return
    check_outcome(outcome)


def verify_or_invalid(provider: str, request: WebhookRequest, now: float) -> None:
    try:
        result = REGISTRY[provider].verify(request, SECRET, now)
    except InvalidSignature:
        return
    assert isinstance(result, Verification)


@SETTINGS
@given(
    provider=st.sampled_from(PROVIDERS),
    body=st.binary(max_size=400),
    headers=headers_st,
    url=urls_st,
)
def test_any_bytes_parse_to_events_or_invalid_event(
    provider: str, body: bytes, headers: dict[str, str], url: str
) -> None:
    """Any bytes and headers given to parse: events (or a reply) or InvalidEvent, nothing else."""
    parse_or_invalid(provider, WebhookRequest("POST", url, headers, body))


@SETTINGS
@given(
    provider=st.sampled_from(PROVIDERS),
    body=st.binary(max_size=400),
    headers=headers_st,
    url=urls_st,
    now=now_st,
)
def test_any_bytes_verify_or_invalid_signature(
    provider: str, body: bytes, headers: dict[str, str], url: str, now: float
) -> None:
    """Any bytes and headers given to verify: a Verification or InvalidSignature only."""
    verify_or_invalid(provider, WebhookRequest("POST", url, headers, body), now)


JSON_FIXTURES = [f for f in FIXTURES if f.provider not in ("twilio",) and f.name != "validation"]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, (*prefix, index))
    return paths


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {**value, head: _replace(value[head], rest, new)}
    copy = list(value)
    copy[head] = _replace(copy[head], rest, new)
    return copy


@SETTINGS
@given(data=st.data(), new=json_st)
def test_documented_payloads_with_any_field_replaced_parse_or_invalid_event(
    data: st.DataObject, new: Any
) -> None:
    """A documented payload with any one field replaced by any JSON: events or InvalidEvent."""
    fx = data.draw(st.sampled_from(JSON_FIXTURES), label="fixture")
    payload = orjson.loads(load(fx.provider, fx.name))
    path = data.draw(st.sampled_from(_paths(payload)), label="path")
    mutated = _replace(payload, path, new)
    # json (not orjson): big integers must reach the parser too
    if fx.provider == "dialpad" and isinstance(mutated, dict):
        body = dialpad.sign(SECRET, mutated)
    else:
        body = json.dumps(mutated).encode()
    headers = {"content-type": "application/json"}
    parse_or_invalid(fx.provider, WebhookRequest("POST", "https://h/x?uuid=u", headers, body))


TWILIO_NAMES = [
    "CallSid",
    "CallStatus",
    "Timestamp",
    "SequenceNumber",
    "CallDuration",
    "Direction",
    "From",
    "To",
    "AnsweredBy",
    "RecordingSid",
    "RecordingUrl",
    "RecordingStatus",
    "RecordingStartTime",
]


@SETTINGS
@given(
    base=st.sampled_from([f.name for f in FIXTURES if f.provider == "twilio" and f.query == ""]),
    changes=st.dictionaries(st.sampled_from(TWILIO_NAMES), st.text(max_size=40), max_size=4),
)
def test_twilio_form_with_any_parameter_values_parses_or_invalid_event(
    base: str, changes: dict[str, str]
) -> None:
    """Twilio form callbacks with any parameter values: events or InvalidEvent."""
    params = dict(parse_qsl(load("twilio", base).decode(), keep_blank_values=True))
    params.update(changes)
    body = urlencode(params).encode()
    parse_or_invalid("twilio", WebhookRequest("POST", "u", {}, body))


@SETTINGS
@given(
    fx=st.sampled_from([f for f in FIXTURES if f.provider != "ringcentral"]),
    index=st.integers(min_value=0),
    byte=st.integers(min_value=0, max_value=255),
)
def test_any_single_byte_change_of_a_signed_body_is_refused_or_harmless(
    fx: Any, index: int, byte: int
) -> None:
    """Changing any byte of a signed request never raises anything but InvalidSignature."""
    signed = sign_fixture(fx.provider, fx.name, SECRET, "https://h/webhooks/x", fx.now)
    body = bytearray(signed.body)
    if body:
        body[index % len(body)] = byte
    verify_or_invalid(
        fx.provider, WebhookRequest("POST", signed.url, signed.headers, bytes(body)), fx.now
    )
