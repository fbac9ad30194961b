"""The ingress: provider webhooks in, normalized events durably in Kafka, then 202.

``POST /webhooks/{provider}`` verifies the provider's signature, normalizes the body with
the provider's pure handler and produces each event to ``calls.events`` with the idempotent
producer (``acks=all``). It answers 202 only after the broker acknowledged every event, 4xx
for input that can never be valid (nothing produced), and 503 when Kafka is unavailable so
that the provider retries: nothing is lost and nothing is silently dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import structlog
from aiokafka import AIOKafkaProducer
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from handlers import (
    REGISTRY,
    InvalidEvent,
    InvalidSignature,
    NormalizeOptions,
    Reply,
    WebhookRequest,
)
from service import metrics
from service.config import Settings
from service.kafka import ensure_topics, make_producer
from service.model import DEFAULT_DISPOSITIONS, CallEvent, encode_event

log = structlog.get_logger()

Clock = Callable[[], float]


def error(status: int, err: str, detail: str = "") -> JSONResponse:
    return JSONResponse({"error": err, "detail": detail}, status_code=status)


class ReplayGuard:
    """Remembers replay ids (e.g. Vonage JWT ``jti``) until they expire."""

    def __init__(self, clock: Clock, max_entries: int = 100_000) -> None:
        self._seen: dict[str, float] = {}
        self._clock = clock
        self._max = max_entries

    def first_time(self, key: str, ttl_s: float) -> bool:
        now = self._clock()
        if len(self._seen) > self._max:
            self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
        expires = self._seen.get(key)
        if expires is not None and expires > now:
            return False
        self._seen[key] = now + ttl_s
        return True


class KafkaLink:
    """Owns the producer; (re)connects in the background so the ingress starts and keeps
    serving (with 503s) while Kafka is down, and recovers without a restart."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._connect_loop())

    async def _connect_loop(self) -> None:
        delay = 0.2
        while True:
            producer = make_producer(self.settings)
            try:
                await producer.start()
                if self.settings.create_topics:
                    await ensure_topics(self.settings)
            except Exception as exc:  # broker unreachable: keep trying, answer 503 meanwhile
                log.warning("kafka_connect_failed", error=repr(exc), retry_in_s=delay)
                with contextlib.suppress(Exception):
                    await producer.stop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.producer = producer
            self._ready.set()
            log.info("kafka_producer_connected", bootstrap=self.settings.kafka_bootstrap)
            return

    async def ready(self, timeout_s: float = 2.0) -> bool:
        """True when the producer is connected and the broker answers a metadata request."""
        producer = self.producer
        if producer is None:
            return False
        try:
            return bool(await asyncio.wait_for(producer.client.force_metadata_update(), timeout_s))
        except (TimeoutError, Exception):
            return False

    async def produce(self, events: list[CallEvent]) -> None:
        """Send every event and wait for the broker's acks (``TimeoutError`` if it doesn't)."""
        producer = self.producer
        if producer is None:
            raise ConnectionError("kafka producer not connected")
        started = time.perf_counter()
        futures = [
            await producer.send(
                self.settings.topic_events,
                value=encode_event(event),
                key=event.key.encode(),
                headers=[
                    ("event_id", event.event_id.encode()),
                    ("provider", event.provider.encode()),
                ],
            )
            for event in events
        ]
        await asyncio.gather(*futures)
        metrics.PRODUCE_SECONDS.observe(time.perf_counter() - started)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.producer is not None:
            await self.producer.stop()


def normalize_options(settings: Settings) -> NormalizeOptions:
    dispositions = dict(DEFAULT_DISPOSITIONS)
    dispositions.update({k.lower(): v for k, v in settings.disposition_map.items()})
    return NormalizeOptions(
        default_region=settings.default_region,
        external_account_id=settings.external_account_id,
        owner_map=dict(settings.owner_map),
        dispositions=dispositions,
    )


async def read_body(request: Request, limit: int) -> bytes | None:
    """The body, or None as soon as it exceeds ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def public_url(request: Request, settings: Settings) -> str:
    """The URL as the provider called it: ``CALLBRIDGE_PUBLIC_URL`` wins behind proxies."""
    if not settings.public_url:
        return str(request.url)
    query = f"?{request.url.query}" if request.url.query else ""
    return settings.public_url.rstrip("/") + request.url.path + query


def create_app(settings: Settings, clock: Clock = time.time) -> Starlette:
    link = KafkaLink(settings)
    replays = ReplayGuard(clock)
    options = normalize_options(settings)

    async def webhook(request: Request) -> Response:
        name = request.path_params["provider"]
        response = await handle(name, request)
        metrics.INGRESS_REQUESTS.labels(
            name if name in REGISTRY else "unknown", response.status_code
        ).inc()
        return response

    async def handle(name: str, request: Request) -> Response:
        provider = REGISTRY.get(name)
        if provider is None:
            return error(404, "unknown provider", name)
        secret = settings.provider_secret(name)
        if not secret:
            return error(404, "provider not enabled", name)
        body = await read_body(request, settings.max_body_bytes)
        if body is None:
            return error(413, "payload too large", f"limit is {settings.max_body_bytes} bytes")
        req = WebhookRequest(
            method=request.method,
            url=public_url(request, settings),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        if not provider.accepts(req.content_type):
            return error(415, "unsupported media type", req.content_type or "none given")
        try:
            verification = provider.verify(req, secret, clock())
        except InvalidSignature as exc:
            log.info("webhook_unauthorized", provider=name, reason=exc.reason)
            return error(401, "invalid signature", exc.reason)
        if verification.replay_id is not None and not replays.first_time(
            f"{name}:{verification.replay_id}", verification.replay_ttl_s
        ):
            return error(401, "replayed request", "this request was already accepted")
        if verification.reply is not None:  # a handshake answered by verify (Zoom)
            return _reply(verification.reply)
        try:
            outcome = provider.parse(req, options)
        except InvalidEvent as exc:
            log.info("webhook_invalid", provider=name, reason=exc.reason)
            return error(400, "invalid event", exc.reason)
        if outcome.reply is not None:
            return _reply(outcome.reply)
        received = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        events = [_stamped(e, received) for e in outcome.events]
        if events:
            try:
                await asyncio.wait_for(link.produce(events), settings.produce_timeout_s)
            except (TimeoutError, ConnectionError, Exception) as exc:
                log.warning("kafka_unavailable", provider=name, error=repr(exc))
                return error(503, "kafka unavailable", "retry later")
            metrics.INGRESS_EVENTS.labels(name).inc(len(events))
        return JSONResponse(
            {"accepted": len(events), "keys": sorted({e.key for e in events})}, status_code=202
        )

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if await link.ready():
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "kafka unavailable"}, status_code=503)

    async def metrics_endpoint(_: Request) -> Response:
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        log.info(
            "ingress_starting",
            providers=settings.enabled_providers,
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
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_endpoint),
        ],
        lifespan=lifespan,
    )
    app.state.kafka = link
    return app


def _reply(reply: Reply) -> Response:
    return Response(
        reply.body, reply.status, headers=dict(reply.headers), media_type=reply.media_type
    )


def _stamped(event: CallEvent, received: str) -> CallEvent:
    event.received_at = received
    return event
