"""The dead-letter record format (pure), shared by the writer (which produces dead letters)
and the operator tools in ``service/dlq/`` (which read, replay and park them): the original
record's key and value, the original headers, and UTF-8 ``dlq.*`` headers saying where it
came from and why it failed.

Header names are part of the contract (ARCHITECTURE.md): ``dlq.original.topic``,
``dlq.original.partition``, ``dlq.original.offset``, ``dlq.stage``, ``dlq.operation``,
``dlq.http.status``, ``dlq.error.category``, ``dlq.error.message``,
``dlq.hubspot.correlation_id``, ``dlq.attempt``, ``dlq.failed_at``, ``dlq.portal`` (the
HubSpot portal the call belongs to, ``default`` in single-portal deployments); a replayed record
also carries ``dlq.replayed_from`` (the dead letter's offset).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from handlers.event import DEFAULT_PORTAL

PREFIX: Final = "dlq."
ATTEMPT: Final = "dlq.attempt"
PORTAL: Final = "dlq.portal"
REPLAYED_FROM: Final = "dlq.replayed_from"
MAX_MESSAGE: Final = 1000

Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Failure:
    """Why a record is dead-lettered."""

    stage: str  # "decode" (not a call event) | "hubspot" (rejected by HubSpot)
    operation: str  # e.g. "batchCreateCalls"
    http_status: int | None
    category: str  # HubSpot category, e.g. VALIDATION_ERROR, or INVALID_EVENT
    message: str
    correlation_id: str | None = None


@dataclass(frozen=True)
class DeadLetter:
    """The ``dlq.*`` headers of a dead letter, parsed."""

    original_topic: str
    original_partition: int
    original_offset: int
    stage: str
    operation: str
    http_status: int | None
    category: str
    message: str
    correlation_id: str | None
    attempt: int
    failed_at: str
    replayed_from: str | None = None
    portal: str = DEFAULT_PORTAL


def header_map(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in headers or ()}


def attempts_so_far(headers: Iterable[tuple[str, bytes]] | None) -> int:
    """How often the record was already dead-lettered (0 for a first-time record)."""
    raw = header_map(headers).get(ATTEMPT, "0")
    return int(raw) if raw.isdigit() else 0


def dlq_headers(
    original_headers: Iterable[tuple[str, bytes]] | None,
    *,
    topic: str,
    partition: int,
    offset: int,
    failure: Failure,
    failed_at: datetime,
    portal: str = DEFAULT_PORTAL,
) -> Headers:
    """Headers for the dead letter of one original record of ``portal``."""
    kept = [(k, v) for k, v in original_headers or () if not k.startswith(PREFIX)]
    attempt = attempts_so_far(original_headers) + 1
    fields = {
        "dlq.original.topic": topic,
        "dlq.original.partition": str(partition),
        "dlq.original.offset": str(offset),
        "dlq.stage": failure.stage,
        "dlq.operation": failure.operation,
        "dlq.http.status": "" if failure.http_status is None else str(failure.http_status),
        "dlq.error.category": failure.category,
        "dlq.error.message": failure.message[:MAX_MESSAGE],
        "dlq.hubspot.correlation_id": failure.correlation_id or "",
        ATTEMPT: str(attempt),
        "dlq.failed_at": failed_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        PORTAL: portal,
    }
    return kept + [(k, v.encode()) for k, v in fields.items()]


def parse(headers: Iterable[tuple[str, bytes]] | None) -> DeadLetter:
    """The ``dlq.*`` headers of a dead letter (``ValueError`` if it is not one)."""
    h: Mapping[str, str] = header_map(headers)
    try:
        status = h.get("dlq.http.status", "")
        return DeadLetter(
            original_topic=h["dlq.original.topic"],
            original_partition=int(h["dlq.original.partition"]),
            original_offset=int(h["dlq.original.offset"]),
            stage=h.get("dlq.stage", ""),
            operation=h.get("dlq.operation", ""),
            http_status=int(status) if status.isdigit() else None,
            category=h.get("dlq.error.category", ""),
            message=h.get("dlq.error.message", ""),
            correlation_id=h.get("dlq.hubspot.correlation_id") or None,
            attempt=int(h.get(ATTEMPT, "1")),
            failed_at=h.get("dlq.failed_at", ""),
            replayed_from=h.get(REPLAYED_FROM),
            portal=h.get(PORTAL) or DEFAULT_PORTAL,
        )
    except (KeyError, ValueError) as exc:
        raise ValueError(f"not a dead letter: missing or bad header {exc}") from exc


def replay_headers(dead_headers: Iterable[tuple[str, bytes]] | None, dlq_offset: int) -> Headers:
    """Headers for re-producing a dead letter to ``calls.events``: the original headers,
    ``dlq.attempt`` carried over and ``dlq.replayed_from`` set."""
    h = list(dead_headers or ())
    attempt = attempts_so_far(h)
    kept = [(k, v) for k, v in h if not k.startswith(PREFIX)]
    return kept + [(ATTEMPT, str(attempt).encode()), (REPLAYED_FROM, str(dlq_offset).encode())]


# --- Added for the operator tools (issue 7) -------------------------------------------------

#: On a replayed record: the DLQ partition of ``dlq.replayed_from`` (the DLQ may have several).
REPLAYED_FROM_PARTITION: Final = "dlq.replayed_from_partition"
#: On a parked record (``calls.dlq.parked``): when it was parked, and the dead letter it was.
PARKED_AT: Final = "dlq.parked_at"
PARKED_FROM: Final = "dlq.parked_from"
PARKED_FROM_PARTITION: Final = "dlq.parked_from_partition"


def utc_iso(moment: datetime) -> str:
    """The timestamp format of ``dlq.failed_at`` and ``dlq.parked_at``: ISO-8601, UTC, ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime | None:
    """A ``dlq.failed_at``-style timestamp as an aware UTC datetime (None if unreadable)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def replay_headers_from(
    dead_headers: Iterable[tuple[str, bytes]] | None, partition: int, dlq_offset: int
) -> Headers:
    """``replay_headers`` plus the DLQ partition of the dead letter, which the offset alone
    does not name when ``calls.dlq`` has more than one partition."""
    return replay_headers(dead_headers, dlq_offset) + [
        (REPLAYED_FROM_PARTITION, str(partition).encode())
    ]


def parked_headers(
    dead_headers: Iterable[tuple[str, bytes]] | None,
    *,
    partition: int,
    dlq_offset: int,
    parked_at: datetime,
) -> Headers:
    """Headers of a parked record: the dead letter's headers unchanged (every ``dlq.*`` field
    still says why it failed and how often), plus when it was parked and from where."""
    mine = (PARKED_AT, PARKED_FROM, PARKED_FROM_PARTITION)
    kept = [(k, v) for k, v in dead_headers or () if k not in mine]
    return kept + [
        (PARKED_AT, utc_iso(parked_at).encode()),
        (PARKED_FROM, str(dlq_offset).encode()),
        (PARKED_FROM_PARTITION, str(partition).encode()),
    ]
