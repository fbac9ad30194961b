"""``python -m sandbox [--host H] [--port 8090] [--token T]... [--rate-limit N]
[--search-rate N] [--daily-limit N] [--data FILE]
[--oauth-app CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN:PORTAL_TOKEN]...
[--oauth-token-lifetime S] [--oauth-rotate]``; every ``--token`` is its own portal."""

from __future__ import annotations

import argparse
from pathlib import Path

from sandbox.config import SandboxConfig
from sandbox.oauth import AppSpec
from sandbox.server import serve


def rate(text: str) -> int:
    """A per-10-second rate: ``190`` or, as the docs write it, ``190/10s``."""
    number = text.strip().removesuffix("/10s")
    try:
        return int(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N/10s, got {text!r}") from None


def _app(text: str) -> AppSpec:
    try:
        return AppSpec.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parse_args(argv: list[str] | None = None) -> tuple[SandboxConfig, str, int]:
    """The config, host and port named on the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sandbox", description="Local HubSpot Calls API sandbox."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument(
        "--token", action="append", dest="tokens", help="accepted Bearer token (repeatable)"
    )
    parser.add_argument(
        "--rate-limit", type=rate, default=190, help="requests per rolling 10 s per token"
    )
    parser.add_argument(
        "--search-rate", type=int, default=5, help="search requests per second per token"
    )
    parser.add_argument(
        "--daily-limit", type=int, default=None, help="requests per UTC day per token"
    )
    parser.add_argument(
        "--data", type=Path, default=None, help="JSON file to load at start and save at exit"
    )
    parser.add_argument(
        "--oauth-app",
        action="append",
        dest="oauth_apps",
        type=_app,
        default=[],
        help="an OAuth app installed in the portal of PORTAL_TOKEN (repeatable): "
        "CLIENT_ID:CLIENT_SECRET:REFRESH_TOKEN:PORTAL_TOKEN",
    )
    parser.add_argument(
        "--oauth-token-lifetime",
        type=float,
        default=1800.0,
        help="seconds an issued OAuth access token is valid (HubSpot: 1800)",
    )
    parser.add_argument(
        "--oauth-rotate",
        action="store_true",
        help="issue a new refresh token on every refresh (and retire the old one)",
    )
    args = parser.parse_args(argv)
    if args.oauth_token_lifetime <= 0:
        parser.error("--oauth-token-lifetime must be positive")
    tokens = args.tokens or ["sandbox-token"]
    for spec in args.oauth_apps:
        if spec.portal_token not in tokens:
            parser.error(f"--oauth-app names {spec.portal_token!r}, which is no --token")
    for flag in ("rate_limit", "search_rate", "daily_limit"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    config = SandboxConfig(
        tokens=tokens,
        rate_limit=args.rate_limit,
        search_rate=args.search_rate,
        daily_limit=args.daily_limit,
        data_file=args.data,
        oauth_apps=args.oauth_apps,
        oauth_token_lifetime_s=args.oauth_token_lifetime,
        oauth_rotate_refresh_tokens=args.oauth_rotate,
    )
    return config, args.host, args.port


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve until stopped."""
    config, host, port = parse_args(argv)
    serve(config, host, port)


if __name__ == "__main__":
    main()
