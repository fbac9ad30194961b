"""The generic handler, pure: signature check and normalization."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import handlers.generic as generic
from handlers import InvalidEvent, InvalidSignature, NormalizeOptions, WebhookRequest

SECRET = "s3cret"
NOW = 1_780_000_000


def request(body: bytes, ts: int = NOW, secret: str = SECRET, **headers: str) -> WebhookRequest:
    h = {
        "content-type": "application/json",
        "x-callbridge-timestamp": str(ts),
        "x-callbridge-signature": generic.sign(secret, ts, body),
    }
    h.update(headers)
    return WebhookRequest("POST", "https://example.test/webhooks/generic", h, body)


EVENT = {
    "event_id": "evt_123",
    "call_id": "c-42",
    "type": "call.ended",
    "occurred_at": "2026-03-03T15:04:05Z",
    "direction": "outbound",
    "from": "+18005550100",
    "to": "(415) 555-0142",
    "duration_ms": 124000,
    "recording_url": "https://rec.example/c-42.mp3",
    "notes": "Discussed renewal",
    "disposition": "connected",
    "agent": {"id": "u1", "email": "Agent@Example.com"},
    "contact_ids": ["101"],
}


def test_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    """v1= hex HMAC-SHA256(secret, "<ts>.<body>") verifies; the same body under another ts does not."""
    body = orjson.dumps(EVENT)
    generic.verify(request(body), SECRET, NOW)
    forged = request(body, ts=NOW)
    headers = dict(forged.headers, **{"x-callbridge-timestamp": str(NOW + 1)})
    with pytest.raises(InvalidSignature):
        generic.verify(WebhookRequest("POST", forged.url, headers, body), SECRET, NOW)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: WebhookRequest(r.method, r.url, r.headers, r.body + b" "),
        lambda r: WebhookRequest(
            r.method, r.url, {k: v for k, v in r.headers.items() if "signature" not in k}, r.body
        ),
        lambda r: WebhookRequest(
            r.method, r.url, {**r.headers, "x-callbridge-timestamp": "yesterday"}, r.body
        ),
    ],
    ids=["tampered_body", "missing_header", "non_numeric_timestamp"],
)
def test_tampering_is_refused(mutate) -> None:
    """A changed body, a missing signature or a bad timestamp header → InvalidSignature."""
    with pytest.raises(InvalidSignature):
        generic.verify(mutate(request(orjson.dumps(EVENT))), SECRET, NOW)


@pytest.mark.parametrize("skew", [-301, 301])
def test_timestamps_outside_300s_are_refused(skew: int) -> None:
    """A correctly signed request older (or newer) than 300 s is refused."""
    body = orjson.dumps(EVENT)
    with pytest.raises(InvalidSignature, match="300"):
        generic.verify(request(body, ts=NOW + skew), SECRET, NOW)
    generic.verify(request(body, ts=NOW + (skew - 1 if skew < 0 else skew + 1) // 2), SECRET, NOW)


def test_wrong_secret_is_refused() -> None:
    """Signed with another secret → InvalidSignature."""
    with pytest.raises(InvalidSignature):
        generic.verify(request(orjson.dumps(EVENT), secret="other"), SECRET, NOW)


def test_rotated_signatures_any_matching_one_is_accepted() -> None:
    """Several space-separated signatures (key rotation): one valid is enough."""
    body = orjson.dumps(EVENT)
    good = generic.sign(SECRET, NOW, body)
    req = request(body, **{"x-callbridge-signature": f"v1={'0' * 64} {good}"})
    generic.verify(req, SECRET, NOW)


def test_normalization_maps_every_field_to_hubspot_properties() -> None:
    """The documented generic event → exact HubSpot call properties and metadata."""
    options = NormalizeOptions(
        owner_map={"agent@example.com": "9001"}, external_account_id="acct-7"
    )
    [event] = generic.parse(request(orjson.dumps(EVENT)), options).events
    assert event.key == "generic:c-42"
    assert event.event_id == "evt_123"
    assert event.sequence == 1772550245000
    assert event.counterpart == "+14155550142"
    assert event.contact_ids == ["101"]
    assert event.properties == {
        "hs_call_external_id": "generic:c-42",
        "hs_call_external_account_id": "acct-7",
        "hs_call_source": "INTEGRATIONS_PLATFORM",
        "hs_timestamp": "2026-03-03T15:02:01.000Z",
        "hs_call_direction": "OUTBOUND",
        "hs_call_status": "COMPLETED",
        "hs_call_duration": "124000",
        "hs_call_from_number": "+18005550100",
        "hs_call_to_number": "+14155550142",
        "hs_call_recording_url": "https://rec.example/c-42.mp3",
        "hs_call_body": "Discussed renewal",
        "hs_call_disposition": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
        "hubspot_owner_id": "9001",
        "hs_call_title": "Outbound call to +14155550142",
    }


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("call.started", "CONNECTING"),
        ("call.ringing", "RINGING"),
        ("call.answered", "IN_PROGRESS"),
        ("call.ended", "COMPLETED"),
        ("call.recording", None),
        ("call.updated", None),
    ],
)
def test_event_type_implies_status(event_type: str, status: str | None) -> None:
    """Without an explicit status the event type sets hs_call_status (none for recording/updated)."""
    body = orjson.dumps({**EVENT, "type": event_type, "duration_ms": None})
    [event] = generic.parse(request(body), NormalizeOptions()).events
    assert event.properties.get("hs_call_status") == status


def test_explicit_status_wins_and_unknown_status_is_invalid() -> None:
    """status: NO_ANSWER overrides the type; an unknown status is InvalidEvent."""
    [event] = generic.parse(
        request(orjson.dumps({**EVENT, "status": "no_answer"})), NormalizeOptions()
    ).events
    assert event.properties["hs_call_status"] == "NO_ANSWER"
    with pytest.raises(InvalidEvent, match="unknown status"):
        generic.parse(request(orjson.dumps({**EVENT, "status": "LOST"})), NormalizeOptions())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_to_events_or_invalid_event(body: bytes) -> None:
    """Any body → events or InvalidEvent, never another exception."""
    try:
        generic.parse(request(body), NormalizeOptions())
    except InvalidEvent:
        pass


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(EVENT) + ["events", "status"]), json_values))
def test_any_json_object_parses_to_events_or_invalid_event(obj: dict[str, object]) -> None:
    """Any JSON object shaped like an event → events or InvalidEvent, never another exception."""
    try:
        generic.parse(request(orjson.dumps({**EVENT, **obj})), NormalizeOptions())
    except InvalidEvent:
        pass


@pytest.mark.parametrize("duration", [-1, 10**15, 2**63 - 1])
def test_out_of_range_durations_are_invalid(duration: int) -> None:
    """Negative or absurd durations (beyond 7 days) → InvalidEvent, not an overflow."""
    with pytest.raises(InvalidEvent, match="duration_ms"):
        generic.parse(request(orjson.dumps({**EVENT, "duration_ms": duration})), NormalizeOptions())
