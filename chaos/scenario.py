"""What a chaos run does and when: the scenarios (full and bounded), the fault schedule as
shares of the load's duration, the timeline it writes, and the supervisor that restarts
writers that die by themselves (a finding, as a Kubernetes restart would hide one)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field

from chaos import load
from chaos.procs import Cluster
from chaos.sandboxctl import Sandbox

#: where in the load the poison calls are sent (share of its duration)
POISON_AT = 0.5


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
