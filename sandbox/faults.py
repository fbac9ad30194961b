"""Injectable faults (``POST /_sandbox/faults``), for tests of the client's resilience.

``error_rate`` (0..1) answers that share of requests with ``error_status`` (default 500);
``rate_limit_burst`` answers the next N requests 429 (``TEN_SECONDLY_ROLLING``);
``latency_ms`` delays every answer; ``latency_after_ms`` delays the answer *after* the
request took effect (a write that happened but whose answer comes late or never, if the
client gives up); ``index_delay_ms`` makes writes searchable only that
long after they happen; ``reject`` (``{"property", "value"}`` or a list of them) fails
every create/update input whose property equals the value with ``VALIDATION_ERROR`` —
per item in a 207 when the batch carries ``objectWriteTraceId``s, unless
``reject_whole_batch`` is true: then the whole batch fails with 400, as HubSpot answers for
errors it cannot attribute to an input. ``operations`` limits ``error_rate``,
``rate_limit_burst``, ``latency_ms`` and ``latency_after_ms`` to the listed operation ids;
``seed`` makes ``error_rate`` reproducible. ``missing_scopes`` lists operation ids the
token may not call: they answer 403 ``MISSING_SCOPES`` (HubSpot's body, naming the
granular scope required), as for a private app installed without that scope.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from sandbox.errors import validation_error

_KEYS = {
    "error_rate",
    "error_status",
    "rate_limit_burst",
    "latency_ms",
    "latency_after_ms",
    "index_delay_ms",
    "reject_whole_batch",
    "reject",
    "operations",
    "seed",
    "missing_scopes",
}


@dataclass
class Faults:
    """The faults in force; all off by default."""

    error_rate: float = 0.0
    error_status: int = 500
    rate_limit_burst: int = 0
    latency_ms: float = 0.0
    latency_after_ms: float = 0.0
    index_delay_ms: float = 0.0
    reject: list[tuple[str, str]] = field(default_factory=list)
    reject_whole_batch: bool = False
    operations: frozenset[str] | None = None
    missing_scopes: frozenset[str] = frozenset()
    rng: random.Random = field(default_factory=random.Random)

    def applies(self, op: str) -> bool:
        """Whether the request-level faults apply to operation ``op``."""
        return self.operations is None or op in self.operations

    def update(self, body: Any) -> None:
        """Merge the given settings in; a bad setting is a 400 and changes nothing."""
        if not isinstance(body, dict):
            raise validation_error("faults must be a JSON object")
        unknown = set(body) - _KEYS
        if unknown:
            raise validation_error(f"unknown fault settings: {', '.join(sorted(unknown))}")
        new = Faults(**{k: getattr(self, k) for k in self.__dataclass_fields__})
        if "error_rate" in body:
            new.error_rate = _number(body, "error_rate", 0.0, 1.0)
        if "error_status" in body:
            status = _number(body, "error_status", 400, 599)
            if not float(status).is_integer():
                raise validation_error("error_status must be an integer")
            new.error_status = int(status)
        if "rate_limit_burst" in body:
            new.rate_limit_burst = int(_number(body, "rate_limit_burst", 0, 1e9))
        if "latency_ms" in body:
            new.latency_ms = _number(body, "latency_ms", 0.0, 600_000.0)
        if "latency_after_ms" in body:
            new.latency_after_ms = _number(body, "latency_after_ms", 0.0, 600_000.0)
        if "reject_whole_batch" in body:
            if not isinstance(body["reject_whole_batch"], bool):
                raise validation_error("reject_whole_batch must be true or false")
            new.reject_whole_batch = body["reject_whole_batch"]
        if "index_delay_ms" in body:
            new.index_delay_ms = _number(body, "index_delay_ms", 0.0, 3_600_000.0)
        if "reject" in body:
            new.reject = _rejects(body["reject"])
        if "operations" in body:
            ops = body["operations"]
            if ops is None:
                new.operations = None
            elif isinstance(ops, list) and all(isinstance(o, str) for o in ops):
                new.operations = frozenset(ops)
            else:
                raise validation_error("operations must be a list of operation ids or null")
        if "missing_scopes" in body:
            ops = body["missing_scopes"]
            if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
                raise validation_error("missing_scopes must be a list of operation ids")
            new.missing_scopes = frozenset(ops)
        if "seed" in body:
            new.rng = random.Random(body["seed"])
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(new, name))

    def to_json(self) -> dict[str, Any]:
        """The settings as ``GET /_sandbox/faults`` shows them."""
        return {
            "error_rate": self.error_rate,
            "error_status": self.error_status,
            "rate_limit_burst": self.rate_limit_burst,
            "latency_ms": self.latency_ms,
            "latency_after_ms": self.latency_after_ms,
            "index_delay_ms": self.index_delay_ms,
            "reject_whole_batch": self.reject_whole_batch,
            "reject": [{"property": p, "value": v} for p, v in self.reject],
            "operations": sorted(self.operations) if self.operations is not None else None,
            "missing_scopes": sorted(self.missing_scopes),
        }


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise validation_error(f"{key} must be a number between {low:g} and {high:g}")
    return float(value)


def _rejects(raw: Any) -> list[tuple[str, str]]:
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    out: list[tuple[str, str]] = []
    for item in items:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("property"), str)
            or not isinstance(item.get("value"), str)
        ):
            raise validation_error(
                'reject must be {"property": str, "value": str} or a list of them'
            )
        out.append((item["property"], item["value"]))
    return out
