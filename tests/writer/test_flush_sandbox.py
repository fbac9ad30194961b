"""The flush over the real HubSpot adapter and the sandbox in-process (``httpx.ASGITransport``),
with in-memory fakes of the writer's own ports: the defects of issue 11, each reproduced."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from service.deadletter import Failure
from service.hubspot import HubSpotClient
from service.hubspot.setup import ensure_call_key_property
from service.model import CallEvent
from service.writer.buffer import Buffer, Pending, Ref
from service.writer.core import Policy
from service.writer.flush import Flusher, FlushReport
from service.writer.hubspot import KEY_PROPERTY, HubSpotCalls
from service.writer.ports import Blocked, Claim
from service.writer.records import CallRecord
from tests.fixtures.sandbox import InProcessSandbox, SandboxHandle

NOW = 1_780_000_000.0


class Store:
    def __init__(self) -> None:
        self.records: dict[str, CallRecord] = {}

    def get(self, key: str) -> CallRecord | None:
        return self.records.get(key)

    async def put(self, items: Sequence[tuple[str, int, CallRecord]]) -> None:
        for key, _, record in items:
            self.records[key] = record


class Letters:
    def __init__(self) -> None:
        self.items: list[tuple[Ref, Failure]] = []

    async def send(self, items: Sequence[tuple[Ref, Failure]], *, portal: str = "default") -> None:
        self.items.extend(items)


class Owner:
    async def confirm(self, claims: Collection[Claim]) -> set[Claim]:
        return set(claims)


class NoContacts:
    async def match(self, numbers: Collection[str]) -> Mapping[str, Sequence[str]]:
        return {}


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


def event(call: str, status: str = "COMPLETED", seq: int = 3, **extra: Any) -> CallEvent:
    props = {"hs_timestamp": "2026-03-03T15:00:00.000Z", "hs_call_status": status}
    return CallEvent(
        provider="generic",
        call_id=call,
        event_id=f"{call}:{seq}:{status}",
        type="call.updated",
        occurred_at="2026-03-03T15:00:00+00:00",
        sequence=seq,
        properties=props,
        **extra,
    )


def pendings(events: list[CallEvent]) -> list[Pending]:
    buffer = Buffer(linger_s=0.0)
    for n, e in enumerate(events):
        buffer.add(e.key, e, Ref("calls.events", 0, n, e.key.encode(), b"{}"), 0.0)
    return buffer.take(1.0)


def flusher(
    client: HubSpotClient, store: Store, letters: Letters, clock: Clock, *, key: bool
) -> Flusher:
    return Flusher(
        calls=HubSpotCalls(client, KEY_PROPERTY if key else None),
        store=store,
        dead_letters=letters,
        ownership=Owner(),
        contacts=NoContacts(),
        policy=Policy(key_property=KEY_PROPERTY if key else None, reconcile_after_s=5.0),
        wall=clock,
    )


async def all_calls(sb: InProcessSandbox) -> list[dict[str, Any]]:
    answer = await sb.control.get(
        "/crm/v3/objects/calls",
        params={"limit": 100, "properties": "hs_call_external_id,hs_call_status"},
    )
    calls: list[dict[str, Any]] = answer.json()["results"]
    return calls


async def test_a_call_hubspot_cannot_search_is_dead_lettered_alone(
    inproc: InProcessSandbox,
) -> None:
    """Search mode: a 3,000-character call id makes the reconcile search answer 400 (body
    too long). Only that call is dead-lettered; the 20 others in the flush are written."""
    store, letters, clock = Store(), Letters(), Clock()
    events = [event(f"c{i}") for i in range(20)] + [event("x" * 3000)]
    for e in events:  # every call has a create of unknown outcome outstanding
        store.records[e.key] = CallRecord(intent_at=NOW - 3600)
    async with inproc.client() as client:
        report = await flusher(client, store, letters, clock, key=False).flush(pendings(events))
    assert len(report.settled) == 21 and report.pause is None
    [(ref, failure)] = letters.items
    assert ref.key == ("generic:" + "x" * 3000).encode()
    assert failure.http_status == 400 and "too long" in failure.message
    calls = await all_calls(inproc)
    assert len(calls) == 20


async def test_creates_answered_late_under_index_lag_make_one_record_each(
    sandbox: SandboxHandle,
) -> None:
    """Key mode: HubSpot applies 60 creates but answers after the client's timeout, and its
    search index lags 10 minutes. The next flush reads them by callbridge_call_key (no search
    wait) and updates them: 60 records, none duplicated. (Over a socket: the in-process
    transport has no timeouts.)"""
    store, letters, clock = Store(), Letters(), Clock()
    async with HubSpotClient(
        sandbox.url, sandbox.token, rate=10_000, search_rate=1_000, timeout_s=0.3, deadline_s=2.0
    ) as client:
        await ensure_call_key_property(client)
        sandbox.faults(latency_after_ms=800, index_delay_ms=600_000)
        f = flusher(client, store, letters, clock, key=True)
        first = await f.flush(pendings([event(f"c{i}", "IN_PROGRESS", 2) for i in range(60)]))
        assert not first.settled and len(first.retry) == 60  # outcome unknown
        assert all(store.records[f"generic:c{i}"].intent_at for i in range(60))
        sandbox.clear_faults()  # answers on time again; the index still lags:
        sandbox.faults(index_delay_ms=600_000)
        clock.t += 2
        second = await f.flush([p for p, _ in first.retry])
        assert len(second.settled) == 60
        third = await f.flush(pendings([event(f"c{i}") for i in range(60)]))
        assert len(third.settled) == 60
    stats = sandbox.stats()
    assert stats["records"]["calls"] == 60
    assert "searchCalls" not in stats["requests"]


async def test_more_than_100_new_contacts_are_associated_in_several_requests(
    inproc: InProcessSandbox,
) -> None:
    """An update bringing 150 new contact associations is written in two v4 requests of at
    most 100 pairs (it crash-looped the old writer with ValueError)."""
    store, letters, clock = Store(), Letters(), Clock()
    async with inproc.client() as client:
        contact_ids = [
            (await client.create_contact({"email": f"p{n}@example.com"})).id for n in range(150)
        ]
        f = flusher(client, store, letters, clock, key=False)
        assert len((await f.flush(pendings([event("big", "IN_PROGRESS", 2)]))).settled) == 1
        later = event("big", contact_ids=contact_ids)
        report = await f.flush(pendings([later]))
    assert len(report.settled) == 1 and not letters.items
    assert len(store.records["generic:big"].contacts) == 150
    stats = await inproc.stats()
    assert sum(stats["requests"]["batchCreateAssociations"].values()) == 2


async def test_a_refused_token_pauses_the_whole_flush_and_dead_letters_nothing(
    inproc: InProcessSandbox,
) -> None:
    """401: deployment-wide trouble: every call is retried later, the report says 'auth'."""
    store, letters, clock = Store(), Letters(), Clock()
    async with inproc.client(token="revoked") as client:
        report: FlushReport = await flusher(client, store, letters, clock, key=True).flush(
            pendings([event(f"c{i}") for i in range(5)])
        )
    assert isinstance(report.pause, Blocked) and report.pause.kind == "auth"
    assert len(report.retry) == 5 and not report.settled and not letters.items
    assert all(r.intent_at is None for r in store.records.values())  # known not created
