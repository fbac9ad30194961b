"""``callbridge portals list``: each portal of the portals file with the state the writer
reports on its health port (``GET /portals``): ready, paused and why, the request budget
used in the rolling 10 s, searches in the last second, the reconcile mode, the events
shed (``service.writer.shedding``: left unread while the buffer was full and the portal
over its share, read again later) and the lag (events of the portal this writer consumed
and has not settled: buffered, in a flush or shed; Kafka's own lag is per partition,
and partitions are shared by every portal).

When the writer cannot be reached, every portal is listed with the state
``unknown (writer unreachable)`` and the command exits 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from service.portals import Portal

UNREACHABLE = "unknown (writer unreachable)"
NOT_SERVED = "unknown (not served by this writer)"


@dataclass(frozen=True)
class Status:
    """What the command prints: the writer's answer per portal of the file."""

    writer_url: str
    reachable: bool
    portals: list[dict[str, Any]]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "writer": self.writer_url,
            "reachable": self.reachable,
            "portals": self.portals,
        }
        if self.error:
            out["error"] = self.error
        return out


def state_of(row: dict[str, Any]) -> str:
    """One word or two for a portal's state in the table."""
    if row.get("state"):
        return str(row["state"])
    kind = row.get("pause_kind")
    if not row.get("ready"):
        return f"blocked ({kind})" if kind else "not ready"
    if row.get("paused"):
        return f"paused ({kind or 'transient'})"
    return "ready"


def merge(portals: list[Portal], answer: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The file's portals, each with the writer's report of it (if it has one)."""
    reported = {p["id"]: p for p in (answer or {}).get("portals", [])}
    rows: list[dict[str, Any]] = []
    for portal in portals:
        base: dict[str, Any] = {
            "id": portal.id,
            "api_version": portal.hubspot.api_version,
            "auth": "oauth" if portal.hubspot.oauth is not None else "token",
            "budget_10s": portal.hubspot.rate,
        }
        got = reported.get(portal.id)
        if answer is None:
            rows.append({**base, "state": UNREACHABLE})
        elif got is None:
            rows.append({**base, "state": NOT_SERVED})
        else:
            row = {**base, **got}
            row["state"] = state_of(row)
            rows.append(row)
    return rows


async def fetch(
    portals: list[Portal],
    writer_url: str,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    timeout_s: float = 3.0,
) -> Status:
    """Ask the writer for ``/portals``; an unreachable writer or a bad answer gives every
    portal the state ``unknown (writer unreachable)``."""
    try:
        async with httpx.AsyncClient(
            base_url=writer_url, transport=transport, timeout=timeout_s
        ) as http:
            response = await http.get("/portals")
        response.raise_for_status()
        answer = response.json()
        if not isinstance(answer, dict):
            raise ValueError("the answer is not a JSON object")
    except (httpx.HTTPError, ValueError) as exc:
        return Status(writer_url, False, merge(portals, None), error=f"{type(exc).__name__}: {exc}")
    return Status(writer_url, True, merge(portals, answer))


COLUMNS = (
    ("PORTAL", "id"),
    ("API", "api_version"),
    ("STATE", "state"),
    ("REASON", "reason"),
    ("BUDGET/10s", "budget"),
    ("SEARCHES/s", "searches"),
    ("MODE", "reconcile_mode"),
    ("SHED", "shed"),
    ("LAG", "lag"),
)


def table(status: Status) -> str:
    """The status as an aligned text table (``-`` where nothing is known)."""
    lines: list[list[str]] = [[title for title, _ in COLUMNS]]
    for row in status.portals:
        cells = []
        for _, key in COLUMNS:
            if key == "budget":
                used = row.get("budget_used_10s")
                value: Any = f"{used}/{row['budget_10s']}" if used is not None else "-"
            else:
                value = row.get(key)
            cells.append("-" if value is None or value == "" else str(value))
        lines.append(cells)
    widths = [max(len(line[i]) for line in lines) for i in range(len(COLUMNS))]
    text = "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
    if not status.reachable:
        text += f"\nwriter {status.writer_url} unreachable: {status.error}"
    return text
