"""The normalization table: each documented-example payload → the exact HubSpot properties.

Every expected value below was checked by hand against PROVIDERS.md's mapping: status and
disposition per lifecycle event, ``hs_timestamp`` the call's best known start, durations in
milliseconds, numbers in E.164, the customer as counterpart, owners from the owner map.
"""

from __future__ import annotations

from typing import Any

import pytest

from handlers import REGISTRY, NormalizeOptions
from tests.handlers.signed import FIXTURES, fixture, sign_fixture

SECRET = "x" * 32
OPTIONS = NormalizeOptions(
    external_account_id="acct-1",
    owner_map={
        "alice@example.com": "9001",  # Aircall / Dialpad agent e-mail
        "DnEopNmXQEGU2uvvzjgojw": "9002",  # Zoom user id
        "62264425008": "9003",  # RingCentral extension id
    },
)
CONNECTED = "f240bbac-87c9-4f6e-bf70-924b57d47db7"
BUSY = "9d9162e7-6cf3-4944-bf63-4dff82258764"
NO_ANSWER = "73a0d17f-1163-4015-bdd5-ec830791da20"
LEFT_VOICEMAIL = "b2cf5968-551e-4856-9783-52b3da59a7d0"

#: fixture id → (event metadata, properties beyond the three every event carries).
TABLE: dict[str, tuple[dict[str, Any], dict[str, str]]] = {
    "twilio/status_initiated": (
        {
            "event_id": "CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b:0",
            "type": "status.initiated",
            "occurred_at": "2026-03-03T15:04:05.000Z",
            "sequence": 0,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "CONNECTING",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
        },
    ),
    "twilio/status_ringing": (
        {
            "event_id": "CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b:1",
            "type": "status.ringing",
            "occurred_at": "2026-03-03T15:04:06.000Z",
            "sequence": 1,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "RINGING",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:06.000Z",
        },
    ),
    "twilio/status_answered": (
        {
            "event_id": "CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b:2",
            "type": "status.in-progress",
            "occurred_at": "2026-03-03T15:04:12.000Z",
            "sequence": 2,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "IN_PROGRESS",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:12.000Z",
        },
    ),
    "twilio/status_completed": (
        {
            "event_id": "CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b:3",
            "type": "status.completed",
            "occurred_at": "2026-03-03T15:06:16.000Z",
            "sequence": 3,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "124000",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:12.000Z",
        },
    ),
    "twilio/recording_completed": (
        {
            "event_id": "CA5f0e6a2b9c1d4e3f8a7b6c5d4e3f2a1b:RE6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a:completed",
            "type": "recording.completed",
            "occurred_at": "2026-03-03T15:04:13.000Z",
            "sequence": 1772550253000,
            "counterpart": None,
        },
        {
            "hs_call_recording_url": "https://api.twilio.com/2010-04-01/Accounts/ACf3b2a1e0d9c8b7a6f5e4d3c2b1a09876/Recordings/RE6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a.mp3",
            "hs_timestamp": "2026-03-03T15:04:13.000Z",
        },
    ),
    "twilio/status_busy": (
        {
            "event_id": "CA1234567890abcdef1234567890abcdef:2",
            "type": "status.busy",
            "occurred_at": "2026-03-03T16:00:09.000Z",
            "sequence": 2,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": BUSY,
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "BUSY",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T16:00:09.000Z",
        },
    ),
    "twilio/status_inbound_no_answer": (
        {
            "event_id": "CA9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a:2",
            "type": "status.no-answer",
            "occurred_at": "2026-03-03T17:00:30.000Z",
            "sequence": 2,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": NO_ANSWER,
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "NO_ANSWER",
            "hs_call_title": "Inbound call from +12125550199",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:30.000Z",
        },
    ),
    "aircall/call_created": (
        {
            "event_id": "812345678:call.created:1772550245000",
            "type": "call.created",
            "occurred_at": "2026-03-03T15:04:05.000Z",
            "sequence": 1772550245000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "CONNECTING",
            "hs_call_title": "Inbound call from +12125550199",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
        },
    ),
    "aircall/call_ringing_on_agent": (
        {
            "event_id": "812345678:call.ringing_on_agent:1772550246000",
            "type": "call.ringing_on_agent",
            "occurred_at": "2026-03-03T15:04:06.000Z",
            "sequence": 1772550246000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "RINGING",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "aircall/call_answered": (
        {
            "event_id": "812345678:call.answered:1772550252000",
            "type": "call.answered",
            "occurred_at": "2026-03-03T15:04:12.000Z",
            "sequence": 1772550252000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "IN_PROGRESS",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "aircall/call_hungup": (
        {
            "event_id": "812345678:call.hungup:1772550376000",
            "type": "call.hungup",
            "occurred_at": "2026-03-03T15:06:16.000Z",
            "sequence": 1772550376000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "131000",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "aircall/call_ended": (
        {
            "event_id": "812345678:call.ended:1772550406000",
            "type": "call.ended",
            "occurred_at": "2026-03-03T15:06:46.000Z",
            "sequence": 1772550406000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "131000",
            "hs_call_from_number": "+12125550199",
            "hs_call_recording_url": "https://aircall-recordings.s3.amazonaws.com/calls/812345678/recording.mp3",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "aircall/call_commented": (
        {
            "event_id": "812345678:call.commented:1772550500000",
            "type": "call.commented",
            "occurred_at": "2026-03-03T15:08:20.000Z",
            "sequence": 1772550500000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_body": "Comments:\n- Wants a quote for 20 seats",
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "aircall/call_tagged": (
        {
            "event_id": "812345678:call.tagged:1772550510000",
            "type": "call.tagged",
            "occurred_at": "2026-03-03T15:08:30.000Z",
            "sequence": 1772550510000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_body": "Comments:\n- Wants a quote for 20 seats\nTags: Hot lead",
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "aircall/call_voicemail_left": (
        {
            "event_id": "812345999:call.voicemail_left:1772557290000",
            "type": "call.voicemail_left",
            "occurred_at": "2026-03-03T17:01:30.000Z",
            "sequence": 1772557290000,
            "counterpart": "+16465550123",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": LEFT_VOICEMAIL,
            "hs_call_duration": "60000",
            "hs_call_from_number": "+16465550123",
            "hs_call_recording_url": "https://aircall-voicemails.s3.amazonaws.com/calls/812345999/voicemail.mp3",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +16465550123",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
        },
    ),
    "aircall/call_outbound_hungup_unanswered": (
        {
            "event_id": "812346100:call.hungup:1772560030000",
            "type": "call.hungup",
            "occurred_at": "2026-03-03T17:47:10.000Z",
            "sequence": 1772560030000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": NO_ANSWER,
            "hs_call_duration": "30000",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "NO_ANSWER",
            "hs_call_title": "Outbound call to +12125550199 (Alice Agent)",
            "hs_call_to_number": "+12125550199",
            "hs_timestamp": "2026-03-03T17:46:40.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "zoom/caller_ringing": (
        {
            "event_id": "7236018743962338571:phone.caller_ringing:1772550245120",
            "type": "phone.caller_ringing",
            "occurred_at": "2026-03-03T15:04:05.000Z",
            "sequence": 1772550245120,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "RINGING",
            "hs_call_title": "Outbound call to +14155550142 (Alice Agent)",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/caller_connected": (
        {
            "event_id": "7236018743962338571:phone.caller_connected:1772550252300",
            "type": "phone.caller_connected",
            "occurred_at": "2026-03-03T15:04:12.000Z",
            "sequence": 1772550252300,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "IN_PROGRESS",
            "hs_call_title": "Outbound call to +14155550142 (Alice Agent)",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/caller_ended": (
        {
            "event_id": "7236018743962338571:phone.caller_ended:1772550376450",
            "type": "phone.caller_ended",
            "occurred_at": "2026-03-03T15:06:16.000Z",
            "sequence": 1772550376450,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "124000",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Outbound call to +14155550142 (Alice Agent)",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:05.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/callee_ringing": (
        {
            "event_id": "7236018812345678901:phone.callee_ringing:1772557200100",
            "type": "phone.callee_ringing",
            "occurred_at": "2026-03-03T17:00:00.000Z",
            "sequence": 1772557200100,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "RINGING",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/callee_answered": (
        {
            "event_id": "7236018812345678901:phone.callee_answered:1772557206200",
            "type": "phone.callee_answered",
            "occurred_at": "2026-03-03T17:00:06.000Z",
            "sequence": 1772557206200,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "IN_PROGRESS",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/callee_ended": (
        {
            "event_id": "7236018812345678901:phone.callee_ended:1772557290300",
            "type": "phone.callee_ended",
            "occurred_at": "2026-03-03T17:01:30.000Z",
            "sequence": 1772557290300,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "84000",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/callee_call_log_completed": (
        {
            "event_id": "7236018812345678901:phone.callee_call_log_completed:e8f5c9a4-0b2b-4bd6-9c3a-1d0c1f4f3a77",
            "type": "phone.callee_call_log_completed",
            "occurred_at": "2026-03-03T17:00:00.000Z",
            "sequence": 1772557400000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "84000",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/recording_completed": (
        {
            "event_id": "7236018812345678901:phone.recording_completed:a4c2f0d2e2bb4b6d9d1a0d8d8b1b6f10",
            "type": "phone.recording_completed",
            "occurred_at": "2026-03-03T17:00:06.000Z",
            "sequence": 1772557500000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_recording_url": "https://zoom.us/v2/phone/recording/download/a4c2f0d2e2bb4b6d9d1a0d8d8b1b6f10",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:06.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/callee_missed": (
        {
            "event_id": "7236018899999999999:phone.callee_missed:1772560030400",
            "type": "phone.callee_missed",
            "occurred_at": "2026-03-03T18:00:30.000Z",
            "sequence": 1772560030400,
            "counterpart": "+16465550123",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": NO_ANSWER,
            "hs_call_from_number": "+16465550123",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +16465550123 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T18:00:00.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "zoom/voicemail_received": (
        {
            "event_id": "7236018899999999999:phone.voicemail_received:0f2a7c10d8a84d1e9f3b9bcd2a1c8e11",
            "type": "phone.voicemail_received",
            "occurred_at": "2026-03-03T18:00:30.000Z",
            "sequence": 1772560100000,
            "counterpart": "+16465550123",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": LEFT_VOICEMAIL,
            "hs_call_from_number": "+16465550123",
            "hs_call_recording_url": "https://zoom.us/v2/phone/voice_mails/download/0f2a7c10d8a84d1e9f3b9bcd2a1c8e11",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +16465550123 (Alice Agent)",
            "hs_timestamp": "2026-03-03T18:00:30.000Z",
            "hubspot_owner_id": "9002",
        },
    ),
    "ringcentral/setup": (
        {
            "event_id": "2483762914671234567",
            "type": "party.Setup",
            "occurred_at": "2026-03-03T17:00:00.118Z",
            "sequence": 1,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "CONNECTING",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.118Z",
            "hubspot_owner_id": "9003",
        },
    ),
    "ringcentral/proceeding": (
        {
            "event_id": "2483762914671234568",
            "type": "party.Proceeding",
            "occurred_at": "2026-03-03T17:00:00.410Z",
            "sequence": 2,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "RINGING",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.410Z",
            "hubspot_owner_id": "9003",
        },
    ),
    "ringcentral/answered": (
        {
            "event_id": "2483762914671234569",
            "type": "party.Answered",
            "occurred_at": "2026-03-03T17:00:06.006Z",
            "sequence": 4,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "IN_PROGRESS",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:06.006Z",
            "hubspot_owner_id": "9003",
        },
    ),
    "ringcentral/disconnected": (
        {
            "event_id": "2483762914671234570",
            "type": "party.Disconnected",
            "occurred_at": "2026-03-03T17:01:30.250Z",
            "sequence": 7,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:01:30.250Z",
            "hubspot_owner_id": "9003",
        },
    ),
    "ringcentral/voicemail": (
        {
            "event_id": "2483762914671235001",
            "type": "party.VoiceMail",
            "occurred_at": "2026-03-03T18:00:30.120Z",
            "sequence": 5,
            "counterpart": "+16465550123",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": LEFT_VOICEMAIL,
            "hs_call_from_number": "+16465550123",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +16465550123 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T18:00:30.120Z",
            "hubspot_owner_id": "9003",
        },
    ),
    "ringcentral/missed": (
        {
            "event_id": "2483762914671235002",
            "type": "party.Disconnected",
            "occurred_at": "2026-03-03T18:01:02.870Z",
            "sequence": 8,
            "counterpart": "+16465550123",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": NO_ANSWER,
            "hs_call_from_number": "+16465550123",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +16465550123 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T18:01:02.870Z",
            "hubspot_owner_id": "9003",
        },
    ),
    "vonage/started": (
        {
            "event_id": "63f61863-4a51-4f6b-86e1-46edebcf9356:started",
            "type": "status.started",
            "occurred_at": "2026-03-03T15:04:05.012Z",
            "sequence": 1772550245012,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "CONNECTING",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:05.012Z",
        },
    ),
    "vonage/ringing": (
        {
            "event_id": "63f61863-4a51-4f6b-86e1-46edebcf9356:ringing",
            "type": "status.ringing",
            "occurred_at": "2026-03-03T15:04:06.104Z",
            "sequence": 1772550246104,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "RINGING",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:06.104Z",
        },
    ),
    "vonage/answered": (
        {
            "event_id": "63f61863-4a51-4f6b-86e1-46edebcf9356:answered",
            "type": "status.answered",
            "occurred_at": "2026-03-03T15:04:12.322Z",
            "sequence": 1772550252322,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "IN_PROGRESS",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:12.322Z",
        },
    ),
    "vonage/completed": (
        {
            "event_id": "63f61863-4a51-4f6b-86e1-46edebcf9356:completed",
            "type": "status.completed",
            "occurred_at": "2026-03-03T15:06:16.488Z",
            "sequence": 1772550376488,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "124000",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T15:04:12.000Z",
        },
    ),
    "vonage/record": (
        {
            "event_id": "63f61863-4a51-4f6b-86e1-46edebcf9356:record:eeeeeeee-ffff-0000-1111-0123456789ab",
            "type": "record",
            "occurred_at": "2026-03-03T15:06:17.020Z",
            "sequence": 1772550377020,
            "counterpart": None,
        },
        {
            "hs_call_recording_url": "https://api.nexmo.com/v1/files/eeeeeeee-ffff-0000-1111-0123456789ab",
            "hs_timestamp": "2026-03-03T15:04:13.000Z",
        },
    ),
    "vonage/busy": (
        {
            "event_id": "aaaaaaaa-bbbb-cccc-dddd-0123456789ab:busy",
            "type": "status.busy",
            "occurred_at": "2026-03-03T16:00:09.900Z",
            "sequence": 1772553609900,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": BUSY,
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "BUSY",
            "hs_call_title": "Outbound call to +14155550142",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T16:00:09.900Z",
        },
    ),
    "vonage/unanswered_inbound": (
        {
            "event_id": "bbbbbbbb-cccc-dddd-eeee-0123456789ab:unanswered",
            "type": "status.unanswered",
            "occurred_at": "2026-03-03T17:00:30.000Z",
            "sequence": 1772557230000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": NO_ANSWER,
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +12125550199",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:30.000Z",
        },
    ),
    "dialpad/calling": (
        {
            "event_id": "6243961938313216:calling:1772557200120",
            "type": "calling",
            "occurred_at": "2026-03-03T17:00:00.120Z",
            "sequence": 1772557200120,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "CONNECTING",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/ringing": (
        {
            "event_id": "6243961938313216:ringing:1772557200360",
            "type": "ringing",
            "occurred_at": "2026-03-03T17:00:00.360Z",
            "sequence": 1772557200360,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "RINGING",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/connected": (
        {
            "event_id": "6243961938313216:connected:1772557206010",
            "type": "connected",
            "occurred_at": "2026-03-03T17:00:06.010Z",
            "sequence": 1772557206010,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "IN_PROGRESS",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/hangup": (
        {
            "event_id": "6243961938313216:hangup:1772557290200",
            "type": "hangup",
            "occurred_at": "2026-03-03T17:01:30.200Z",
            "sequence": 1772557290200,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": CONNECTED,
            "hs_call_duration": "84017",
            "hs_call_from_number": "+12125550199",
            "hs_call_status": "COMPLETED",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/recording": (
        {
            "event_id": "6243961938313216:recording:1772557295500",
            "type": "recording",
            "occurred_at": "2026-03-03T17:01:35.500Z",
            "sequence": 1772557295500,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_recording_url": "https://dialpad.com/r/5183021485457408",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/transcription": (
        {
            "event_id": "6243961938313216:transcription:1772557320000",
            "type": "transcription",
            "occurred_at": "2026-03-03T17:02:00.000Z",
            "sequence": 1772557320000,
            "counterpart": "+12125550199",
        },
        {
            "hs_call_body": "Transcription:\nAlice: Thanks for calling, how can I help?\nCaller: I'd like a quote for 20 seats.",
            "hs_call_direction": "INBOUND",
            "hs_call_from_number": "+12125550199",
            "hs_call_title": "Inbound call from +12125550199 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:00:00.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/missed": (
        {
            "event_id": "4871190391152640:missed:1772560030000",
            "type": "missed",
            "occurred_at": "2026-03-03T17:47:10.000Z",
            "sequence": 1772560030000,
            "counterpart": "+16465550123",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": NO_ANSWER,
            "hs_call_from_number": "+16465550123",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +16465550123 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:46:40.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/voicemail": (
        {
            "event_id": "4871190391152640:voicemail:1772560062000",
            "type": "voicemail",
            "occurred_at": "2026-03-03T17:47:42.000Z",
            "sequence": 1772560062000,
            "counterpart": "+16465550123",
        },
        {
            "hs_call_direction": "INBOUND",
            "hs_call_disposition": LEFT_VOICEMAIL,
            "hs_call_from_number": "+16465550123",
            "hs_call_recording_url": "https://dialpad.com/v/4871190391152640",
            "hs_call_status": "MISSED",
            "hs_call_title": "Inbound call from +16465550123 (Alice Agent)",
            "hs_call_to_number": "+14155550100",
            "hs_timestamp": "2026-03-03T17:46:40.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
    "dialpad/outbound_hangup_unanswered": (
        {
            "event_id": "5871190391150000:hangup:1772563630000",
            "type": "hangup",
            "occurred_at": "2026-03-03T18:47:10.000Z",
            "sequence": 1772563630000,
            "counterpart": "+14155550142",
        },
        {
            "hs_call_direction": "OUTBOUND",
            "hs_call_disposition": NO_ANSWER,
            "hs_call_duration": "30000",
            "hs_call_from_number": "+14155550100",
            "hs_call_status": "NO_ANSWER",
            "hs_call_title": "Outbound call to +14155550142 (Alice Agent)",
            "hs_call_to_number": "+14155550142",
            "hs_timestamp": "2026-03-03T18:46:40.000Z",
            "hubspot_owner_id": "9001",
        },
    ),
}
# Twilio's JSON variant (bodySHA256) carries the same call: it must normalize identically.
TABLE["twilio/status_completed_json"] = TABLE["twilio/status_completed"]


def _parse(fixture_id: str) -> list[Any]:
    fx = fixture(*fixture_id.split("/"))
    signed = sign_fixture(
        fx.provider, fx.name, SECRET, f"https://hooks.example.com/webhooks/{fx.provider}", fx.now
    )
    return REGISTRY[fx.provider].parse(signed.webhook_request(), OPTIONS).events


def test_table_covers_every_fixture_with_events() -> None:
    """Every fixture that produces an event has its exact expected properties in the table."""
    assert set(TABLE) == {fx.id for fx in FIXTURES if fx.events}


@pytest.mark.parametrize("fixture_id", sorted(TABLE))
def test_payload_normalizes_to_exact_hubspot_properties(fixture_id: str) -> None:
    """A documented payload becomes exactly the expected HubSpot properties and metadata."""
    meta, expected = TABLE[fixture_id]
    (event,) = _parse(fixture_id)
    fx = fixture(*fixture_id.split("/"))
    assert event.key == fx.call_key
    assert event.properties == {
        "hs_call_external_id": fx.call_key,
        "hs_call_source": "INTEGRATIONS_PLATFORM",
        "hs_call_external_account_id": "acct-1",
        **expected,
    }
    assert {
        "event_id": event.event_id,
        "type": event.type,
        "occurred_at": event.occurred_at,
        "sequence": event.sequence,
        "counterpart": event.counterpart,
    } == meta
