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

Ownership is claimed per *epoch*: a ``Claim`` is a partition as this writer was given it
(``Ref.epoch``). A new assignment, or a rewind, gives the partition a new epoch, so work
taken under an old one is no longer owned even when the partition came back: it can
neither write nor settle. Every HubSpot write is sent through a ``Fence`` that confirms
its claims just before each attempt (a request waiting out a 429 or the pacing is not
sent once its partitions were revoked).

``RecordStore.put`` and ``DeadLetterSink.send`` raise ``StoreUnavailable`` when Kafka
cannot take the records now: nothing is settled, the calls are tried again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
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

#: (partition, epoch): a partition as this writer was given it
Claim = tuple[int, int]
#: asked before each attempt of a write: True while its calls' claims are still owned
Fence = Callable[[], Awaitable[bool]]
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

    async def create(
        self, inputs: Sequence[CreateInput], *, fence: Fence | None = None
    ) -> Mapping[str, WriteOutcome]:
        """Create the calls; an attempt ``fence`` refuses is not sent (``Transient``)."""
        ...

    async def update(
        self, inputs: Sequence[UpdateInput], *, fence: Fence | None = None
    ) -> Mapping[str, WriteOutcome]: ...

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


class StoreUnavailable(Exception):
    """Kafka cannot take the records (or dead letters) now: nothing was settled."""


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
    async def confirm(self, claims: Collection[Claim]) -> set[Claim]:
        """Of ``claims``, the ones this writer still owns *now*, in that epoch: fencing.
        A writer that was frozen, lost its session, ran past ``max.poll.interval.ms``, or
        lost a partition and got it back, finds out here, before it writes."""
        ...
