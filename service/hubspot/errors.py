"""The HubSpot client's exceptions: one class per HubSpot error category that a caller
handles differently, each keeping the HTTP status, category, message and correlation id
(the id HubSpot support asks for).

Which are retried, and by whom:

- ``HubSpotRateLimited`` (429 ``TEN_SECONDLY_ROLLING``) and ``HubSpotUnavailable`` (5xx,
  timeouts, connection errors) are retried inside the client until its deadline; the
  caller sees them only when the deadline ran out.
- ``HubSpotDailyLimitExceeded`` (429 ``DAILY``) is never retried: waiting seconds does not
  help, and hammering a spent daily quota only burns error budget.
- ``HubSpotUnknownOutcome``: a create was sent and no answer says whether it happened
  (timeout, dropped connection, 5xx). Retrying could create a duplicate, so the client
  leaves it to the caller (the writer searches ``hs_call_external_id``).
- ``HubSpotFenced``: the caller's fence refused an attempt before it was sent (the
  writer no longer owns the calls it carries); nothing was sent by that attempt.
- Everything else (400/401/403/404/409) is the caller's to fix, never retried.

Pure: no httpx, no asyncio.
"""

from __future__ import annotations

from typing import ClassVar

from service.hubspot.models import ErrorBody, decode_error


class HubSpotError(Exception):
    """A request HubSpot refused or that could not complete.

    ``status`` is the HTTP status (0 when there was no answer), ``category`` HubSpot's
    error category, ``body`` the decoded error body when there was one.
    """

    category_default: ClassVar[str] = "ERROR"

    def __init__(
        self,
        status: int,
        category: str | None,
        message: str,
        correlation_id: str | None = None,
        body: ErrorBody | None = None,
        *,
        operation: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.category = category or self.category_default
        self.message = message
        self.correlation_id = correlation_id
        self.body = body
        self.operation = operation

    def __str__(self) -> str:
        where = f"{self.operation}: " if self.operation else ""
        cid = f" (correlation id {self.correlation_id})" if self.correlation_id else ""
        return f"{where}{self.status} {self.category}: {self.message}{cid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status!r}, category={self.category!r}, "
            f"message={self.message!r}, correlation_id={self.correlation_id!r})"
        )


class HubSpotValidationError(HubSpotError):
    """400 ``VALIDATION_ERROR``: the request (for a batch: some input of it) is invalid."""

    category_default = "VALIDATION_ERROR"


class HubSpotAuthError(HubSpotError):
    """401 ``INVALID_AUTHENTICATION``: the token is missing, wrong, expired or revoked."""

    category_default = "INVALID_AUTHENTICATION"


class HubSpotMissingScopes(HubSpotError):
    """403 ``MISSING_SCOPES``: the token lacks a scope this operation needs."""

    category_default = "MISSING_SCOPES"


class HubSpotNotFound(HubSpotError):
    """404 ``OBJECT_NOT_FOUND``."""

    category_default = "OBJECT_NOT_FOUND"


class HubSpotConflict(HubSpotError):
    """409 ``CONFLICT``: e.g. a unique property value already used by another object."""

    category_default = "CONFLICT"


class HubSpotRateLimited(HubSpotError):
    """429 ``RATE_LIMITS`` (``TEN_SECONDLY_ROLLING`` or ``SECONDLY``): retried internally;
    raised only when the client's deadline ran out. ``retry_after_s`` is how long HubSpot
    asked to wait (``Retry-After``), if it said."""

    category_default = "RATE_LIMITS"

    def __init__(
        self,
        status: int,
        category: str | None,
        message: str,
        correlation_id: str | None = None,
        body: ErrorBody | None = None,
        *,
        operation: str | None = None,
        policy: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(status, category, message, correlation_id, body, operation=operation)
        self.policy = policy
        self.retry_after_s = retry_after_s


class HubSpotDailyLimitExceeded(HubSpotError):
    """429 with ``policyName: DAILY``: the account's daily quota is spent. Never retried."""

    category_default = "RATE_LIMITS"
    policy = "DAILY"


class HubSpotUnavailable(HubSpotError):
    """5xx, timeouts or connection errors that outlasted the retries within the deadline."""

    category_default = "UNAVAILABLE"


class HubSpotUnknownOutcome(HubSpotError):
    """A non-idempotent create was sent but its outcome is unknown (timeout, connection
    dropped after sending, 5xx). Not retried unless the caller allowed it: reconcile by
    searching for a property the inputs carry (``hs_call_external_id``)."""

    category_default = "UNKNOWN_OUTCOME"


class HubSpotFenced(HubSpotError):
    """The request's fence refused the next attempt: it was not sent (the caller lost
    what it was writing for, e.g. a writer's partitions were revoked while it waited)."""

    category_default = "FENCED"


#: category -> class, for categories with a class of their own.
CATEGORY_ERRORS: dict[str, type[HubSpotError]] = {
    "VALIDATION_ERROR": HubSpotValidationError,
    "INVALID_AUTHENTICATION": HubSpotAuthError,
    "MISSING_SCOPES": HubSpotMissingScopes,
    "OBJECT_NOT_FOUND": HubSpotNotFound,
    "CONFLICT": HubSpotConflict,
}
#: status -> class, when the body names no known category.
STATUS_ERRORS: dict[int, type[HubSpotError]] = {
    400: HubSpotValidationError,
    401: HubSpotAuthError,
    403: HubSpotMissingScopes,
    404: HubSpotNotFound,
    409: HubSpotConflict,
}

DAILY_POLICIES = frozenset({"DAILY"})


def is_daily_limit(body: ErrorBody) -> bool:
    """A 429 body naming the daily policy (HubSpot: ``policyName: "DAILY"``)."""
    return (body.policy_name or "").upper() in DAILY_POLICIES


def error_from_response(
    status: int,
    raw: bytes,
    *,
    correlation_id: str | None = None,
    retry_after_s: float | None = None,
    operation: str | None = None,
) -> HubSpotError:
    """The exception for a non-2xx answer: the body's category wins, then the status.

    ``correlation_id`` is the ``X-HubSpot-Correlation-Id`` header, used when the body has
    none.
    """
    body = decode_error(raw)
    cid = body.correlation_id or correlation_id
    message = body.message or f"HTTP {status}"
    if status == 429:
        if is_daily_limit(body):
            return HubSpotDailyLimitExceeded(
                status, body.category, message, cid, body, operation=operation
            )
        return HubSpotRateLimited(
            status,
            body.category,
            message,
            cid,
            body,
            operation=operation,
            policy=body.policy_name,
            retry_after_s=retry_after_s,
        )
    if status >= 500:
        return HubSpotUnavailable(status, body.category, message, cid, body, operation=operation)
    cls = CATEGORY_ERRORS.get(body.category or "") or STATUS_ERRORS.get(status, HubSpotError)
    return cls(status, body.category, message, cid, body, operation=operation)


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds form); None when absent or unreadable.

    HubSpot sends delta-seconds; the HTTP-date form would need a wall clock and is
    treated as absent (the caller then waits one rate-limit interval).
    """
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None
