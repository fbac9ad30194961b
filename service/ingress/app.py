"""The ingress's HTTP shell: provider webhooks in, normalized events durably in Kafka, 202.

``POST /webhooks/{provider}/{portal}`` (and ``POST /webhooks/{provider}``, the ``default``
portal) does only I/O: read the body (bounded in size and time), hand it to the pure
admission (``admission.select``/``preflight``/``admit``, with the portal's own secrets),
produce the accepted events with the idempotent producer (``acks=all``) and answer 202 once
the broker acknowledged them. Anything admission refuses is answered 4xx and nothing is
produced (an unknown portal: 404 before the body is read); 503 only when Kafka is
unavailable, so that the provider retries. Nothing escapes as a 500: an unexpected error is
logged with the provider, portal and request id, answered 400 (after authentication) or 401
(before), and counted in ``callbridge_ingress_requests_total`` like every answer.

The webhook port serves ``/webhooks/{provider}[/{portal}]``, ``/healthz``, ``/readyz`` and
``/openapi.json``; ``/metrics`` lives on the metrics port only (``create_metrics_app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from handlers import REGISTRY, NormalizeOptions
from handlers.event import DEFAULT_DISPOSITIONS, DEFAULT_PORTAL, CallEvent
from service import logs, metrics
from service.config import Settings
from service.ingress.admission import Accept, Answer, Inbound, Policy, admit, preflight, select
from service.ingress.kafkalink import KafkaLink
from service.ingress.openapi import document
from service.ingress.portals import policies, portal_label, prepare, secret_values
from service.ingress.proxy import ConfigError
from service.ingress.replay import ReplayGuard

log = structlog.get_logger()

Clock = Callable[[], float]

#: an ``X-Request-Id`` we adopt as is; anything else is replaced by a fresh one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def error(status: int, err: str, detail: str = "") -> JSONResponse:
    return JSONResponse({"error": err, "detail": detail}, status_code=status)


def normalize_options(settings: Settings) -> NormalizeOptions:
    dispositions = dict(DEFAULT_DISPOSITIONS)
    dispositions.update({k.lower(): v for k, v in settings.disposition_map.items()})
    return NormalizeOptions(
        default_region=settings.default_region,
        external_account_id=settings.external_account_id,
        owner_map=dict(settings.owner_map),
        dispositions=dispositions,
    )


def startup_problem(settings: Settings) -> str | None:
    """Why the ingress must not start with ``settings`` (None: it may): an unusable
    public URL or proxy list, an invalid portals file, Twilio on (in any portal) with no
    way to know the public URL, a malformed ``whsec_`` key."""
    try:
        prepare(settings)
    except ConfigError as exc:
        return str(exc)
    return None


def request_id(given: str | None) -> str:
    return given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds ``limit`` bytes (never read whole)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(settings: Settings, clock: Clock = time.time) -> Starlette:
    """The webhook app (``ConfigError`` if ``startup_problem`` finds one)."""
    startup = prepare(settings)  # the portals, loaded once
    logs.mask_secret_values(secret_values(startup.portals))
    link = KafkaLink(settings)
    replays = ReplayGuard(clock)
    public = startup.public
    registry = policies(
        startup.portals,
        Policy(
            secrets={},
            max_body_bytes=settings.max_body_bytes,
            options=normalize_options(settings),
        ),
    )

    async def webhook(request: Request) -> Response:
        name = request.path_params["provider"]
        portal = request.path_params.get("portal", DEFAULT_PORTAL)
        rid = request_id(request.headers.get("x-request-id"))
        label = name if name in REGISTRY else "unknown"
        where = portal_label(portal, registry)
        stage = {"authenticated": False}
        with structlog.contextvars.bound_contextvars(request_id=rid, provider=label, portal=where):
            try:
                response = await handle(name, portal, request, rid, stage)
            except Exception as exc:  # the edge's catch-all: never a 500
                log.error("webhook_failed", error=type(exc).__name__, exc_info=exc)
                if stage["authenticated"]:
                    response = error(400, "invalid event", "the request could not be processed")
                else:
                    response = error(401, "invalid signature", "the request could not be verified")
        metrics.INGRESS_REQUESTS.labels(label, response.status_code, where).inc()
        response.headers["x-request-id"] = rid
        return response

    async def handle(
        name: str, portal: str, request: Request, rid: str, stage: dict[str, bool]
    ) -> Response:
        policy = select(portal, registry)  # a dict lookup, before the body is read
        if isinstance(policy, Answer):
            return answer(policy)
        headers = {k.lower(): v for k, v in request.headers.items()}
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        provider = preflight(name, headers.get("content-length"), content_type, policy)
        if isinstance(provider, Answer):
            return answer(provider)
        try:
            body = await asyncio.wait_for(
                read_body(request, policy.body_limit(provider)), settings.ingress_body_timeout_s
            )
        except TimeoutError:
            return error(408, "request timeout", "the body did not arrive in time")
        except ClientDisconnect:
            return error(400, "invalid request", "the client went away")
        if body is None:
            return error(413, "payload too large", f"limit is {policy.body_limit(provider)} bytes")
        client = request.client.host if request.client else None
        inbound = Inbound(
            provider=name,
            method=request.method,
            url=public.url(request.url.path, request.url.query, client, headers),
            local_url=str(request.url),
            headers=headers,
            body=body,
            portal=portal,
        )
        decision = admit(inbound, provider, policy, clock(), replays.seen)
        if isinstance(decision, Answer):
            return answer(decision)
        stage["authenticated"] = True
        return await accept(name, portal, decision, rid)

    def answer(decided: Answer) -> Response:
        if decided.failure is not None:
            log.error(
                "webhook_unexpected_error",
                status=decided.status,
                error=type(decided.failure).__name__,
                exc_info=decided.failure,
            )
        elif decided.status == 401:
            log.info("webhook_unauthorized", reason=decided.detail)
        elif decided.status >= 400:
            log.info("webhook_refused", status=decided.status, reason=decided.detail)
        if decided.reply is not None:
            reply = decided.reply
            return Response(
                reply.body, reply.status, headers=dict(reply.headers), media_type=reply.media_type
            )
        return error(decided.status, decided.error, decided.detail)

    async def accept(name: str, portal: str, decision: Accept, rid: str) -> Response:
        received = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        events = [_stamped(e, received) for e in decision.events]
        if events:
            try:
                await asyncio.wait_for(link.produce(events, rid), settings.produce_timeout_s)
            except Exception as exc:  # timeout, not connected, broker errors: retry later
                log.warning("kafka_unavailable", error=repr(exc))
                link.failed(exc)
                return error(503, "kafka unavailable", "retry later")
            metrics.INGRESS_EVENTS.labels(name, portal).inc(len(events))
        if decision.replay_key is not None:  # only now: a retry after a 503 is no replay
            replays.remember(decision.replay_key, decision.replay_ttl_s)
        log.info("webhook_accepted", events=len(events))
        return JSONResponse(
            {"accepted": len(events), "keys": sorted({e.portal_key for e in events})},
            status_code=202,
        )

    openapi = document()

    async def openapi_endpoint(_: Request) -> Response:
        return JSONResponse(openapi)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info(
            "ingress_starting",
            portals={p.id: p.enabled_providers for p in startup.portals},
            kafka=settings.kafka_bootstrap,
            topic=settings.topic_events,
        )
        await link.start()
        try:
            yield
        finally:
            await link.stop()

    app = Starlette(
        routes=[
            Route("/webhooks/{provider}", webhook, methods=["POST"]),
            Route("/webhooks/{provider}/{portal}", webhook, methods=["POST"]),
            *health_routes(link),
            Route("/openapi.json", openapi_endpoint),
        ],
        lifespan=lifespan,
    )
    app.state.kafka = link
    return app


def health_routes(link: KafkaLink) -> list[Route]:
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if await link.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "kafka unavailable"}, status_code=503)

    return [Route("/healthz", healthz), Route("/readyz", readyz)]


def create_metrics_app(webhook_app: Starlette) -> Starlette:
    """The metrics port: ``/metrics`` (Prometheus text), ``/healthz``, ``/readyz`` of the
    same ingress (its Kafka link lives in the webhook app's lifespan)."""

    async def metrics_endpoint(_: Request) -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    link: KafkaLink = webhook_app.state.kafka
    return Starlette(routes=[Route("/metrics", metrics_endpoint), *health_routes(link)])


def _stamped(event: CallEvent, received: str) -> CallEvent:
    event.received_at = received
    return event
