"""End-to-end figures on the real parts: a local Apache Kafka broker, the sandbox, callbridge.

Two tables, each comparing side by side in one run:

1. **Ingress**: signed generic webhooks posted by a client process at several concurrency
   levels; every 202 means the event is acknowledged by Kafka (``acks=all``). Requests/s
   and latency percentiles.
2. **Writer**: the same backlog of call events (several per call, shuffled, with
   duplicates) written to HubSpot by (a) a naive writer that spends one HubSpot request
   per event, as a simple integration does, and (b) callbridge's coalescing writer. HubSpot
   requests spent, wall time, events/s, and the time the same work takes at HubSpot's real
   limit (100 requests per 10 s), which is what bounds a production integration.

    .venv/bin/python -m bench.pipeline [--seconds 5] [--calls 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from pydantic import SecretStr

import handlers.generic as generic
from handlers import NormalizeOptions, WebhookRequest
from service.config import Settings
from service.hubspot import HubSpotClient
from service.hubspot.wire import create_input
from service.kafka import ensure_topics, make_producer
from service.localkafka import LocalKafka, free_port
from service.logs import configure
from service.model import CallEvent, encode_event
from service.writer import Writer

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"
HUBSPOT_LIMIT_PER_S = 10.0  # 100 requests per rolling 10 s


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    out = [title, line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


# -- ingress -----------------------------------------------------------------------------


def _post_worker(args: tuple[str, int, float]) -> tuple[int, list[float], int]:
    url, concurrency, seconds = args

    async def run() -> tuple[int, list[float], int]:
        latencies: list[float] = []
        errors = 0
        deadline = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

        async def worker(w: int) -> None:
            nonlocal errors
            n = 0
            async with httpx.AsyncClient(limits=limits, timeout=30) as client:
                while time.monotonic() < deadline:
                    n += 1
                    body = orjson.dumps(
                        {
                            "event_id": f"w{w}-{n}",
                            "call_id": f"bench-{w}-{n}",
                            "type": "call.ended",
                            "occurred_at": "2026-03-03T15:04:05Z",
                            "direction": "inbound",
                            "from": "+14155550142",
                            "to": "+18005550100",
                            "duration_ms": 60000,
                        }
                    )
                    ts = str(int(time.time()))
                    headers = {
                        "content-type": "application/json",
                        "x-callbridge-timestamp": ts,
                        "x-callbridge-signature": generic.sign(SECRET, ts, body),
                    }
                    started = time.perf_counter()
                    response = await client.post(url, content=body, headers=headers)
                    latencies.append(time.perf_counter() - started)
                    if response.status_code != 202:
                        errors += 1

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return len(latencies), latencies, errors

    return asyncio.run(run())


def bench_ingress(settings: Settings, seconds: float, levels: list[int]) -> str:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "ingress", "--port", str(port)],
        cwd=ROOT,
        env=_env(settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url + "/readyz")
        rows = []
        for concurrency in levels:
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                count, latencies, errors = pool.map(
                    _post_worker, [(url + "/webhooks/generic", concurrency, seconds)]
                )[0]
            latencies.sort()
            rows.append(
                [
                    str(concurrency),
                    str(count),
                    str(errors),
                    f"{count / seconds:.0f}",
                    f"{statistics.median(latencies) * 1000:.1f}",
                    f"{latencies[int(len(latencies) * 0.99) - 1] * 1000:.1f}",
                ]
            )
    finally:
        proc.terminate()
        proc.wait(30)
    return table(
        "Ingress: signed webhook -> 202 after the Kafka ack (one ingress process)",
        ["concurrency", "requests", "non-202", "req/s", "p50 ms", "p99 ms"],
        rows,
    )


def _env(settings: Settings) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update(
        {
            "CALLBRIDGE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "CALLBRIDGE_TOPIC_EVENTS": settings.topic_events,
            "CALLBRIDGE_GENERIC_SECRET": SECRET,
            "CALLBRIDGE_LOG_LEVEL": "WARNING",
        }
    )
    return env


def _wait_ready(url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready")


# -- writer ------------------------------------------------------------------------------


def backlog(calls: int, seed: int = 3) -> list[CallEvent]:
    """3-5 events per call (ringing, answered, ended, maybe recording/update), shuffled,
    plus 10 % duplicates: what a busy hour of telephony looks like to the writer."""
    rng = random.Random(seed)
    t0 = datetime.now(UTC) - timedelta(days=1)  # recent calls: the writer's ordinary path
    out: list[CallEvent] = []
    for i in range(calls):
        kinds = ["call.ringing", "call.answered", "call.ended"]
        kinds += [k for k in ("call.recording", "call.updated") if rng.random() < 0.4]
        for n, kind in enumerate(kinds):
            body = {
                "event_id": f"{i}:{kind}",
                "call_id": f"c{i}",
                "type": kind,
                "occurred_at": (t0 + timedelta(minutes=i, seconds=10 * n)).isoformat(),
                "direction": "inbound",
                "from": f"+1415555{i % 10000:04d}",
                "to": "+18005550100",
            }
            if kind == "call.ended":
                body["duration_ms"] = 60000
            [event] = generic.parse(
                WebhookRequest("POST", "", {}, orjson.dumps(body)), NormalizeOptions()
            ).events
            out.append(event)
    out += rng.sample(out, len(out) // 10)
    rng.shuffle(out)
    return out


async def produce(settings: Settings, events: list[CallEvent]) -> None:
    producer = make_producer(settings, linger_ms=20)
    await producer.start()
    try:
        futures = [
            await producer.send(settings.topic_events, encode_event(e), key=e.key.encode())
            for e in events
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def sandbox_stats(client: httpx.AsyncClient) -> dict[str, object]:
    response = await client.get("/_sandbox/stats")
    return dict(response.json())


async def naive_writer(url: str, events: list[CallEvent]) -> int:
    """One HubSpot create per event: the request cost of a writer without coalescing."""
    async with HubSpotClient(url, "sandbox-token", rate=1_000_000, search_rate=1_000_000) as hs:
        sem = asyncio.Semaphore(16)

        async def one(event: CallEvent) -> None:
            async with sem:
                await hs.create_call(create_input(event.properties))

        await asyncio.gather(*(one(e) for e in events))
    return len(events)


async def bench_writer(base: Settings, sandbox_url: str, calls: int) -> str:
    events = backlog(calls)
    rows = []
    async with httpx.AsyncClient(base_url=sandbox_url, timeout=30) as control:
        # (a) naive
        await control.post("/_sandbox/reset")
        started = time.perf_counter()
        await naive_writer(sandbox_url, events)
        wall = time.perf_counter() - started
        stats = await sandbox_stats(control)
        requests = sum(sum(v.values()) for v in stats["requests"].values())  # type: ignore[union-attr]
        records = stats["records"]["calls"]  # type: ignore[index]
        rows.append(_writer_row("naive: 1 request/event", len(events), records, requests, wall))
        # (b) callbridge
        await control.post("/_sandbox/reset")
        settings = _fresh_topics(base).model_copy(
            update={
                "hubspot_url": sandbox_url,
                "hubspot_rate": 1_000_000,
                "hubspot_search_rate": 1_000_000,
            }
        )
        await ensure_topics(settings)
        await produce(settings, events)
        writer = Writer(settings)
        started = time.perf_counter()
        await writer.start()
        task = asyncio.create_task(writer.run())
        while sum(p.committed for p in writer.offsets.partitions.values()) < len(events):
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - started
        writer.stop()
        await task
        stats = await sandbox_stats(control)
        requests = sum(sum(v.values()) for v in stats["requests"].values())  # type: ignore[union-attr]
        sizes = stats["batch_inputs"].get("batchCreateCalls", [])  # type: ignore[union-attr]
        label = f"callbridge (avg batch {sum(sizes) / max(1, len(sizes)):.0f})"
        rows.append(_writer_row(label, len(events), stats["records"]["calls"], requests, wall))  # type: ignore[index]
    return table(
        f"Writer: {len(events)} events for {calls} calls (shuffled, 10 % duplicates) into the sandbox",
        [
            "writer",
            "events",
            "records",
            "HubSpot requests",
            "req/1000 events",
            "wall s",
            "events/s",
            "at 100 req/10 s",
        ],
        rows,
    )


def _writer_row(label: str, events: int, records: object, requests: int, wall: float) -> list[str]:
    return [
        label,
        str(events),
        str(records),
        str(requests),
        f"{1000 * requests / events:.1f}",
        f"{wall:.2f}",
        f"{events / wall:.0f}",
        f"{requests / HUBSPOT_LIMIT_PER_S:.0f} s",
    ]


def _fresh_topics(settings: Settings) -> Settings:
    suffix = uuid.uuid4().hex[:6]
    return settings.model_copy(
        update={
            "topic_events": f"bench.events.{suffix}",
            "topic_ids": f"bench.ids.{suffix}",
            "topic_dlq": f"bench.dlq.{suffix}",
            "topic_parked": f"bench.parked.{suffix}",
            "writer_group": f"bench-{suffix}",
        }
    )


async def amain(args: argparse.Namespace) -> None:
    configure("WARNING", "console")
    broker = LocalKafka(
        data_dir=Path(tempfile.mkdtemp(prefix="callbridge-bench-")),
        port=free_port(),
        controller_port=free_port(),
    )
    broker.start(fresh=True)
    sandbox_port = free_port()
    sandbox = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(sandbox_port),
            "--rate-limit",
            "100000000",
            "--search-rate",
            "100000000",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    try:
        await broker.wait_ready()
        _wait_ready(sandbox_url + "/_sandbox/stats")
        base = Settings(
            kafka_bootstrap=broker.bootstrap, generic_secret=SecretStr(SECRET), topic_partitions=6
        )
        ingress_settings = _fresh_topics(base)
        await ensure_topics(ingress_settings)
        print(bench_ingress(ingress_settings, args.seconds, args.concurrency), flush=True)
        print(flush=True)
        print(await bench_writer(base, sandbox_url, args.calls), flush=True)
    finally:
        sandbox.terminate()
        sandbox.wait(30)
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per ingress level")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument("--calls", type=int, default=1000)
    asyncio.run(amain(parser.parse_args()))


if __name__ == "__main__":
    main()
