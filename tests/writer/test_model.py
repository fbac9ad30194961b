"""The writer's core and flush, model-checked: hypothesis drives two writers (the real
``Buffer``, ``OffsetTracker``, ``Flusher`` and ``core``) over in-memory fakes of the ports
through arbitrary interleavings of shuffled and duplicated events, creates applied but
unanswered, timeouts, crashes (memory lost, ``calls.ids`` kept), rebalances to the other
writer, zombies (a writer that keeps flushing after losing its partitions), search-index
lag of up to several minutes, 207 item errors and permanent 400s, in both reconcile
modes. After every step: never two HubSpot records for one call; an offset is committed
only after every event below it is settled in HubSpot or in the DLQ; a terminal status
never regresses. At the end, with the faults healed, every call is in HubSpot exactly
once (or in the DLQ) and every offset is committed: nothing lost.

``PortalsModel`` adds the portal dimension: two portals (``default`` in key mode,
``acme`` in search mode, each its own fake HubSpot and ``Flusher``, their events mixed in
the same partitions, the same call ids in both), faults per portal (429s, timeouts, a
revoked token answering 401) and each writer's per-portal pause state
(``portal_state``). Per portal: never two records for one call, no record in another
portal's HubSpot, nothing committed unsettled, no call dead-lettered for a pause (every
dead letter is a refusal of its data, with its own portal's ``dlq.portal``), and while one
portal's token is revoked the other portal's calls are all written.
"""

from __future__ import annotations

import itertools
from collections.abc import Coroutine
from typing import Any, ClassVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from handlers.event import DEFAULT_PORTAL, portal_key
from service.deadletter import Failure
from service.model import TERMINAL_STATUSES, CallEvent
from service.writer.buffer import Buffer, Pending, Ref
from service.writer.core import Policy
from service.writer.flush import Flusher, FlushReport
from service.writer.offsets import OffsetTracker
from service.writer.portal_state import PortalState, after_flush
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

PARTITIONS = (0, 1)
CALLS = 6
KINDS = {
    "ringing": (1, "RINGING", {}),
    "answered": (2, "IN_PROGRESS", {}),
    "ended": (3, "COMPLETED", {"hs_call_duration": "30000"}),
    "tagged": (4, None, {"hs_call_title": "tagged"}),
    "noted": (5, None, {"hs_call_title": "noted"}),
}
EXAMPLES = 300
STEPS = 40


def call_key(n: int) -> str:
    return f"generic:c{n}"


def part(n: int, portal: str = DEFAULT_PORTAL) -> int:
    """The partition of call ``n`` of ``portal`` (keyed by its portal key, as Kafka does):
    the same call id lands in different partitions in the two portals."""
    return (n + (portal != DEFAULT_PORTAL)) % len(PARTITIONS)


def make_event(n: int, kind: str, portal: str = DEFAULT_PORTAL) -> CallEvent:
    seq, status, extra = KINDS[kind]
    props = {"hs_timestamp": f"2026-03-03T15:0{seq}:00.000Z", "hs_call_body": portal, **extra}
    if status:
        props["hs_call_status"] = status
    return CallEvent(
        provider="generic",
        call_id=f"c{n}",
        event_id=f"c{n}:{kind}",
        type=f"call.{kind}",
        occurred_at=f"2026-03-03T15:0{seq}:00+00:00",
        sequence=seq,
        properties=props,
        portal=portal,
    )


def final_state(events: list[CallEvent]) -> dict[str, str]:
    """What a call's record must end with, by the merge rules (``records.py``): a terminal
    status wins, else the latest status; the latest title."""
    statuses = [
        (e.sequence, e.properties["hs_call_status"])
        for e in events
        if "hs_call_status" in e.properties
    ]
    titles = [
        (e.sequence, e.properties["hs_call_title"])
        for e in events
        if "hs_call_title" in e.properties
    ]
    want: dict[str, str] = {}
    if statuses:
        terminal = [s for _, s in statuses if s in TERMINAL_STATUSES]
        want["hs_call_status"] = terminal[0] if terminal else max(statuses)[1]
    if titles:
        want["hs_call_title"] = max(titles)[1]
    return want


class Node:
    """One writer: what the Kafka shell does, over the fakes (poll, flush, commit)."""

    def __init__(self, m: WriterModel, member: int) -> None:
        self.m = m
        self.member = member
        self.generation = m.group.generation
        self.buffer = Buffer(linger_s=0.0)
        self.offsets = OffsetTracker()
        self.store = FakeStore(m.durable)
        #: each owned partition's epoch, new at every assignment (as the shell's)
        self.epochs: dict[int, int] = {}
        self.ownership = FakeOwnership(m.group, member, self.generation, self.epochs)
        self.flushers = {
            portal: Flusher(
                calls=m.hubs[portal],
                store=self.store,
                dead_letters=FakeDeadLetters(m.dlq, m.dlq_portals),
                ownership=self.ownership,
                contacts=NoContacts(),
                policy=m.policies[portal],
                wall=m.clock.wall,
                portal=portal,
            )
            for portal in m.portals
        }
        self.flusher = self.flushers[m.portals[0]]
        self.states = {portal: PortalState(portal) for portal in m.portals}
        self.position: dict[int, int] = {}
        #: one flush in flight per portal, stepped in turn (they interleave)
        self.inflight: dict[str, Coroutine[Any, Any, FlushReport]] = {}
        self.join()

    def owns(self) -> set[int]:
        return {p for p, o in self.m.group.owner.items() if o == self.member}

    def join(self) -> None:
        """A rebalance reached this writer: drop what it lost, load what it gained."""
        self.generation = self.ownership.generation = self.m.group.generation
        owned = self.owns()
        lost = set(self.position) - owned
        self.buffer.drop(lost)
        self.offsets.forget(lost)
        for p in lost:
            del self.position[p]
            del self.epochs[p]
        for p in owned - set(self.position):
            self.position[p] = self.m.committed.get(p, 0)
            self.epochs[p] = next(self.m.epoch_seq)
        self.store.owned = owned

    def poll(self, n: int) -> None:
        if self.generation != self.m.group.generation:
            return  # a zombie fetches nothing new
        for p in sorted(self.position):
            log = self.m.log[p]
            while n and self.position[p] < len(log):
                offset = self.position[p]
                event = log[offset]
                ref = Ref(
                    "calls.events", p, offset, event.portal_key.encode(), b"", epoch=self.epochs[p]
                )
                self.offsets.consumed(p, offset)
                self.buffer.add(event.portal_key, event, ref, self.m.clock.t)
                self.position[p] += 1
                n -= 1

    def begin(self) -> None:
        """A flush for each portal with none in flight and not paused (as the shell)."""
        for portal, flusher in self.flushers.items():
            if portal in self.inflight or self.states[portal].paused(self.m.clock.t):
                continue
            pendings = self.buffer.take(float("inf"), portal=portal)
            if pendings:
                self.inflight[portal] = flusher.flush(pendings)
                self.step()

    def step(self) -> None:
        """One port call of the flush in flight longest (then it goes to the back)."""
        if not self.inflight:
            return
        portal = next(iter(self.inflight))
        flight = self.inflight.pop(portal)
        try:
            flight.send(None)
        except StopIteration as done:
            self.finished(portal, done.value)
        else:
            self.inflight[portal] = flight

    def current(self, pending: Pending) -> bool:
        partition, epoch = pending.claim
        return self.epochs.get(partition) == epoch

    def finished(self, portal: str, report: FlushReport) -> None:
        for pending in report.settled:
            if not self.current(pending):  # taken in an older epoch: not these offsets
                continue
            for r in pending.refs:
                self.offsets.settled(r.partition, r.offset)
        for pending, at in report.retry:
            if self.current(pending):  # still ours, in the epoch it was read in
                self.buffer.restore([pending], not_before=at)
        after_flush(
            self.states[portal],
            report.pause,
            bool(report.settled),
            self.m.clock.t,
            daily_retry_s=60.0,
        )

    def commit(self) -> None:
        if self.generation != self.m.group.generation:
            return  # CommitFailedError: the group moved on
        positions = {p: o for p, o in self.offsets.to_commit().items() if p in self.owns()}
        self.m.committed.update(positions)
        self.offsets.committed(positions)

    def crash(self) -> None:
        for flight in self.inflight.values():
            flight.close()
        self.inflight = {}

    def run(self) -> None:
        """Poll, flush every portal to the end, commit."""
        self.poll(1000)
        self.begin()
        while self.inflight:
            self.step()
        self.commit()


class WriterModel(RuleBasedStateMachine):
    key_property: ClassVar[str | None] = "callbridge_call_key"
    #: portal -> its reconcile mode's key property (the first portal: ``key_property``)
    extra_portals: ClassVar[dict[str, str | None]] = {}

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        modes = {DEFAULT_PORTAL: self.key_property, **self.extra_portals}
        self.portals = list(modes)
        self.hubs = {p: FakeHubSpot(self.clock, key) for p, key in modes.items()}
        self.hub = self.hubs[DEFAULT_PORTAL]
        self.policies = {
            p: Policy(
                key_property=key,
                reconcile_after_s=400.0,  # over the worst lag the model injects (300 s)
                unknown_window_s=15.0,
                retry_s=1.0,
            )
            for p, key in modes.items()
        }
        self.policy = self.policies[DEFAULT_PORTAL]
        self.log: dict[int, list[CallEvent]] = {p: [] for p in PARTITIONS}
        self.committed: dict[int, int] = {}
        self.durable: dict[str, tuple[int, CallRecord]] = {}
        self.dlq: list[tuple[Ref, Failure]] = []
        self.dlq_portals: list[str] = []
        self.group = Group(generation=1, owner={0: 0, 1: 1})
        self.epoch_seq = itertools.count(1)
        self.members = 2
        self.nodes: list[Node] = []
        self.nodes = [Node(self, 0), Node(self, 1)]

    # -- the world ------------------------------------------------------------------------

    @rule(
        n=st.integers(0, CALLS - 1),
        kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5),
    )
    def produce(self, n: int, kinds: list[str]) -> None:
        """Events of one call, in any order, possibly duplicated."""
        for kind in kinds:
            self.log[n % len(PARTITIONS)].append(make_event(n, kind))

    @rule(seconds=st.sampled_from([0.5, 3.0, 12.0, 40.0, 200.0]))
    def advance(self, seconds: float) -> None:
        self.clock.t += seconds

    @rule(
        lag=st.sampled_from([0.0, 30.0, 300.0]),
        answers_lost=st.integers(0, 3),
        requests_lost=st.integers(0, 2),
        rate_limited=st.integers(0, 2),
    )
    def faults(self, lag: float, answers_lost: int, requests_lost: int, rate_limited: int) -> None:
        """Search-index lag; creates applied but unanswered; timeouts; 429s."""
        self.hub.lag_s = lag
        self.hub.applied_unanswered = answers_lost
        self.hub.lost_requests = requests_lost
        self.hub.rate_limited = rate_limited

    @rule(n=st.integers(0, CALLS - 1), whole=st.booleans())
    def refuse(self, n: int, whole: bool) -> None:
        """This call's data is refused: per input (207) or the whole request (400)."""
        (self.hub.poison if whole else self.hub.refuse).add(call_key(n))

    # -- the writers ----------------------------------------------------------------------

    @rule(i=st.integers(0, 1), n=st.integers(1, 8))
    def poll(self, i: int, n: int) -> None:
        self.nodes[i].poll(n)

    @rule(i=st.integers(0, 1))
    def cycle(self, i: int) -> None:
        """One whole loop of a writer: poll, flush to the end, commit."""
        node = self.nodes[i]
        node.poll(100)
        node.begin()
        while node.inflight:
            node.step()
        node.commit()

    @precondition(lambda self: any(not n.inflight for n in self.nodes))
    @rule(i=st.integers(0, 1))
    def flush(self, i: int) -> None:
        self.nodes[i].begin()

    @rule(i=st.integers(0, 1), times=st.integers(1, 4))
    def step(self, i: int, times: int) -> None:
        for _ in range(times):
            self.nodes[i].step()

    @rule(i=st.integers(0, 1))
    def commit(self, i: int) -> None:
        self.nodes[i].commit()

    @rule(i=st.integers(0, 1))
    def crash(self, i: int) -> None:
        """All memory lost (a SIGKILL); the group hands its partitions to whoever is up."""
        self.nodes[i].crash()
        self.members += 1
        self.group.generation += 1
        self.group.owner = {p: self.nodes[1 - i].member for p in PARTITIONS}
        self.nodes[1 - i].join()
        self.nodes[i] = Node(self, self.members)  # restarted, owns nothing yet

    @rule(zombie=st.booleans())
    def rebalance(self, zombie: bool) -> None:
        """Partitions move between the writers; a zombie does not notice (frozen VM)."""
        self.group.generation += 1
        a, b = self.nodes
        self.group.owner = {
            p: (b.member if self.group.owner.get(p) == a.member else a.member) for p in PARTITIONS
        }
        for node in self.nodes[1:] if zombie else self.nodes:
            node.join()

    @rule(i=st.integers(0, 1))
    def rejoin(self, i: int) -> None:
        """A zombie thaws and rejoins the group."""
        node = self.nodes[i]
        if node.generation != self.group.generation:
            node.join()

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def one_record_per_call(self) -> None:
        for portal, hub in self.hubs.items():
            for n in range(CALLS):
                got = hub.by_key(call_key(n))
                assert len(got) <= 1, f"duplicate records for {portal}/c{n}"
            for record in hub.records:  # a portal holds only its own calls
                assert record.properties.get("hs_call_body") == portal, (portal, record)

    @invariant()
    def terminal_status_never_regresses(self) -> None:
        for hub in self.hubs.values():
            assert hub.regressed() == []

    @invariant()
    def dead_letters_are_refusals_of_their_portal(self) -> None:
        """Never a dead letter for a pause (401, 429, timeouts): only refused data, and
        each with the portal its call belongs to."""
        for (ref, failure), portal in zip(self.dlq, self.dlq_portals, strict=True):
            assert failure.category == "VALIDATION_ERROR", failure
            event = self.log[ref.partition][ref.offset]
            assert portal == event.portal, (portal, event.portal_key)

    @invariant()
    def committed_offsets_are_settled(self) -> None:
        dead = {(r.partition, r.offset) for r, _ in self.dlq}
        for p, upto in self.committed.items():
            for offset in range(upto):
                event = self.log[p][offset]
                if (p, offset) in dead:
                    continue
                records = self.hubs[event.portal].by_key(event.key)
                assert records, f"offset {p}:{offset} committed, {event.key} not in HubSpot"
                if event.properties.get("hs_call_status") in TERMINAL_STATUSES:
                    status = records[0].properties.get("hs_call_status")
                    assert status in TERMINAL_STATUSES, f"{event.key}: {status} after COMPLETED"

    def teardown(self) -> None:
        """Heal everything, let the writers run: every call lands once; nothing is lost."""
        for hub in self.hubs.values():
            hub.applied_unanswered = hub.lost_requests = hub.rate_limited = 0
            hub.refuse.clear()
            hub.poison.clear()
            hub.revoked = False
        for node in self.nodes:  # both restart: memory lost, positions from the commits
            node.crash()
        self.group.generation += 1
        self.group.owner = {0: self.members + 1, 1: self.members + 2}
        self.nodes = [Node(self, self.members + 1), Node(self, self.members + 2)]
        for _ in range(60):
            for node in self.nodes:
                node.run()
            self.clock.t += 30.0
            if all(self.committed.get(p, 0) == len(self.log[p]) for p in PARTITIONS) and not any(
                len(n.buffer) for n in self.nodes
            ):
                break
        for p in PARTITIONS:
            assert self.committed.get(p, 0) == len(self.log[p]), f"partition {p} not drained"
        dead = {(r.partition, r.offset) for r, _ in self.dlq}
        for portal, hub in self.hubs.items():
            for n in range(CALLS):
                key = portal_key(portal, call_key(n))
                events = [
                    (p, o)
                    for p in PARTITIONS
                    for o, e in enumerate(self.log[p])
                    if e.portal_key == key
                ]
                alive = [po for po in events if po not in dead]
                if alive:
                    assert len(hub.by_key(call_key(n))) == 1, f"{key} lost"
                if alive and len(alive) == len(events):  # none refused: all its events count
                    want = final_state([self.log[p][o] for p, o in alive])
                    record = hub.by_key(call_key(n))[0]
                    got = {name: record.properties.get(name) for name in want}
                    assert got == want, f"{key}: {got}, not {want} (a stale write landed last?)"
        self.one_record_per_call()


class KeyModeModel(WriterModel):
    key_property = "callbridge_call_key"


class SearchModeModel(WriterModel):
    key_property = None


OTHER = "acme"


class PortalsModel(WriterModel):
    """Two portals: ``default`` in key mode, ``acme`` in search mode."""

    key_property = "callbridge_call_key"
    extra_portals: ClassVar[dict[str, str | None]] = {OTHER: None}

    @rule(
        n=st.integers(0, CALLS - 1),
        kinds=st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=5),
    )
    def produce_other(self, n: int, kinds: list[str]) -> None:
        """Events of the same call ids in the other portal: other calls, same partitions."""
        for kind in kinds:
            self.log[part(n, OTHER)].append(make_event(n, kind, OTHER))

    @rule(
        portal=st.sampled_from([DEFAULT_PORTAL, OTHER]),
        rate_limited=st.integers(0, 3),
        requests_lost=st.integers(0, 2),
    )
    def portal_faults(self, portal: str, rate_limited: int, requests_lost: int) -> None:
        """429s and timeouts in one portal only."""
        self.hubs[portal].rate_limited = rate_limited
        self.hubs[portal].lost_requests = requests_lost

    @rule(portal=st.sampled_from([DEFAULT_PORTAL, OTHER]), revoked=st.booleans())
    def revoke(self, portal: str, revoked: bool) -> None:
        """A portal's token is revoked (every request 401) or restored."""
        self.hubs[portal].revoked = revoked

    @precondition(lambda self: sum(h.revoked for h in self.hubs.values()) == 1)
    @rule()
    def the_other_portal_progresses(self) -> None:
        """While one portal's token is revoked, the other's calls are all written (or
        dead-lettered for their data), and none of the revoked portal's is dead-lettered."""
        revoked = next(p for p, h in self.hubs.items() if h.revoked)
        healthy = next(p for p in self.portals if p != revoked)
        hub = self.hubs[healthy]
        saved = (hub.rate_limited, hub.lost_requests, hub.applied_unanswered, hub.lag_s)
        hub.rate_limited = hub.lost_requests = hub.applied_unanswered = 0
        hub.lag_s = 0.0
        for node in self.nodes:  # zombies thaw: every partition has a live owner
            if node.generation != self.group.generation:
                node.join()
        dead_before = len(self.dlq)
        # the revoked portal meets its 401 (and is paused); then the other's calls come in
        self.log[part(0, revoked)].append(make_event(0, "noted", revoked))
        for node in self.nodes:
            node.run()
        for n in range(CALLS):
            self.log[part(n, healthy)].append(make_event(n, "noted", healthy))
        for _ in range(40):
            for node in self.nodes:
                node.run()
            if self._written(healthy):
                break
            self.clock.t += 30.0
        assert self._written(healthy), f"{healthy} stalled while {revoked} was revoked"
        assert all(p != revoked for p in self.dlq_portals[dead_before:])
        hub.rate_limited, hub.lost_requests, hub.applied_unanswered, hub.lag_s = saved

    def _written(self, portal: str) -> bool:
        dead = {(r.partition, r.offset) for r, _ in self.dlq}
        hub = self.hubs[portal]
        for p in PARTITIONS:
            for o, e in enumerate(self.log[p]):
                if e.portal == portal and (p, o) not in dead and not hub.by_key(e.key):
                    return False
        return True


_settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestKeyMode = KeyModeModel.TestCase
TestKeyMode.settings = _settings
TestSearchMode = SearchModeModel.TestCase
TestSearchMode.settings = _settings
TestPortals = PortalsModel.TestCase
TestPortals.settings = settings(
    max_examples=EXAMPLES // 2,
    stateful_step_count=STEPS,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_pending_is_settled_once() -> None:
    """A flush reports each call in exactly one of settled / retry / abandoned."""
    model = KeyModeModel()
    for n in range(CALLS):
        model.produce(n, ["ended"])
    node = model.nodes[0]
    node.poll(100)
    pendings: list[Pending] = node.buffer.take(float("inf"))
    coro = node.flusher.flush(pendings)
    report = None
    while report is None:
        try:
            coro.send(None)
        except StopIteration as done:
            report = done.value
    seen = [p.key for p in report.settled] + [p.key for p, _ in report.retry]
    seen += [p.key for p in report.abandoned]
    assert sorted(seen) == sorted(p.key for p in pendings)
    assert all(len(model.hub.by_key(p.key)) == 1 for p in report.settled)


def test_a_write_waiting_in_the_client_is_not_sent_after_its_partition_moved() -> None:
    """The chaos defect of seed 722074, step by step: writer 0's update of a call waits in
    the client (a 429's retry) while the partition moves to writer 1, which writes the
    call's newer state and commits. Sent then, writer 0's older state would land last while
    every record says the newer one was written; the fence stops it before it is sent."""
    model = KeyModeModel()
    model.produce(0, ["answered"])  # call 0 lives in partition 0, owned by writer 0
    model.cycle(0)
    model.produce(0, ["tagged"])
    writer = model.nodes[0]
    writer.poll(8)
    writer.begin()  # its flush: the update's ownership check...
    model.step(0, 1)  # ...passed; the request now waits before it is sent
    assert writer.inflight
    model.produce(0, ["noted"])
    model.rebalance(zombie=False)  # partition 0 goes to writer 1
    model.cycle(1)  # which reads both events, writes "noted" and commits
    assert model.hub.by_key(call_key(0))[0].properties["hs_call_title"] == "noted"
    model.step(0, 4)  # writer 0's flush goes on: its request asks the fence
    assert not writer.inflight
    assert model.hub.by_key(call_key(0))[0].properties["hs_call_title"] == "noted"
    model.teardown()
