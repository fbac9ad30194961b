"""The switch of a portal to key mode once its call-key property is read (it was unreadable
at start): never while a flush of the portal is in flight or a revocation flushes, and not
while a create it sent in search mode is of unknown outcome (a read by the key would miss
that record, which does not carry the key, and the call would be created twice)."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import generate_latest

from service.config import Settings
from service.writer import shell
from service.writer.core import Policy
from service.writer.flush import Flusher
from service.writer.hubspot import KEY_PROPERTY, HubSpotCalls
from service.writer.records import CallRecord
from tests.writer.fakes import Clock, FakeDeadLetters, FakeOwnership, FakeStore, Group, NoContacts


def _gauge(portal: str, mode: str) -> float:
    want = f'callbridge_writer_portal_reconcile_mode{{mode="{mode}",portal="{portal}"}} '
    line = next(x for x in generate_latest().decode().splitlines() if x.startswith(want))
    return float(line.rsplit(" ", 1)[1])


async def _flush(gate: asyncio.Event) -> None:
    """A flush of the portal, in flight until ``gate`` is set."""
    await gate.wait()


def _writer() -> tuple[shell.Writer, Flusher, shell._SearchCalls, FakeStore, Clock]:
    """A writer (never started) whose one portal is in search mode, its key property
    unreadable at start."""
    writer = shell.Writer(Settings(kafka_bootstrap="127.0.0.1:1"))
    portal = writer.portals[0].id
    client: Any = object()  # the switch only hands it to the key-mode port
    writer.clients = {portal: client}
    store = FakeStore({})
    store.owned = {0}
    writer.store = store  # type: ignore[assignment]
    search = shell._SearchCalls(client)
    clock = Clock()
    flusher = Flusher(
        calls=search,
        store=store,
        dead_letters=FakeDeadLetters([]),
        ownership=FakeOwnership(Group(1, {0: 0}), 0, 1),
        contacts=NoContacts(),
        policy=Policy(key_property=None, reconcile_after_s=7.0),
        wall=clock.wall,
        portal=portal,
    )
    writer.flushers = {portal: flusher}
    writer._reconcile_mode(portal, "search", "unreadable")
    return writer, flusher, search, store, clock


async def test_the_switch_waits_for_the_portals_flush_and_its_unknown_creates() -> None:
    writer, flusher, search, store, clock = _writer()
    await writer.producer.stop()  # never started: nothing to close it later
    portal = flusher.portal
    client = search.client
    # a create sent in search mode, outcome unknown: its durable intent
    search.created.add("generic:c1")
    store.durable["generic:c1"] = (0, CallRecord(intent_at=clock.t))
    gate = asyncio.Event()
    writer._flights[portal] = asyncio.create_task(_flush(gate))  # the portal's flush
    writer._revoking = 1
    switching = asyncio.create_task(writer._switch_to_key_mode(portal))
    try:
        await asyncio.sleep(0.2)
        assert flusher.policy.key_property is None and writer.flushers[portal].calls is search
        writer._revoking = 0
        await asyncio.sleep(0.2)
        assert flusher.policy.key_property is None  # the flush is still in flight
        gate.set()
        await writer._flights[portal]
        await asyncio.sleep(0.7)
        assert flusher.policy.key_property is None  # its create's outcome is still unknown
        assert writer.states[portal].mode == "search" and _gauge(portal, "search") == 1
        store.durable["generic:c1"] = (0, CallRecord(hubspot_id="9", intent_at=None))  # found
        await asyncio.wait_for(switching, timeout=2.0)
    finally:
        switching.cancel()
    assert flusher.policy == Policy(key_property=KEY_PROPERTY, reconcile_after_s=7.0)
    calls = writer.flushers[portal].calls
    assert type(calls) is HubSpotCalls  # no longer the search-mode port
    assert calls.key_property == KEY_PROPERTY and calls.client is client
    assert writer.states[portal].mode == "key"
    assert (_gauge(portal, "key"), _gauge(portal, "search")) == (1, 0)


async def test_a_stopped_writer_never_switches() -> None:
    writer, flusher, _, _, _ = _writer()
    await writer.producer.stop()
    gate = asyncio.Event()
    writer._flights[flusher.portal] = asyncio.create_task(_flush(gate))
    switching = asyncio.create_task(writer._switch_to_key_mode(flusher.portal))
    await asyncio.sleep(0.1)
    writer.stop()
    await asyncio.wait_for(switching, timeout=1.0)
    gate.set()
    assert flusher.policy.key_property is None
    assert writer.states[flusher.portal].mode == "search"
