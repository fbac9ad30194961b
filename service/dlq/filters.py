"""Which dead letters an operator command applies to (pure: no Kafka, no clock of its own).

Times are ISO-8601 (``2026-03-03T15:04:05Z``, ``2026-03-03``; without a zone = UTC) or
relative to the ``now`` the caller passes (``90s``, ``30m``, ``2h``, ``7d``, ``1w``, ``1h30m``).
``since`` is inclusive, ``until`` exclusive, both compared with ``dlq.failed_at`` (the record's
Kafka timestamp when that header is unreadable). Categories compare case-insensitively; keys
exactly. Several categories (or keys, or portals) mean any of them.

Portals compare with ``dlq.portal`` (a dead letter without that header is the ``default``
portal's). With a portal condition, a key also matches the call key within that portal:
``--portal acme --key generic:c1`` selects the dead letter keyed ``acme/generic:c1``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import orjson

from handlers.event import split_portal_key
from service.deadletter import DeadLetter, parse_utc, utc_iso

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_RELATIVE: Final = re.compile(r"^(?:\d+[smhdw])+$")
_PART: Final = re.compile(r"(\d+)([smhdw])")


Verdict = Literal["match", "no", "later"]


class BadFilter(ValueError):
    """A filter value that cannot be understood (answered as a usage error)."""


def parse_when(text: str, now: datetime) -> datetime:
    """An absolute or relative (``2h`` = two hours before ``now``) time, as aware UTC."""
    value = text.strip().lower()
    if _RELATIVE.match(value):
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(value))
        return now.astimezone(UTC) - timedelta(seconds=seconds)
    moment = parse_utc(text)
    if moment is None:
        raise BadFilter(
            f"cannot read time {text!r}: use ISO-8601 (2026-03-03T15:04:05Z) or 30m, 2h, 7d"
        )
    return moment


def failed_at(dead: DeadLetter, timestamp_ms: int) -> datetime:
    """When the record was dead-lettered: ``dlq.failed_at``, else the record's timestamp."""
    return parse_utc(dead.failed_at) or datetime.fromtimestamp(timestamp_ms / 1000, UTC)


@dataclass(frozen=True)
class Filters:
    """A selection of dead letters, plus ``limit`` (at most that many, in DLQ order)."""

    since: datetime | None = None
    until: datetime | None = None
    categories: frozenset[str] = field(default_factory=frozenset)
    keys: frozenset[str] = field(default_factory=frozenset)
    limit: int | None = None
    #: ``dlq.portal`` values (empty: every portal)
    portals: frozenset[str] = field(default_factory=frozenset)
    #: the times as the operator typed them (``2h``): what names a replay's cursor
    since_text: str | None = None
    until_text: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        now: datetime,
        since: str | None = None,
        until: str | None = None,
        categories: Iterable[str] = (),
        keys: Iterable[str] = (),
        limit: int | None = None,
        portals: Iterable[str] = (),
    ) -> Filters:
        """Filters from command-line text; ``BadFilter`` names what is wrong."""
        if limit is not None and limit < 1:
            raise BadFilter("--limit must be at least 1")
        start = parse_when(since, now) if since else None
        end = parse_when(until, now) if until else None
        if start is not None and end is not None and start >= end:
            raise BadFilter(f"--since ({utc_iso(start)}) is not before --until ({utc_iso(end)})")
        return cls(
            since=start,
            until=end,
            categories=frozenset(c.strip().upper() for c in categories if c.strip()),
            keys=frozenset(k for k in keys if k),
            limit=limit,
            portals=frozenset(p.strip() for p in portals if p.strip()),
            since_text=since,
            until_text=until,
        )

    @property
    def empty(self) -> bool:
        """No condition at all: every dead letter matches."""
        return not (self.since or self.until or self.categories or self.keys or self.portals)

    def selects(self, dead: DeadLetter, key: str | None) -> bool:
        """The category, portal and key conditions alone."""
        if self.categories and dead.category.upper() not in self.categories:
            return False
        if self.portals and dead.portal not in self.portals:
            return False
        if not self.keys or key in self.keys:
            return True
        if self.portals and key is not None:
            portal, inner = split_portal_key(key)
            return portal in self.portals and inner in self.keys
        return False

    def verdict(self, dead: DeadLetter, key: str | None, timestamp_ms: int) -> Verdict:
        """``match``; ``no``; or ``later``: it would match but failed at or after ``until``."""
        if not self.selects(dead, key):
            return "no"
        if self.since is not None or self.until is not None:
            when = failed_at(dead, timestamp_ms)
            if self.since is not None and when < self.since:
                return "no"
            if self.until is not None and when >= self.until:
                return "later"
        return "match"

    def matches(self, dead: DeadLetter, key: str | None, timestamp_ms: int) -> bool:
        return self.verdict(dead, key, timestamp_ms) == "match"

    def identity(self) -> str:
        """A stable name for this selection as typed: equal for the same command line, so a
        re-run resumes; ``""`` for no filter at all. ``limit`` is not part of it."""
        if self.empty:
            return ""
        spec = {
            "since": self.since_text or (utc_iso(self.since) if self.since else None),
            "until": self.until_text or (utc_iso(self.until) if self.until else None),
            "categories": sorted(self.categories),
            "keys": sorted(self.keys),
        }
        if self.portals:  # absent otherwise: cursors of portal-less selections keep their name
            spec["portals"] = sorted(self.portals)
        return hashlib.sha256(orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        """The resolved selection (absolute times), as stored beside a replay cursor."""
        return {
            "since": utc_iso(self.since) if self.since else None,
            "until": utc_iso(self.until) if self.until else None,
            "categories": sorted(self.categories),
            "keys": sorted(self.keys),
            "portals": sorted(self.portals),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Filters:
        since, until = data.get("since"), data.get("until")
        return cls(
            since=parse_utc(since) if isinstance(since, str) else None,
            until=parse_utc(until) if isinstance(until, str) else None,
            categories=frozenset(str(c) for c in data.get("categories") or ()),
            keys=frozenset(str(k) for k in data.get("keys") or ()),
            portals=frozenset(str(p) for p in data.get("portals") or ()),
        )
