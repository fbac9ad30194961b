"""One chaos run: start the pipeline, drive the load, inject the faults on a seeded
schedule, then clear them, replay the DLQ, wait for the writers' true lag to reach 0 and
judge from the sandbox and Kafka only (``chaos.judge``)."""

from __future__ import annotations

import asyncio
import json
import random
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from chaos import load
from chaos.judge import judge
from chaos.kafkaview import group_lag, quiet_aiokafka, read_topic
from chaos.procs import Cluster
from chaos.sandboxctl import Sandbox
from chaos.scenario import (
    POISON_AT,
    Scenario,
    Timeline,
    attribute,
    faults,
    supervise,
)

GROUP = "callbridge-writer"
TOPIC_EVENTS = "calls.events"
TOPIC_DLQ = "calls.dlq"


async def wait_lag_zero(
    cluster: Cluster, timeout_s: float, *, stable_s: float = 3.0
) -> tuple[bool, int]:
    """Wait until the writer group's true lag is 0 (and stays so ``stable_s``)."""
    deadline = time.monotonic() + timeout_s
    zero_since: float | None = None
    total = -1
    with quiet_aiokafka():
        while time.monotonic() < deadline:
            try:
                lag = await group_lag(cluster.bootstrap, GROUP, TOPIC_EVENTS)
                total = sum(lag.values()) if lag else -1
            except Exception:  # broker busy: try again
                total = -1
            if total == 0:
                zero_since = zero_since or time.monotonic()
                if time.monotonic() - zero_since >= stable_s:
                    return True, 0
            else:
                zero_since = None
            await asyncio.sleep(1.0)
    return False, total


def hubspot_requests(stats: dict[str, Any]) -> int:
    return sum(n for per in stats.get("requests", {}).values() for n in per.values())


async def run(sc: Scenario, seed: int, workdir: Path | None = None) -> dict[str, Any]:
    """Run ``sc`` with ``seed``; returns the figures (``chaos.__main__.table`` prints them)."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix=f"callbridge-chaos-{seed}-"))
    began = time.time()
    env = {"CALLBRIDGE_TOPIC_PARTITIONS": "6", **load.secrets_env()}
    writer_env = {
        "CALLBRIDGE_WRITER_SESSION_TIMEOUT_MS": str(sc.session_timeout_ms),
        "CALLBRIDGE_HUBSPOT_TIMEOUT_S": str(sc.hubspot_timeout_s),
    }
    workdir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(workdir, env, writer_env)
    sandbox: Sandbox | None = None
    print(f"chaos {sc.name}: seed {seed}, logs in {workdir}", flush=True)
    try:
        startup = cluster.start_broker()
        cluster.start_sandbox()
        cluster.start_ingress()
        for n in range(1, sc.writers + 1):
            cluster.start_writer(f"writer-{n}")
        sandbox = Sandbox(cluster.sandbox_url)
        numbers = load.counterpart_numbers(random.Random(seed ^ 0x5EED), max(50, sc.calls // 5))
        book = sandbox.create_contacts(numbers[: len(numbers) * 2 // 5])
        plan = load.plan(
            seed,
            calls=sc.calls,
            events=sc.events,
            rate=sc.rate,
            reject_share=sc.reject_share,
            base_url=cluster.ingress_url,
            contacts=book,
            explicit_contacts=sorted(book.values())[:50],
            numbers=numbers,
        )
        if sc.poisons:
            load.add_poisons(
                plan, load.poison_calls(random.Random(seed + 1)), cluster.ingress_url, POISON_AT
            )
        await wait_ready(cluster.ingress_url + "/readyz", 90)
        print(f"  broker ready in {startup:.1f}s; plan {plan.summary()}", flush=True)
        t0 = float(int(time.time()) + 2)
        tl = Timeline(t0)
        sent = load.SendStats()
        stop_supervising = asyncio.Event()
        supervisor = asyncio.create_task(supervise(cluster, tl, stop_supervising))
        fault_task = asyncio.create_task(
            faults(sc, cluster, sandbox, tl, plan.duration_s, random.Random(seed + 2), sent)
        )
        await load.send(
            plan,
            cluster.ingress_url,
            t0,
            on_progress=lambda n: print(f"  [{time.time() - t0:7.1f}s] sent {n}", flush=True),
            stats=sent,
        )
        await fault_task
        # 1. clear the faults: first the transient ones; the REJECT-ME rule stays until the
        # writers have drained, so that every rejected call has met it (then the operator
        # "fixes the cause" and lifts it before the replay)
        sandbox.faults(
            error_rate=0.0,
            rate_limit_burst=0,
            latency_after_ms=0,
            index_delay_ms=0,
            operations=None,
        )
        tl.note("faults-cleared", "(5xx, 429, latency, index delay)", count=False)
        cleared = time.time()
        drained, lag1 = await wait_lag_zero(cluster, sc.drain_timeout_s)
        drain_s = time.time() - max(cleared, tl.last_fault_end)
        tl.note("drained" if drained else "NOT-drained", f"lag {lag1}", count=False)
        sandbox.clear()
        tl.note("reject-lifted", "the cause fixed before the replay", count=False)
        # 2. replay the DLQ, 3. wait for the true lag to be 0 again
        code, out = cluster.dlq_replay()
        m = re.search(r"replayed (\d+)", out)
        replayed = int(m.group(1)) if m else 0
        tl.note("dlq-replay", f"exit {code}: {out.splitlines()[-1] if out else ''}", count=False)
        drained2, lag2 = await wait_lag_zero(cluster, sc.drain_timeout_s)
        stop_supervising.set()
        await supervisor
        await asyncio.sleep(2)
        records = sandbox.calls()
        stats = sandbox.stats()
        with quiet_aiokafka():
            dlq = [(r.key, r.headers) for r in await read_topic(cluster.bootstrap, TOPIC_DLQ)]
        verdict = judge(plan.calls, records, dlq, t0, sent.refused)
        requests = hubspot_requests(stats)
        figures: dict[str, Any] = {
            "seed": seed,
            "scenario": sc.name,
            "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
            **{k: verdict[k] for k in ("lost", "duplicates", "records", "expected")},
            "faults": dict(tl.counts),
            "dlq": verdict["dlq"],
            "replayed": replayed,
            "replay_exit": code,
            "events_sent": len(plan.deliveries),
            "events_accepted": sent.accepted_events,
            "served_503": sent.served_503,
            "ingress": sent.to_json(),
            "drained": drained and drained2,
            "lag_after": lag2,
            "drain_s_after_last_fault": round(drain_s, 1) if drained else None,
            "hubspot_requests": requests,
            "hubspot_requests_per_100_calls": round(requests * 100 / max(1, sc.calls), 1),
            "hubspot_by_operation": {
                op: dict(per) for op, per in stats.get("requests", {}).items()
            },
            "findings": tl.findings,
            "duplicates_after_fault": attribute(verdict.pop("duplicate_created_ms"), tl),
            "wrong_after_fault": attribute(verdict.pop("wrong_created_ms"), tl),
            "verdict": verdict,
            "timeline": tl.entries,
            "wall_s": round(time.time() - began, 1),
            "logs": str(workdir),
        }
        return figures
    finally:
        if sandbox is not None:
            sandbox.close()
        cluster.close()


async def wait_ready(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} not ready within {timeout_s}s")


def write(figures: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, sort_keys=False) + "\n")
