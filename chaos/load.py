"""A reusable, seeded load generator: synthetic calls of every provider, signed its own way.

``plan(seed, calls=…, events=…)`` builds a deterministic schedule of webhook deliveries
(``Delivery``) for ``calls`` provider calls: mixed providers, each call's lifecycle as its
provider sends it (Twilio status callbacks, Aircall call events, Zoom Phone caller/callee
events and call logs, RingCentral party notifications, Vonage event webhooks, Dialpad JWT
bodies, the generic event), a share of re-deliveries (a provider's at-least-once), each
call's events shuffled, calls interleaved. ``Call.expected()`` is what HubSpot must finally
hold for the call, stated from the call itself (its start, its talk time, its direction, how
it ended), not from callbridge's code.

Requests are signed when first sent (``Delivery.request(now)``), because every scheme but
Aircall's and RingCentral's carries a time the ingress checks for freshness. A re-delivery
or a retry after a 503 resends the very same signed bytes, as providers do, except Vonage:
its JWT ``jti`` may be used once, so Vonage signs every attempt anew.

``send(...)`` drives a plan at a fixed rate with provider-like retries (503, 5xx,
connection errors: the same request again with back-off) and counts what the ingress
answered. The benchmarks and the chaos suite share these builders.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from handlers import dialpad, generic, twilio, vonage, zoom
from service.config import PROVIDER_SECRETS

PROVIDERS: tuple[str, ...] = (
    "generic",
    "twilio",
    "aircall",
    "zoom",
    "ringcentral",
    "vonage",
    "dialpad",
)
#: environment variable of each provider's secret (the ingress's contract names).
SECRET_ENV: dict[str, str] = {p: f"CALLBRIDGE_{a.upper()}" for p, a in PROVIDER_SECRETS.items()}
SECRETS: dict[str, str] = {p: f"load-{p}-secret-0123456789abcdef" for p in PROVIDERS}
#: the company's own line (the non-counterpart side of every call).
LINE = "+14155550100"
REJECT_TITLE = "REJECT-ME"


def secrets_env(secrets: dict[str, str] | None = None) -> dict[str, str]:
    """``CALLBRIDGE_*`` variables enabling every provider with the load's secrets."""
    return {SECRET_ENV[p]: s for p, s in (secrets or SECRETS).items()}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{round(ts * 1000) % 1000:03d}Z"
    )


def rfc2822(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")


@dataclass
class Call:
    """One provider call: the truth its events describe."""

    provider: str
    call_id: str
    direction: str  # INBOUND | OUTBOUND
    counterpart: str  # the customer's number, E.164
    answered: bool
    ring_s: int  # start → answer (or → give-up)
    talk_s: int  # answer → hang-up (0 when unanswered)
    #: when the call started, in seconds after the load's t0 (negative: before it)
    start_rel: float = 0.0
    title: str | None = None  # generic only
    contact_ids: tuple[str, ...] = ()  # explicit associations (generic only)
    #: contacts whose phone is the counterpart (filled from the contact book)
    phone_contacts: tuple[str, ...] = ()
    #: a poison's kind ("" for an ordinary call)
    poison: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.provider}:{self.call_id}"

    @property
    def rejected(self) -> bool:
        return self.title == REJECT_TITLE

    def expected(self, t0: float) -> dict[str, Any]:
        """The final HubSpot properties this call must have (``None``: must be absent)."""
        start = t0 + self.start_rel
        if self.answered:
            status = "COMPLETED"
            duration: str | None = str(self.talk_s * 1000)
            if self.provider == "ringcentral":  # its notifications carry no duration
                duration = None
        else:
            status = "MISSED" if self.direction == "INBOUND" else "NO_ANSWER"
            if self.provider == "twilio":  # CallStatus=no-answer whatever the direction
                status = "NO_ANSWER"
            duration = None
        return {
            "hs_call_status": status,
            "hs_call_duration": duration,
            "hs_call_direction": self.direction,
            "hs_timestamp": round(start * 1000),
            "contacts": sorted(set(self.contact_ids) | set(self.phone_contacts)),
        }


@dataclass
class Request:
    """A signed webhook request, ready to post."""

    path: str  # /webhooks/<provider>[?query]
    headers: dict[str, str]
    body: bytes
    signed_at: float


@dataclass
class Event:
    """One provider event of a call: rendered (signed) once, at its first delivery."""

    call: Call
    name: str
    at_rel: float  # when it happened, seconds after t0
    build: Callable[[Event, float, float], Request]
    _request: Request | None = None
    attempts: int = 0

    def request(self, t0: float, now: float, *, fresh: bool = False) -> Request:
        """The signed request; the same bytes every time unless the scheme forbids it
        (Vonage's one-time ``jti``) or ``fresh`` asks for a new signature."""
        self.attempts += 1
        if self._request is None or fresh or self.call.provider == "vonage":
            self._request = self.build(self, t0, now)
        return self._request


@dataclass
class Delivery:
    """One POST the load sends: an event, maybe a re-delivery of it."""

    event: Event
    duplicate: bool
    slot: float  # position in the schedule (seconds after t0 at the nominal rate)

    @property
    def call(self) -> Call:
        return self.event.call


# --- builders: each provider's payload and signature --------------------------------------


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
    body.update(c.extra.get("generic", {}))
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
        mid = [("Answered", r, True)] if call.answered else []
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


# --- the plan -----------------------------------------------------------------------------


@dataclass
class Plan:
    """A seeded schedule: the calls, and the deliveries in sending order."""

    seed: int
    rate: float
    calls: list[Call]
    deliveries: list[Delivery]
    numbers: list[str]

    @property
    def duration_s(self) -> float:
        return len(self.deliveries) / self.rate

    def summary(self) -> dict[str, Any]:
        return {
            "calls": len([c for c in self.calls if not c.poison]),
            "deliveries": len(self.deliveries),
            "duplicates": sum(d.duplicate for d in self.deliveries),
            "providers": dict(Counter(c.provider for c in self.calls if not c.poison)),
            "rejected_calls": sum(c.rejected for c in self.calls),
            "poisons": [c.poison for c in self.calls if c.poison],
        }


def counterpart_numbers(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct plausible US numbers (555-01xx style fictional exchanges)."""
    seen: set[str] = set()
    area = ["212", "646", "718", "917", "312", "617", "303", "206"]
    while len(seen) < n:
        seen.add(f"+1{rng.choice(area)}555{rng.randrange(10000):04d}")
    return sorted(seen)


def plan(
    seed: int,
    *,
    calls: int = 5000,
    events: int = 20000,
    duplicate_share: float = 0.10,
    rate: float = 80.0,
    reject_share: float = 0.01,
    base_url: str = "http://127.0.0.1:8080",
    contacts: dict[str, str] | None = None,
    explicit_contacts: list[str] | None = None,
    numbers: list[str] | None = None,
    providers: tuple[str, ...] = PROVIDERS,
    spread_s: float = 6.0,
) -> Plan:
    """``events`` deliveries for ``calls`` calls, ``duplicate_share`` of them re-deliveries.

    ``contacts`` maps a phone number to the HubSpot contact id that has it (the contact
    book the expectations use); ``explicit_contacts`` are ids generic events may name.
    Each call's deliveries land within ``spread_s`` of its first, shuffled.
    """
    rng = random.Random(seed)
    book = contacts or {}
    numbers = numbers or counterpart_numbers(random.Random(seed ^ 0x5EED), max(50, calls // 5))
    dup_target = round(events * duplicate_share)
    unique_target = events - dup_target
    interval = 1.0 / rate
    per_call = events / calls
    out: list[Call] = []
    evs: list[list[tuple[str, float, bool]]] = []
    for i in range(calls):
        provider = providers[i % len(providers)] if i < len(providers) else rng.choice(providers)
        direction = rng.choice(("INBOUND", "OUTBOUND"))
        answered = rng.random() < 0.8
        number = rng.choice(numbers)
        ring = rng.randint(2, 20)
        talk = rng.randint(5, 600) if answered else 0
        call_id = _call_id(provider, rng, i)
        c = Call(provider, call_id, direction, number, answered, ring, talk)
        c.phone_contacts = (book[number],) if number in book else ()
        if provider == "generic":
            if explicit_contacts and rng.random() < 0.3:
                c.contact_ids = (rng.choice(explicit_contacts),)
            if rng.random() < reject_share * len(providers):
                c.title = REJECT_TITLE
        # the call's first event is due around its slot; it ended at most a few s later
        first_slot = i * per_call * interval
        c.start_rel = math.floor(first_slot) - (ring + talk) - 40
        out.append(c)
        evs.append(lifecycle(c))
    # drop optional events at random until the unique count is on target
    optional = [(ci, ei) for ci, life in enumerate(evs) for ei, e in enumerate(life) if e[2]]
    rng.shuffle(optional)
    total = sum(len(life) for life in evs)
    dropped: set[tuple[int, int]] = set()
    for pair in optional:
        if total <= unique_target:
            break
        dropped.add(pair)
        total -= 1
    events_by_call: list[list[Event]] = []
    for ci, (c, life) in enumerate(zip(out, evs, strict=True)):
        build = builder(c.provider, base_url)
        events_by_call.append(
            [
                Event(c, name, c.start_rel + offset, build)
                for ei, (name, offset, _) in enumerate(life)
                if (ci, ei) not in dropped
            ]
        )
    flat = [e for es in events_by_call for e in es]
    dup_events = rng.sample(flat, min(dup_target, len(flat))) if dup_target else []
    dup_ids = Counter(id(e) for e in dup_events)
    deliveries: list[Delivery] = []
    for ci, es in enumerate(events_by_call):
        first_slot = ci * per_call * interval
        batch = [e for e in es for _ in range(1 + dup_ids.get(id(e), 0))]
        rng.shuffle(batch)
        seen: set[int] = set()
        for e in batch:
            deliveries.append(Delivery(e, id(e) in seen, first_slot + rng.uniform(0, spread_s)))
            seen.add(id(e))
    deliveries.sort(key=lambda d: d.slot)
    # a fixed rate; the first send of an event is the original, later ones re-deliveries
    sent: set[int] = set()
    for n, d in enumerate(deliveries):
        d.slot = n * interval
        d.duplicate = id(d.event) in sent
        sent.add(id(d.event))
    return Plan(seed, rate, out, deliveries, numbers)


def _call_id(provider: str, rng: random.Random, i: int) -> str:
    tag = f"{rng.getrandbits(48):012x}"
    if provider == "twilio":
        return f"CA{tag}{i:020x}"
    if provider in ("aircall", "dialpad"):
        return str(7_000_000_000_000 + rng.getrandbits(40) * 100_000 + i)
    if provider == "zoom":
        return str(8_000_000_000_000_000_000 + rng.getrandbits(40) * 100_000 + i)
    if provider == "ringcentral":
        return f"s-{tag}{i:08x}"
    if provider == "vonage":
        return str(uuid.UUID(int=(rng.getrandbits(80) << 48) | i))
    return f"load-{tag}-{i}"


def poison_calls(rng: random.Random) -> list[Call]:
    """Generic calls built to make HubSpot refuse one call's search, association or limit.

    - ``search``: a counterpart "number" of 3,200 digits: the contact search for it is over
      HubSpot's 3,000-character body limit;
    - ``association``: an explicit contact id no contact has;
    - ``limit-ids``: 101 explicit contact ids (the contract allows at most 100);
    - ``limit-call-id``: a 300-character call id (the contract allows at most 256).
    """
    out = []
    for kind in ("search", "association", "limit-ids", "limit-call-id"):
        cid = f"poison-{kind}-{rng.getrandbits(32):08x}"
        number = "+1212555" + f"{rng.randrange(10000):04d}"
        c = Call("generic", cid, "INBOUND", number, True, 3, 30, poison=kind)
        if kind == "search":
            c.counterpart = "+1" + "2" * 3200
        elif kind == "association":
            c.contact_ids = ("99999999999",)
        elif kind == "limit-ids":
            c.contact_ids = tuple(str(10**11 + k) for k in range(101))
        else:
            c.call_id = "poison-limit-" + "x" * 300
        out.append(c)
    return out


def add_poisons(p: Plan, calls: list[Call], base_url: str, at_share: float = 0.5) -> None:
    """Insert the poison calls' events into the plan around ``at_share`` of its length."""
    at = p.duration_s * at_share
    for n, c in enumerate(calls):
        c.start_rel = math.floor(at) - 40 - c.ring_s - c.talk_s
        p.calls.append(c)
        build = builder(c.provider, base_url)
        for name, offset, _ in lifecycle(c):
            if name == "call.ringing":
                continue
            e = Event(c, name, c.start_rel + offset, build)
            p.deliveries.append(Delivery(e, False, at + n * 0.5 + offset / 100))
    p.deliveries.sort(key=lambda d: d.slot)


# --- sending ------------------------------------------------------------------------------


@dataclass
class SendStats:
    """What the ingress answered."""

    by_status: Counter[int] = field(default_factory=Counter)
    accepted: int = 0  # deliveries finally answered 202
    accepted_events: int = 0  # events the 202s said were produced
    retries: int = 0
    served_503: int = 0
    transport_errors: int = 0
    gave_up: list[str] = field(default_factory=list)  # keys of deliveries never accepted
    refused: dict[str, list[int]] = field(default_factory=dict)  # key -> 4xx statuses
    lag_s: float = 0.0  # how far behind schedule the sender finished
    last_accept_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "accepted": self.accepted,
            "accepted_events": self.accepted_events,
            "retries": self.retries,
            "served_503": self.served_503,
            "transport_errors": self.transport_errors,
            "gave_up": len(self.gave_up),
            "refused": {k: v for k, v in self.refused.items()},
        }


RETRYABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


async def deliver(
    client: httpx.AsyncClient,
    d: Delivery,
    t0: float,
    stats: SendStats,
    *,
    give_up_after_s: float = 150.0,
) -> None:
    """POST one delivery, retrying as providers do (same request; back-off to 5 s)."""
    deadline = time.monotonic() + give_up_after_s
    delay = 0.5
    while True:
        now = time.time()
        req = d.event.request(t0, now)
        # a request signed long ago would be stale at the ingress: providers re-sign
        if now - req.signed_at > 120:
            req = d.event.request(t0, now, fresh=True)
        try:
            response = await client.post(req.path, headers=req.headers, content=req.body)
        except httpx.TransportError:
            stats.transport_errors += 1
            status = 0
        else:
            status = response.status_code
            stats.by_status[status] += 1
        if status == 202:
            stats.accepted += 1
            stats.accepted_events += int(response.json().get("accepted", 0))
            stats.last_accept_at = time.time()
            return
        if status == 503:
            stats.served_503 += 1
        if status != 0 and status not in RETRYABLE:
            stats.refused.setdefault(d.call.key, []).append(status)
            return
        if time.monotonic() > deadline:
            stats.gave_up.append(d.call.key)
            return
        stats.retries += 1
        await asyncio.sleep(delay)
        delay = min(delay * 2, 5.0)


async def send(
    p: Plan,
    base_url: str,
    t0: float,
    *,
    concurrency: int = 48,
    timeout_s: float = 10.0,
    on_progress: Callable[[int], None] | None = None,
    stats: SendStats | None = None,
) -> SendStats:
    """Send every delivery of ``p`` at its slot (``t0`` + slot, fixed rate), retrying."""
    stats = stats if stats is not None else SendStats()
    queue: asyncio.Queue[Delivery | None] = asyncio.Queue()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout_s, limits=limits) as client:

        async def worker() -> None:
            while True:
                d = await queue.get()
                if d is None:
                    return
                await deliver(client, d, t0, stats)

        workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
        start = time.monotonic() - (time.time() - t0)
        for n, d in enumerate(p.deliveries):
            wait = start + d.slot - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            await queue.put(d)
            if on_progress is not None and n % 500 == 0:
                on_progress(n)
        for _ in workers:
            await queue.put(None)
        await asyncio.gather(*workers)
        stats.lag_s = max(0.0, time.monotonic() - start - p.duration_s)
    return stats
