"""How many 100-input ``batch/create`` requests per second the sandbox answers.

Starts ``python -m sandbox`` (one uvicorn worker, so one core) in a subprocess, drives it
with httpx from client processes, and prints a table per concurrency level: wall-clock
requests/s, records/s, latency percentiles, the sandbox's own CPU use, and requests per
second of sandbox CPU time (its single-core capacity, independent of how fast the
client is). The store is reset between levels.

    .venv/bin/python bench/sandbox_throughput.py [--seconds 5] [--concurrency 1 4 16]
                                                  [--client-procs 1]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-token"
PATH = "/crm/v3/objects/calls/batch/create"


def batch_body(offset: int) -> bytes:
    """A realistic 100-input batch create, as callbridge's writer sends it."""
    inputs = []
    for n in range(offset, offset + 100):
        key = f"twilio:CA{n:032x}"
        inputs.append(
            {
                "properties": {
                    "hs_timestamp": "2026-03-03T15:04:05.000Z",
                    "hs_call_title": f"Inbound call from +1415555{n % 10000:04d}",
                    "hs_call_direction": "INBOUND",
                    "hs_call_status": "COMPLETED",
                    "hs_call_duration": "124000",
                    "hs_call_from_number": "+14155550142",
                    "hs_call_to_number": "+18005550100",
                    "hs_call_external_id": key,
                    "hs_call_source": "INTEGRATIONS_PLATFORM",
                },
                "objectWriteTraceId": key,
            }
        )
    return orjson.dumps({"inputs": inputs})


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _drive(url: str, workers: int, seconds: float, seed: int) -> tuple[int, list[float], int]:
    bodies = [batch_body(seed * 10_000_000 + i * 100) for i in range(8)]
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=30
    ) as client:

        async def worker(w: int) -> None:
            nonlocal failures
            i = w
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                r = await client.post(PATH, content=bodies[i % len(bodies)])
                i += 1
                latencies.append(time.perf_counter() - start)
                if r.status_code not in (201, 207):
                    failures += 1

        await asyncio.gather(*(worker(w) for w in range(workers)))
    return len(latencies), latencies, failures


def _client(args: tuple[str, int, float, int]) -> tuple[int, list[float], int]:
    url, workers, seconds, seed = args
    return asyncio.run(_drive(url, workers, seconds, seed))


def run_level(url: str, pid: int, concurrency: int, procs: int, seconds: float) -> dict[str, float]:
    """One measurement at ``concurrency`` in-flight requests spread over ``procs`` clients."""
    httpx.post(url + "/_sandbox/reset").raise_for_status()
    per = max(1, concurrency // procs)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(procs) as pool:
        parts = pool.map(_client, [(url, per, seconds, k) for k in range(procs)])
    wall, cpu = time.perf_counter() - t0, cpu_seconds(pid) - cpu0
    count = sum(p[0] for p in parts)
    lat = sorted(x for p in parts for x in p[1])
    return {
        "concurrency": per * procs,
        "requests": count,
        "failed": sum(p[2] for p in parts),
        "rps": count / seconds,
        "records": count * 100 / seconds,
        "p50": statistics.median(lat) * 1000,
        "p99": lat[int(len(lat) * 0.99) - 1] * 1000,
        "cpu": cpu / wall * 100,
        "per_cpu_s": count / cpu if cpu else float("nan"),
        "rss": rss_mb(pid),
    }


def main() -> None:
    """Start the sandbox, measure each level, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--client-procs", type=int, default=1)
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "sandbox",
            "--port",
            str(port),
            "--token",
            TOKEN,
            "--rate-limit",
            "1000000000",
        ],
        cwd=ROOT,
    )
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/_sandbox/stats").raise_for_status()
                break
            except httpx.TransportError:
                time.sleep(0.05)
        print(
            f"sandbox batch/create throughput: 100 inputs per request, {args.seconds:g} s per level, "
            f"{args.client_procs} client process(es), {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
        )
        header = (
            f"{'in flight':>9} {'requests':>9} {'failed':>6} {'req/s':>8} {'records/s':>10} "
            f"{'p50 ms':>7} {'p99 ms':>7} {'sandbox CPU':>11} {'req per CPU-s':>13} {'RSS MiB':>8}"
        )
        print(header)
        print("-" * len(header))
        for c in args.concurrency:
            r = run_level(url, proc.pid, c, args.client_procs, args.seconds)
            print(
                f"{r['concurrency']:>9.0f} {r['requests']:>9.0f} {r['failed']:>6.0f} {r['rps']:>8.0f} "
                f"{r['records']:>10.0f} {r['p50']:>7.1f} {r['p99']:>7.1f} {r['cpu']:>10.0f}% "
                f"{r['per_cpu_s']:>13.0f} {r['rss']:>8.0f}"
            )
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
