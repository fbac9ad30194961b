"""The running sandbox: configuration, store, limits, faults and stats in one place."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sandbox.clock import Clock
from sandbox.config import SandboxConfig
from sandbox.errors import validation_error
from sandbox.faults import Faults
from sandbox.limits import RateLimiter
from sandbox.rules import Rule, enforced
from sandbox.stats import Stats
from sandbox.store import Store

#: the first portal's HubSpot portal (hub) id; the next portals count up from it
FIRST_PORTAL_ID = 100000001


class Sandbox:
    """Everything a request may read or change: one HubSpot portal's state (records,
    properties, limits, faults, validation rules and stats). ``sandbox.portals`` keeps
    one per portal token."""

    def __init__(
        self, config: SandboxConfig, clock: Clock, portal_id: int = FIRST_PORTAL_ID
    ) -> None:
        self.portal_id = portal_id
        self.rules: list[Rule] = []
        self.initial = replace(config, tokens=list(config.tokens))
        self.config = replace(config, tokens=list(config.tokens))
        self.clock = clock
        self.store = Store()
        self.faults = Faults()
        self.limits = RateLimiter()
        self.stats = Stats()
        self.started = clock.monotonic()

    def reset(self, *, properties: bool = False) -> None:
        """Back to the start: no records, stats, rate windows or faults, start-up limits.
        Custom property definitions survive unless ``properties`` is true."""
        self.store.reset(keep_custom_properties=not properties)
        self.faults = Faults()
        self.limits.reset()
        self.stats.reset()
        self.rules = []
        self.config = replace(self.initial, tokens=list(self.initial.tokens))

    def rules_for(self, version: str) -> list[Rule]:
        """The validation rules a write of API ``version`` obeys (none before 2026-09)."""
        return self.rules if self.rules and enforced(version) else []

    def index_at(self) -> tuple[float, bool]:
        """When a write made now becomes searchable, and whether that is delayed."""
        delay = self.faults.index_delay_ms
        return self.clock.monotonic() + delay / 1000.0, delay > 0

    def configure(self, body: Any) -> None:
        """Change limits at run time (``POST /_sandbox/config``)."""
        if not isinstance(body, dict):
            raise validation_error("config must be a JSON object")
        unknown = set(body) - {"rate_limit", "search_rate", "daily_limit", "tokens"}
        if unknown:
            raise validation_error(f"unknown config settings: {', '.join(sorted(unknown))}")
        new = replace(self.config)
        for key in ("rate_limit", "search_rate"):
            if key in body:
                setattr(new, key, _positive(body[key], key))
        if "daily_limit" in body:
            new.daily_limit = (
                None
                if body["daily_limit"] is None
                else _positive(body["daily_limit"], "daily_limit")
            )
        if "tokens" in body:
            tokens = body["tokens"]
            if (
                not isinstance(tokens, list)
                or not tokens
                or not all(isinstance(t, str) and t for t in tokens)
            ):
                raise validation_error("tokens must be a non-empty list of strings")
            new.tokens = list(tokens)
        self.config = new

    def config_json(self) -> dict[str, Any]:
        """The limits in force."""
        c = self.config
        return {
            "rate_limit": c.rate_limit,
            "search_rate": c.search_rate,
            "daily_limit": c.daily_limit,
            "tokens": len(c.tokens),
        }

    def stats_json(self) -> dict[str, Any]:
        """``GET /_sandbox/stats``: requests, record counts, batch sizes, timeline."""
        out = self.stats.to_json()
        records: dict[str, int] = {}
        archived: dict[str, int] = {}
        for name, ts in self.store.types.items():
            records[name], archived[name] = ts.counts()
        out["records"] = records
        out["archived"] = archived
        out["now"] = round(self.clock.monotonic() - self.started, 6)
        return out


def _positive(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise validation_error(f"{key} must be a positive integer")
    return value
