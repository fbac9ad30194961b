"""Mapping HubSpot error answers to the client's exception classes (pure)."""

from __future__ import annotations

import orjson
import pytest

from service.hubspot.errors import (
    HubSpotAuthError,
    HubSpotConflict,
    HubSpotDailyLimitExceeded,
    HubSpotError,
    HubSpotMissingScopes,
    HubSpotNotFound,
    HubSpotRateLimited,
    HubSpotUnavailable,
    HubSpotValidationError,
    error_from_response,
    parse_retry_after,
)


def _body(category: str, **extra: str) -> bytes:
    return orjson.dumps(
        {"status": "error", "message": "m", "correlationId": "cid", "category": category, **extra}
    )


@pytest.mark.parametrize(
    ("status", "category", "cls"),
    [
        (400, "VALIDATION_ERROR", HubSpotValidationError),
        (401, "INVALID_AUTHENTICATION", HubSpotAuthError),
        (403, "MISSING_SCOPES", HubSpotMissingScopes),
        (404, "OBJECT_NOT_FOUND", HubSpotNotFound),
        (409, "CONFLICT", HubSpotConflict),
        (500, "INTERNAL_ERROR", HubSpotUnavailable),
        (418, "SOMETHING_ELSE", HubSpotError),
    ],
)
def test_category_maps_to_its_exception(status: int, category: str, cls: type) -> None:
    """Each HubSpot category becomes its class, keeping status, message and correlation id."""
    err = error_from_response(status, _body(category), operation="op")
    assert type(err) is cls
    assert (err.status, err.category, err.message, err.correlation_id) == (
        status,
        category,
        "m",
        "cid",
    )
    assert "cid" in str(err) and category in str(err)


def test_ten_secondly_429_is_rate_limited_with_retry_after() -> None:
    """A TEN_SECONDLY_ROLLING 429 is HubSpotRateLimited carrying policy and Retry-After."""
    body = orjson.dumps(
        {
            "status": "error",
            "message": "You have reached your ten_secondly_rolling limit.",
            "errorType": "RATE_LIMIT",
            "correlationId": "c1",
            "policyName": "TEN_SECONDLY_ROLLING",
        }
    )
    err = error_from_response(429, body, retry_after_s=1.5)
    assert isinstance(err, HubSpotRateLimited)
    assert (err.policy, err.retry_after_s, err.category) == (
        "TEN_SECONDLY_ROLLING",
        1.5,
        "RATE_LIMITS",
    )


def test_daily_429_is_a_distinct_error() -> None:
    """A DAILY 429 is HubSpotDailyLimitExceeded, not a (retried) HubSpotRateLimited."""
    body = orjson.dumps(
        {"status": "error", "message": "daily", "errorType": "RATE_LIMIT", "policyName": "DAILY"}
    )
    err = error_from_response(429, body, correlation_id="from-header")
    assert isinstance(err, HubSpotDailyLimitExceeded)
    assert not isinstance(err, HubSpotRateLimited)
    assert err.correlation_id == "from-header"


def test_status_decides_when_the_body_has_no_category() -> None:
    """Without a known category, the HTTP status picks the class."""
    assert isinstance(error_from_response(404, b""), HubSpotNotFound)
    assert isinstance(error_from_response(503, b"<html/>"), HubSpotUnavailable)


@pytest.mark.parametrize(
    ("value", "seconds"), [(None, None), ("", None), ("2", 2.0), ("0.5", 0.5), ("soon", None)]
)
def test_retry_after_parsing(value: str | None, seconds: float | None) -> None:
    """Retry-After in delta-seconds is read; anything else counts as absent."""
    assert parse_retry_after(value) == seconds
