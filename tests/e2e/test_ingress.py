"""The ingress on the real broker: contract status codes, nothing produced on bad input,
503 while Kafka is down and recovery without a restart."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson
import pytest

from service.config import Settings
from service.kafka import ensure_topics
from service.localkafka import LocalKafka, free_port
from tests.e2e.helpers import generic_event, post_generic, signed
from tests.fixtures.kafka import KafkaEnv
from tests.fixtures.services import SECRETS, serve_ingress


async def test_accepted_event_is_on_the_topic_with_key_and_headers(
    ingress_url: str, kafka: KafkaEnv
) -> None:
    """A valid signed event → 202, one record keyed generic:<call_id> with event_id, provider,
    portal (default) and request_id headers (the request id is the one the response names)."""
    async with httpx.AsyncClient() as client:
        response = await post_generic(client, ingress_url, generic_event("k-1"))
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "keys": ["generic:k-1"]}
    records = await kafka.records(kafka.settings.topic_events)
    assert [r.key for r in records] == [b"generic:k-1"]
    assert dict(records[0].headers) == {
        "event_id": b"k-1:call.ended",
        "provider": b"generic",
        "portal": b"default",
        "request_id": response.headers["x-request-id"].encode(),
    }


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("bad_signature", 401, "invalid signature"),
        ("wrong_secret", 401, "invalid signature"),
        ("missing_signature", 401, "invalid signature"),
        ("stale_timestamp", 401, "invalid signature"),
        ("malformed_json", 400, "invalid event"),
        ("missing_field", 400, "invalid event"),
        ("unknown_status", 400, "invalid event"),
        ("too_many_events", 400, "invalid event"),
        ("too_large", 413, "payload too large"),
        ("wrong_content_type", 415, "unsupported media type"),
        ("unknown_provider", 404, "unknown provider"),
    ],
)
async def test_bad_requests_get_contract_status_and_produce_nothing(
    ingress_url: str, kafka: KafkaEnv, case: str, status: int, error: str
) -> None:
    """Each kind of bad request gets the contract's status and JSON error; the topic stays empty."""
    body = orjson.dumps(generic_event("bad-1"))
    headers = signed(body)
    path = "/webhooks/generic"
    if case == "bad_signature":
        headers["x-callbridge-signature"] = "v1=" + "0" * 64
    elif case == "wrong_secret":
        headers = signed(body, secret="not-the-secret")
    elif case == "missing_signature":
        del headers["x-callbridge-signature"]
    elif case == "stale_timestamp":
        headers = signed(body, ts=int(time.time()) - 301)
    elif case == "malformed_json":
        body = b'{"event_id": "e", "call_id": '
        headers = signed(body)
    elif case == "missing_field":
        body = orjson.dumps({"event_id": "e1", "type": "call.ended"})
        headers = signed(body)
    elif case == "unknown_status":
        body = orjson.dumps(generic_event("bad-1", status="TELEPORTED"))
        headers = signed(body)
    elif case == "too_many_events":
        body = orjson.dumps({"events": [generic_event(f"m-{i}") for i in range(101)]})
        headers = signed(body)
    elif case == "too_large":
        body = orjson.dumps(generic_event("big", notes="x" * (1024 * 1024)))
        headers = signed(body)
    elif case == "wrong_content_type":
        headers["content-type"] = "text/plain"
    elif case == "unknown_provider":
        path = "/webhooks/nosuchprovider"
    async with httpx.AsyncClient() as client:
        response = await client.post(ingress_url + path, content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert await kafka.records(kafka.settings.topic_events) == []


async def test_disabled_provider_answers_404(kafka: KafkaEnv) -> None:
    """A provider without its secret configured is disabled: 404 provider not enabled."""
    settings = kafka.settings.model_copy(update={"generic_secret": None})
    async with serve_ingress(settings) as url, httpx.AsyncClient() as client:
        response = await post_generic(client, url, generic_event("off-1"))
    assert response.status_code == 404
    assert response.json() == {"error": "provider not enabled", "detail": "generic"}


async def test_batch_body_produces_every_event(ingress_url: str, kafka: KafkaEnv) -> None:
    """{"events": [...]} with several events → one record per event, all acknowledged."""
    events = [generic_event(f"b-{i}") for i in range(5)]
    async with httpx.AsyncClient() as client:
        response = await post_generic(client, ingress_url, {"events": events})
    assert response.status_code == 202
    assert response.json()["accepted"] == 5
    records = await kafka.records(kafka.settings.topic_events)
    assert sorted(r.key for r in records) == [f"generic:b-{i}".encode() for i in range(5)]


async def test_health_ready_on_both_ports_and_metrics_only_on_the_metrics_port(
    pipeline_settings: Settings,
) -> None:
    """/healthz and /readyz answer 200 on the webhook and the metrics port; /metrics is on
    the metrics port only (404 on the webhook port) and counts the ingress's answers."""
    from service.runtime import make_ingress_servers

    port, metrics_port = free_port(), free_port()
    settings = pipeline_settings.model_copy(
        update={
            "ingress_port": port,
            "ingress_metrics_port": metrics_port,
            "public_url": f"http://127.0.0.1:{port}",
        }
    )
    servers = make_ingress_servers(settings)
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    url, metrics_url = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                try:
                    if (await client.get(metrics_url + "/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            assert (await post_generic(client, url, generic_event("m-1"))).status_code == 202
            for base in (url, metrics_url):
                assert (await client.get(base + "/healthz")).status_code == 200
                assert (await client.get(base + "/readyz")).status_code == 200
            assert (await client.get(url + "/metrics")).status_code == 404
            text = (await client.get(metrics_url + "/metrics")).text
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
    assert (
        'callbridge_ingress_requests_total{portal="default",provider="generic",status="202"}'
        in text
    )
    assert "callbridge_kafka_produce_seconds_bucket" in text


async def test_broker_down_gives_503_then_recovers_without_restart() -> None:
    """Kafka killed → 503 and /readyz fails; Kafka back on the same data → 202 again, same process."""
    broker = LocalKafka(
        data_dir=Path(tempfile.mkdtemp(prefix="callbridge-down-")),
        port=free_port(),
        controller_port=free_port(),
    )
    broker.start(fresh=True)
    try:
        await broker.wait_ready()
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            generic_secret=SECRETS["generic"],  # type: ignore[arg-type]
            topic_partitions=1,
            produce_timeout_s=1.5,
        )
        await ensure_topics(settings)
        async with serve_ingress(settings) as url, httpx.AsyncClient(timeout=10) as client:
            assert (await post_generic(client, url, generic_event("up-1"))).status_code == 202
            broker.kill()
            down = await post_generic(client, url, generic_event("down-1"))
            assert down.status_code == 503
            assert down.json()["error"] == "kafka unavailable"
            assert (await client.get(url + "/readyz")).status_code == 503
            broker.start()
            await broker.wait_ready()
            deadline = time.monotonic() + 60
            status = 0
            while time.monotonic() < deadline:
                status = (await post_generic(client, url, generic_event("back-1"))).status_code
                if status == 202:
                    break
                await asyncio.sleep(0.5)
            assert status == 202
            assert (await client.get(url + "/readyz")).status_code == 200
    finally:
        broker.stop()


def test_cli_sandbox_rejects_a_malformed_rate_limit() -> None:
    """`callbridge sandbox --rate-limit abc` fails with a usage error naming the option."""

    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "sandbox", "--rate-limit", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--rate-limit" in result.stderr and "N/10s" in result.stderr


async def test_vonage_retry_after_a_503_is_accepted_not_called_a_replay() -> None:
    """The jti is remembered only after Kafka's ack: a Vonage request answered 503 (Kafka
    down) is accepted when retried with the same JWT, and refused as a replay after that."""
    from handlers import vonage

    broker = LocalKafka(
        data_dir=Path(tempfile.mkdtemp(prefix="callbridge-jti-")),
        port=free_port(),
        controller_port=free_port(),
    )
    broker.start(fresh=True)
    try:
        await broker.wait_ready()
        settings = Settings(
            kafka_bootstrap=broker.bootstrap,
            vonage_signature_secret=SECRETS["vonage"],  # type: ignore[arg-type]
            topic_partitions=1,
            produce_timeout_s=1.5,
        )
        await ensure_topics(settings)
        body = orjson.dumps(
            {
                "uuid": "u-retry",
                "status": "answered",
                "direction": "outbound",
                "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
        )
        token = vonage.sign(SECRETS["vonage"], body, int(time.time()), "jti-retried")
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        async with serve_ingress(settings) as url, httpx.AsyncClient(timeout=10) as client:
            broker.kill()
            down = await client.post(url + "/webhooks/vonage", content=body, headers=headers)
            assert down.status_code == 503
            broker.start()
            await broker.wait_ready()
            deadline = time.monotonic() + 60
            retried = down
            while time.monotonic() < deadline and retried.status_code == 503:
                await asyncio.sleep(0.5)
                retried = await client.post(url + "/webhooks/vonage", content=body, headers=headers)
            assert retried.status_code == 202, retried.text
            replayed = await client.post(url + "/webhooks/vonage", content=body, headers=headers)
            assert replayed.status_code == 401
            assert replayed.json()["error"] == "replayed request"
    finally:
        broker.stop()


def test_ingress_refuses_to_start_with_twilio_and_no_public_url() -> None:
    """`callbridge ingress` with Twilio enabled and neither CALLBRIDGE_PUBLIC_URL nor trusted
    proxies exits 2 with a message naming both settings."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env["CALLBRIDGE_TWILIO_AUTH_TOKEN"] = "some-token"
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "ingress", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "CALLBRIDGE_PUBLIC_URL" in result.stderr
    assert "CALLBRIDGE_TRUSTED_PROXIES" in result.stderr
    assert "some-token" not in result.stderr


def test_library_log_lines_are_json_and_start_up_noise_is_not_an_error() -> None:
    """uvicorn's and aiokafka's stdlib loggers render as JSON lines; aiokafka's retriable
    start-up ERRORs (coordinator not available) are lowered (dropped at INFO), others kept."""

    script = """
import logging, structlog
from service import logs
logs.configure("INFO", "json")
logs.mask_secret_values(["configured-secret-value"])
logging.getLogger("aiokafka.consumer.group_coordinator").error(
    "Group Coordinator Request failed: %s", "[Error 15] CoordinatorNotAvailableError")
logging.getLogger("aiokafka.client").error('Unable connect to "%s:%s": %s', "h", 9092, "refused")
logging.getLogger("uvicorn.error").error("Exception in ASGI application")
logging.getLogger("aiokafka.conn").error("a real aiokafka error")
structlog.get_logger().info("hello", request_id="r-1", note="has configured-secret-value inside")
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    lines = [orjson.loads(line) for line in result.stderr.splitlines()]  # every line is JSON
    assert not any("Group Coordinator" in str(line) for line in lines)
    by_event = {line["event"]: line for line in lines}
    assert by_event['Unable connect to "h:9092": refused']["level"] == "warning"
    assert by_event["Exception in ASGI application"]["level"] == "error"
    assert by_event["Exception in ASGI application"]["logger"] == "uvicorn.error"
    assert by_event["a real aiokafka error"]["level"] == "error"
    assert by_event["hello"]["request_id"] == "r-1"
    assert "configured-secret-value" not in result.stderr


async def test_ingress_process_logs_json_with_the_request_id(
    pipeline_settings: Settings, tmp_path: Path
) -> None:
    """The ingress as a process: every stderr line is JSON, and the lines of a webhook carry
    the request id its response names (the same id goes to Kafka as a header)."""
    import signal

    from tests.e2e.procs import settings_env

    port, metrics_port = free_port(), free_port()
    env = settings_env(pipeline_settings)
    env["CALLBRIDGE_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "ingress.log"
    proc = _start_ingress(env, port, metrics_port, log_path)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=10) as client:
            for _ in range(300):
                try:
                    if (
                        await client.get(f"http://127.0.0.1:{metrics_port}/readyz")
                    ).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            ok = await post_generic(client, url, generic_event("log-1"))
            bad = await client.post(
                url + "/webhooks/generic",
                content=b"{}",
                headers={"content-type": "application/json", "x-request-id": "req-from-proxy-1"},
            )
        assert ok.status_code == 202 and bad.status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    lines = [orjson.loads(line) for line in log_path.read_bytes().splitlines() if line.strip()]
    accepted = [line for line in lines if line["event"] == "webhook_accepted"]
    refused = [line for line in lines if line["event"] == "webhook_unauthorized"]
    assert [line["request_id"] for line in accepted] == [ok.headers["x-request-id"]]
    assert [line["request_id"] for line in refused] == ["req-from-proxy-1"]
    assert bad.headers["x-request-id"] == "req-from-proxy-1"
    assert all(line["provider"] == "generic" for line in accepted + refused)
    assert not any(secret in log_path.read_text() for secret in SECRETS.values()), (
        "a secret reached the log"
    )


def _start_ingress(
    env: dict[str, str], port: int, metrics_port: int, log_path: Path
) -> subprocess.Popen[bytes]:
    """``callbridge ingress`` as a process, stdout and stderr into ``log_path``."""
    from tests.e2e.procs import ROOT

    with log_path.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "service.cli",
                "ingress",
                "--port",
                str(port),
                "--metrics-port",
                str(metrics_port),
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_a_slow_body_is_answered_408_and_counted(pipeline_settings: Settings) -> None:
    """A client that sends headers and only part of its body gets 408 after the body-read
    timeout (not a hung connection), and nothing is produced."""
    from service import metrics

    settings = pipeline_settings.model_copy(update={"ingress_body_timeout_s": 0.5})
    before = metrics.INGRESS_REQUESTS.labels("generic", 408, "default")._value.get()
    async with serve_ingress(settings) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        body = orjson.dumps(generic_event("slow-1"))
        head = (
            "POST /webhooks/generic HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body[:10])
        await writer.drain()
        started = time.monotonic()
        status_line = await asyncio.wait_for(reader.readline(), 10)
        elapsed = time.monotonic() - started
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 408"), status_line
    assert 0.4 < elapsed < 5
    assert metrics.INGRESS_REQUESTS.labels("generic", 408, "default")._value.get() == before + 1


def test_the_webhook_server_caps_concurrency_and_backlog(pipeline_settings: Settings) -> None:
    """uvicorn runs the webhook port with limit_concurrency and backlog from the settings and
    without trusting proxy headers itself; the metrics port is a second server."""
    from service.runtime import make_ingress_servers

    settings = pipeline_settings.model_copy(
        update={
            "ingress_limit_concurrency": 7,
            "ingress_backlog": 11,
            "ingress_metrics_port": 9999,
            "public_url": "http://127.0.0.1:8080",
        }
    )
    webhooks, metrics_server = make_ingress_servers(settings)
    assert (webhooks.config.limit_concurrency, webhooks.config.backlog) == (7, 11)
    assert webhooks.config.proxy_headers is False
    assert metrics_server.config.port == 9999


async def test_standard_webhooks_beside_x_callbridge(
    pipeline_settings: Settings, kafka: KafkaEnv
) -> None:
    """CALLBRIDGE_GENERIC_SECRET="<plain>,whsec_…": a request signed by the standardwebhooks
    package and one signed X-Callbridge-* are both accepted; the same webhook-id again is
    refused as a replay; both events are on the topic once."""
    import base64
    from datetime import UTC, datetime

    from pydantic import SecretStr
    from standardwebhooks import Webhook

    whsec = "whsec_" + base64.b64encode(b"k" * 24).decode()
    settings = pipeline_settings.model_copy(
        update={"generic_secret": SecretStr(f"{SECRETS['generic']},{whsec}")}
    )
    body = orjson.dumps(generic_event("sw-1"))
    now = datetime.now(UTC)
    headers = {
        "content-type": "application/json",
        "webhook-id": "msg_sw_1",
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(whsec).sign("msg_sw_1", now, body.decode()),
    }
    async with serve_ingress(settings) as url, httpx.AsyncClient() as client:
        first = await client.post(url + "/webhooks/generic", content=body, headers=headers)
        again = await client.post(url + "/webhooks/generic", content=body, headers=headers)
        plain = await post_generic(client, url, generic_event("sw-2"))
    assert (first.status_code, again.status_code, plain.status_code) == (202, 401, 202)
    assert again.json()["error"] == "replayed request"
    records = await kafka.records(kafka.settings.topic_events)
    assert sorted(r.key for r in records) == [b"generic:sw-1", b"generic:sw-2"]
