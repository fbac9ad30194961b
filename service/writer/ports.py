"""The writer's ports: small ``Protocol``s for what the flush talks to, and the outcomes
they answer with (pure types; cosmicpython's ports and adapters).

The flush never sees HTTP or Kafka: the HubSpot adapter (``hubspot.py``) turns answers
and exceptions into these outcomes, per input, and tests hand in in-memory fakes of the
same ports. A port method never raises for a HubSpot answer; it says what happened:

- ``Written``: applied, here is the record's id;
- ``Exists``: a create refused because the call key is already taken (the unique
  ``callbridge_call_key``): the call was created before, look it up;
- ``Unknown``: the request may or may not have been applied (timeout, 5xx, cut off);
- ``Refused``: this input's own data is refused (dead-letter it); ``whole_batch``: the
  batch was refused as a whole and the culprit is not known (split it and try again);
- ``Transient``: not applied, retry later (429, a connection that never reached HubSpot);
- ``Blocked``: not applied, and nothing will be until an operator or the clock acts
  (401/403: token or scopes; the daily limit).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from handlers.event import DEFAULT_PORTAL
from service.deadletter import Failure
from service.writer.buffer import Ref
from service.writer.records import CallRecord


@dataclass(frozen=True)
class Written:
    hubspot_id: str


@dataclass(frozen=True)
class Exists:
    hubspot_id: str | None = None


@dataclass(frozen=True)
class Unknown:
    reason: str


@dataclass(frozen=True)
class Refused:
    failure: Failure
    whole_batch: bool = False


@dataclass(frozen=True)
class Transient:
    reason: str
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Blocked:
    reason: str
    kind: Literal["auth", "daily"]
    retry_after_s: float | None = None


@dataclass(frozen=True)
class Found:
    """A lookup's answer: the call's HubSpot id, or None when HubSpot has no such call."""

    hubspot_id: str | None


WriteOutcome = Written | Exists | Unknown | Refused | Transient | Blocked
LookupOutcome = Found | Refused | Transient | Blocked


@dataclass(frozen=True)
class CreateInput:
    key: str
    properties: Mapping[str, str]
    #: explicit and matched association targets by object type ("contacts", "deals", …)
    associations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class UpdateInput:
    key: str
    hubspot_id: str
    properties: Mapping[str, str]


@dataclass(frozen=True)
class AssociateInput:
    key: str
    hubspot_id: str
    contacts: tuple[str, ...]


class CallsPort(Protocol):
    """One portal's HubSpot calls, as the writer needs them. Inputs and answers are keyed
    by the call's key *inside the portal* (``Pending.call_key``, ``provider:call_id``). ``create``, ``update`` and ``associate``
    take any number of inputs: the adapter sends HubSpot's batches of 100 concurrently
    (the client paces them); ``lookup`` takes at most 100 keys."""

    #: the unique property creates carry and lookups read by; None: search reconciliation
    key_property: str | None

    async def create(self, inputs: Sequence[CreateInput]) -> Mapping[str, WriteOutcome]: ...

    async def update(self, inputs: Sequence[UpdateInput]) -> Mapping[str, WriteOutcome]: ...

    async def associate(self, inputs: Sequence[AssociateInput]) -> Mapping[str, WriteOutcome]:
        """Associate each call with more contacts (creating an existing one is a no-op)."""
        ...

    async def lookup(self, keys: Sequence[str]) -> Mapping[str, LookupOutcome]:
        """The HubSpot ids of calls by key: read by ``key_property`` (sees every write at
        once), or, without it, searched (trails writes by the search index's lag)."""
        ...


class ContactsPort(Protocol):
    async def match(self, numbers: Collection[str]) -> Mapping[str, Sequence[str]]:
        """Contact ids to associate, by E.164 number (after the matching policy).
        Raises ``ContactsUnavailable`` when the lookup cannot be made now."""
        ...


class ContactsUnavailable(Exception):
    def __init__(self, outcome: Transient | Blocked) -> None:
        super().__init__(outcome.reason)
        self.outcome = outcome


class RecordStore(Protocol):
    """The durable per-call records (``calls.ids``), of the partitions this writer owns."""

    def get(self, key: str) -> CallRecord | None: ...

    async def put(self, items: Sequence[tuple[str, int, CallRecord]]) -> None:
        """Write durably (broker acks awaited) and remember."""
        ...


class DeadLetterSink(Protocol):
    async def send(
        self, items: Sequence[tuple[Ref, Failure]], *, portal: str = DEFAULT_PORTAL
    ) -> None:
        """Produce each original record of ``portal`` with its failure to the DLQ (its
        ``dlq.portal`` header; acks awaited)."""
        ...


class Ownership(Protocol):
    async def confirm(self, partitions: Collection[int]) -> set[int]:
        """Of ``partitions``, the ones this writer still owns *now*: fencing. A writer
        that was frozen, lost its session or ran past ``max.poll.interval.ms`` finds out
        here, before it writes, instead of after."""
        ...
