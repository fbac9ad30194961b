"""The normalized call event: what the ingress produces to ``calls.events`` and the writer consumes.

A ``CallEvent`` is one provider webhook's knowledge about one call, already in HubSpot's
vocabulary: ``properties`` is a ``CallCreateRequest``-shaped property map (every value a
string), plus the metadata the writer needs to merge events of one call (``sequence`` for
order, ``event_id`` for de-duplication) and to associate it (``counterpart`` number,
explicit object ids). Pure data: no I/O, importable by ``handlers/``.
"""

from __future__ import annotations

from typing import Final

import msgspec

SCHEMA_VERSION: Final = 1

#: HubSpot ``hs_call_status`` values, with the rank used when merging events of one call:
#: a higher rank wins; terminal statuses (rank 100) are never replaced by an earlier one.
STATUS_RANK: Final[dict[str, int]] = {
    "QUEUED": 10,
    "CONNECTING": 20,
    "RINGING": 30,
    "CALLING_CRM_USER": 35,
    "IN_PROGRESS": 40,
    "BUSY": 100,
    "NO_ANSWER": 100,
    "MISSED": 100,
    "CANCELED": 100,
    "FAILED": 100,
    "COMPLETED": 100,
}
TERMINAL_STATUSES: Final = frozenset(s for s, r in STATUS_RANK.items() if r == 100)
DIRECTIONS: Final = frozenset({"INBOUND", "OUTBOUND"})

#: HubSpot's built-in call outcome (disposition) GUIDs, by conventional label.
DEFAULT_DISPOSITIONS: Final[dict[str, str]] = {
    "connected": "f240bbac-87c9-4f6e-bf70-924b57d47db7",
    "busy": "9d9162e7-6cf3-4944-bf63-4dff82258764",
    "no answer": "73a0d17f-1163-4015-bdd5-ec830791da20",
    "left voicemail": "b2cf5968-551e-4856-9783-52b3da59a7d0",
    "left live message": "a4c4c377-d246-4b32-a13b-75a56a4cd0ff",
    "wrong number": "17b47fee-58de-441e-a44c-c6300d46f273",
}

#: HubSpot-defined association type ids from a call to each object type.
ASSOCIATION_TYPE_IDS: Final[dict[str, int]] = {
    "contacts": 194,
    "companies": 182,
    "deals": 206,
    "tickets": 220,
}

CALL_SOURCE: Final = "INTEGRATIONS_PLATFORM"


class CallEvent(msgspec.Struct, kw_only=True, omit_defaults=True, forbid_unknown_fields=False):
    """One provider event about one call, normalized to HubSpot call properties."""

    provider: str
    call_id: str
    event_id: str
    type: str
    occurred_at: str
    sequence: int
    properties: dict[str, str]
    counterpart: str | None = None
    contact_ids: list[str] = msgspec.field(default_factory=list)
    company_ids: list[str] = msgspec.field(default_factory=list)
    deal_ids: list[str] = msgspec.field(default_factory=list)
    ticket_ids: list[str] = msgspec.field(default_factory=list)
    received_at: str | None = None
    v: int = SCHEMA_VERSION

    @property
    def key(self) -> str:
        """The call key ``provider:call_id``: Kafka key, HubSpot ``hs_call_external_id``."""
        return f"{self.provider}:{self.call_id}"


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CallEvent)


def encode_event(event: CallEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(raw: bytes) -> CallEvent:
    """Decode a ``calls.events`` value; raises ``msgspec.ValidationError``/``DecodeError``."""
    return _decoder.decode(raw)
