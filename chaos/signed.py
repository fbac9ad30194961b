"""Signed-request builders for every provider, each payload and signature the provider's own
way, and each provider's call lifecycle (the events it sends for a call, in order).

Twilio: form body, ``X-Twilio-Signature`` HMAC-SHA1 of URL + sorted params; Aircall: the
token in the body; Zoom: ``v0`` HMAC-SHA256 over the request timestamp and body;
RingCentral: ``Verification-Token``; Vonage: HS256 JWT with ``payload_hash`` and a one-time
``jti``; Dialpad: the body is an HS256 JWT; generic: ``v1`` HMAC-SHA256 of
``<timestamp>.<body>``.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import orjson

from chaos.calls import LINE, SECRETS, Call, Event, Request, iso, rfc2822
from handlers import dialpad, generic, twilio, vonage, zoom


def _generic(ev: Event, t0: float, now: float) -> Request:
    c = ev.call
    at = t0 + ev.at_rel
    body: dict[str, Any] = {
        "event_id": f"{c.call_id}:{ev.name}",
        "call_id": c.call_id,
        "type": ev.name,
        "occurred_at": iso(at),
        "direction": c.direction.lower(),
        "from": c.counterpart if c.direction == "INBOUND" else LINE,
        "to": LINE if c.direction == "INBOUND" else c.counterpart,
    }
    if ev.name == "call.ended":
        if c.answered:
            body["duration_ms"] = c.talk_s * 1000
        else:
            body["status"] = "MISSED" if c.direction == "INBOUND" else "NO_ANSWER"
    if c.title:
        body["title"] = c.title
    if c.contact_ids:
        body["contact_ids"] = list(c.contact_ids)
    raw = orjson.dumps(body)
    ts = str(int(now))
    return Request(
        "/webhooks/generic",
        {
            "content-type": "application/json",
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": generic.sign(SECRETS["generic"], ts, raw),
        },
        raw,
        now,
    )


TWILIO_SEQ = {"initiated": 0, "ringing": 1, "in-progress": 2, "completed": 3, "no-answer": 3}


def _twilio(ev: Event, t0: float, now: float, base_url: str) -> Request:
    c = ev.call
    inbound = c.direction == "INBOUND"
    params = {
        "AccountSid": "AC" + "0" * 32,
        "ApiVersion": "2010-04-01",
        "CallSid": c.call_id,
        "CallStatus": ev.name,
        "CallbackSource": "call-progress-events",
        "Direction": "inbound" if inbound else "outbound-api",
        "From": c.counterpart if inbound else LINE,
        "To": LINE if inbound else c.counterpart,
        "SequenceNumber": str(TWILIO_SEQ[ev.name]),
        "Timestamp": rfc2822(t0 + ev.at_rel),
    }
    if ev.name == "completed":
        params["CallDuration"] = str(c.talk_s)
    elif ev.name == "no-answer":
        params["CallDuration"] = "0"
    body = urlencode(params).encode()
    url = base_url.rstrip("/") + "/webhooks/twilio"
    signature = twilio.sign(SECRETS["twilio"], url, body, "application/x-www-form-urlencoded")
    return Request(
        "/webhooks/twilio",
        {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature},
        body,
        now,
    )


def _aircall(ev: Event, t0: float, now: float) -> Request:
    c = ev.call
    start = int(t0 + c.start_rel)
    answered_at = start + c.ring_s if c.answered and ev.name != "call.created" else None
    if ev.name == "call.ringing_on_agent":
        answered_at = None
    ended = ev.name == "call.ended"
    data = {
        "id": int(c.call_id),
        "direction": c.direction.lower(),
        "status": "done" if ended else ("answered" if answered_at else "initial"),
        "started_at": start,
        "answered_at": answered_at,
        "ended_at": int(t0 + ev.at_rel) if ended else None,
        "duration": c.talk_s if ended and c.answered else None,
        "raw_digits": c.counterpart,
        "user": {"id": 216119, "name": "Alice Agent", "email": "alice@example.com"},
        "number": {"id": 58108, "name": "Sales US", "digits": LINE},
        "comments": [],
        "tags": [],
    }
    payload = {
        "resource": "call",
        "event": ev.name,
        "timestamp": int(t0 + ev.at_rel),
        "token": SECRETS["aircall"],
        "data": data,
    }
    return Request(
        "/webhooks/aircall", {"content-type": "application/json"}, orjson.dumps(payload), now
    )


def _zoom(ev: Event, t0: float, now: float) -> Request:
    c = ev.call
    inbound = c.direction == "INBOUND"
    start = t0 + c.start_rel
    answer = start + c.ring_s
    end = answer + c.talk_s if c.answered else start + c.ring_s
    us = {"extension_number": 1001, "phone_number": LINE, "user_id": "u-alice", "name": "Alice"}
    them = {"phone_number": c.counterpart}
    if ev.name.endswith("call_log_completed"):
        log = {
            "id": f"log-{c.call_id}",
            "call_id": c.call_id,
            "direction": c.direction.lower(),
            "caller_number": c.counterpart if inbound else LINE,
            "callee_number": LINE if inbound else c.counterpart,
            "date_time": iso(start).replace(".000Z", "Z"),
            "duration": c.talk_s,
            "result": "Call connected",
        }
        obj: dict[str, Any] = {"user_id": "u-alice", "call_logs": [log]}
    else:
        obj = {
            "call_id": c.call_id,
            "caller": them if inbound else us,
            "callee": us if inbound else them,
            "ringing_start_time": iso(start).replace(".000Z", "Z"),
        }
        if ev.name.endswith(("_answered", "_connected", "_ended")) and c.answered:
            obj["answer_start_time"] = iso(answer).replace(".000Z", "Z")
        if ev.name.endswith(("_ended", "_missed")):
            obj["call_end_time"] = iso(end).replace(".000Z", "Z")
    body = orjson.dumps(
        {
            "event": ev.name,
            "event_ts": int((t0 + ev.at_rel) * 1000),
            "payload": {"account_id": "acct-load", "object": obj},
        }
    )
    ts = str(int(now))
    return Request(
        "/webhooks/zoom",
        {
            "content-type": "application/json; charset=utf-8",
            "x-zm-request-timestamp": ts,
            "x-zm-signature": zoom.sign(SECRETS["zoom"], ts, body),
        },
        body,
        now,
    )


RC_SEQ = {"Setup": 1, "Proceeding": 2, "Answered": 4, "Disconnected": 7}


def _ringcentral(ev: Event, t0: float, now: float) -> Request:
    c = ev.call
    inbound = c.direction == "INBOUND"
    us = {"phoneNumber": LINE, "name": "Alice Agent", "extensionId": "62264425008"}
    them = {"phoneNumber": c.counterpart, "name": "CALLER"}
    party = {
        "extensionId": "62264425008",
        "id": f"p-{c.call_id}-1",
        "direction": "Inbound" if inbound else "Outbound",
        "to": us if inbound else them,
        "from": them if inbound else us,
        "status": {"code": ev.name},
        "missedCall": ev.name == "Disconnected" and not c.answered,
    }
    body = orjson.dumps(
        {
            "uuid": str(uuid.UUID(hashlib.md5(f"{c.call_id}:{ev.name}".encode()).hexdigest())),  # noqa: S324
            "event": "/restapi/v1.0/account/~/extension/~/telephony/sessions",
            "timestamp": iso(t0 + ev.at_rel),
            "ownerId": "62264425008",
            "body": {
                "sequence": RC_SEQ[ev.name],
                "telephonySessionId": c.call_id,
                "eventTime": iso(t0 + ev.at_rel),
                "parties": [party],
            },
        }
    )
    return Request(
        "/webhooks/ringcentral",
        {"content-type": "application/json", "verification-token": SECRETS["ringcentral"]},
        body,
        now,
    )


def _vonage(ev: Event, t0: float, now: float) -> Request:
    c = ev.call
    inbound = c.direction == "INBOUND"
    payload: dict[str, Any] = {
        "from": (c.counterpart if inbound else LINE).lstrip("+"),
        "to": (LINE if inbound else c.counterpart).lstrip("+"),
        "uuid": c.call_id,
        "conversation_uuid": f"CON-{c.call_id}",
        "status": ev.name,
        "direction": c.direction.lower(),
        "timestamp": iso(t0 + ev.at_rel),
    }
    if ev.name == "completed":
        answer = t0 + c.start_rel + c.ring_s
        payload["start_time"] = iso(answer)
        payload["end_time"] = iso(answer + c.talk_s)
        payload["duration"] = str(c.talk_s)
    body = orjson.dumps(payload)
    token = vonage.sign(
        SECRETS["vonage"], body, int(now), uuid.uuid4().hex, application_id="app-load"
    )
    return Request(
        "/webhooks/vonage",
        {"content-type": "application/json", "authorization": f"Bearer {token}"},
        body,
        now,
    )


def _dialpad(ev: Event, t0: float, now: float) -> Request:
    c = ev.call
    start_ms = int((t0 + c.start_rel) * 1000)
    payload: dict[str, Any] = {
        "call_id": int(c.call_id),
        "state": ev.name,
        "direction": c.direction.lower(),
        "external_number": c.counterpart,
        "internal_number": LINE,
        "date_started": start_ms,
        "event_timestamp": int((t0 + ev.at_rel) * 1000),
        "target": {"id": 5835806903417856, "type": "user", "name": "Alice Agent"},
    }
    if c.answered and ev.name in ("connected", "hangup"):
        payload["date_connected"] = start_ms + c.ring_s * 1000
    if ev.name == "hangup":
        payload["date_ended"] = int((t0 + ev.at_rel) * 1000)
        if c.answered:
            payload["duration"] = c.talk_s * 1000
    return Request(
        "/webhooks/dialpad",
        {"content-type": "application/jwt"},
        dialpad.sign(SECRETS["dialpad"], payload),
        now,
    )


def lifecycle(call: Call) -> list[tuple[str, float, bool]]:
    """(event name, seconds after the call's start, optional?) in the order they happen."""
    r, d = call.ring_s, call.talk_s
    inbound = call.direction == "INBOUND"
    p = call.provider
    end = r + d
    if p == "generic":
        if call.answered:
            return [
                ("call.started", 0, False),
                ("call.ringing", 1, True),
                ("call.answered", r, True),
                ("call.ended", end, False),
            ]
        return [("call.started", 0, False), ("call.ringing", 1, True), ("call.ended", r, False)]
    if p == "twilio":
        last = ("completed", end, False) if call.answered else ("no-answer", r, False)
        mid = [("in-progress", r, True)] if call.answered else []
        return [("initiated", 0, False), ("ringing", 1, True), *mid, last]
    if p == "aircall":
        mid = [("call.answered", r, True)] if call.answered else []
        return [
            ("call.created", 0, False),
            ("call.ringing_on_agent", 1, True),
            *mid,
            ("call.ended", end + (30 if call.answered else 0), False),
        ]
    if p == "zoom":
        side = "callee" if inbound else "caller"
        if call.answered:
            return [
                (f"phone.{side}_ringing", 0, False),
                (f"phone.{side}_{'answered' if inbound else 'connected'}", r, True),
                (f"phone.{side}_ended", end, False),
                (f"phone.{side}_call_log_completed", end + 5, True),
            ]
        missed = "phone.callee_missed" if inbound else "phone.caller_ended"
        return [(f"phone.{side}_ringing", 0, False), (missed, r, False)]
    if p == "ringcentral":
        # not optional: the writer derives the duration from Answered → Disconnected
        mid = [("Answered", r, False)] if call.answered else []
        return [("Setup", 0, False), ("Proceeding", 1, True), *mid, ("Disconnected", end, False)]
    if p == "vonage":
        last = ("completed", end, False) if call.answered else ("unanswered", r, False)
        mid = [("answered", r, True)] if call.answered else []
        return [("started", 0, False), ("ringing", 1, True), *mid, last]
    if p == "dialpad":
        mid = [("connected", r, True)] if call.answered else []
        return [("calling", 0, False), ("ringing", 1, True), *mid, ("hangup", end, False)]
    raise ValueError(f"unknown provider {p!r}")


def builder(provider: str, base_url: str) -> Callable[[Event, float, float], Request]:
    if provider == "twilio":
        return lambda ev, t0, now: _twilio(ev, t0, now, base_url)
    return {
        "generic": _generic,
        "aircall": _aircall,
        "zoom": _zoom,
        "ringcentral": _ringcentral,
        "vonage": _vonage,
        "dialpad": _dialpad,
    }[provider]
