"""Many HubSpot portals in one sandbox: one :class:`~sandbox.state.Sandbox` per token.

Every ``--token`` (every entry of ``SandboxConfig.tokens``) is its own portal, with its
own records, contacts, properties, rate budgets, faults, validation rules and stats; the
first is the *default* portal, which keeps today's single-portal behaviour (and is the
one ``--data`` persists). A request belongs to the portal whose tokens include its
Bearer token, or whose OAuth access token it carries (:mod:`sandbox.oauth`).
"""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request

from sandbox.clock import Clock
from sandbox.config import SandboxConfig
from sandbox.errors import ApiError
from sandbox.oauth import OAuthServer
from sandbox.state import FIRST_PORTAL_ID, Sandbox

_MISSING = (
    "Authentication credentials not found. This API supports OAuth 2.0 authentication "
    "and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
)
_INVALID = "Authentication credentials are invalid: the access token is unknown or malformed."


class Portals:
    """The sandbox's portals, in ``--token`` order; ``default`` is the first."""

    def __init__(self, config: SandboxConfig, clock: Clock) -> None:
        self.clock = clock
        tokens = list(dict.fromkeys(config.tokens)) or ["sandbox-token"]
        self.all: list[Sandbox] = [
            Sandbox(
                replace(config, tokens=[token], data_file=config.data_file if n == 0 else None),
                clock,
                FIRST_PORTAL_ID + n,
            )
            for n, token in enumerate(tokens)
        ]
        self.default = self.all[0]
        self.oauth = OAuthServer(self, config, clock)

    def by_token(self, token: str) -> Sandbox | None:
        """The portal that accepts ``token`` as a private-app token, if any."""
        for sb in self.all:
            if token in sb.config.tokens:
                return sb
        return None

    def authenticate(self, request: Request) -> tuple[Sandbox, ApiError | None]:
        """The request's portal, and the 401 to answer if its credentials are bad (then the
        portal is the default one, or the expired OAuth token's)."""
        header = request.headers.get("authorization")
        if not header:
            return self.default, ApiError(401, "INVALID_AUTHENTICATION", _MISSING)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            return self.default, ApiError(401, "INVALID_AUTHENTICATION", _INVALID)
        sb = self.by_token(token)
        if sb is not None:
            return sb, None
        grant = self.oauth.access.get(token)
        if grant is None:
            return self.default, ApiError(401, "INVALID_AUTHENTICATION", _INVALID)
        portal, expires_at = grant
        late = self.clock.monotonic() - expires_at
        if late >= 0:
            return portal, ApiError(
                401,
                "EXPIRED_AUTHENTICATION",
                f"The OAuth token used to make this call expired {int(late)} second(s) ago.",
            )
        return portal, None

    def for_control(self, request: Request) -> Sandbox:
        """The portal a ``/_sandbox/*`` call acts on: its Bearer token's (a portal token or
        a live or expired OAuth access token), else the default portal; a 401 for an
        unknown token."""
        if not request.headers.get("authorization"):
            return self.default
        sb, error = self.authenticate(request)
        if error is not None and error.category != "EXPIRED_AUTHENTICATION":
            raise error
        return sb
