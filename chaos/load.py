"""A reusable, seeded load generator: synthetic calls of every provider, signed its own way.

``plan(seed, calls=…, events=…)`` builds a deterministic schedule of webhook deliveries
(``Delivery``) for ``calls`` provider calls: mixed providers, each call's lifecycle as its
provider sends it (Twilio status callbacks, Aircall call events, Zoom Phone caller/callee
events and call logs, RingCentral party notifications, Vonage event webhooks, Dialpad JWT
bodies, the generic event), a share of re-deliveries (a provider's at-least-once), each
call's events shuffled, calls interleaved. ``Call.expected()`` is what HubSpot must finally
hold for the call, stated from the call itself (its start, its talk time, its direction, how
it ended), not from callbridge's code.

Requests (built by ``chaos.signed``) are signed when first sent (``Event.request``), because every scheme but
Aircall's and RingCentral's carries a time the ingress checks for freshness. A re-delivery
or a retry after a 503 resends the very same signed bytes, as providers do, except Vonage:
its JWT ``jti`` may be used once, so Vonage signs every attempt anew.

``send(...)`` drives a plan at a fixed rate with provider-like retries (503, 5xx,
connection errors: the same request again with back-off) and counts what the ingress
answered. The benchmarks and the chaos suite share these builders.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from chaos.calls import (
    LINE,
    PROVIDERS,
    REJECT_TITLE,
    SECRET_ENV,
    SECRETS,
    Call,
    Delivery,
    Event,
    Request,
    secrets_env,
)
from chaos.signed import builder, lifecycle

__all__ = [
    "LINE",
    "PROVIDERS",
    "REJECT_TITLE",
    "SECRETS",
    "SECRET_ENV",
    "Call",
    "Delivery",
    "Event",
    "Plan",
    "Request",
    "SendStats",
    "add_poisons",
    "builder",
    "counterpart_numbers",
    "lifecycle",
    "plan",
    "poison_calls",
    "secrets_env",
    "send",
]


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
            "sender_behind_schedule_s": round(self.lag_s, 1),
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
