"""One HubSpot request, done carefully: paced, retried, logged and measured.

:class:`Session` owns the process's single ``httpx.AsyncClient`` (pooled connections,
timeouts) and the rate budgets; the Bearer token comes from a
:class:`~service.hubspot.oauth.TokenProvider` on every request (a fixed token, or OAuth).
Every request:

1. books a slot in the shared rolling-10-second budget (and, for a search, the 1-second
   search budget) and sleeps until it; then, should earlier requests have left later than
   they were booked, waits until the requests actually sent (counted from their answers)
   leave room (``RollingWindow.gate``);
2. is sent once; the answer's rate-limit headers tighten the budget;
3. on 429 ``TEN_SECONDLY_ROLLING`` blocks the budget for ``Retry-After`` (else one
   interval) and is tried again; on 429 ``DAILY`` raises at once;
4. on 5xx, timeouts and connection errors is tried again with exponential backoff and
   jitter (tenacity), unless it is a create whose outcome is now unknown and the caller
   did not allow repeating it;
5. on 401 ``EXPIRED_AUTHENTICATION`` asks the token provider for a fresh token and is
   sent once more (an OAuth provider refreshes; a fixed token does not, and it raises);
6. gives up when the next attempt would start after ``deadline_s``;
7. with a ``fence``, asks it right before sending each attempt (after the pacing wait or a
   retry's sleep) and raises ``HubSpotFenced`` instead of sending when it says no.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Final

import httpx
import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_before_delay,
    wait_exponential_jitter,
)

from service.hubspot import metrics
from service.hubspot.errors import (
    HubSpotAuthError,
    HubSpotDailyLimitExceeded,
    HubSpotError,
    HubSpotFenced,
    HubSpotRateLimited,
    HubSpotUnavailable,
    HubSpotUnknownOutcome,
    error_from_response,
    parse_retry_after,
)
from service.hubspot.oauth import StaticToken, TokenProvider
from service.hubspot.pacing import Clock, RollingWindow, reserve_all

log = structlog.get_logger()

Sleep = Callable[[float], Awaitable[None]]
#: asked before each attempt is sent: False stops the request (``HubSpotFenced``)
Fence = Callable[[], Awaitable[bool]]
Params = Mapping[str, str | int]

CORRELATION_HEADER: Final = "x-hubspot-correlation-id"
USER_AGENT: Final = "callbridge-hubspot/0.1"

#: how many times a request booked in its window waits again for requests sent late
GATE_ROUNDS: Final = 3

#: transport errors raised before the request left: repeating them is always safe.
_NOT_SENT: Final = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _int_header(headers: httpx.Headers, name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


class Session:
    """The paced, retrying request engine behind :class:`~service.hubspot.HubSpotClient`."""

    def __init__(
        self,
        base_url: str,
        token: str | TokenProvider,
        *,
        rate: int = 100,
        search_rate: int = 5,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        deadline_s: float = 60.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_connections: int = 20,
        backoff_initial_s: float = 0.2,
        backoff_max_s: float = 5.0,
        portal: str = "default",
    ) -> None:
        #: the portal label of this session's metrics
        self.portal = portal
        self.deadline_s = deadline_s
        self.auth: TokenProvider = StaticToken(token) if isinstance(token, str) else token
        self.budget = RollingWindow(rate, 10.0, clock)
        self.search_budget = RollingWindow(search_rate, 1.0, clock)
        self._clock = clock
        self._sleep = sleep
        self._backoff = wait_exponential_jitter(
            multiplier=backoff_initial_s, max=backoff_max_s, jitter=backoff_initial_s
        )
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={
                "Accept": "application/json",
                "User-Agent": USER_AGENT,
            },
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=4.0,
            ),
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.auth.aclose()

    async def request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: bytes | None = None,
        search: bool = False,
        idempotent: bool = True,
        retry_unknown: bool = False,
        fence: Fence | None = None,
    ) -> httpx.Response:
        """Send until HubSpot answers 2xx, a non-retryable error, or the deadline.

        ``idempotent=False`` (creates): once a request was sent and no answer says what
        happened (5xx, read timeout, dropped connection), it is repeated only with
        ``retry_unknown=True``; otherwise, and when such a repeated create finally gives
        up, :class:`HubSpotUnknownOutcome` is raised. 429s and connection errors before
        sending are always repeated: HubSpot did nothing.
        """
        retrying = AsyncRetrying(
            retry=retry_if_exception_type((HubSpotRateLimited, HubSpotUnavailable)),
            stop=stop_before_delay(self.deadline_s),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=self._log_retry,
            reraise=True,
        )
        call = _Call(
            operation, method, path, params, body, search, idempotent, retry_unknown, fence
        )
        try:
            return await retrying(self._attempt, call)
        except (HubSpotRateLimited, HubSpotUnavailable) as exc:
            if call.unknown:  # some earlier attempt of this create may have happened
                raise _unknown(exc) from exc
            raise

    async def _attempt(self, call: _Call) -> httpx.Response:
        windows = [self.budget, self.search_budget] if call.search else [self.budget]
        wait = reserve_all(windows)
        metrics.BUDGET_REMAINING.labels(self.portal).set(self.budget.remaining())
        if wait > 0:
            await self._sleep(wait)
        for _ in range(GATE_ROUNDS):  # booked, but earlier requests left late: wait more
            late = max(w.gate() for w in windows)
            if late <= 0:
                break
            await self._sleep(late)
        handles = [w.begin() for w in windows]
        try:
            return await self._send_attempt(call)
        finally:  # counted from its answer: HubSpot saw it no later
            for window, handle in zip(windows, handles, strict=True):
                window.end(handle)

    async def _send_attempt(self, call: _Call) -> httpx.Response:

        op = call.operation
        if call.fence is not None and not await call.fence():
            fenced = HubSpotFenced(0, None, "not sent: the fence refused it", operation=op)
            log.warning("hubspot_request_fenced", operation=op)
            if call.unknown:  # an earlier attempt of this create may have happened
                raise _unknown(fenced) from fenced
            raise fenced
        token = await self.auth.token()  # an OAuth provider may refresh first
        started = self._clock()
        headers = {"Authorization": f"Bearer {token}"}
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        try:
            response = await self._http.request(
                call.method, call.path, params=call.params, content=call.body, headers=headers
            )
        except httpx.TransportError as exc:
            label = "timeout" if isinstance(exc, httpx.TimeoutException) else "error"
            metrics.REQUESTS.labels(op, label, self.portal).inc()
            log.warning(
                "hubspot_request",
                operation=op,
                status=label,
                error=type(exc).__name__,
                latency_ms=round((self._clock() - started) * 1000, 1),
            )
            err = HubSpotUnavailable(0, label.upper(), f"{type(exc).__name__}: {exc}", operation=op)
            if not isinstance(exc, _NOT_SENT):
                call.sent_without_answer(err)
            raise err from exc

        latency = self._clock() - started
        status = response.status_code
        cid = response.headers.get(CORRELATION_HEADER)
        metrics.REQUESTS.labels(op, str(status), self.portal).inc()
        metrics.REQUEST_SECONDS.labels(op).observe(latency)
        self._observe(response.headers)
        (log.info if status < 400 else log.warning)(
            "hubspot_request",
            operation=op,
            status=status,
            latency_ms=round(latency * 1000, 1),
            correlation_id=cid,
        )
        if status < 300:
            return response

        failure = error_from_response(
            status,
            response.content,
            correlation_id=cid,
            retry_after_s=parse_retry_after(response.headers.get("retry-after")),
            operation=op,
        )
        if (
            isinstance(failure, HubSpotAuthError)
            and failure.category == "EXPIRED_AUTHENTICATION"
            and not call.auth_retried
        ):
            call.auth_retried = True  # once: refresh (or take the one another did), resend
            if await self.auth.expired(token):
                return await self._attempt(call)
        if isinstance(failure, HubSpotRateLimited):
            metrics.RATE_LIMITED.labels(failure.policy or "UNKNOWN", self.portal).inc()
            searchly = call.search and failure.policy != "TEN_SECONDLY_ROLLING"
            window = self.search_budget if searchly else self.budget
            if failure.retry_after_s is None:  # wait one interval of the policy hit
                interval_ms = _int_header(
                    response.headers, "x-hubspot-ratelimit-interval-milliseconds"
                )
                failure.retry_after_s = (
                    interval_ms / 1000 if interval_ms and not searchly else window.interval_s
                )
            window.penalize(failure.retry_after_s)
        elif isinstance(failure, HubSpotDailyLimitExceeded):
            metrics.RATE_LIMITED.labels("DAILY", self.portal).inc()
        elif isinstance(failure, HubSpotUnavailable):
            call.sent_without_answer(failure)
        raise failure

    def _observe(self, headers: httpx.Headers) -> None:
        self.budget.observe_headers(
            _int_header(headers, "x-hubspot-ratelimit-max"),
            _int_header(headers, "x-hubspot-ratelimit-remaining"),
            _int_header(headers, "x-hubspot-ratelimit-interval-milliseconds"),
        )
        metrics.BUDGET_REMAINING.labels(self.portal).set(self.budget.remaining())
        daily = _int_header(headers, "x-hubspot-ratelimit-daily-remaining")
        if daily is not None:
            metrics.DAILY_REMAINING.labels(self.portal).set(daily)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, HubSpotRateLimited) and exc.retry_after_s is not None:
            return exc.retry_after_s
        return float(self._backoff(state))

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "hubspot_retry",
            operation=getattr(exc, "operation", None),
            attempt=state.attempt_number,
            wait_s=round(state.upcoming_sleep, 3),
            error=type(exc).__name__,
            status=getattr(exc, "status", None),
            correlation_id=getattr(exc, "correlation_id", None),
        )


class _Call:
    """One logical request across its attempts."""

    def __init__(
        self,
        operation: str,
        method: str,
        path: str,
        params: Params | None,
        body: bytes | None,
        search: bool,
        idempotent: bool,
        retry_unknown: bool,
        fence: Fence | None = None,
    ) -> None:
        self.operation = operation
        self.method = method
        self.path = path
        self.params = params
        self.body = body
        self.search = search
        self.idempotent = idempotent
        self.retry_unknown = retry_unknown
        self.fence = fence
        self.unknown = False  # some attempt was sent and its outcome is unknown
        self.auth_retried = False  # resent once after a 401 EXPIRED_AUTHENTICATION

    def sent_without_answer(self, err: HubSpotUnavailable) -> None:
        """An attempt reached HubSpot (maybe) and no answer says what it did."""
        if self.idempotent:
            return
        self.unknown = True
        if not self.retry_unknown:
            raise _unknown(err) from err


def _unknown(err: HubSpotError) -> HubSpotUnknownOutcome:
    return HubSpotUnknownOutcome(
        err.status,
        "UNKNOWN_OUTCOME",
        f"sent, outcome unknown: {err.message}",
        err.correlation_id,
        err.body,
        operation=err.operation,
    )
