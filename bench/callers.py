"""Realistic traffic: caller numbers (mostly distinct, some repeat callers) and generic
events for them, as a busy portal's telephony sends them.

Pure: a seeded ``random.Random`` in, bodies out, so every run sends the same traffic.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson

from handlers.generic import sign

AREAS = (212, 213, 305, 312, 404, 415, 469, 512, 617, 646, 702, 718, 773, 917, 949)
KINDS = ("call.ringing", "call.answered", "call.ended", "call.updated")
OWN_LINE = "+18005550100"


def caller_numbers(calls: int, rng: random.Random, repeat_share: float = 0.2) -> list[str]:
    """One caller number per call: ``repeat_share`` of calls come from a small pool of
    regulars (a few hundred numbers calling again and again), the rest from distinct
    numbers across US area codes and London."""
    regulars = [_number(rng) for _ in range(max(1, min(500, calls // 50)))]
    out = []
    for _ in range(calls):
        out.append(rng.choice(regulars) if rng.random() < repeat_share else _number(rng))
    return out


def _number(rng: random.Random) -> str:
    if rng.random() < 0.1:
        return f"+44207946{rng.randrange(1000):04d}"  # Ofcom's range for drama, London
    return f"+1{rng.choice(AREAS)}{rng.randrange(200, 1000)}{rng.randrange(10000):04d}"


def call_events(call_id: str, caller: str, start: datetime, kinds: tuple[str, ...] = KINDS):
    """The generic events of one inbound call, in the order they happened."""
    out = []
    for n, kind in enumerate(kinds):
        body: dict[str, object] = {
            "event_id": f"{call_id}:{kind}",
            "call_id": call_id,
            "type": kind,
            "occurred_at": (start + timedelta(seconds=20 * n)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "direction": "inbound",
            "from": caller,
            "to": OWN_LINE,
        }
        if kind in ("call.ended", "call.updated"):
            body["duration_ms"] = 60_000 + 1000 * (len(call_id) % 50)
        if kind == "call.updated":
            body["notes"] = "Customer asked for a callback."
        out.append(body)
    return out


def signed_pool(prefix: str, size: int, seed: int, secret: str, ts: int) -> list[tuple[str, bytes]]:
    """``size`` distinct single-event bodies (each its own call, ``call.ended``) with their
    ``X-Callbridge-Signature`` at timestamp ``ts``."""
    rng = random.Random(seed)
    callers = caller_numbers(size, rng)
    start = datetime.now(UTC) - timedelta(minutes=5)
    out = []
    for n, caller in enumerate(callers):
        [body] = call_events(f"{prefix}-{n}", caller, start, ("call.ended",))
        raw = orjson.dumps(body)
        out.append((sign(secret, ts, raw), raw))
    return out
