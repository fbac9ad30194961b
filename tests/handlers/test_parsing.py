"""Parsing and lifecycle behaviour of the provider handlers beyond the normalization table:
irrelevant events, malformed bodies, status progression, options, provider edge cases."""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest

from handlers import (
    REGISTRY,
    InvalidEvent,
    NormalizeOptions,
    WebhookRequest,
    aircall,
    dialpad,
    ringcentral,
    twilio,
    vonage,
    zoom,
)
from service.model import STATUS_RANK, TERMINAL_STATUSES, CallEvent
from tests.handlers.signed import FIXTURES, Fixture, load, sign_fixture

SECRET = "s3cret-0123456789abcdef-0123456789"
OPTIONS = NormalizeOptions()


def events_of(fx: Fixture, options: NormalizeOptions = OPTIONS) -> list[CallEvent]:
    url = f"https://hooks.example.com/webhooks/{fx.provider}"
    request = sign_fixture(fx.provider, fx.name, SECRET, url, fx.now).webhook_request()
    return REGISTRY[fx.provider].parse(request, options).events


def json_request(payload: Any, url: str = "https://h/webhooks/x") -> WebhookRequest:
    return WebhookRequest("POST", url, {"content-type": "application/json"}, orjson.dumps(payload))


def fixture_json(provider: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(load(provider, name))
    return data


PARSED = [f for f in FIXTURES if not (f.provider == "zoom" and f.handshake)]


@pytest.mark.parametrize("fx", PARSED, ids=lambda f: f.id)
def test_fixture_produces_its_events_under_its_call_key(fx: Fixture) -> None:
    """Each fixture yields the expected number of events, all under its call key."""
    events = events_of(fx)
    assert len(events) == fx.events
    assert {e.key for e in events} <= {fx.call_key}


@pytest.mark.parametrize("fx", [f for f in PARSED if f.events], ids=lambda f: f.id)
def test_every_event_carries_the_properties_hubspot_requires(fx: Fixture) -> None:
    """Every event has hs_timestamp, the external id/source, string values only."""
    for event in events_of(fx):
        props = event.properties
        assert props["hs_timestamp"].endswith("Z")
        assert props["hs_call_external_id"] == event.key
        assert props["hs_call_source"] == "INTEGRATIONS_PLATFORM"
        assert all(isinstance(v, str) and v for v in props.values())
        assert props.get("hs_call_status", "COMPLETED") in STATUS_RANK


def test_event_ids_are_deterministic_and_distinct() -> None:
    """Redelivering a fixture yields the same event id; different events never collide."""
    ids: dict[str, str] = {}
    for fx in PARSED:
        if fx.name == "status_completed_json":
            continue  # the same Twilio callback as status_completed, JSON-encoded
        for event in events_of(fx):
            assert [e.event_id for e in events_of(fx)].count(event.event_id) == 1
            assert ids.setdefault(f"{event.key}|{event.event_id}", fx.id) == fx.id


def test_twilio_json_variant_is_the_same_event_as_the_form_one() -> None:
    """The JSON-encoded callback normalizes exactly like the form-encoded one."""
    form, as_json = (
        events_of(next(f for f in FIXTURES if f.id == f"twilio/{name}"))
        for name in ("status_completed", "status_completed_json")
    )
    assert form == as_json


def test_status_progression_never_goes_back_and_ends_terminal() -> None:
    """Along each call's lifecycle fixtures the status rank never decreases, ending terminal."""
    calls: dict[str, list[str]] = defaultdict(list)
    for fx in PARSED:
        for event in events_of(fx):
            if "hs_call_status" in event.properties:
                calls[event.key].append(event.properties["hs_call_status"])
    assert len(calls) >= 12
    for key, statuses in calls.items():
        ranks = [STATUS_RANK[s] for s in statuses]
        assert ranks == sorted(ranks), key
        assert statuses[-1] in TERMINAL_STATUSES, key


def test_hs_timestamp_of_later_events_is_never_before_the_first() -> None:
    """No later event of a call claims an earlier hs_timestamp than its first event."""
    first: dict[str, str] = {}
    for fx in PARSED:
        for event in events_of(fx):
            first.setdefault(event.key, event.properties["hs_timestamp"])
            assert first[event.key] <= event.properties["hs_timestamp"], fx.id


# --- malformed bodies -> InvalidEvent ------------------------------------------------------------

MALFORMED: list[tuple[str, WebhookRequest]] = [
    ("twilio", WebhookRequest("POST", "u", {}, b"From=%2B1&CallStatus=completed")),  # no CallSid
    ("twilio", WebhookRequest("POST", "u", {}, b"CallSid=CA1&CallStatus=exploded&Timestamp=x")),
    ("twilio", WebhookRequest("POST", "u", {}, b"CallSid=CA1&CallStatus=ringing")),  # no Timestamp
    ("twilio", WebhookRequest("POST", "u", {}, b"CallSid=CA1&CallStatus=ringing&Timestamp=soon")),
    ("twilio", WebhookRequest("POST", "u", {}, b"CallSid=%ff&CallStatus=ringing")),
    ("twilio", json_request(["CallSid", "CA1"])),
    ("aircall", WebhookRequest("POST", "u", {}, b"{not json")),
    ("aircall", json_request({"event": "call.ended", "timestamp": 1, "data": {"direction": "x"}})),
    ("aircall", json_request({"event": "call.ended", "timestamp": "noon", "data": {"id": 1}})),
    ("aircall", json_request({"event": "call.ended", "timestamp": 1})),
    (
        "aircall",
        json_request({"event": "call.ended", "timestamp": 1, "data": {"id": 1, "duration": -5}}),
    ),
    ("zoom", json_request({"event": "phone.callee_ended", "payload": {"object": {"caller": {}}}})),
    ("zoom", json_request({"event": "phone.callee_ended", "payload": {}})),
    (
        "zoom",
        json_request({"event": "phone.callee_ended", "payload": {"object": {"call_id": "1"}}}),
    ),
    ("zoom", json_request({"payload": {"object": {"call_id": "1"}}})),
    ("ringcentral", json_request({"uuid": "u", "body": {"eventTime": "2026-03-03T17:00:00Z"}})),
    (
        "ringcentral",
        json_request(
            {
                "uuid": "u",
                "body": {
                    "telephonySessionId": "s",
                    "eventTime": "2026-03-03T17:00:00Z",
                    "parties": [],
                },
            }
        ),
    ),
    (
        "ringcentral",
        json_request(
            {"uuid": " ", "body": {"telephonySessionId": "s", "eventTime": "2026-03-03T17:00:00Z"}}
        ),
    ),
    ("vonage", json_request({"status": "ringing", "timestamp": "2026-03-03T15:04:06Z"})),  # no uuid
    ("vonage", json_request({"status": "ringing", "uuid": "u"})),  # no timestamp
    (
        "vonage",
        json_request(
            {
                "status": "completed",
                "uuid": "u",
                "timestamp": "2026-03-03T15:04:06Z",
                "duration": "long",
            }
        ),
    ),
    ("vonage", WebhookRequest("POST", "u", {}, b"[]")),
    ("dialpad", WebhookRequest("POST", "u", {}, b'{"call_id": 1, "state": "hangup"}')),  # not a JWT
    ("dialpad", WebhookRequest("POST", "u", {}, dialpad.sign(SECRET, {"state": "hangup"}))),
    (
        "dialpad",
        WebhookRequest("POST", "u", {}, dialpad.sign(SECRET, {"call_id": 1, "state": "ringing"})),
    ),
]


@pytest.mark.parametrize(
    ("provider", "request_"), MALFORMED, ids=lambda x: x if isinstance(x, str) else ""
)
def test_malformed_payload_is_invalid_event(provider: str, request_: WebhookRequest) -> None:
    """A body that can never become a call event raises InvalidEvent (answered 400)."""
    with pytest.raises(InvalidEvent):
        REGISTRY[provider].parse(request_, OPTIONS)


# --- options -----------------------------------------------------------------------------------


def test_account_disposition_mapping_overrides_the_defaults() -> None:
    """A configured outcome GUID replaces HubSpot's default for the same label."""
    custom = "11111111-2222-3333-4444-555555555555"
    options = NormalizeOptions(dispositions={**OPTIONS.dispositions, "connected": custom})
    (event,) = events_of(next(f for f in FIXTURES if f.id == "zoom/callee_ended"), options)
    assert event.properties["hs_call_disposition"] == custom


def test_default_region_turns_national_numbers_into_e164() -> None:
    """National-format numbers are read in the configured default region."""
    payload = fixture_json("aircall", "call_created")
    payload["data"]["raw_digits"] = "020 7946 0018"
    payload["data"]["number"]["digits"] = "0161 496 0000"
    request = json_request(payload)
    (event,) = aircall.parse(request, NormalizeOptions(default_region="GB")).events
    assert event.properties["hs_call_from_number"] == "+442079460018"
    assert event.properties["hs_call_to_number"] == "+441614960000"
    assert event.counterpart == "+442079460018"


def test_owner_map_matches_agent_email_case_insensitively() -> None:
    """The agent e-mail finds its HubSpot owner whatever its case in the owner map."""
    payload = fixture_json("dialpad", "connected")
    payload["target"]["email"] = "Alice@Example.com"
    request = WebhookRequest("POST", "u", {}, dialpad.sign(SECRET, payload))
    options = NormalizeOptions(owner_map={"alice@example.com": "77"})
    (event,) = dialpad.parse(request, options).events
    assert event.properties["hubspot_owner_id"] == "77"


# --- provider specifics ------------------------------------------------------------------------


def _twilio(params: dict[str, str]) -> WebhookRequest:
    body = urlencode(params).encode()
    return WebhookRequest("POST", "u", {"content-type": "application/x-www-form-urlencoded"}, body)


TWILIO_BASE = {
    "CallSid": "CA1",
    "Timestamp": "Tue, 03 Mar 2026 15:06:16 +0000",
    "SequenceNumber": "3",
}


def test_twilio_client_endpoint_is_the_agent_and_not_a_number() -> None:
    """``client:alice`` is the agent (owner lookup), never written as a phone number."""
    params = {
        **TWILIO_BASE,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "From": "+14155550142",
        "To": "client:alice",
    }
    options = NormalizeOptions(owner_map={"alice": "42"})
    (event,) = twilio.parse(_twilio(params), options).events
    assert event.properties["hubspot_owner_id"] == "42"
    assert "hs_call_to_number" not in event.properties
    assert event.properties["hs_call_title"] == "Inbound call from +14155550142 (alice)"


def test_twilio_answering_machine_is_left_voicemail() -> None:
    """A completed call answered by a machine gets the 'left voicemail' outcome."""
    params = {
        **TWILIO_BASE,
        "CallStatus": "completed",
        "CallDuration": "20",
        "Direction": "outbound-api",
        "AnsweredBy": "machine_end_beep",
    }
    (event,) = twilio.parse(_twilio(params), OPTIONS).events
    assert event.properties["hs_call_disposition"] == OPTIONS.dispositions["left voicemail"]


def test_twilio_recording_not_completed_produces_nothing() -> None:
    """Only a completed recording adds a recording URL; in-progress/failed ones add nothing."""
    params = {
        "CallSid": "CA1",
        "RecordingSid": "RE1",
        "RecordingStatus": "in-progress",
        "RecordingUrl": "https://api.twilio.com/x/RE1",
        "RecordingStartTime": "Tue, 03 Mar 2026 15:04:13 +0000",
    }
    assert twilio.parse(_twilio(params), OPTIONS).events == []


def test_twilio_callback_without_status_or_recording_produces_nothing() -> None:
    """A Twilio request that is neither a status nor a recording callback is irrelevant."""
    assert twilio.parse(_twilio({"CallSid": "CA1", "Digits": "1"}), OPTIONS).events == []


def test_twilio_status_without_sequence_number_orders_by_time() -> None:
    """Without SequenceNumber the event time (ms) orders and the status dedupes."""
    params = {
        "CallSid": "CA1",
        "CallStatus": "completed",
        "Timestamp": "Tue, 03 Mar 2026 15:06:16 +0000",
    }
    (event,) = twilio.parse(_twilio(params), OPTIONS).events
    assert event.sequence == 1772550376000
    assert event.event_id == "CA1:completed"


def test_aircall_unanswered_inbound_call_is_missed() -> None:
    """An inbound call that ends without ``answered_at`` is MISSED with 'no answer'."""
    payload = fixture_json("aircall", "call_hungup")
    payload["data"]["answered_at"] = None
    (event,) = aircall.parse(json_request(payload), OPTIONS).events
    assert event.properties["hs_call_status"] == "MISSED"
    assert event.properties["hs_call_disposition"] == OPTIONS.dispositions["no answer"]


def test_zoom_callee_ended_without_answer_is_missed() -> None:
    """``phone.callee_ended`` without an answer time means the inbound call was missed."""
    payload = fixture_json("zoom", "callee_ended")
    del payload["payload"]["object"]["answer_start_time"]
    (event,) = zoom.parse(json_request(payload), OPTIONS).events
    assert event.properties["hs_call_status"] == "MISSED"
    assert "hs_call_duration" not in event.properties


def test_zoom_items_that_name_no_call_are_skipped() -> None:
    """Call logs, recordings and voicemails without ``call_id`` cannot be tied to a call."""
    for name, path in (
        ("callee_call_log_completed", ("call_logs", 0)),
        ("recording_completed", ("recordings", 0)),
    ):
        payload = fixture_json("zoom", name)
        del payload["payload"]["object"][path[0]][path[1]]["call_id"]
        assert zoom.parse(json_request(payload), OPTIONS).events == []
    payload = fixture_json("zoom", "voicemail_received")
    del payload["payload"]["object"]["call_id"]
    assert zoom.parse(json_request(payload), OPTIONS).events == []


@pytest.mark.parametrize(
    ("reason", "direction", "missed", "status"),
    [
        ("TargetBusy", "Outbound", False, "BUSY"),
        ("Cancelled", "Outbound", False, "CANCELED"),
        ("InvalidNumber", "Outbound", False, "FAILED"),
        ("NoAnswer", "Outbound", False, "NO_ANSWER"),
        (None, "Outbound", True, "NO_ANSWER"),
        (None, "Inbound", True, "MISSED"),
        ("CallFinished", "Inbound", False, "COMPLETED"),
    ],
)
def test_ringcentral_disconnect_reason_decides_the_final_status(
    reason: str | None, direction: str, missed: bool, status: str
) -> None:
    """A Disconnected party's reason / missedCall flag maps to the terminal status."""
    payload = fixture_json("ringcentral", "disconnected")
    party = payload["body"]["parties"][0]
    party["direction"], party["missedCall"] = direction, missed
    if reason:
        party["status"]["reason"] = reason
    (event,) = ringcentral.parse(json_request(payload), OPTIONS).events
    assert event.properties["hs_call_status"] == status


def test_ringcentral_statuses_without_meaning_for_the_call_produce_nothing() -> None:
    """Party statuses like ``Gone`` (transferred away) say nothing about the call."""
    payload = fixture_json("ringcentral", "disconnected")
    payload["body"]["parties"][0]["status"] = {"code": "Gone"}
    assert ringcentral.parse(json_request(payload), OPTIONS).events == []


def test_vonage_record_event_takes_the_call_from_body_or_url() -> None:
    """A record event is tied to the call by its ``uuid``, else the URL's ``uuid`` query."""
    payload = fixture_json("vonage", "record")
    assert vonage.parse(json_request(payload), OPTIONS).events == []
    (by_url,) = vonage.parse(
        json_request(payload, "https://h/webhooks/vonage?uuid=u-1"), OPTIONS
    ).events
    assert by_url.key == "vonage:u-1"
    (by_body,) = vonage.parse(json_request({**payload, "uuid": "u-2"}), OPTIONS).events
    assert by_body.key == "vonage:u-2"


def test_vonage_machine_detection_and_other_events_produce_nothing() -> None:
    """Machine-detection, transfer and input events are valid but irrelevant."""
    for payload in (
        {"call_uuid": "u", "status": "machine", "timestamp": "2026-03-03T15:04:06Z"},
        fixture_json("vonage", "transfer"),
        {"uuid": "u", "dtmf": {"digits": "1"}, "timestamp": "2026-03-03T15:04:06Z"},
    ):
        assert vonage.parse(json_request(payload), OPTIONS).events == []


def test_vonage_completed_without_start_time_derives_it_from_the_duration() -> None:
    """``hs_timestamp`` falls back to end time minus duration when start_time is absent."""
    payload = fixture_json("vonage", "completed")
    del payload["start_time"]
    (event,) = vonage.parse(json_request(payload), OPTIONS).events
    assert event.properties["hs_timestamp"] == "2026-03-03T15:04:12.000Z"


def test_dialpad_recording_details_give_the_url_when_recording_url_is_absent() -> None:
    """The recording URL comes from ``recording_details`` when ``recording_url`` is missing."""
    payload = fixture_json("dialpad", "recording")
    del payload["recording_url"]
    request = WebhookRequest("POST", "u", {}, dialpad.sign(SECRET, payload))
    (event,) = dialpad.parse(request, OPTIONS).events
    assert event.properties["hs_call_recording_url"] == "https://dialpad.com/r/5183021485457408"
