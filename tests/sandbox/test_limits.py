"""Rate limits: rolling 10-second window per token, search per second, daily budget."""

from __future__ import annotations

import httpx
import pytest

from sandbox.errors import ApiError
from sandbox.limits import RateLimiter
from tests.fixtures.sandbox import SandboxHandle
from tests.sandbox.conftest import Api


def test_rolling_window_headers_and_429_body(sandbox: SandboxHandle, api: Api) -> None:
    """X-HubSpot-RateLimit-* headers count down; the N+1th request is HubSpot's 429."""
    sandbox.config(rate_limit=3)
    remaining = []
    for _ in range(3):
        r = api.get("/crm/v3/objects/calls")
        assert r.status_code == 200
        assert r.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert r.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
        remaining.append(int(r.headers["X-HubSpot-RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    r = api.get("/crm/v3/objects/calls")
    assert r.status_code == 429
    body = r.json()
    assert body["status"] == "error"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert "correlationId" in body and "message" in body
    assert r.headers["X-HubSpot-RateLimit-Remaining"] == "0"
    stats = sandbox.stats()
    assert stats["requests"]["listCalls"] == {"200": 3, "429": 1}
    assert [row[2] for row in stats["timeline"]] == [200, 200, 200, 429]


def test_window_is_per_token(sandbox: SandboxHandle, api: Api) -> None:
    """Each token has its own window."""
    sandbox.config(rate_limit=1, tokens=["sandbox-token", "other"])
    assert api.get("/crm/v3/objects/calls").status_code == 200
    assert api.get("/crm/v3/objects/calls").status_code == 429
    other = httpx.get(
        sandbox.url + "/crm/v3/objects/calls", headers={"Authorization": "Bearer other"}
    )
    assert other.status_code == 200


def test_window_rolls() -> None:
    """A request is admitted again once the oldest in the window is 10 s old (pure)."""
    limiter = RateLimiter()
    for t in (0.0, 1.0, 2.0):
        limiter.admit("t", t, 0, 3, None, None)
    with pytest.raises(ApiError) as caught:
        limiter.admit("t", 9.99, 0, 3, None, None)
    assert caught.value.status == 429
    assert limiter.admit("t", 10.0, 0, 3, None, None).remaining == 0
    assert limiter.admit("t", 11.0, 0, 3, None, None).remaining == 0


def test_search_is_limited_per_second(sandbox: SandboxHandle, api: Api) -> None:
    """Search: at most search_rate requests per second, then 429 SECONDLY."""
    sandbox.config(search_rate=5)
    codes = [api.post("/crm/v3/objects/calls/search", {}).status_code for _ in range(6)]
    assert codes[:5] == [200] * 5
    assert codes[5] == 429
    r = api.post("/crm/v3/objects/calls/search", {})
    assert r.json()["policyName"] == "SECONDLY"
    assert api.get("/crm/v3/objects/calls").status_code == 200


def test_search_answers_carry_no_rate_limit_headers(api: Api) -> None:
    """As HubSpot's, search answers omit X-HubSpot-RateLimit-* headers."""
    r = api.post("/crm/v3/objects/calls/search", {})
    assert "X-HubSpot-RateLimit-Max" not in r.headers


def test_daily_budget(sandbox: SandboxHandle, api: Api) -> None:
    """A daily limit answers 429 DAILY once spent, with daily headers on the way."""
    sandbox.config(daily_limit=2)
    r = api.get("/crm/v3/objects/calls")
    assert r.headers["X-HubSpot-RateLimit-Daily"] == "2"
    assert r.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "1"
    assert api.get("/crm/v3/objects/calls").status_code == 200
    r = api.get("/crm/v3/objects/calls")
    assert r.status_code == 429 and r.json()["policyName"] == "DAILY"


def test_reset_restores_start_up_limits(sandbox: SandboxHandle, api: Api) -> None:
    """/_sandbox/reset forgets the window and restores the configured limits."""
    sandbox.config(rate_limit=1)
    api.get("/crm/v3/objects/calls")
    assert api.get("/crm/v3/objects/calls").status_code == 429
    sandbox.reset()
    assert api.get("/crm/v3/objects/calls").status_code == 200
    assert api.get("/crm/v3/objects/calls").headers["X-HubSpot-RateLimit-Max"] == "100000"
