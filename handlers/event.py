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

#: the portal of single-portal deployments and of ``POST /webhooks/{provider}``
DEFAULT_PORTAL: Final = "default"


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
    #: the HubSpot portal the call belongs to (``POST /webhooks/{provider}/{portal}``);
    #: omitted from the JSON for the ``default`` portal, so single-portal records are
    #: byte-for-byte what they were
    portal: str = DEFAULT_PORTAL
    v: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        # msgspec omits a default by identity, not equality: a "default" parsed from a URL
        # or a header would otherwise be written out, changing single-portal records
        if self.portal == DEFAULT_PORTAL:
            self.portal = DEFAULT_PORTAL

    @property
    def key(self) -> str:
        """The call key within its portal, ``provider:call_id``: HubSpot's
        ``hs_call_external_id`` (and ``callbridge_call_key``) in that portal."""
        return f"{self.provider}:{self.call_id}"

    @property
    def portal_key(self) -> str:
        """The call's key across portals: the Kafka key, the writer's buffer and
        ``calls.ids`` key. ``provider:call_id`` in the ``default`` portal, else
        ``portal/provider:call_id``: the same provider call id in two portals is two calls."""
        return portal_key(self.portal, self.key)


def portal_key(portal: str, key: str) -> str:
    """``key`` (``provider:call_id``) qualified by ``portal`` (see ``CallEvent.portal_key``)."""
    return key if portal == DEFAULT_PORTAL else f"{portal}/{key}"


def split_portal_key(value: str) -> tuple[str, str]:
    """``(portal, provider:call_id)`` of a :func:`portal_key`. A portal id has neither
    ``/`` nor ``:``, so a ``call_id`` that holds a ``/`` is never mistaken for one."""
    portal, sep, key = value.partition("/")
    if sep and ":" not in portal:
        return portal, key
    return DEFAULT_PORTAL, value


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(CallEvent)


def encode_event(event: CallEvent) -> bytes:
    return _encoder.encode(event)


def decode_event(raw: bytes) -> CallEvent:
    """Decode a ``calls.events`` value; raises ``msgspec.ValidationError``/``DecodeError``."""
    return _decoder.decode(raw)
