"""OAuth portals: the token provider against the sandbox's real token endpoint, with
access tokens that live two seconds. Refresh before expiry, one refresh in flight for 20
concurrent requests, the 401 ``EXPIRED_AUTHENTICATION`` retry, rotated refresh tokens in
the encrypted store, and a typed error when the refresh is refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from prometheus_client import REGISTRY

from sandbox.app import create_app
from sandbox.config import SandboxConfig
from sandbox.oauth import AppSpec
from service.hubspot import HubSpotClient
from service.hubspot.oauth import OAuthRefreshError, OAuthTokenProvider
from service.hubspot.secrets import RefreshTokenStore, SecretsError

URL = "http://sandbox.test"
LIFETIME_S = 2.0


class Sandbox:
    def __init__(self, **config: Any) -> None:
        self.app = create_app(
            SandboxConfig(
                tokens=["portal-token"],
                rate_limit=100_000,
                search_rate=100_000,
                oauth_apps=[AppSpec("cid", "csec", "rt-1", "portal-token")],
                oauth_token_lifetime_s=LIFETIME_S,
                **config,
            )
        )
        self.transport = httpx.ASGITransport(app=self.app)
        self.control = httpx.AsyncClient(
            transport=self.transport,
            base_url=URL,
            headers={"Authorization": "Bearer portal-token"},
        )

    def provider(self, refresh_token: str = "rt-1", **kw: Any) -> OAuthTokenProvider:
        return OAuthTokenProvider(
            URL, "cid", "csec", refresh_token, transport=self.transport, portal="acme", **kw
        )

    def client(self, provider: OAuthTokenProvider, **kw: Any) -> HubSpotClient:
        return HubSpotClient(
            URL, provider, transport=self.transport, rate=100_000, search_rate=10_000, **kw
        )

    async def requests(self) -> dict[str, dict[str, int]]:
        stats = (await self.control.get("/_sandbox/stats")).json()
        return stats["requests"]  # type: ignore[no-any-return]


@pytest.fixture
async def sb() -> AsyncIterator[Sandbox]:
    s = Sandbox()
    # answers take a while, so the 20 concurrent requests (and refreshes) really overlap
    await s.control.post("/_sandbox/faults", json={"latency_ms": 30})
    await s.control.post("/_sandbox/oauth", json={"latency_ms": 100})
    yield s
    await s.control.aclose()


async def _burst(hs: HubSpotClient, n: int = 20) -> None:
    pages = await asyncio.gather(*(hs.list_calls(limit=1) for _ in range(n)))
    assert len(pages) == n


async def test_refreshes_before_expiry_once_for_twenty_concurrent_requests(sb: Sandbox) -> None:
    provider = sb.provider()
    async with sb.client(provider) as hs:
        await _burst(hs)
        assert (await sb.requests())["oauthToken"] == {"200": 1}
        await asyncio.sleep(LIFETIME_S + 0.2)  # the first access token is expired now
        await _burst(hs)
    requests = await sb.requests()
    assert requests["oauthToken"] == {"200": 2}
    assert requests["listCalls"] == {"200": 40}  # refreshed ahead: no request saw a 401
    assert provider.refreshes == 2


async def test_an_unforeseen_expiry_is_one_refresh_and_one_retry_each(sb: Sandbox) -> None:
    """HubSpot expires the token early: 20 concurrent requests get 401
    EXPIRED_AUTHENTICATION, one refresh happens, each request is sent once more."""
    provider = sb.provider(refresh_margin_s=0.0)
    async with sb.client(provider) as hs:
        await hs.list_calls(limit=1)
        r = await sb.control.post("/_sandbox/oauth", json={"expire_access_tokens": True})
        assert r.json()["expired"] == 1
        await _burst(hs)
    requests = await sb.requests()
    assert requests["oauthToken"] == {"200": 2}
    assert requests["listCalls"] == {"200": 21, "401": 20}


async def test_rotated_refresh_tokens_are_stored_encrypted(sb: Sandbox, tmp_path: Path) -> None:
    await sb.control.post("/_sandbox/oauth", json={"rotate_refresh_tokens": True})
    key = Fernet.generate_key().decode()
    store = RefreshTokenStore(tmp_path / "secrets.json", key)
    provider = sb.provider(on_refresh_token=store.sink("acme"))
    async with sb.client(provider) as hs:
        await hs.list_calls(limit=1)
    rotated = provider.refresh_token
    assert rotated != "rt-1"
    assert store.load("acme") == rotated
    assert rotated not in (tmp_path / "secrets.json").read_text()  # encrypted at rest
    assert store.load("other") is None
    # a restart starts from the stored token; the retired one is refused, typed
    async with sb.client(sb.provider(store.load("acme") or "")) as hs:
        await hs.list_calls(limit=1)
    async with sb.client(sb.provider("rt-1")) as hs:
        with pytest.raises(OAuthRefreshError) as caught:
            await hs.list_calls(limit=1)
    assert caught.value.category == "BAD_REFRESH_TOKEN"
    assert caught.value.retryable is False
    with pytest.raises(SecretsError, match="does not decrypt"):
        RefreshTokenStore(tmp_path / "secrets.json", Fernet.generate_key().decode()).load("acme")
    with pytest.raises(SecretsError, match="Fernet key"):
        RefreshTokenStore(tmp_path / "x.json", "not-a-key")


async def test_a_refused_refresh_is_a_typed_error_in_logs_and_metrics(sb: Sandbox) -> None:
    def refused() -> float:
        value = REGISTRY.get_sample_value(
            "callbridge_hubspot_oauth_refreshes_total", {"portal": "acme", "result": "refused"}
        )
        return value or 0.0

    before = refused()
    await sb.control.post("/_sandbox/oauth", json={"revoke_refresh_token": "rt-1"})
    async with sb.client(sb.provider()) as hs:
        with pytest.raises(OAuthRefreshError) as caught:
            await hs.list_calls(limit=1)
    assert caught.value.status == 400 and not caught.value.retryable
    assert refused() == before + 1
    assert "listCalls" not in await sb.requests()  # nothing was sent without a token


async def test_the_date_based_token_endpoint(sb: Sandbox) -> None:
    provider = sb.provider(oauth_version="2026-03")
    assert provider.token_path == "/oauth/2026-03/token"
    async with sb.client(provider, api_version="2026-03") as hs:
        await hs.list_calls(limit=1)
    stats = (await sb.control.get("/_sandbox/stats")).json()
    assert stats["versions"]["2026-03"] == {"oauthToken": 1, "listCalls": 1}


async def test_an_unreachable_token_endpoint_is_retryable() -> None:
    provider = OAuthTokenProvider("http://127.0.0.1:9", "cid", "csec", "rt", timeout_s=1.0)
    try:
        with pytest.raises(OAuthRefreshError) as caught:
            await provider.token()
        assert caught.value.retryable is True
    finally:
        await provider.aclose()
