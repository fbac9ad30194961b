"""Backlogs for the writer: call events as the ingress would have produced them.

Each event goes through the product's own normalization (``handlers.generic.parse``) and
encoding (``service.model.encode_event``), so the writer reads exactly what the ingress
writes. For very large backlogs (1M events) that costs a minute of CPU, so
:func:`cloned_backlog` normalizes one call per event type and clones its records with new
call ids, event ids and callers (same shape and sizes, ~10x cheaper).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import orjson

import handlers.generic as generic
from bench.callers import call_events, caller_numbers
from handlers import NormalizeOptions, WebhookRequest
from service.model import encode_event

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def _record(body: dict[str, object]) -> Record:
    [event] = generic.parse(
        WebhookRequest("POST", "", {}, orjson.dumps(body)), NormalizeOptions()
    ).events
    headers = [("event_id", event.event_id.encode()), ("provider", event.provider.encode())]
    return event.key.encode(), encode_event(event), headers


def backlog(
    calls: int, seed: int, prefix: str = "w", duplicates: float = 0.10
) -> tuple[list[Record], list[str]]:
    """``len(KINDS)`` events per call, shuffled, plus ``duplicates`` of them again, and the
    caller numbers (one per call)."""
    rng = random.Random(seed)
    callers = caller_numbers(calls, rng)
    t0 = datetime.now(UTC) - timedelta(hours=6)
    out: list[Record] = []
    for i, caller in enumerate(callers):
        start = t0 + timedelta(seconds=i % 20000)
        out += [_record(b) for b in call_events(f"{prefix}{i}", caller, start)]
    out += rng.sample(out, int(len(out) * duplicates))
    rng.shuffle(out)
    return out, callers


def cloned_backlog(calls: int, seed: int, prefix: str = "m") -> Iterator[Record]:
    """``len(KINDS)`` events per call for ``calls`` calls, in a shuffled-within-window order
    (events of a call land within a few thousand records of each other)."""
    rng = random.Random(seed)
    t0 = datetime.now(UTC) - timedelta(hours=6)
    templates = [orjson.loads(_record(b)[1]) for b in call_events("TEMPLATE", "+14155550142", t0)]
    window: list[Record] = []
    for i in range(calls):
        caller = caller_numbers(1, rng, repeat_share=0.0)[0]
        call_id = f"{prefix}{i}"
        for t in templates:
            value = dict(t)
            value["call_id"] = call_id
            value["event_id"] = t["event_id"].replace("TEMPLATE", call_id)
            props = dict(t["properties"])
            props["hs_call_external_id"] = f"generic:{call_id}"
            props["hs_call_from_number"] = caller
            props["hs_call_title"] = f"Inbound call from {caller}"
            value["properties"] = props
            value["counterpart"] = caller
            key = f"generic:{call_id}".encode()
            headers = [("event_id", value["event_id"].encode()), ("provider", b"generic")]
            window.append((key, orjson.dumps(value), headers))
        if len(window) >= 4000:
            rng.shuffle(window)
            yield from window
            window = []
    rng.shuffle(window)
    yield from window
