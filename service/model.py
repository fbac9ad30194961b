"""The normalized call event, re-exported from ``handlers.event`` (its owner).

``handlers/`` owns the event model so that dependencies point one way (``service`` →
``handlers``); this module keeps ``from service.model import …`` working for the writer,
the coalescer and the DLQ tools.
"""

from __future__ import annotations

from handlers.event import (
    ASSOCIATION_TYPE_IDS,
    CALL_SOURCE,
    DEFAULT_DISPOSITIONS,
    DIRECTIONS,
    SCHEMA_VERSION,
    STATUS_RANK,
    TERMINAL_STATUSES,
    CallEvent,
    decode_event,
    encode_event,
)

__all__ = [
    "ASSOCIATION_TYPE_IDS",
    "CALL_SOURCE",
    "DEFAULT_DISPOSITIONS",
    "DIRECTIONS",
    "SCHEMA_VERSION",
    "STATUS_RANK",
    "TERMINAL_STATUSES",
    "CallEvent",
    "decode_event",
    "encode_event",
]
