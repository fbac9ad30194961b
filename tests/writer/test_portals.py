"""The portal dimension of the writer's pure parts: the buffer per portal, each portal's
pause state, the round-robin order, what a failed OAuth refresh means, the keys a flush
sends to HubSpot, and ``callbridge portals list`` without a writer."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec
import orjson
import pytest

from service.deadletter import Failure
from service.hubspot.oauth import OAuthRefreshError
from service.localkafka import free_port
from service.portals import parse_portals_file
from service.writer.buffer import Buffer
from service.writer.core import Policy
from service.writer.flush import Flusher, FlushReport
from service.writer.hubspot import trouble
from service.writer.portal_state import PortalState, after_flush, rotation
from service.writer.ports import Blocked, Transient
from service.writer.status import UNREACHABLE, Status, merge, table
from tests.writer.fakes import (
    Clock,
    FakeDeadLetters,
    FakeHubSpot,
    FakeOwnership,
    FakeStore,
    Group,
    NoContacts,
)
from tests.writer.helpers import drive as _run
from tests.writer.helpers import ev, ref

PORTALS = """
portals:
  - id: acme
    hubspot: {token: tok-a}
  - id: bravo
    hubspot: {token: tok-b, api_version: "2026-03", rate: 4}
  - id: charlie
    hubspot:
      oauth: {client_id: cid, client_secret: csec, refresh_token: rt}
"""


def keyed(portal: str, call: str) -> str:
    return call if portal == "default" else f"{portal}/{call}"


def test_the_buffer_keys_calls_by_portal_and_takes_one_portal_at_a_time() -> None:
    """The same provider call in two portals is two calls; take(portal=) takes only that
    portal's, at most ``most`` of them; by_portal counts each portal's records."""
    buffer = Buffer(linger_s=0.0)
    for n in range(5):
        e = ev(1, "RINGING", call=f"c{n}")
        buffer.add(keyed("default", e.key), e, ref(n), 0.0)
        buffer.add(keyed("acme", e.key), e, ref(10 + n), 0.0)
    assert len(buffer) == 10
    assert buffer.by_portal == {"default": 5, "acme": 5}
    assert buffer.portals() == {"default", "acme"}
    taken = buffer.take(1.0, portal="acme", most=3)
    assert [p.portal for p in taken] == ["acme"] * 3
    assert {p.call_key for p in taken} <= {f"generic:c{n}" for n in range(5)}
    assert {p.key for p in taken} <= {f"acme/generic:c{n}" for n in range(5)}
    assert buffer.by_portal["acme"] == 2
    assert buffer.due(1.0, "default") and buffer.due(1.0, "acme")
    buffer.restore(taken, not_before=5.0)
    assert buffer.by_portal["acme"] == 5
    assert buffer.take(1.0, portal="acme") and not buffer.due(1.0, "acme")  # the rest: later


def test_a_pause_is_the_portals_own_and_cleared_by_a_settled_flush() -> None:
    """A refused token pauses one portal for at least 10 s, a 429 for its Retry-After, the
    daily limit until the daily retry; a flush that settles calls clears a transient pause,
    never a block (calls settled without a write, no-ops or dead letters, say nothing of
    the token: only a write HubSpot accepted lifts it, ``Writer._wrote``)."""
    a, b = PortalState("a"), PortalState("b")
    assert after_flush(a, Blocked("401", "auth"), False, 100.0, daily_retry_s=600) == 10.0
    assert a.paused(105.0) and not a.paused(110.0) and a.blocked and not a.ready
    assert not b.paused(105.0) and b.ready
    assert after_flush(b, Transient("429", 2.5), False, 100.0, daily_retry_s=600) == 2.5
    assert b.kind == "transient" and b.ready  # backing off, not blocked
    assert after_flush(b, Blocked("daily", "daily"), False, 100.0, daily_retry_s=600) == 600
    assert after_flush(a, None, False, 111.0, daily_retry_s=600) is None
    assert a.kind == "auth"  # nothing settled: still known to be refused
    after_flush(a, None, True, 112.0, daily_retry_s=600)
    assert a.kind == "auth" and a.blocked  # settled, but nothing says the token works
    assert after_flush(b, Transient("429", 2.5), False, 700.0, daily_retry_s=600) == 2.5
    after_flush(b, None, True, 703.0, daily_retry_s=600)
    assert b.kind is None and b.ready and b.failures == 0 and b.pauses == 3


def test_rotation_starts_each_round_one_portal_later() -> None:
    """Round-robin: every portal is first in turn."""
    assert [rotation(["a", "b", "c"], t)[0] for t in range(4)] == ["a", "b", "c", "a"]
    assert rotation([], 3) == []


def test_a_failed_oauth_refresh_pauses_and_never_dead_letters() -> None:
    """A refused refresh is Blocked (auth), one that could not be made Transient; neither
    is a refusal of the call's data."""
    refused = OAuthRefreshError(400, "BAD_REFRESH_TOKEN", "revoked", retryable=False)
    unreachable = OAuthRefreshError(0, None, "connection refused", retryable=True)
    for create in (True, False):
        blocked = trouble(refused, "batchCreateCalls", 10, create=create)
        assert isinstance(blocked, Blocked) and blocked.kind == "auth"
        assert "OAuth" in blocked.reason
        assert isinstance(trouble(unreachable, "batchCreateCalls", 10, create=create), Transient)


def test_a_portals_flush_sends_the_key_inside_the_portal_and_keeps_records_by_portal_key() -> None:
    """HubSpot sees ``provider:call_id``; ``calls.ids`` keeps ``portal/provider:call_id``;
    dead letters carry the portal; a flush refuses another portal's calls."""
    clock = Clock()
    hub = FakeHubSpot(clock, "callbridge_call_key")
    durable: dict[str, Any] = {}
    store = FakeStore(durable)
    store.owned = {0}
    letters: list[tuple[Any, Failure]] = []
    portals: list[str] = []
    flusher = Flusher(
        calls=hub,
        store=store,
        dead_letters=FakeDeadLetters(letters, portals),
        ownership=FakeOwnership(Group(1, {0: 0}), 0, 1),
        contacts=NoContacts(),
        policy=Policy(key_property="callbridge_call_key"),
        wall=clock.wall,
        portal="acme",
    )
    buffer = Buffer(linger_s=0.0)
    good, bad = ev(3, "COMPLETED", call="c1"), ev(3, "COMPLETED", call="c2")
    buffer.add(keyed("acme", good.key), good, ref(0), 0.0)
    buffer.add(keyed("acme", bad.key), bad, ref(1), 0.0)
    hub.refuse.add(bad.key)
    report = _run(flusher.flush(buffer.take(1.0)))
    assert len(report.settled) == 2
    assert [r.key for r in hub.records] == ["generic:c1"]
    assert set(durable) == {"acme/generic:c1", "acme/generic:c2"}
    assert durable["acme/generic:c1"][1].hubspot_id == hub.records[0].id
    assert portals == ["acme"] and letters[0][1].category == "VALIDATION_ERROR"
    other = Buffer(linger_s=0.0)
    other.add(good.key, good, ref(2), 0.0)
    with pytest.raises(ValueError, match="portal"):
        _run(flusher.flush(other.take(1.0)))


def test_status_lists_every_portal_of_the_file_with_the_writers_state(tmp_path: Path) -> None:
    """Portals the writer reports get its state; one it does not serve says so."""
    path = tmp_path / "portals.yaml"
    path.write_text(PORTALS)
    path_portals = parse_portals_file(path)
    answer = {
        "portals": [
            {"id": "acme", "ready": True, "paused": False, "budget_used_10s": 3, "lag": 0},
            {
                "id": "bravo",
                "ready": False,
                "paused": True,
                "pause_kind": "auth",
                "reason": "HubSpot refused the token (401 INVALID_AUTHENTICATION)",
                "budget_used_10s": 1,
                "shed": 7,
                "lag": 20,
            },
        ]
    }
    rows = {r["id"]: r for r in merge(path_portals, answer)}
    assert rows["acme"]["state"] == "ready"
    assert rows["bravo"]["state"] == "blocked (auth)"
    assert rows["charlie"]["state"] == "unknown (not served by this writer)"
    text = table(Status("http://w", True, list(rows.values())))
    bravo_line = next(line for line in text.splitlines() if line.startswith("bravo"))
    assert "blocked (auth)" in bravo_line and "1/4" in bravo_line and bravo_line.endswith("20")
    assert text.splitlines()[0].split()[-2:] == ["SHED", "LAG"]
    assert bravo_line.split()[-2:] == ["7", "20"]  # the events it shed, then its lag


def test_portals_list_without_a_writer_lists_every_portal_unknown_and_exits_1(
    tmp_path: Path,
) -> None:
    """``callbridge portals list`` with the writer down: each portal of the file, state
    "unknown (writer unreachable)", exit 1; ``--json`` says reachable false."""
    path = tmp_path / "portals.yaml"
    path.write_text(PORTALS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["CALLBRIDGE_PORTALS_FILE"] = str(path)
    url = f"http://127.0.0.1:{free_port()}"
    command = [sys.executable, "-m", "service.cli", "portals", "list", "--writer-url", url]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stdout.splitlines() if UNREACHABLE in line]
    assert [line.split()[0] for line in lines] == ["acme", "bravo", "charlie"]
    result = subprocess.run(
        [*command, "--json"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    doc = orjson.loads(result.stdout)
    assert doc["reachable"] is False
    assert {p["id"]: p["state"] for p in doc["portals"]} == dict.fromkeys(
        ["acme", "bravo", "charlie"], UNREACHABLE
    )


def test_a_commit_answered_after_its_partition_was_forgotten_is_ignored() -> None:
    """A portal's commit is out while another's flush rewinds (or a revoke forgets) the
    partition: the commit's answer must not recreate it, nor raise and end the writer."""
    from service.writer.offsets import OffsetTracker

    tracker = OffsetTracker()
    tracker.consumed(0, 5)
    tracker.settled(0, 5)
    positions = tracker.to_commit()
    tracker.forget({0})
    tracker.committed(positions)
    assert tracker.partitions == {}


class _Matched:
    """A contact index that matches every number to ``ids`` (empty until set)."""

    def __init__(self) -> None:
        self.ids: tuple[str, ...] = ()

    async def match(self, numbers: Collection[str]) -> Mapping[str, Sequence[str]]:
        return dict.fromkeys(numbers, self.ids)


def test_a_flush_that_sent_no_write_accepted_never_tells_the_portal_it_can_write() -> None:
    """``on_written`` (which lifts a portal's auth or daily block) only when HubSpot
    accepted a write of the flush: an update with nothing to send (a late contact match
    only) is not one; its association answered 401 keeps the portal blocked."""
    clock = Clock()
    hub = FakeHubSpot(clock, "callbridge_call_key")
    store = FakeStore({})
    store.owned = {0}
    contacts = _Matched()
    told: list[str] = []
    flusher = Flusher(
        calls=hub,
        store=store,
        dead_letters=FakeDeadLetters([]),
        ownership=FakeOwnership(Group(1, {0: 0}), 0, 1),
        contacts=contacts,
        policy=Policy(key_property="callbridge_call_key"),
        wall=clock.wall,
        portal="acme",
        on_written=lambda: told.append("written"),
    )
    event = msgspec.structs.replace(ev(3, "COMPLETED", call="c1"), counterpart="+15550001111")

    def flush() -> FlushReport:
        buffer = Buffer(linger_s=0.0)
        buffer.add(keyed("acme", event.key), event, ref(0), 0.0)
        return _run(flusher.flush(buffer.take(1.0)))

    assert len(flush().settled) == 1 and told == ["written"]  # created: HubSpot accepted it
    told.clear()
    hub.revoked = True
    contacts.ids = ("501",)  # the same event again, now matching a contact: only a link
    report = flush()
    assert isinstance(report.pause, Blocked) and report.pause.kind == "auth"
    assert not report.settled and hub.records[0].contacts == set()
    assert told == []  # nothing was written: the portal was not told it can write
    hub.revoked = False
    report = flush()
    assert len(report.settled) == 1 and hub.records[0].contacts == {"501"}
    assert told == ["written"]  # the association was accepted
