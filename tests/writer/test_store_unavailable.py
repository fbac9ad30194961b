"""Kafka unavailable to the flush (``StoreUnavailable`` from ``calls.ids`` or the DLQ):
no create without its durable intent, nothing settled, the calls planned again, and the
portal told to wait; once Kafka is back, every call lands once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from service.deadletter import Failure
from service.writer.buffer import Buffer, Ref
from service.writer.core import Policy
from service.writer.flush import Flusher
from service.writer.ports import StoreUnavailable, Transient
from service.writer.records import CallRecord
from tests.writer.fakes import (
    Clock,
    FakeDeadLetters,
    FakeHubSpot,
    FakeOwnership,
    FakeStore,
    Group,
    NoContacts,
)
from tests.writer.helpers import drive, ev, ref


class FlakyStore(FakeStore):
    """``calls.ids`` whose next ``failures`` puts find Kafka unavailable."""

    def __init__(self, durable: dict[str, tuple[int, CallRecord]]) -> None:
        super().__init__(durable)
        self.failures = 0

    async def put(self, items: Sequence[tuple[str, int, CallRecord]]) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("KafkaTimeoutError()")
        await super().put(items)


class FlakyDeadLetters(FakeDeadLetters):
    def __init__(self, sink: list[tuple[Ref, Failure]]) -> None:
        super().__init__(sink)
        self.failures = 0

    async def send(self, items: Sequence[tuple[Ref, Failure]], *, portal: str = "default") -> None:
        if self.failures:
            self.failures -= 1
            raise StoreUnavailable("OutOfOrderSequenceNumber()")
        await super().send(items, portal=portal)


def setup(key_property: str | None = "callbridge_call_key") -> tuple[Any, ...]:
    clock = Clock()
    hub = FakeHubSpot(clock, key_property)
    store = FlakyStore({})
    store.owned = {0}
    letters: list[tuple[Ref, Failure]] = []
    dead = FlakyDeadLetters(letters)
    flusher = Flusher(
        calls=hub,
        store=store,
        dead_letters=dead,
        ownership=FakeOwnership(Group(1, {0: 0}), 0, 1),
        contacts=NoContacts(),
        policy=Policy(key_property=key_property, retry_s=1.0),
        wall=clock.wall,
    )
    return clock, hub, store, dead, letters, flusher


def test_no_create_is_sent_without_its_intent_and_the_call_is_tried_again() -> None:
    _, hub, store, _, _, flusher = setup()
    buffer = Buffer(linger_s=0.0)
    buffer.add("generic:c1", ev(3, "COMPLETED"), ref(0), 0.0)
    store.failures = 1  # the intent's put
    report = drive(flusher.flush(buffer.take(1.0)))
    assert hub.records == []  # not created: no intent says it may have been
    assert report.settled == [] and [p.key for p, _ in report.retry] == ["generic:c1"]
    assert isinstance(report.pause, Transient) and "Kafka unavailable" in report.pause.reason
    again = drive(flusher.flush([p for p, _ in report.retry]))
    assert [p.key for p in again.settled] == ["generic:c1"]
    assert len(hub.by_key("generic:c1")) == 1


def test_records_not_written_after_hubspot_took_the_calls_settle_nothing_then_converge() -> None:
    """The creates landed, their records could not be written: nothing is settled (the
    offsets stay uncommitted) and the next flush finds the calls through their intents,
    one record each, with their final state."""
    clock, hub, store, _, _, flusher = setup()
    buffer = Buffer(linger_s=0.0)
    for n in range(3):
        buffer.add(f"generic:c{n}", ev(3, "COMPLETED", call=f"c{n}"), ref(n), 0.0)
    store_put = store.put
    puts = 0

    async def second_put_fails(items: Sequence[tuple[str, int, CallRecord]]) -> None:
        nonlocal puts
        puts += 1
        if puts == 2:  # the records after the creates (the first is the intents)
            raise StoreUnavailable("KafkaTimeoutError()")
        await store_put(items)

    store.put = second_put_fails  # type: ignore[method-assign]
    report = drive(flusher.flush(buffer.take(1.0)))
    assert report.settled == [] and len(report.retry) == 3
    assert len(hub.records) == 3
    assert all(store.durable[f"generic:c{n}"][1].intent_at is not None for n in range(3))
    clock.t += 20.0
    again = drive(flusher.flush([p for p, _ in report.retry]))
    assert len(again.settled) == 3
    assert all(len(hub.by_key(f"generic:c{n}")) == 1 for n in range(3))
    assert {r.properties["hs_call_status"] for r in hub.records} == {"COMPLETED"}
    assert all(store.durable[f"generic:c{n}"][1].hubspot_id for n in range(3))


def test_dead_letters_not_produced_settle_nothing_and_are_produced_later() -> None:
    _, hub, _, dead, letters, flusher = setup()
    buffer = Buffer(linger_s=0.0)
    buffer.add("generic:c1", ev(3, "COMPLETED"), ref(0), 0.0)
    hub.refuse.add("generic:c1")
    dead.failures = 1
    report = drive(flusher.flush(buffer.take(1.0)))
    assert report.settled == [] and report.dead == [] and letters == []
    again = drive(flusher.flush([p for p, _ in report.retry]))
    assert [p.key for p in again.settled] == ["generic:c1"]
    assert [f.category for _, f in letters] == ["VALIDATION_ERROR"]
