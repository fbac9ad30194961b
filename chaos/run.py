"""One chaos run: start the pipeline, drive the load, inject the faults on a seeded
schedule, then clear them, replay the DLQ, wait for the writers' true lag to reach 0 and
judge from the sandbox and Kafka only (``chaos.judge``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from chaos import load
from chaos.judge import judge
from chaos.kafkaview import group_lag, quiet_aiokafka, read_topic
from chaos.procs import Cluster

GROUP = "callbridge-writer"
#: where in the load the poison calls are sent (share of its duration)
POISON_AT = 0.5
TOPIC_EVENTS = "calls.events"
TOPIC_DLQ = "calls.dlq"
TOKEN = "sandbox-token"


@dataclass
class Scenario:
    """What one run does. ``at`` shares are of the load's duration."""

    calls: int = 5000
    events: int = 20000
    rate: float = 80.0
    writers: int = 2
    kills: tuple[float, ...] = (0.15, 0.34, 0.72)
    join_at: float | None = 0.25
    leave_at: float | None = 0.88
    zombie_at: float | None = 0.38
    broker_at: float | None = 0.55
    broker_down_s: float = 15.0
    error_rate: float = 0.05
    bursts: tuple[float, ...] = (0.10, 0.45, 0.80)
    burst_size: int = 10
    latency: tuple[float, float] | None = (0.30, 0.45)
    index_delay: tuple[float, float] | None = (0.30, 0.70)
    index_delay_ms: float = 30_000
    reject_share: float = 0.01
    poisons: bool = True
    session_timeout_ms: int = 10_000
    hubspot_timeout_s: float = 4.0
    drain_timeout_s: float = 240.0
    #: how long the ingress may take to accept again after the broker is back
    ingress_recovery_s: float = 20.0
    name: str = "full"


FULL = Scenario()
BOUNDED = Scenario(
    calls=500,
    events=2000,
    rate=40.0,
    writers=2,
    kills=(0.3,),
    join_at=None,
    leave_at=None,
    zombie_at=None,
    broker_at=0.6,
    broker_down_s=8.0,
    bursts=(0.2,),
    latency=None,
    index_delay=None,
    poisons=False,
    drain_timeout_s=90.0,
    name="bounded",
)


@dataclass
class Timeline:
    t0: float
    entries: list[tuple[float, str]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    last_fault_end: float = 0.0
    findings: list[str] = field(default_factory=list)

    def note(self, kind: str, detail: str = "", *, count: bool = True) -> None:
        at = time.time() - self.t0
        self.entries.append((round(at, 1), f"{kind} {detail}".strip()))
        if count:
            self.counts[kind] += 1
        print(f"  [{at:7.1f}s] {kind} {detail}", flush=True)

    def ended(self) -> None:
        self.last_fault_end = time.time()


class Sandbox:
    def __init__(self, url: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"authorization": f"Bearer {TOKEN}"}, timeout=30
        )

    def close(self) -> None:
        self.http.close()

    def faults(self, **settings: Any) -> None:
        self.http.post("/_sandbox/faults", json=settings).raise_for_status()

    def clear(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/_sandbox/stats").json()
        return body

    def create_contacts(self, numbers: list[str]) -> dict[str, str]:
        book: dict[str, str] = {}
        for start in range(0, len(numbers), 100):
            chunk = numbers[start : start + 100]
            r = self.http.post(
                "/crm/v3/objects/contacts/batch/create",
                json={"inputs": [{"properties": {"phone": n}} for n in chunk]},
            )
            r.raise_for_status()
            for item in r.json()["results"]:
                book[item["properties"]["phone"]] = item["id"]
        return book

    def calls(self) -> list[dict[str, Any]]:
        props = "hs_call_external_id,hs_call_status,hs_call_duration,hs_call_direction,hs_timestamp,hs_call_title"
        out: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            params = {"limit": "100", "properties": props, "associations": "contacts"}
            if after:
                params["after"] = after
            r = self.http.get("/crm/v3/objects/calls", params=params)
            r.raise_for_status()
            body = r.json()
            out.extend(body["results"])
            after = body.get("paging", {}).get("next", {}).get("after")
            if not after:
                return out


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


async def faults(
    sc: Scenario,
    cluster: Cluster,
    sandbox: Sandbox,
    tl: Timeline,
    duration: float,
    rng: random.Random,
    sent: load.SendStats,
) -> None:
    """The fault schedule, as (share of the load, action) steps."""
    steps: list[tuple[float, str]] = [(s, "kill") for s in sc.kills]
    steps += [(s, "burst") for s in sc.bursts]
    if sc.join_at is not None:
        steps.append((sc.join_at, "join"))
    if sc.leave_at is not None:
        steps.append((sc.leave_at, "leave"))
    if sc.zombie_at is not None:
        steps.append((sc.zombie_at, "zombie"))
    if sc.broker_at is not None:
        steps.append((sc.broker_at, "broker"))
    if sc.latency is not None:
        steps += [(sc.latency[0], "latency-on"), (sc.latency[1], "latency-off")]
    if sc.index_delay is not None:
        steps += [(sc.index_delay[0], "index-on"), (sc.index_delay[1], "index-off")]
    if sc.poisons:
        steps.append((POISON_AT, "poison"))
    steps.sort()
    sandbox.faults(
        error_rate=sc.error_rate,
        error_status=503,
        seed=rng.randrange(2**31),
        reject={"property": "hs_call_title", "value": load.REJECT_TITLE},
    )
    tl.note("sandbox-5xx", f"{sc.error_rate:.0%} 503s on every operation")
    tl.note("sandbox-reject", f"{load.REJECT_TITLE} titles refused (207 VALIDATION_ERROR)")
    next_writer = sc.writers + 1
    start = time.monotonic()
    background: list[asyncio.Task[None]] = []
    for share, action in steps:
        await asyncio.sleep(max(0.0, start + share * duration - time.monotonic()))
        live = cluster.live_writers()
        if action == "kill" and live:
            name = rng.choice(live)
            cluster.writers[name].held = True
            cluster.writers[name].signal(signal.SIGKILL)
            cluster.writers[name].wait(10)
            tl.note("writer-sigkill", name)
            await asyncio.sleep(rng.uniform(1, 4))
            cluster.start_writer(name)
            tl.note("writer-restart", name, count=False)
        elif action == "join":
            name = f"writer-{next_writer}"
            next_writer += 1
            cluster.start_writer(name)
            tl.note("writer-join", name)
        elif action == "leave" and len(live) > 1:
            name = rng.choice(live)
            proc = cluster.writers.pop(name)
            proc.held = True
            proc.signal(signal.SIGTERM)
            cluster.retired.append(proc)
            tl.note("writer-sigterm-leave", name)
        elif action == "zombie" and live:
            name = rng.choice(live)
            cluster.writers[name].signal(signal.SIGSTOP)
            tl.note("writer-sigstop-zombie", f"{name} for {sc.session_timeout_ms / 1000 + 5:.0f}s")

            async def wake(n: str = name) -> None:
                await asyncio.sleep(sc.session_timeout_ms / 1000 + 5)
                cluster.writers[n].signal(signal.SIGCONT)
                tl.note("writer-sigcont", n, count=False)
                tl.ended()

            background.append(asyncio.create_task(wake()))
        elif action == "poison":
            tl.note("poison", "calls for search, association and limit refusals sent")
            tl.counts["poison"] = len(load.poison_calls(random.Random(0)))
        elif action == "burst":
            sandbox.faults(rate_limit_burst=sc.burst_size)
            tl.note("sandbox-429-burst", f"next {sc.burst_size} requests")
        elif action == "latency-on":
            ms = (sc.hubspot_timeout_s + 2) * 1000
            sandbox.faults(latency_after_ms=ms, operations=["batchCreateCalls"])
            tl.note("sandbox-latency-after", f"{ms:.0f} ms on batch create, write applied")
        elif action == "latency-off":
            sandbox.faults(latency_after_ms=0, operations=None)
            tl.note("sandbox-latency-off", count=False)
        elif action == "index-on":
            sandbox.faults(index_delay_ms=sc.index_delay_ms)
            tl.note("sandbox-index-delay", f"{sc.index_delay_ms:.0f} ms search lag")
        elif action == "index-off":
            sandbox.faults(index_delay_ms=0)
            tl.note("sandbox-index-delay-off", count=False)
        elif action == "broker":
            down = time.monotonic()
            await asyncio.to_thread(cluster.stop_broker)
            tl.note("broker-stop", "callbridge kafka SIGTERMed")
            # down for about broker_down_s in all: the restart itself takes ~6 s here
            await asyncio.sleep(max(0.0, down + sc.broker_down_s - 6.0 - time.monotonic()))
            ready = await asyncio.to_thread(cluster.start_broker)
            back = time.time()
            tl.note(
                "broker-start",
                f"ready after {ready:.1f}s, down {time.monotonic() - down:.1f}s",
                count=False,
            )
            await asyncio.sleep(sc.ingress_recovery_s)
            if sent.last_accept_at < back:
                # not a fault we inject: the ingress did not recover by itself. An operator
                # (or a liveness probe) would restart it; the run notes it as a finding.
                tl.findings.append(
                    f"ingress answered only 503 for {sc.ingress_recovery_s:.0f}s after the "
                    "broker came back (see ingress.log): restarted by the harness"
                )
                await asyncio.to_thread(cluster.ingress_restart)
                tl.note("ingress-restart", "(remediation, not a fault)", count=False)
        tl.ended()
    await asyncio.gather(*background)


async def supervise(cluster: Cluster, tl: Timeline, stop: asyncio.Event) -> None:
    """Restart writers that exit on their own, as Kubernetes would; each one is a finding."""
    while not stop.is_set():
        for proc in cluster.crashed_writers():
            code = proc.popen.returncode if proc.popen else None
            why = cluster.last_error(proc)
            tl.findings.append(f"{proc.name} exited by itself (code {code}): {why}")
            tl.note("writer-crash-restart", f"{proc.name} (remediation, not a fault)", count=False)
            cluster.start_writer(proc.name)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def attribute(created_ms: list[int], tl: Timeline) -> dict[str, int]:
    """Each extra record's creation, counted under the last fault injected before it."""
    faults = [
        (at, text) for at, text in tl.entries if text.split()[0] in tl.counts
    ]  # injected faults only, not remediations or phases
    out: Counter[str] = Counter()
    for ms in created_ms:
        at = ms / 1000 - tl.t0
        before = [text for t, text in faults if t <= at]
        out[before[-1] if before else "before any fault"] += 1
    return dict(out.most_common())


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
