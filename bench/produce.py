"""The ingress's produce path on its own: produce one event and await its ``acks=all``
acknowledgement, from C concurrent tasks (as C concurrent webhooks do), with

- ``aiokafka``: the product's producer (``service.kafka.make_producer``), with the ingress's
  ``event_id``/``provider`` headers;
- ``confluent-aio``: confluent-kafka's ``AIOProducer`` (librdkafka; its batch mode has no
  headers, so it sends none: it could not carry the contract's headers as it is); it
  resolves acks only when it polls (on the next produce, or its 0.1 s timeout check), and
  ``confluent-aio+poll`` adds a task polling it continuously;
- ``confluent-thread``: a plain confluent-kafka ``Producer`` with a poll thread resolving
  asyncio futures (headers supported): what adopting librdkafka would look like.

Each runs in its own process on the same loop the ingress runs on (uvloop).

    .venv/bin/python -m bench.produce --bootstrap 127.0.0.1:9092 --topic t --client aiokafka
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bench.common import ROOT, fmt, pct, table

VALUE = (
    b'{"provider":"generic","call_id":"c1","event_id":"e1","type":"call.ended",'
    + b'"x":"'
    + b"y" * 400
    + b'"}'
)
CLIENTS = ("aiokafka", "confluent-aio", "confluent-aio+poll", "confluent-thread")


def _conf(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 2,
    }


async def _make(client: str, bootstrap: str, topic: str, concurrency: int):
    """``(send(key) -> awaitable ack, close)`` for one client."""
    if client == "aiokafka":
        from service.config import Settings
        from service.kafka import make_producer

        producer = make_producer(Settings(kafka_bootstrap=bootstrap))
        await producer.start()

        async def send(key: bytes) -> None:
            fut = await producer.send(
                topic, VALUE, key=key, headers=[("event_id", key), ("provider", b"generic")]
            )
            await fut

        return send, producer.stop
    if client.startswith("confluent-aio"):
        from confluent_kafka.aio import AIOProducer

        aio = AIOProducer(_conf(bootstrap), batch_size=1, buffer_timeout=0.002)
        poller = None
        if client.endswith("+poll"):  # delivery reports polled continuously, not only on produce

            async def poll_forever() -> None:
                while True:
                    await aio.poll(0.005)

            poller = asyncio.create_task(poll_forever())

        async def send_aio(key: bytes) -> None:
            fut = await aio.produce(topic, VALUE, key)
            await fut

        async def close_aio() -> None:
            if poller is not None:
                poller.cancel()
            await aio.close()

        return send_aio, close_aio
    from confluent_kafka import Producer

    sync = Producer(_conf(bootstrap))
    loop = asyncio.get_running_loop()
    running = True

    def poll() -> None:
        while running:
            sync.poll(0.05)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()

    async def send_thread(key: bytes) -> None:
        fut = loop.create_future()

        def done(err: Any, msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, fut, err)

        sync.produce(
            topic,
            VALUE,
            key,
            headers=[("event_id", key), ("provider", b"generic")],
            on_delivery=done,
        )
        await fut

    async def close() -> None:
        nonlocal running
        await asyncio.to_thread(sync.flush, 10)
        running = False
        thread.join(5)

    return send_thread, close


def _settle(fut: asyncio.Future[None], err: Any) -> None:
    if fut.done():
        return
    if err is not None:
        fut.set_exception(RuntimeError(str(err)))
    else:
        fut.set_result(None)


async def measure(
    client: str, bootstrap: str, topic: str, concurrency: int, seconds: float
) -> dict[str, Any]:
    send, close = await _make(client, bootstrap, topic, concurrency)
    send_: Callable[[bytes], Awaitable[None]] = send
    try:
        for i in range(50):  # warm: metadata, connections, the producer id
            await asyncio.wait_for(send_(f"warm{i}".encode()), 30)
        latencies: list[float] = []
        errors = 0
        stop_at = time.perf_counter() + seconds

        async def worker(w: int) -> None:
            nonlocal errors
            n = 0
            while time.perf_counter() < stop_at:
                n += 1
                t = time.perf_counter()
                try:
                    await asyncio.wait_for(send_(f"{w}:{n}".encode()), 10)
                except Exception:
                    errors += 1
                    continue
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        cpu0 = time.process_time()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu0
    finally:
        await close()
    return {
        "client": client,
        "concurrency": concurrency,
        "acks_per_s": len(latencies) / wall,
        "p50_ms": pct(latencies, 50) * 1000,
        "p99_ms": pct(latencies, 99) * 1000,
        "errors": errors,
        "cpu_ms_per_1k": 1000 * 1000 * cpu / max(1, len(latencies)),
    }


def run_all(
    bootstrap: str, topic: str, levels: tuple[int, ...], seconds: float
) -> list[dict[str, Any]]:
    """Every client at every level, each in a fresh process."""
    out = []
    for client in CLIENTS:
        for c in levels:
            cmd = [
                sys.executable,
                "-m",
                "bench.produce",
                "--bootstrap",
                bootstrap,
                "--topic",
                topic,
            ]
            cmd += ["--client", client, "--concurrency", str(c), "--seconds", str(seconds)]
            p = subprocess.run(
                cmd, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=False
            )
            line = next((x for x in p.stdout.splitlines() if x.startswith("{")), None)
            if p.returncode != 0 or line is None:
                out.append(
                    {"client": client, "concurrency": c, "error": (p.stderr or p.stdout)[-300:]}
                )
            else:
                out.append(json.loads(line))
    return out


def report(rows: list[dict[str, Any]]) -> str:
    body = []
    for r in rows:
        if "error" in r:
            body.append(
                [
                    r["client"],
                    str(r["concurrency"]),
                    "error",
                    "-",
                    "-",
                    "-",
                    r["error"].splitlines()[-1][:60],
                ]
            )
            continue
        body.append(
            [
                r["client"],
                str(r["concurrency"]),
                fmt(r["acks_per_s"]),
                fmt(r["p50_ms"], 2),
                fmt(r["p99_ms"], 2),
                fmt(r["cpu_ms_per_1k"]),
                str(r["errors"]),
            ]
        )
    return table(
        "\nProduce + acks=all ack, C concurrent senders (the ingress's produce path), real broker",
        ["client", "C", "acks/s", "p50 ms", "p99 ms", "client CPU ms/1k", "errors"],
        body,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--client", choices=CLIENTS, required=True)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    a = parser.parse_args()
    from service.runtime import run

    result: dict[str, Any] = {}

    async def go() -> None:
        result.update(await measure(a.client, a.bootstrap, a.topic, a.concurrency, a.seconds))

    run(go())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
