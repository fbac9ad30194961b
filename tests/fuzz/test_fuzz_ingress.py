"""Fuzzing the ingress: hostile, validly signed bodies on every provider route, and
schemathesis cases generated from the ingress's own ``/openapi.json``.

The app runs in-process (Starlette's ``TestClient``, lifespan on) with its real Kafka
producer on the session broker, so accepted events are really produced. Asserted for every
request: the status is one of ``ALLOWED``, an error body is the contract's JSON, no
configured secret appears in the body; over the run: at least ``MIN_REQUESTS`` per route,
every answer counted in ``callbridge_ingress_requests_total``, exactly the accepted events
on the topic (none for refused input), no secret in any captured log line, and the process
still healthy (``/healthz``, ``/readyz``, a valid event accepted) at the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import schemathesis
import structlog
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY as PROMETHEUS
from pydantic import SecretStr

from handlers import generic
from service.config import PROVIDER_SECRETS, Settings
from service.ingress import create_app
from service.ingress.openapi import document
from service.kafka import ensure_topics
from service.localkafka import LocalKafka
from tests.fixtures.kafka import KafkaEnv
from tests.fuzz import hostile

pytestmark = pytest.mark.kafka

#: every answer the ingress may give a hostile request (503 only for Kafka: never here).
ALLOWED = {202, 400, 401, 404, 413, 415}
MIN_REQUESTS = int(os.environ.get("CALLBRIDGE_FUZZ_REQUESTS", "1000"))
#: schemathesis's generation is slow: fewer cases, on the generic route beside the hostile ones
SCHEMATHESIS_CASES = max(1, MIN_REQUESTS // 5)
#: requests in flight while the next ones are generated
WINDOW = 16
#: requests generated per hypothesis example (one documented example, hostile variants)
BATCH = 8
BASE_URL = "http://testserver"
SECRETS = {
    provider: f"fuzz-{provider}-secret-{uuid.uuid4().hex[:8]}" for provider in PROVIDER_SECRETS
}
WHSEC = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BOUNDS: dict[str, Any] = {
    "max_examples": MIN_REQUESTS,
    "deadline": None,
    "database": None,
    "derandomize": True,
    "phases": [Phase.generate],
    "suppress_health_check": list(HealthCheck),
}


class Client:
    """A synchronous client (hypothesis tests are sync) for an ASGI app served in-process
    on an event loop of its own thread, lifespan included (the real Kafka producer)."""

    def __init__(self, app: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.lifespan = app.router.lifespan_context(app)
        self._run(self.lifespan.__aenter__())
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def get(self, path: str) -> httpx.Response:
        return self._run(self.http.get(path))

    def post(self, path: str, content: bytes, headers: dict[str, str]) -> httpx.Response:
        return self._run(self.http.post(path, content=content, headers=headers))

    def submit(self, path: str, content: bytes, headers: dict[str, str]) -> Future[httpx.Response]:
        """Send without waiting: generation (this thread) overlaps serving (the loop's)."""
        return asyncio.run_coroutine_threadsafe(
            self.http.post(path, content=content, headers=headers), self.loop
        )

    def close(self) -> None:
        self._run(self.http.aclose())
        self._run(self.lifespan.__aexit__(None, None, None))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Fuzz:
    client: Client
    clock: Clock
    env: KafkaEnv
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    accepted_keys: Counter[str] = field(default_factory=Counter)
    counted_before: dict[str, float] = field(default_factory=dict)
    bodies_with_secrets: list[str] = field(default_factory=list)

    pending: deque[tuple[str, hostile.Request, Future[httpx.Response]]] = field(
        default_factory=deque
    )

    def post(self, route: str, req: hostile.Request) -> None:
        """Send ``req``; its answer is checked within the next ``WINDOW`` requests."""
        if self.pending and self.pending[-1][1].now != req.now:
            self.drain()  # the clock is shared: requests of another instant wait their turn
        self.clock.now = req.now
        future = self.client.submit(req.path, content=req.body, headers=req.headers)
        self.pending.append((route, req, future))
        while len(self.pending) > WINDOW:
            self.check(*self.pending.popleft())

    def drain(self) -> None:
        while self.pending:
            self.check(*self.pending.popleft())

    def check(self, route: str, req: hostile.Request, future: Future[httpx.Response]) -> int:
        response = future.result(timeout=60)
        status = response.status_code
        self.statuses[route][status] += 1
        assert status in ALLOWED, (route, status, req.notes, response.text[:300], req.body[:300])
        text = response.text
        if any(secret in text for secret in all_secrets()):
            self.bodies_with_secrets.append(text[:200])
        if status == 202:
            payload = response.json()
            self.accepted_keys.update({"events": payload["accepted"]})
        else:
            payload = response.json()
            assert set(payload) == {"error", "detail"}, payload
        return status


def all_secrets() -> list[str]:
    return [*SECRETS.values(), WHSEC, WHSEC.removeprefix("whsec_")]


def counted(provider: str) -> float:
    total = 0.0
    for metric in PROMETHEUS.collect():
        if metric.name == "callbridge_ingress_requests":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["provider"] == provider:
                    total += sample.value
    return total


@pytest.fixture(scope="module")
def fuzz(kafka_broker: LocalKafka) -> Iterator[Fuzz]:
    suffix = uuid.uuid4().hex[:8]
    settings_ = Settings(
        kafka_bootstrap=kafka_broker.bootstrap,
        topic_events=f"calls.events.fuzz.{suffix}",
        topic_dlq=f"calls.dlq.fuzz.{suffix}",
        topic_ids=f"calls.ids.fuzz.{suffix}",
        topic_parked=f"calls.dlq.parked.fuzz.{suffix}",
        topic_partitions=1,
        public_url=BASE_URL,
        **{attr: SecretStr(SECRETS[p]) for p, attr in PROVIDER_SECRETS.items()},
    ).model_copy(
        update={"generic_secret": SecretStr(f"old-rotated-away,{SECRETS['generic']},{WHSEC}")}
    )
    asyncio.run(ensure_topics(settings_))
    clock = Clock()
    client = Client(create_app(settings_, clock=clock))
    try:
        for _ in range(200):
            if client.get("/readyz").status_code == 200:
                break
            time.sleep(0.05)
        env = KafkaEnv(broker=kafka_broker, settings=settings_)
        state = Fuzz(client, clock, env)
        state.counted_before = {p: counted(p) for p in [*PROVIDER_SECRETS, "unknown"]}
        yield state
    finally:
        client.close()


@pytest.fixture(scope="module")
def captured(fuzz: Fuzz) -> Iterator[dict[str, list[Any]]]:
    """Every structlog event and stdlib record logged while the fuzz tests run."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level=logging.INFO)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request: noise
    with structlog.testing.capture_logs() as events:
        yield {"events": events, "records": records}
    root.removeHandler(handler)
    root.setLevel(old_level)


def _run(fuzz: Fuzz, route: str, strategy: st.SearchStrategy[list[hostile.Request]]) -> None:
    @settings(**{**BOUNDS, "max_examples": -(-MIN_REQUESTS // BATCH)})
    @given(strategy)
    def go(batch: list[hostile.Request]) -> None:
        for req in batch:
            fuzz.post(route, req)

    try:
        go()
    finally:
        fuzz.drain()


def test_generic(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Hostile generic events, signed with X-Callbridge-* or Standard Webhooks (rotated keys)."""
    now = time.time()
    strategy = hostile.generic_requests(SECRETS["generic"], WHSEC, now)
    _run(fuzz, "generic", st.lists(strategy, min_size=BATCH, max_size=BATCH))


def test_twilio(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Hostile Twilio form and JSON callbacks, signed with the official RequestValidator."""
    _run(
        fuzz,
        "twilio",
        hostile.batches(
            "twilio", lambda fx: hostile.twilio_requests(SECRETS["twilio"], BASE_URL, fx), BATCH
        ),
    )


def test_aircall(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Hostile Aircall bodies carrying the right token."""
    _run(
        fuzz,
        "aircall",
        hostile.batches(
            "aircall", lambda fx: hostile.aircall_requests(SECRETS["aircall"], fx), BATCH
        ),
    )


def test_zoom(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Hostile Zoom bodies with a valid v0 signature."""
    _run(
        fuzz,
        "zoom",
        hostile.batches("zoom", lambda fx: hostile.zoom_requests(SECRETS["zoom"], fx), BATCH),
    )


def test_ringcentral(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Hostile RingCentral notifications with the right Verification-Token."""
    _run(
        fuzz,
        "ringcentral",
        hostile.batches(
            "ringcentral",
            lambda fx: hostile.ringcentral_requests(SECRETS["ringcentral"], fx),
            BATCH,
        ),
    )


def test_vonage(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Hostile Vonage bodies with a valid JWT (payload_hash, fresh iat, unique jti), hostile
    JWT headers, and unsigned ?uuid= queries."""
    _run(
        fuzz,
        "vonage",
        hostile.batches("vonage", lambda fx: hostile.vonage_requests(SECRETS["vonage"], fx), BATCH),
    )


def test_dialpad(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Hostile Dialpad JWT bodies: raw hostile JSON payloads and headers, validly HS256-signed."""
    _run(
        fuzz,
        "dialpad",
        hostile.batches(
            "dialpad", lambda fx: hostile.dialpad_requests(SECRETS["dialpad"], fx), BATCH
        ),
    )


def test_unknown_providers(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Any other provider name on the webhook route: 404 with the contract's JSON error."""
    names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-.", min_size=1, max_size=300)
    requests = st.builds(
        lambda name, body: hostile.Request(
            "/webhooks/" + name, {"content-type": "application/json"}, body, fuzz.clock.now
        ),
        names.filter(lambda n: n not in PROVIDER_SECRETS and n not in (".", "..")),
        st.sampled_from(hostile.RAW_BODIES),
    )

    @settings(**{**BOUNDS, "max_examples": max(1, MIN_REQUESTS // 5)})
    @given(requests)
    def go(req: hostile.Request) -> None:
        fuzz.post("unknown", req)

    try:
        go()
    finally:
        fuzz.drain()
    assert set(fuzz.statuses["unknown"]) == {404}


def counted_portal(portal: str) -> float:
    total = 0.0
    for metric in PROMETHEUS.collect():
        if metric.name == "callbridge_ingress_requests":
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels["portal"] == portal:
                    total += sample.value
    return total


def test_unknown_portals(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Any portal segment but "default" (the only portal without a file) on a provider
    route, validly signed: 404 "unknown portal", counted under portal="unknown"."""
    before = counted_portal("unknown")
    names = st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzACME0123456789_-.~", min_size=1, max_size=300
    )
    now = fuzz.clock.now

    def request(name: str, body: bytes) -> hostile.Request:
        ts = str(int(now))
        headers = {
            "content-type": "application/json",
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": generic.sign(SECRETS["generic"], ts, body),
        }
        return hostile.Request("/webhooks/generic/" + name, headers, body, now)

    requests = st.builds(
        request,
        names.filter(lambda n: n not in ("default", ".", "..")),
        st.sampled_from(hostile.RAW_BODIES),
    )

    @settings(**{**BOUNDS, "max_examples": max(1, MIN_REQUESTS // 5)})
    @given(requests)
    def go(req: hostile.Request) -> None:
        fuzz.post("unknown-portal", req)

    try:
        go()
    finally:
        fuzz.drain()
    assert set(fuzz.statuses["unknown-portal"]) == {404}
    assert counted_portal("unknown") - before == sum(fuzz.statuses["unknown-portal"].values())


SCHEMA = schemathesis.openapi.from_dict(document())


def test_schemathesis_generic(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Cases schemathesis generates from /openapi.json (the typed generic event), signed."""
    served = fuzz.client.get("/openapi.json").json()
    assert served == document()
    strategy = SCHEMA["/webhooks/generic"]["POST"].as_strategy()

    now = time.time()

    @settings(**{**BOUNDS, "max_examples": SCHEMATHESIS_CASES})
    @given(strategy)
    def go(case: Any) -> None:
        body = json.dumps(case.body).encode()  # any size of integer, as schemathesis made it
        ts = str(int(now))
        headers = {
            "content-type": "application/json",
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": generic.sign(SECRETS["generic"], ts, body),
        }
        fuzz.post(
            "openapi:/webhooks/generic", hostile.Request("/webhooks/generic", headers, body, now)
        )

    try:
        go()
    finally:
        fuzz.drain()


def test_fuzz_figures_and_aftermath(fuzz: Fuzz, captured: dict[str, list[Any]]) -> None:
    """Over the whole run: enough requests per route, every answer counted, only accepted
    events on the topic, no secret in a log line or an error body, the process healthy."""
    routes = ["generic", "twilio", "aircall", "zoom", "ringcentral", "vonage", "dialpad"]
    figures = {
        route: {str(k): v for k, v in sorted(fuzz.statuses[route].items())}
        for route in fuzz.statuses
    }
    print("fuzz figures:", orjson.dumps(figures).decode())
    report = os.environ.get("CALLBRIDGE_FUZZ_REPORT")
    if report:
        with open(report, "wb") as out:
            out.write(orjson.dumps(figures, option=orjson.OPT_INDENT_2))
    for route in routes:
        assert sum(fuzz.statuses[route].values()) >= MIN_REQUESTS, (route, figures)
    assert sum(fuzz.statuses["openapi:/webhooks/generic"].values()) >= SCHEMATHESIS_CASES
    for route in routes:
        statuses = fuzz.statuses[route]
        assert statuses[401] < sum(statuses.values()), (route, "nothing got past authentication")
        sent = sum(statuses.values()) + (
            sum(fuzz.statuses["openapi:/webhooks/generic"].values())
            + sum(fuzz.statuses["unknown-portal"].values())
            if route == "generic"
            else 0
        )
        assert counted(route) - fuzz.counted_before[route] == sent, route
    assert counted("unknown") - fuzz.counted_before["unknown"] == sum(
        fuzz.statuses["unknown"].values()
    )

    records = asyncio.run(fuzz.env.records(fuzz.env.settings.topic_events, timeout_s=30))
    assert len(records) == fuzz.accepted_keys["events"]

    assert fuzz.bodies_with_secrets == []
    secrets = all_secrets()
    leaked = [e for e in captured["events"] if any(s in repr(e) for s in secrets)]
    leaked += [
        r.getMessage() for r in captured["records"] if any(s in r.getMessage() for s in secrets)
    ]
    assert leaked == []
    assert captured["events"], "nothing was logged: the capture is not working"

    assert fuzz.client.get("/healthz").status_code == 200
    assert fuzz.client.get("/readyz").status_code == 200
    now = time.time()
    body = orjson.dumps(hostile.generic_payload(now))
    ts = str(int(now))
    fuzz.clock.now = now
    after = fuzz.client.post(
        "/webhooks/generic",
        content=body,
        headers={
            "content-type": "application/json",
            "x-callbridge-timestamp": ts,
            "x-callbridge-signature": generic.sign(SECRETS["generic"], ts, body),
        },
    )
    assert after.status_code == 202, after.text
