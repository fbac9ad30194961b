"""Sandbox configuration: who may call it, and how much."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.oauth import AppSpec


def _default_tokens() -> list[str]:
    return ["sandbox-token"]


@dataclass
class SandboxConfig:
    """Start-up settings; ``POST /_sandbox/config`` changes the limits at run time.

    ``rate_limit`` is requests per rolling 10 s per token (HubSpot's
    ``TEN_SECONDLY_ROLLING`` policy), ``search_rate`` search requests per second per
    token, ``daily_limit`` requests per UTC day per token (``None``: unlimited), and
    ``data_file`` a JSON file the state is loaded from at start and saved to at exit.
    Every token is its own portal (:mod:`sandbox.portals`), the first the default one.
    ``oauth_apps`` are OAuth apps installed in portals, ``oauth_token_lifetime_s`` how
    long issued access tokens live, ``oauth_rotate_refresh_tokens`` whether each refresh
    issues a new refresh token (:mod:`sandbox.oauth`).
    """

    tokens: list[str] = field(default_factory=_default_tokens)
    rate_limit: int = 190
    search_rate: int = 5
    daily_limit: int | None = None
    data_file: Path | None = None
    oauth_apps: list[AppSpec] = field(default_factory=list)
    oauth_token_lifetime_s: float = 1800.0
    oauth_rotate_refresh_tokens: bool = False
