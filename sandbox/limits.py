"""HubSpot's rate limits: a rolling 10-second window per token, a per-second search
limit, and an optional daily budget. Rejected requests do not use up the budget."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from sandbox.errors import ApiError

TEN_SECONDS = 10.0
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Budget:
    """What is left after admitting a request (for the ``X-HubSpot-RateLimit-*`` headers)."""

    limit: int
    remaining: int
    daily_limit: int | None
    daily_remaining: int | None


class RateLimiter:
    """Counts requests per token in rolling windows and per UTC day."""

    def __init__(self) -> None:
        self.windows: dict[str, deque[float]] = {}
        self.searches: dict[str, deque[float]] = {}
        self.days: dict[str, tuple[int, int]] = {}

    def reset(self) -> None:
        """Forget every request seen."""
        self.windows.clear()
        self.searches.clear()
        self.days.clear()

    def admit(
        self,
        token: str,
        now: float,
        now_ms: int,
        limit: int,
        daily_limit: int | None,
        search_rate: int | None,
    ) -> Budget:
        """Admit one request or raise the 429 HubSpot would answer."""
        window = self.windows.setdefault(token, deque())
        horizon = now - TEN_SECONDS
        while window and window[0] <= horizon:
            window.popleft()
        day = now_ms // DAY_MS
        seen_day, used = self.days.get(token, (day, 0))
        if seen_day != day:
            used = 0
        if daily_limit is not None and used >= daily_limit:
            raise rate_limited(
                "DAILY",
                "You have reached your daily limit.",
                _headers(limit, limit - len(window), daily_limit, 0),
            )
        if len(window) >= limit:
            raise rate_limited(
                "TEN_SECONDLY_ROLLING",
                "You have reached your ten_secondly_rolling limit.",
                _headers(
                    limit, 0, daily_limit, None if daily_limit is None else daily_limit - used
                ),
            )
        if search_rate is not None:
            searches = self.searches.setdefault(token, deque())
            while searches and searches[0] <= now - 1.0:
                searches.popleft()
            if len(searches) >= search_rate:
                raise rate_limited("SECONDLY", "You have reached your secondly limit.", {})
            searches.append(now)
        window.append(now)
        used += 1
        self.days[token] = (day, used)
        return Budget(
            limit,
            limit - len(window),
            daily_limit,
            None if daily_limit is None else daily_limit - used,
        )


def _headers(
    limit: int, remaining: int, daily: int | None, daily_left: int | None
) -> dict[str, str]:
    out = {
        "X-HubSpot-RateLimit-Max": str(limit),
        "X-HubSpot-RateLimit-Remaining": str(max(remaining, 0)),
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    if daily is not None and daily_left is not None:
        out["X-HubSpot-RateLimit-Daily"] = str(daily)
        out["X-HubSpot-RateLimit-Daily-Remaining"] = str(max(daily_left, 0))
    return out


def budget_headers(b: Budget) -> dict[str, str]:
    """The rate-limit headers of an admitted request."""
    return _headers(b.limit, b.remaining, b.daily_limit, b.daily_remaining)


def rate_limited(policy: str, message: str, headers: dict[str, str]) -> ApiError:
    """HubSpot's 429 body: ``errorType: RATE_LIMIT`` and the ``policyName`` that tripped."""
    return ApiError(
        429,
        "RATE_LIMITS",
        message,
        extra={"errorType": "RATE_LIMIT", "policyName": policy},
        headers=headers,
    )
