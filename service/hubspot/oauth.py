"""Bearer tokens for the HubSpot client: a fixed private-app token, or OAuth 2.

:class:`OAuthTokenProvider` holds one portal's OAuth grant: the refresh token and the
current access token. It refreshes the access token *before* it expires (when less than
a tenth of its lifetime, at most ``refresh_margin_s``, is left), with a single refresh in
flight (an :class:`asyncio.Lock`: concurrent requests wait for that refresh and use its
token), and hands a rotated refresh token to ``on_refresh_token`` (a durable store, e.g.
:meth:`service.hubspot.secrets.RefreshTokenStore.sink`). When HubSpot answers a request 401
``EXPIRED_AUTHENTICATION`` anyway, the session calls :meth:`expired` with the token it
used, which refreshes unless another request already did, and repeats the request once.

The token endpoint is HubSpot's legacy ``POST /oauth/v1/token`` or its date-based
``POST /oauth/{version}/token`` (``oauth_version="2026-03"``), form-encoded
``grant_type=refresh_token&client_id&client_secret&refresh_token``, answering
``{access_token, refresh_token, expires_in, token_type}``. A refused or failed refresh
raises :class:`OAuthRefreshError` (``retryable`` says whether trying later may help).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx
import orjson
import structlog

from service.hubspot import metrics
from service.hubspot.errors import HubSpotError

log = structlog.get_logger()

RefreshTokenSink = Callable[[str], Awaitable[None]]


class OAuthRefreshError(HubSpotError):
    """The token endpoint refused (``retryable`` false: a bad/revoked refresh token or
    client) or could not be reached (``retryable`` true) — the portal cannot write now."""

    category_default = "OAUTH_REFRESH_FAILED"

    def __init__(self, status: int, category: str | None, message: str, *, retryable: bool) -> None:
        super().__init__(status, category, message, None, None, operation="oauthToken")
        self.retryable = retryable


class TokenProvider(Protocol):
    """Where the session gets its Bearer token."""

    async def token(self) -> str:
        """The token to send now."""
        ...

    async def expired(self, token: str) -> bool:
        """HubSpot said ``token`` expired: get a new one unless that already happened;
        whether a retry with :meth:`token` may succeed."""
        ...

    async def aclose(self) -> None: ...


class StaticToken:
    """A private-app token (or service key): never refreshed."""

    def __init__(self, token: str) -> None:
        self._token = token

    async def token(self) -> str:
        return self._token

    async def expired(self, token: str) -> bool:
        return False

    async def aclose(self) -> None:
        return None


class OAuthTokenProvider:
    """One portal's OAuth grant; see the module docstring."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        *,
        portal: str = "default",
        oauth_version: str = "v1",
        on_refresh_token: RefreshTokenSink | None = None,
        refresh_margin_s: float = 300.0,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.portal = portal
        self.token_path = f"/oauth/{oauth_version}/token"
        self.refreshes = 0  # completed refreshes (tests and `portals list` read it)
        self._client_id = client_id
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._sink = on_refresh_token
        self._margin_s = refresh_margin_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._access: str | None = None
        self._refresh_at = 0.0  # monotonic time to refresh at (before expiry)
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=httpx.Timeout(timeout_s), transport=transport
        )

    @property
    def refresh_token(self) -> str:
        """The refresh token in use (after a rotation, the new one)."""
        return self._refresh_token

    async def aclose(self) -> None:
        await self._http.aclose()

    def _fresh(self) -> str | None:
        if self._access is not None and self._clock() < self._refresh_at:
            return self._access
        return None

    async def token(self) -> str:
        current = self._fresh()
        if current is not None:
            return current
        async with self._lock:  # one refresh in flight; the others wait for its token
            current = self._fresh()
            if current is not None:
                return current
            return await self._refresh()

    async def expired(self, token: str) -> bool:
        async with self._lock:
            if self._access is not None and self._access != token and self._fresh():
                return True  # another request refreshed meanwhile
            await self._refresh()
            return True

    async def _refresh(self) -> str:
        form = {
            "grant_type": "refresh_token",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "refresh_token": self._refresh_token,
        }
        try:
            response = await self._http.post(self.token_path, data=form)
        except httpx.TransportError as exc:
            metrics.OAUTH_REFRESHES.labels(self.portal, "unavailable").inc()
            log.error("hubspot_oauth_refresh_failed", portal=self.portal, error=repr(exc))
            raise OAuthRefreshError(
                0, "UNAVAILABLE", f"{type(exc).__name__}: {exc}", retryable=True
            ) from exc
        if response.status_code != 200:
            retryable = response.status_code >= 500 or response.status_code == 429
            code, message = _error_of(response)
            metrics.OAUTH_REFRESHES.labels(
                self.portal, "unavailable" if retryable else "refused"
            ).inc()
            log.error(
                "hubspot_oauth_refresh_failed",
                portal=self.portal,
                status=response.status_code,
                code=code,
                message=message,
            )
            raise OAuthRefreshError(response.status_code, code, message, retryable=retryable)
        body = orjson.loads(response.content)
        lifetime = float(body["expires_in"])
        self._access = str(body["access_token"])
        self._refresh_at = self._clock() + lifetime - min(self._margin_s, lifetime / 10)
        self.refreshes += 1
        metrics.OAUTH_REFRESHES.labels(self.portal, "ok").inc()
        log.info("hubspot_oauth_refreshed", portal=self.portal, expires_in=lifetime)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != self._refresh_token:
            self._refresh_token = rotated
            if self._sink is not None:
                try:
                    await self._sink(rotated)
                except Exception:  # the grant still works in memory; say it loudly
                    log.exception("hubspot_oauth_refresh_token_not_stored", portal=self.portal)
        return self._access


def _error_of(response: httpx.Response) -> tuple[str, str]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "HTTP_" + str(response.status_code), response.text[:200]
    if not isinstance(body, dict):
        return "HTTP_" + str(response.status_code), response.text[:200]
    code = body.get("status") if body.get("status") != "error" else body.get("category")
    return str(code or "HTTP_" + str(response.status_code)), str(body.get("message", ""))
