"""The load generator's own correctness: every request it builds is accepted by the
provider's handler, and the events of each call merge (by the documented rules) into the
final properties the call's expectation states. Pure: no Kafka, no HTTP."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from chaos import load
from handlers import REGISTRY, NormalizeOptions, WebhookRequest
from handlers.common import parse_time
from service.model import CallEvent
from service.writer.records import merge

BASE = "http://127.0.0.1:18080"


def merged(events: list[CallEvent]) -> dict[str, str]:
    """The writer's own merge rules (pure): terminal status wins, earliest start wins, else
    latest by sequence; a missing duration derived from answered → ended."""
    return dict(merge(events, None).properties)


def parse(req: load.Request, now: float) -> list[CallEvent]:
    provider = req.path.split("/")[2].split("?")[0]
    wr = WebhookRequest("POST", BASE + req.path, req.headers, req.body)
    handler = REGISTRY[provider]
    assert handler.accepts(wr.content_type), req.headers
    handler.verify(wr, load.SECRETS[provider], now)
    return handler.parse(wr, NormalizeOptions()).events


def test_every_provider_call_merges_to_its_expectation() -> None:
    """Each call's events, as its provider signs them, verify and merge into expected()."""
    plan = load.plan(7, calls=700, events=2800, base_url=BASE, contacts={})
    t0 = float(int(time.time()))
    by_key: dict[str, list[CallEvent]] = {}
    for d in plan.deliveries:
        now = t0 + d.slot
        for e in parse(d.event.request(t0, now), now):
            by_key.setdefault(e.key, []).append(e)
    calls = {c.key: c for c in plan.calls}
    assert set(by_key) == set(calls)
    for key, events in by_key.items():
        unique = {e.event_id: e for e in events}
        props = merged(list(unique.values()))
        want = calls[key].expected(t0)
        assert props["hs_call_status"] == want["hs_call_status"], key
        assert props.get("hs_call_duration") == want["hs_call_duration"], (key, props)
        assert props["hs_call_direction"] == want["hs_call_direction"], key
        assert int(parse_time(props["hs_timestamp"]).timestamp() * 1000) == want["hs_timestamp"], (
            key,
            props["hs_timestamp"],
        )
        counterparts = {e.counterpart for e in events if e.counterpart}
        assert counterparts == {calls[key].counterpart}, key


def test_plan_shape() -> None:
    """20,000 deliveries for 5,000 calls: 10 % re-deliveries, every provider, fixed rate."""
    plan = load.plan(42, calls=5000, events=20000, rate=80.0)
    assert len(plan.deliveries) == 20000
    assert sum(d.duplicate for d in plan.deliveries) == 2000
    assert len({c.key for c in plan.calls}) == 5000
    assert set(Counter(c.provider for c in plan.calls)) == set(load.PROVIDERS)
    assert 30 <= sum(c.rejected for c in plan.calls) <= 80
    slots = [d.slot for d in plan.deliveries]
    assert slots == sorted(slots) and slots[-1] == pytest.approx(19999 / 80.0)
    # the same seed gives the same plan; another seed another one
    again = load.plan(42, calls=5000, events=20000, rate=80.0)
    assert [(d.call.key, d.event.name) for d in again.deliveries] == [
        (d.call.key, d.event.name) for d in plan.deliveries
    ]
    other = load.plan(43, calls=5000, events=20000, rate=80.0)
    assert [d.call.key for d in other.deliveries[:50]] != [d.call.key for d in plan.deliveries[:50]]


def test_redeliveries_resend_the_same_bytes_except_vonage() -> None:
    """A re-delivery is byte-identical (providers resend), Vonage signs a fresh jti."""
    plan = load.plan(3, calls=70, events=280, base_url=BASE)
    t0 = float(int(time.time()))
    for d in plan.deliveries:
        first = d.event.request(t0, t0 + 1)
        body, headers = first.body, dict(first.headers)
        second = d.event.request(t0, t0 + 2)
        if d.call.provider == "vonage":
            assert second.headers["authorization"] != headers["authorization"]
        else:
            assert (second.body, second.headers) == (body, headers)
