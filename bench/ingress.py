"""Part 1, the ingress against its ceiling, with wrk on the same machine.

(a) bare Starlette answering 202 with no work (``bench.bare``), (b) ``callbridge ingress``
with the real broker (signature check, normalization, ``acks=all`` produce) on uvloop, and
(b') the same on asyncio's own loop (the "before" of the uvloop change). Each at fixed
connection counts for a fixed time, then (b) at fixed offered rates (latency against
offered rate), and a py-spy profile of (b) under the highest connection count.
"""

from __future__ import annotations

import collections
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import kafkaio
from bench.common import CLI, Child, Topics, env, fmt, say, table, wait_http
from bench.wrk import WrkResult, run_wrk
from service.localkafka import free_port


@dataclass
class IngressPlan:
    seconds: float = 8.0
    connections: tuple[int, ...] = (16, 64)
    rates: tuple[int, ...] = (250, 500, 1000, 1500, 2000)
    rate_seconds: float = 6.0
    rate_connections: int = 64
    asyncio_loop: bool = True
    profile_seconds: float = 10.0
    rounds: int = 2


@dataclass
class IngressResults:
    runs: dict[str, list[WrkResult]] = field(default_factory=dict)
    all_runs: dict[str, list[WrkResult]] = field(default_factory=dict)
    paced: dict[str, list[WrkResult]] = field(default_factory=dict)
    kafka_records: dict[str, int] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    profile: dict[str, object] = field(default_factory=dict)


def _start(kind: str, bootstrap: str, topics: Topics, logdir: Path) -> tuple[Child, str]:
    port = free_port()
    if kind == "bare":
        cmd = [sys.executable, "-m", "bench.bare", "--port", str(port)]
    elif kind == "ingress":
        cmd = [*CLI, "ingress", "--host", "127.0.0.1", "--port", str(port)]
        cmd += ["--metrics-port", str(free_port())]
    else:  # ingress on asyncio's loop
        cmd = [sys.executable, "-m", "bench.asyncio_loop", "ingress", "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--metrics-port", str(free_port())]
    child = Child(f"{kind}-{topics.suffix}", cmd, env(bootstrap, topics.env()), logdir)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/readyz", child)
    return child, url


def run(bootstrap: str, plan: IngressPlan, workdir: Path) -> IngressResults:
    """Every server runs at once (idle while another is measured), and the runs alternate
    between them, so a neighbour's load on this shared machine hits each alike; each figure
    is the best of ``plan.rounds`` runs by req/s (all runs are kept in ``all_runs``)."""
    res = IngressResults()
    kinds = ["bare", "ingress"] + (["ingress-asyncio"] if plan.asyncio_loop else [])
    servers: dict[str, tuple[Child, str]] = {}
    topics = {kind: Topics() for kind in kinds}
    try:
        for kind in kinds:
            servers[kind] = _start(kind, bootstrap, topics[kind], workdir / "logs")
        for c in plan.connections:
            for rnd in range(plan.rounds):
                for kind in kinds if rnd % 2 == 0 else kinds[::-1]:
                    cpu0 = servers[kind][0].cpu_s()
                    r = run_wrk(
                        servers[kind][1],
                        workdir,
                        connections=c,
                        seconds=plan.seconds,
                        expected_rps=16000.0 if kind == "bare" else 4000.0,
                        tag=f"{kind}-{c}-{rnd}",
                    )
                    cpu = servers[kind][0].cpu_s() - cpu0
                    r.server_cpu_ms_per_req = 1000 * cpu / max(1, r.requests)
                    res.all_runs.setdefault(kind, []).append(r)
                    say(
                        f"  {kind:<16} {c:>3} conns: {r.rps:8,.0f} req/s  p99 {r.p99_ms:7.1f} ms"
                        f"  server CPU {r.server_cpu_ms_per_req:.3f} ms/req"
                    )
        for kind, runs in res.all_runs.items():
            res.runs[kind] = [
                max((r for r in runs if r.connections == c), key=lambda r: r.rps)
                for c in plan.connections
            ]
        for rate in plan.rates:
            for kind in [k for k in kinds if k == "ingress" or (k != "bare" and rate == 1000)]:
                r = run_wrk(
                    servers[kind][1],
                    workdir,
                    connections=plan.rate_connections,
                    seconds=plan.rate_seconds,
                    rate=rate,
                    tag=f"{kind}-r{rate}",
                )
                res.paced.setdefault(kind, []).append(r)
                say(
                    f"  {kind:<16} offered {rate:>5}/s: got {r.rps:7,.0f}/s  p99 {r.p99_ms:7.1f} ms"
                )
        if plan.profile_seconds > 0:
            child, url = servers["ingress"]
            res.profile, load = profile(child, url, workdir, plan)
            if load is not None:
                res.all_runs["ingress"].append(load)
    finally:
        for child, _ in servers.values():
            child.stop()
    for kind in kinds[1:]:
        sent = res.all_runs.get(kind, []) + res.paced.get(kind, [])
        res.accepted[kind] = sum(r.requests - r.non2xx for r in sent)
        res.kafka_records[kind] = kafkaio.end_offsets(bootstrap, topics[kind].events)
    return res


def report(res: IngressResults) -> str:
    rows = []
    bare = {r.connections: r for r in res.runs.get("bare", [])}
    label = {
        "bare": "bare Starlette (202, no work)",
        "ingress": "callbridge ingress (uvloop)",
        "ingress-asyncio": "callbridge ingress (asyncio loop)",
    }
    for kind, runs in res.runs.items():
        for r in runs:
            ceiling = bare.get(r.connections)
            ratio = "-" if kind == "bare" or ceiling is None else f"{r.rps / ceiling.rps:.2f}"
            rows.append(
                [
                    label[kind],
                    str(r.connections),
                    fmt(r.rps),
                    fmt(r.p50_ms, 1),
                    fmt(r.p99_ms, 1),
                    fmt(r.max_ms, 1),
                    f"{r.non2xx + r.socket_errors}",
                    ratio,
                    "yes" if r.wrapped else "no",
                    _cpu(kind, r.connections, res),
                ]
            )
    out = [
        table(
            "Ingress: wrk -t1, signed distinct generic events, best of the rounds; (b) answers 202 "
            "after the Kafka ack",
            [
                "endpoint",
                "conns",
                "req/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "non-2xx",
                "b/a",
                "pool wrapped",
                "server CPU ms/req",
            ],
            rows,
        )
    ]
    prow = []
    for kind, runs in res.paced.items():
        for r in runs:
            prow.append(
                [
                    label[kind],
                    fmt(r.offered_rps or 0),
                    fmt(r.rps),
                    fmt(r.p50_ms, 1),
                    fmt(r.p90_ms, 1),
                    fmt(r.p99_ms, 1),
                    fmt(r.max_ms, 1),
                    str(r.non2xx + r.socket_errors),
                ]
            )
    if prow:
        out.append(
            table(
                "\nIngress at a fixed offered rate (wrk paced by delay(), latency from the actual send)",
                [
                    "endpoint",
                    "offered/s",
                    "got/s",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms",
                    "max ms",
                    "non-2xx",
                ],
                prow,
            )
        )
    checks = [
        f"{label[k]}: {res.accepted[k]:,} accepted (202), {res.kafka_records[k]:,} records in Kafka"
        for k in res.accepted
    ]
    if checks:
        out.append("\n" + "\n".join(checks))
    return "\n".join(out)


def _cpu(kind: str, connections: int, res: IngressResults) -> str:
    """The server's CPU time per request, the lowest over the rounds: unlike req/s it
    hardly moves when a neighbour takes the other core."""
    got = [
        r.server_cpu_ms_per_req
        for r in res.all_runs.get(kind, [])
        if r.connections == connections and r.server_cpu_ms_per_req is not None
    ]
    return f"{min(got):.3f}" if got else "-"


# -- profile -----------------------------------------------------------------------------

FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")
#: frames every sample passes through (process start, CLI, the loop): left out of the
#: inclusive function list, which would otherwise start with a dozen 100 % lines
ROOTS = (
    "runpy",
    "typer/",
    "click/",
    "service/cli.py",
    "service/runtime.py",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
)
BUCKETS = (
    ("handlers/", "handlers (verify + parse + normalize)"),
    ("service/ingress", "service/ingress.py (the endpoint itself)"),
    ("service/", "service/ (other)"),
    ("aiokafka/", "aiokafka (produce + ack)"),
    ("starlette/", "starlette (routing, request, middleware)"),
    ("uvicorn/", "uvicorn (HTTP protocol)"),
    ("httptools", "httptools"),
    ("phonenumbers/", "phonenumbers"),
    ("msgspec", "msgspec"),
    ("hmac", "hmac/hashlib"),
    ("asyncio/", "asyncio (stdlib)"),
    ("uvloop", "uvloop"),
)


def profile(
    child: Child, url: str, workdir: Path, plan: IngressPlan
) -> tuple[dict[str, object], WrkResult | None]:
    """py-spy samples the ingress while wrk loads it with the highest connection count."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"error": "py-spy not installed"}, None
    raw = workdir / "ingress-profile.txt"
    seconds = plan.profile_seconds
    cmd = [
        spy,
        "record",
        "--pid",
        str(child.pid),
        "--duration",
        str(round(seconds)),
        "--rate",
        "200",
    ]
    cmd += ["--format", "raw", "--full-filenames", "--output", str(raw)]
    spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    load = run_wrk(
        url,
        workdir,
        connections=max(plan.connections),
        seconds=seconds,
        expected_rps=4000,
        tag="profile",
    )
    _, err = spy_proc.communicate(timeout=seconds + 60)
    if spy_proc.returncode != 0 or not raw.exists():
        return {"error": f"py-spy failed: {err.decode(errors='replace')[-400:]}"}, load
    return summarize(raw.read_text(), load), load


def summarize(collapsed: str, load: WrkResult | None = None) -> dict[str, object]:
    """Self and inclusive shares per function and per library from py-spy's collapsed
    stacks (``frame;frame;... count``)."""
    total = 0
    self_fn: collections.Counter[str] = collections.Counter()
    incl_fn: collections.Counter[str] = collections.Counter()
    incl_bucket: collections.Counter[str] = collections.Counter()
    self_bucket: collections.Counter[str] = collections.Counter()
    middleware_self = 0
    for line in collapsed.splitlines():
        stack, _, count_s = line.rpartition(" ")
        if not stack or not count_s.isdigit():
            continue
        count = int(count_s)
        total += count
        frames = [_frame(f) for f in stack.split(";") if f]
        frames = [f for f in frames if f]
        if not frames:
            continue
        self_fn[frames[-1][0]] += count
        leaf = frames[-1][1]
        self_bucket[_bucket(leaf) or "other (stdlib, C)"] += count
        if "middleware/" in leaf or "_exception_handler" in leaf:
            middleware_self += count
        for name, file in {f for f in frames}:
            if not any(root in file for root in ROOTS):
                incl_fn[name] += count
        for bucket in {_bucket(f[1]) for f in frames if not any(r in f[1] for r in ROOTS)}:
            if bucket:
                incl_bucket[bucket] += count
    if total == 0:
        return {"error": "no samples"}

    def share(counter: collections.Counter[str], n: int) -> list[list[object]]:
        return [[k, round(100 * v / total, 1)] for k, v in counter.most_common(n)]

    return {
        "samples": total,
        "load_rps": round(load.rps, 1) if load else None,
        "self_top": share(self_fn, 15),
        "inclusive_top": share(incl_fn, 25),
        "by_library_inclusive_pct": share(incl_bucket, len(BUCKETS)),
        "by_library_self_pct": share(self_bucket, len(BUCKETS) + 1),
        "middleware_self_pct": round(100 * middleware_self / total, 1),
    }


def _frame(text: str) -> tuple[str, str] | None:
    m = FRAME.match(text.strip())
    if not m:
        return (text.strip(), "")
    file = m.group("file")
    short = "/".join(Path(file).parts[-2:])
    return (f"{m.group('fn')} ({short})", file)


def _bucket(file: str) -> str:
    for needle, name in BUCKETS:
        if needle in file:
            return name
    return ""


def profile_report(prof: dict[str, object]) -> str:
    if "error" in prof:
        return f"Ingress profile: {prof['error']}"
    lines = [
        f"Ingress profile (py-spy, {prof['samples']} samples while wrk drove "
        f"{prof['load_rps']} req/s; % of samples)",
        "by library (inclusive):",
    ]
    lines += [f"  {pct:5.1f} %  {name}" for name, pct in prof["by_library_inclusive_pct"]]  # type: ignore[attr-defined]
    lines.append("by library (self: where the CPU is spent):")
    lines += [f"  {pct:5.1f} %  {name}" for name, pct in prof["by_library_self_pct"]]  # type: ignore[attr-defined]
    lines.append(
        f"Starlette/uvicorn middleware frames (ProxyHeaders, ServerError, Exception), self: "
        f"{prof['middleware_self_pct']} %"
    )
    lines.append("top functions (self):")
    lines += [f"  {pct:5.1f} %  {name}" for name, pct in prof["self_top"]]  # type: ignore[attr-defined]
    lines.append("top functions (inclusive):")
    lines += [f"  {pct:5.1f} %  {name}" for name, pct in prof["inclusive_top"]]  # type: ignore[attr-defined]
    return "\n".join(lines)
