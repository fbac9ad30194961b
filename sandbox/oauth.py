"""HubSpot's OAuth token endpoint: ``POST /oauth/v1/token`` (legacy) and ``POST
/oauth/{version}/token`` (date-based, e.g. ``/oauth/2026-03/token``).

Both take a form-encoded body: ``grant_type=refresh_token`` with ``client_id``,
``client_secret`` and ``refresh_token``, or ``grant_type=authorization_code`` with
``client_id``, ``client_secret``, ``code`` and ``redirect_uri``; both answer ``{token_type:
"bearer", access_token, refresh_token, expires_in}``. Access tokens are opaque strings,
valid for ``oauth_token_lifetime_s`` (HubSpot: 30 minutes), each mapped to the portal the
refresh token was issued for; after that, API requests with them get 401
``EXPIRED_AUTHENTICATION``. With ``oauth_rotate_refresh_tokens`` every refresh issues a new
refresh token and retires the old one (HubSpot does not rotate today; clients must still
keep the one they get back).

Apps come from ``--oauth-app client_id:client_secret:refresh_token:portal_token`` (see
``SandboxConfig.oauth_apps``) or ``POST /_sandbox/oauth``; authorization codes from
``POST /_sandbox/oauth`` ``{"authorize": {"client_id", "portal_token"}}``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from sandbox.clock import Clock
from sandbox.config import SandboxConfig
from sandbox.errors import validation_error

if TYPE_CHECKING:
    from sandbox.portals import Portals
    from sandbox.state import Sandbox

#: expired access tokens are forgotten this long after they expired
_FORGET_AFTER_S = 3600.0


class OAuthError(Exception):
    """A refused token request: 400 ``{status: <code>, message}`` as HubSpot's v1 answers."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def body(self, correlation_id: str) -> dict[str, Any]:
        return {"status": self.code, "message": self.message, "correlationId": correlation_id}


@dataclass(frozen=True, slots=True)
class AppSpec:
    """One OAuth app installed in one portal, as ``--oauth-app`` names it."""

    client_id: str
    client_secret: str
    refresh_token: str
    portal_token: str

    @classmethod
    def parse(cls, text: str) -> AppSpec:
        """``client_id:client_secret:refresh_token:portal_token``."""
        parts = text.split(":")
        if len(parts) != 4 or not all(parts):
            raise ValueError(
                f"expected client_id:client_secret:refresh_token:portal_token, got {text!r}"
            )
        return cls(*parts)


class OAuthServer:
    """Apps, refresh tokens, authorization codes and issued access tokens."""

    def __init__(self, portals: Portals, config: SandboxConfig, clock: Clock) -> None:
        self.portals = portals
        self.clock = clock
        self.lifetime_s = config.oauth_token_lifetime_s
        self.rotate = config.oauth_rotate_refresh_tokens
        self.apps: dict[str, str] = {}  # client_id -> client_secret
        self.refresh: dict[str, tuple[str, Sandbox]] = {}  # refresh token -> (client, portal)
        self.codes: dict[str, tuple[str, Sandbox]] = {}  # one-time code -> (client, portal)
        self.access: dict[str, tuple[Sandbox, float]] = {}  # token -> (portal, expires at)
        self.refreshes = 0
        self.latency_ms = 0.0  # delay of every token answer (to overlap concurrent callers)
        for spec in config.oauth_apps:
            self.install(spec)

    def install(self, spec: AppSpec) -> None:
        """Register the app (or its secret) and its refresh token for the portal."""
        portal = self.portals.by_token(spec.portal_token)
        if portal is None:
            raise validation_error(f"no portal has the token {spec.portal_token!r}")
        known = self.apps.get(spec.client_id)
        if known is not None and known != spec.client_secret:
            raise validation_error(f"app {spec.client_id!r} has another client_secret")
        self.apps[spec.client_id] = spec.client_secret
        self.refresh[spec.refresh_token] = (spec.client_id, portal)

    def authorize(self, client_id: str, portal_token: str) -> str:
        """A one-time authorization code, as the install redirect would carry."""
        portal = self.portals.by_token(portal_token)
        if client_id not in self.apps or portal is None:
            raise validation_error("authorize needs a known client_id and portal_token")
        code = "code-" + secrets.token_urlsafe(12)
        self.codes[code] = (client_id, portal)
        return code

    def expire_all(self) -> int:
        """Make every issued access token expired now; how many there were."""
        now = self.clock.monotonic()
        for token, (portal, _) in self.access.items():
            self.access[token] = (portal, now)
        return len(self.access)

    def grant(self, raw_body: bytes) -> tuple[Sandbox | None, dict[str, Any]]:
        """Answer one token request; the portal it is for (``None`` if unknown)."""
        form = {k: v[0] for k, v in parse_qs(raw_body.decode("utf-8", "replace")).items()}
        grant_type = form.get("grant_type")
        client_id = form.get("client_id", "")
        portal: Sandbox | None = None
        if grant_type == "refresh_token":
            held = self.refresh.get(form.get("refresh_token", ""))
            portal = held[1] if held is not None else None
        elif grant_type == "authorization_code":
            held = self.codes.get(form.get("code", ""))
            portal = held[1] if held is not None else None
        else:
            raise OAuthError(
                "BAD_GRANT_TYPE", "grant_type must be refresh_token or authorization_code"
            )
        if client_id not in self.apps:
            raise OAuthError("BAD_CLIENT_ID", "missing or unknown client id")
        if self.apps[client_id] != form.get("client_secret"):
            raise OAuthError("BAD_CLIENT_SECRET", "missing or invalid client secret")
        if held is None or held[0] != client_id:
            if grant_type == "refresh_token":
                raise OAuthError("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
            raise OAuthError("BAD_AUTH_CODE", "missing or unknown auth code")
        assert portal is not None
        if grant_type == "authorization_code":
            if not form.get("redirect_uri"):
                raise OAuthError("BAD_REDIRECT_URI", "missing redirect_uri")
            del self.codes[form["code"]]
            refresh_token = self._new_refresh(client_id, portal)
        else:
            refresh_token = form["refresh_token"]
            self.refreshes += 1
            if self.rotate:
                del self.refresh[refresh_token]
                refresh_token = self._new_refresh(client_id, portal)
        return portal, {
            "token_type": "bearer",
            "access_token": self._new_access(portal),
            "refresh_token": refresh_token,
            "expires_in": max(1, round(self.lifetime_s)),
        }

    def _new_refresh(self, client_id: str, portal: Sandbox) -> str:
        token = "rt-" + secrets.token_urlsafe(18)
        self.refresh[token] = (client_id, portal)
        return token

    def _new_access(self, portal: Sandbox) -> str:
        now = self.clock.monotonic()
        for token in [t for t, (_, exp) in self.access.items() if exp + _FORGET_AFTER_S < now]:
            del self.access[token]
        token = "at-" + secrets.token_urlsafe(24)
        self.access[token] = (portal, now + self.lifetime_s)
        return token

    def configure(self, body: Any) -> dict[str, Any]:
        """``POST /_sandbox/oauth``: ``apps`` (list of {client_id, client_secret,
        refresh_token, portal_token}), ``access_token_lifetime_s``,
        ``rotate_refresh_tokens``, ``expire_access_tokens: true``, ``revoke_refresh_token``,
        ``authorize: {client_id, portal_token}`` (answers ``code``), ``latency_ms`` (delay
        of every token answer)."""
        known = {
            "apps",
            "access_token_lifetime_s",
            "rotate_refresh_tokens",
            "expire_access_tokens",
            "revoke_refresh_token",
            "authorize",
            "latency_ms",
        }
        if not isinstance(body, dict) or not set(body) <= known:
            raise validation_error(f"oauth settings are an object with keys {sorted(known)}")
        out: dict[str, Any] = {}
        lifetime = body.get("access_token_lifetime_s")
        if lifetime is not None:
            if isinstance(lifetime, bool) or not isinstance(lifetime, int | float) or lifetime <= 0:
                raise validation_error("access_token_lifetime_s must be a positive number")
            self.lifetime_s = float(lifetime)
        latency = body.get("latency_ms")
        if latency is not None:
            if isinstance(latency, bool) or not isinstance(latency, int | float) or latency < 0:
                raise validation_error("latency_ms must be a number >= 0")
            self.latency_ms = float(latency)
        if "rotate_refresh_tokens" in body:
            if not isinstance(body["rotate_refresh_tokens"], bool):
                raise validation_error("rotate_refresh_tokens must be true or false")
            self.rotate = body["rotate_refresh_tokens"]
        for raw in body.get("apps") or []:
            if not isinstance(raw, dict):
                raise validation_error("each app is an object")
            try:
                spec = AppSpec(
                    str(raw["client_id"]),
                    str(raw["client_secret"]),
                    str(raw["refresh_token"]),
                    str(raw["portal_token"]),
                )
            except KeyError as exc:
                raise validation_error(f"app is missing {exc.args[0]}") from None
            self.install(spec)
        if body.get("revoke_refresh_token"):
            self.refresh.pop(str(body["revoke_refresh_token"]), None)
        if body.get("expire_access_tokens") is True:
            out["expired"] = self.expire_all()
        auth = body.get("authorize")
        if auth is not None:
            if not isinstance(auth, dict):
                raise validation_error("authorize is {client_id, portal_token}")
            out["code"] = self.authorize(
                str(auth.get("client_id", "")), str(auth.get("portal_token", ""))
            )
        return {**self.to_json(), **out}

    def to_json(self) -> dict[str, Any]:
        now = self.clock.monotonic()
        return {
            "apps": len(self.apps),
            "refresh_tokens": len(self.refresh),
            "access_tokens_live": sum(1 for _, exp in self.access.values() if exp > now),
            "access_token_lifetime_s": self.lifetime_s,
            "rotate_refresh_tokens": self.rotate,
            "refreshes": self.refreshes,
            "latency_ms": self.latency_ms,
        }
