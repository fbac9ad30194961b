"""The exactly-once decisions (pure): no awaits, no clock reads, no Kafka or HTTP types.

A flush asks three questions, each a function of immutable values:

- ``plan(pending, record, contacts, now)``: what this call needs: **create**, **update**,
  **no-op**, **reconcile by lookup** (a create of unknown outcome is outstanding),
  **wait to reconcile** (search mode: HubSpot's index cannot answer yet) or
  **dead-letter** (its own data can never be written);
- ``resolve(lookup, answer, now)``: what a lookup's answer means;
- ``settle(decision, outcome, now)``: what a write's outcome means: the record to keep,
  whether the call's events are settled, dead-lettered, retried or looked up next.

One HubSpot record per call rests on three facts. A create's intent is durable before the
create is sent, so nothing forgets that a create may have landed. Every create carries the
call key in the unique property ``callbridge_call_key``: HubSpot itself refuses a second
record (``Exists``), and reading by that property sees every write at once. Without the
property (search mode), a miss is trusted only once the index has provably caught up: a
call created *after* the unknown one became unknown is visible in the same search (the
index is applied in order), or, with no such probe, once the wait, adapted to the lag
observed, has passed since the outcome became unknown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import msgspec

from service.deadletter import Failure
from service.writer.buffer import Pending
from service.writer.ports import (
    Blocked,
    Exists,
    LookupOutcome,
    Refused,
    Transient,
    Unknown,
    WriteOutcome,
    Written,
)
from service.writer.records import CallRecord, Merged, merge, with_contacts

#: HubSpot's limit on a text property value (characters)
MAX_VALUE_CHARS = 65_536
#: association targets one call may carry, all object types together
MAX_ASSOCIATIONS = 500
PROBES_KEPT = 16


@dataclass(frozen=True)
class Policy:
    #: None: search reconciliation (the portal lacks the unique key property)
    key_property: str | None
    #: search mode: with no probe, how long after an outcome became unknown a miss is trusted:
    #: the worst search-index lag to assume (grown to twice the lag observed)
    reconcile_after_s: float = 600.0
    #: how long after it was sent a create can still be applied (the request timeout)
    unknown_window_s: float = 15.0
    #: back-off before trying a call again after a transient failure
    retry_s: float = 1.0


@dataclass(frozen=True)
class Probe:
    key: str
    acked_at: float


@dataclass(frozen=True)
class IndexView:
    """Search mode: what the writer has seen of HubSpot's search-index lag."""

    lag_s: float = 0.0
    probes: tuple[Probe, ...] = ()

    def probe_after(self, moment: float) -> Probe | None:
        """The oldest recent create acknowledged at or after ``moment``."""
        return next((p for p in self.probes if p.acked_at >= moment), None)

    def created(self, key: str, at: float) -> IndexView:
        kept = tuple(p for p in self.probes if p.key != key)[-(PROBES_KEPT - 1) :]
        return replace(self, probes=(*kept, Probe(key, at)))

    def saw(self, probe: Probe, visible: bool, now: float) -> IndexView:
        age = max(0.0, now - probe.acked_at)
        lag = min(self.lag_s, age) if visible else max(self.lag_s, age)
        return replace(self, lag_s=lag)


# --- decisions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Create:
    pending: Pending
    merged: Merged
    associations: Mapping[str, tuple[str, ...]]


@dataclass(frozen=True)
class Update:
    pending: Pending
    hubspot_id: str
    merged: Merged
    #: contacts to associate beyond those already associated
    new_contacts: tuple[str, ...]


@dataclass(frozen=True)
class Noop:
    pending: Pending


@dataclass(frozen=True)
class Lookup:
    pending: Pending
    record: CallRecord
    #: when the outstanding create's outcome became unknown (search mode trusts by it)
    since: float
    probe: Probe | None = None


@dataclass(frozen=True)
class Wait:
    pending: Pending
    until: float


@dataclass(frozen=True)
class DeadLetter:
    pending: Pending
    failure: Failure
    #: the record to keep (a cleared intent), if it changed
    record: CallRecord | None = None


Decision = Create | Update | Noop | Lookup | Wait | DeadLetter


def explicit_associations(pending: Pending) -> dict[str, tuple[str, ...]]:
    out: dict[str, set[str]] = {"contacts": set(), "companies": set(), "deals": set()}
    out["tickets"] = set()
    for e in pending.events:
        out["contacts"].update(e.contact_ids)
        out["companies"].update(e.company_ids)
        out["deals"].update(e.deal_ids)
        out["tickets"].update(e.ticket_ids)
    return {k: tuple(sorted(v)) for k, v in out.items() if v}


def contacts_of(pending: Pending, matched: Mapping[str, Sequence[str]]) -> tuple[str, ...]:
    ids = set(explicit_associations(pending).get("contacts", ()))
    for number in pending.counterparts():
        ids.update(matched.get(number, ()))
    return tuple(sorted(ids))


def _too_large(pending: Pending, merged: Merged, contacts: tuple[str, ...]) -> Failure | None:
    for name, value in merged.properties.items():
        if len(value) > MAX_VALUE_CHARS:
            return Failure(
                "hubspot",
                "plan",
                None,
                "VALIDATION_ERROR",
                f"property {name} is {len(value)} characters, over HubSpot's {MAX_VALUE_CHARS}",
            )
    others = sum(len(v) for k, v in explicit_associations(pending).items() if k != "contacts")
    if len(contacts) + others > MAX_ASSOCIATIONS:
        return Failure(
            "hubspot",
            "plan",
            None,
            "VALIDATION_ERROR",
            f"{len(contacts) + others} association targets, over the {MAX_ASSOCIATIONS} "
            "a call may carry",
        )
    return None


def plan(
    pending: Pending,
    record: CallRecord | None,
    matched: Mapping[str, Sequence[str]],
    now: float,
    policy: Policy,
    index: IndexView,
) -> Decision:
    """What one call needs now."""
    contacts = contacts_of(pending, matched)
    merged = merge(pending.events, record)
    failure = _too_large(pending, merged, contacts)
    if failure is not None:
        return DeadLetter(pending, failure)
    if record is not None and record.hubspot_id is not None:
        new = tuple(c for c in contacts if c not in set(record.contacts))
        if not merged.delta and not new:
            return Noop(pending)
        return Update(pending, record.hubspot_id, merged, new)
    if record is not None and record.intent_at is not None:
        since = record.intent_at + policy.unknown_window_s
        if policy.key_property is not None:
            return Lookup(pending, record, since)
        probe = index.probe_after(since)
        due = since + max(policy.reconcile_after_s, 2 * index.lag_s)
        if probe is None and now < due:
            return Wait(pending, due)
        return Lookup(pending, record, since, probe)
    associations = dict(explicit_associations(pending))
    if contacts:
        associations["contacts"] = contacts
    return Create(pending, merged, associations)


def resolve(
    lookup: Lookup,
    answer: LookupOutcome,
    probe_seen: bool | None,
    matched: Mapping[str, Sequence[str]],
    now: float,
    policy: Policy,
    index: IndexView,
) -> tuple[Decision | CallRecord, IndexView]:
    """What a lookup's answer means: the next decision, or (a miss trusted) the record with
    its intent cleared, to be planned again. ``probe_seen``: whether the lookup's probe
    was visible (None: it had none)."""
    if lookup.probe is not None and probe_seen is not None:
        index = index.saw(lookup.probe, probe_seen, now)
    if isinstance(answer, Refused):
        return DeadLetter(lookup.pending, answer.failure), index
    if isinstance(answer, Transient | Blocked):
        return Wait(lookup.pending, now + (answer.retry_after_s or policy.retry_s)), index
    if answer.hubspot_id is not None:
        # It landed, but which version of it is unknown: resend every property and contact.
        found = msgspec.structs.replace(
            lookup.record, hubspot_id=answer.hubspot_id, intent_at=None, values={}, contacts=()
        )
        decision = plan(lookup.pending, found, matched, now, policy, index)
        return decision, index
    trusted = (
        policy.key_property is not None
        or (probe_seen is True)
        or (
            lookup.probe is None
            and now >= lookup.since + max(policy.reconcile_after_s, 2 * index.lag_s)
        )
    )
    if not trusted:
        return Wait(lookup.pending, now + max(policy.retry_s, index.lag_s)), index
    return msgspec.structs.replace(lookup.record, intent_at=None), index


@dataclass(frozen=True)
class Settled:
    """What a decision's outcome leaves behind."""

    #: the record to write durably (before the events' offsets are committed)
    record: CallRecord | None = None
    #: the call's events are settled (written, a no-op, or dead-lettered)
    settled: bool = False
    failure: Failure | None = None
    #: try the call again no earlier than this (not settled)
    retry_at: float | None = None
    #: look it up next, in this flush (a create refused because the key exists)
    lookup: Lookup | None = None
    #: contacts to associate next (an update written; its contacts still to come)
    associate: tuple[str, ...] = ()
    #: plan the call again in this flush, from ``record`` (its id just became known)
    again: bool = False
    #: trouble of the whole deployment: pause writing
    pause: Transient | Blocked | None = None
    index: IndexView = field(default_factory=IndexView)


def intent(decision: Create, record: CallRecord | None, now: float) -> CallRecord:
    """The record written durably *before* a create is sent."""
    base = record or CallRecord()
    return msgspec.structs.replace(base, intent_at=now, touched_at=now)


def settle(
    decision: Create | Update,
    outcome: WriteOutcome,
    record: CallRecord | None,
    now: float,
    policy: Policy,
    index: IndexView,
) -> Settled:
    """What a create's or an update's outcome means. ``record`` is the call's durable
    record as the write found it (for a create: its intent)."""
    pending = decision.pending
    retry = now + policy.retry_s
    if isinstance(outcome, Written):
        after = msgspec.structs.replace(
            decision.merged.after,
            hubspot_id=outcome.hubspot_id,
            intent_at=None,
            touched_at=now,
        )
        if isinstance(decision, Create):
            contacts = decision.associations.get("contacts", ())
            if policy.key_property is None:
                index = index.created(pending.call_key, now)
            return Settled(with_contacts(after, contacts), settled=True, index=index)
        if decision.new_contacts:  # contacts are recorded once associated
            return Settled(after, associate=decision.new_contacts, index=index)
        return Settled(after, settled=True, index=index)
    if isinstance(outcome, Exists):
        base = record or CallRecord()
        if outcome.hubspot_id is not None:
            known = msgspec.structs.replace(
                base, hubspot_id=outcome.hubspot_id, intent_at=None, values={}, contacts=()
            )
            return Settled(known, again=True, index=index)
        at = base.intent_at if base.intent_at is not None else now
        held = msgspec.structs.replace(base, intent_at=at)
        return Settled(lookup=Lookup(pending, held, now), index=index)
    if isinstance(outcome, Refused):
        cleared = None
        if isinstance(decision, Create) and record is not None:
            cleared = msgspec.structs.replace(record, intent_at=None)  # known not created
        return Settled(cleared, settled=True, failure=outcome.failure, index=index)
    if isinstance(outcome, Unknown):
        return Settled(retry_at=retry, index=index)  # the durable intent says "look it up"
    # Transient or Blocked: not applied.
    cleared = None
    if isinstance(decision, Create) and record is not None:
        cleared = msgspec.structs.replace(record, intent_at=None)
    wait = outcome.retry_after_s or policy.retry_s
    return Settled(cleared, retry_at=now + wait, pause=outcome, index=index)


def associated(
    record: CallRecord, contacts: Sequence[str], outcome: WriteOutcome, now: float, policy: Policy
) -> Settled:
    """What an association's outcome means for a call whose update was written (its
    properties are in ``record`` already; its contacts are remembered once associated)."""
    if isinstance(outcome, Written | Exists):
        return Settled(with_contacts(record, contacts), settled=True)
    if isinstance(outcome, Refused):
        return Settled(settled=True, failure=outcome.failure)
    pause = outcome if isinstance(outcome, Transient | Blocked) else None
    wait = pause.retry_after_s if pause is not None and pause.retry_after_s else policy.retry_s
    return Settled(retry_at=now + wait, pause=pause)
