"""Parts 2-4: the writer against HubSpot's ceiling, end to end, and memory under backlog.

Only the product's processes are driven (``callbridge sandbox``, ``callbridge writer``,
``callbridge ingress``) and only what they expose is read: ``/_sandbox/stats`` (requests
per operation, batch sizes, record counts), ``/_sandbox/config``, the records themselves
(``createdAt``), the writer group's committed offsets, and the writer's RSS and CPU from
``/proc``. A slow or stuck writer is measured for the time it is given, never waited on.

HubSpot's ceiling for call records is 190 requests per rolling 10 s × 100 inputs per
batch = 1,900 records/s; contact search is limited to 5 requests/s.
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from bench import kafkaio
from bench.backlog import backlog, cloned_backlog
from bench.callers import caller_numbers
from bench.common import CLI, TOKEN, Child, Topics, env, fmt, pct, say, table, wait_http
from bench.wrk import run_wrk
from service.localkafka import free_port

RATE_10S = 190
SEARCH_RATE = 5
CEILING = RATE_10S * 100 / 10  # records/s
CHECK_TOKEN, NAIVE_TOKEN = "bench-check", "bench-naive"
SCALE_TOKEN = "bench-contacts"  # bench.contacts_scale's portal
WRITE_OPS = ("batchCreateCalls", "batchUpdateCalls", "batchUpsertCalls")
UNLIMITED = {"rate_limit": 1_000_000, "search_rate": 1_000_000}


@dataclass
class WriterPlan:
    calls: int = 25_000
    seconds: float = 200.0  # the writer's time budget for the backlog
    naive_seconds: float = 25.0
    e2e_seconds: float = 30.0
    backlog_calls: int = 250_000  # x4 events = 1M
    backlog_seconds: float = 120.0
    sample_s: float = 1.0
    scale_calls: int = 10_000  # bench.contacts_scale: the contact-matching issue's check
    scale_sustained_calls: int = 50_000


@dataclass
class Sample:
    t: float
    records: int
    requests: int
    committed: int
    rss_mb: float
    cpu_s: float
    fill: float


@dataclass
class WriterRun:
    label: str
    events: int
    calls: int
    samples: list[Sample] = field(default_factory=list)
    finished: bool = False
    exit_note: str = ""
    stats: dict[str, object] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    cpu_s: float = 0.0
    wall_s: float = 0.0


class Sandbox:
    """``callbridge sandbox`` at HubSpot's limits: the writer's portal (``TOKEN``, the
    default one, set up with ``callbridge hubspot setup`` as a deployment is), and portals
    of their own for the naive baseline and the search-limit check (each token is a portal:
    its own records, limits and stats)."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        cmd = [*CLI, "sandbox", "--port", str(self.port), "--rate-limit", f"{RATE_10S}/10s"]
        cmd += ["--search-rate", str(SEARCH_RATE)]
        for t in (TOKEN, CHECK_TOKEN, NAIVE_TOKEN, SCALE_TOKEN):
            cmd += ["--token", t]
        self.child = Child("sandbox", cmd, env("unused"), workdir / "logs")
        self.url = f"http://127.0.0.1:{self.port}"
        wait_http(self.url + "/_sandbox/stats", self.child)
        self.http = httpx.Client(base_url=self.url, timeout=60)
        setup_env = env("unused") | {"CALLBRIDGE_HUBSPOT_URL": self.url}
        setup_env["CALLBRIDGE_HUBSPOT_TOKEN"] = TOKEN
        subprocess.run([*CLI, "hubspot", "setup"], env=setup_env, check=True, capture_output=True)

    def stats(self) -> dict[str, object]:
        return dict(self.http.get("/_sandbox/stats").json())

    def config(self, **changes: int) -> dict[str, object]:
        if changes:
            self.http.post("/_sandbox/config", json=changes).raise_for_status()
        return dict(self.http.get("/_sandbox/config").json())

    def limits(self) -> tuple[int, int]:
        c = self.config()
        return int(c["rate_limit"]), int(c["search_rate"])  # type: ignore[call-overload]

    def unlimited(self) -> _Unlimited:
        return _Unlimited(self)

    def seed_contacts(self, numbers: list[str], share: float = 0.9, seed: int = 5) -> int:
        """Contacts for ``share`` of the distinct numbers (the rest are unknown callers)."""
        rng = random.Random(seed)
        distinct = sorted(set(numbers))
        chosen = [n for n in distinct if rng.random() < share]
        auth = {"authorization": f"Bearer {TOKEN}"}  # the writer's portal
        with self.unlimited():
            for start in range(0, len(chosen), 100):
                inputs = [
                    {"properties": {"phone": n, "firstname": "Caller", "lastname": n[-4:]}}
                    for n in chosen[start : start + 100]
                ]
                r = self.http.post(
                    "/crm/v3/objects/contacts/batch/create", json={"inputs": inputs}, headers=auth
                )
                r.raise_for_status()
        return len(chosen)

    def check_search_limit(self) -> tuple[int, int]:
        """Fire 2x the per-second search budget at once: how many are answered 200 and 429."""

        async def go() -> list[int]:
            async with httpx.AsyncClient(base_url=self.url, timeout=30) as client:
                body = {"filterGroups": [], "limit": 1}
                auth = {"authorization": f"Bearer {CHECK_TOKEN}"}
                rs = await asyncio.gather(
                    *(
                        client.post("/crm/v3/objects/contacts/search", json=body, headers=auth)
                        for _ in range(2 * SEARCH_RATE)
                    )
                )
                return [r.status_code for r in rs]

        codes = asyncio.run(go())
        return codes.count(200), codes.count(429)

    def external_ids_created(self, prefix: str) -> dict[str, int]:
        """``{hs_call_external_id: createdAt ms}`` for the call records whose external id
        starts with ``prefix`` (listed in the writer's portal with the limits lifted, after
        the writer stopped)."""
        out: dict[str, int] = {}
        auth = {"authorization": f"Bearer {TOKEN}"}
        params: dict[str, str | int] = {"limit": 100, "properties": "hs_call_external_id"}
        with self.unlimited():
            while True:
                page = self.http.get("/crm/v3/objects/calls", params=params, headers=auth).json()
                for rec in page.get("results", []):
                    ext = (rec.get("properties") or {}).get("hs_call_external_id") or ""
                    if ext.startswith(prefix):
                        out[ext] = _ms(rec["createdAt"])
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after:
                    return out
                params["after"] = after

    def stop(self) -> None:
        self.http.close()
        self.child.stop()


class _Unlimited:
    def __init__(self, sb: Sandbox):
        self.sb = sb

    def __enter__(self) -> None:
        self.before = self.sb.config()
        self.sb.config(**UNLIMITED)

    def __exit__(self, *exc: object) -> None:
        self.sb.config(
            rate_limit=int(self.before["rate_limit"]), search_rate=int(self.before["search_rate"])
        )  # type: ignore[call-overload]


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


# -- stats arithmetic --------------------------------------------------------------------


def requests_total(stats: dict[str, object], *, ok_only: bool = True) -> int:
    per_op = stats.get("requests", {})
    n = 0
    for codes in per_op.values():  # type: ignore[attr-defined]
        for code, count in codes.items():
            if not ok_only or code != "429":
                n += count
    return n


def requests_by_op(before: dict[str, object], after: dict[str, object]) -> dict[str, int]:
    out: dict[str, int] = {}
    for op, codes in after.get("requests", {}).items():  # type: ignore[attr-defined]
        prev = before.get("requests", {}).get(op, {})  # type: ignore[attr-defined]
        for code, count in codes.items():
            d = count - prev.get(code, 0)
            if d:
                out[f"{op} {code}"] = d
    return out


def batch_sizes(before: dict[str, object], after: dict[str, object]) -> list[int]:
    sizes: list[int] = []
    for op in WRITE_OPS:
        now = after.get("batch_inputs", {}).get(op, [])  # type: ignore[attr-defined]
        old = before.get("batch_inputs", {}).get(op, [])  # type: ignore[attr-defined]
        sizes += now[len(old) :]
    return sizes


def call_records(stats: dict[str, object]) -> int:
    return int(stats.get("records", {}).get("calls", 0))  # type: ignore[attr-defined]


# -- a writer process against the sandbox ------------------------------------------------


def run_writer(
    label: str,
    bootstrap: str,
    sb: Sandbox,
    topics: Topics,
    events: int,
    calls: int,
    seconds: float,
    workdir: Path,
    sample_s: float = 1.0,
    extra_env: dict[str, str] | None = None,
    until_records: bool = True,
    stats: Callable[[], dict[str, object]] | None = None,
) -> WriterRun:
    """Start ``callbridge writer`` on a preloaded topic; sample until every event is
    committed (and every call has its record), the process exits, or ``seconds`` pass.
    ``stats``: the sandbox stats of the writer's portal (default: ``sb.stats``). The
    writer's contact index starts empty, in ``workdir`` (unless ``extra_env`` names one)."""
    run = WriterRun(label, events, calls)
    stats_of = stats or sb.stats
    before = stats_of()
    base_records = call_records(before)
    base_requests = requests_total(before)
    watch = kafkaio.GroupWatch(bootstrap, topics.events, topics.group)
    writer_env = env(bootstrap, topics.env())
    writer_env.update(
        {
            "CALLBRIDGE_HUBSPOT_URL": sb.url,
            "CALLBRIDGE_HUBSPOT_TOKEN": TOKEN,
            "CALLBRIDGE_HUBSPOT_RATE": str(RATE_10S),
            "CALLBRIDGE_HUBSPOT_SEARCH_RATE": str(SEARCH_RATE),
            "CALLBRIDGE_CONTACT_INDEX_DIR": str(workdir / f"contact-index-{topics.suffix}"),
        }
    )
    writer_env.update(extra_env or {})
    health = free_port()
    child = Child(
        f"writer-{topics.suffix}",
        [*CLI, "writer", "--health-port", str(health), "--health-host", "127.0.0.1"],
        writer_env,
        workdir / "logs",
    )
    started = time.monotonic()
    sandbox_cpu0 = sb.child.cpu_s()
    try:
        while True:
            time.sleep(sample_s)
            t = time.monotonic() - started
            if not child.alive():
                run.exit_note = (
                    f"writer exited with {child.proc.returncode}: {child.tail(1)[-160:]}"
                )
                break
            stats = stats_of()
            sizes = batch_sizes(before, stats)
            s = Sample(
                t=round(t, 2),
                records=call_records(stats) - base_records,
                requests=requests_total(stats) - base_requests,
                committed=watch.committed(),
                rss_mb=round(child.rss_mb(), 1),
                cpu_s=round(child.cpu_s(), 2),
                fill=round(sum(sizes) / (100 * len(sizes)), 3) if sizes else 0.0,
            )
            run.samples.append(s)
            if len(run.samples) % max(1, round(10 / sample_s)) == 0:
                say(
                    f"  {label}: {t:5.0f} s  records {s.records:>8,}  committed {s.committed:>9,}"
                    f"/{events:,}  requests {s.requests:>6,}  RSS {s.rss_mb:6.1f} MB"
                )
            if s.committed >= events and (not until_records or s.records >= calls):
                run.finished = True
                break
            if t >= seconds:
                run.exit_note = f"{seconds:.0f} s budget, not drained"
                break
        run.wall_s = time.monotonic() - started
        if child.alive():
            run.peak_rss_mb = child.peak_rss_mb()
            run.cpu_s = child.cpu_s()
    finally:
        child.stop()
        watch.close()
    sandbox_cpu = sb.child.cpu_s() - sandbox_cpu0
    after = stats_of()
    run.stats = {
        "writer_cpu_pct": round(100 * run.cpu_s / max(run.wall_s, 1e-9), 1),
        "sandbox_cpu_pct": round(100 * sandbox_cpu / max(run.wall_s, 1e-9), 1),
        "requests_by_op": requests_by_op(before, after),
        "requests": requests_total(after) - base_requests,
        "rate_limited_429": requests_total(after, ok_only=False)
        - requests_total(after)
        - (requests_total(before, ok_only=False) - requests_total(before)),
        "records": call_records(after) - base_records,
        "batch_sizes": batch_sizes(before, after),
    }
    return run


def steady_rate(run: WriterRun, skip_s: float = 10.0) -> tuple[float, str]:
    """Records/s after the first rolling window (HubSpot lets a fresh token burst 190
    requests in its first 10 s), from the first record on; the overall rate if the run
    was too short to have a steady part."""
    first = next((s for s in run.samples if s.records > 0), None)
    if first is None:
        return 0.0, "no record written"
    last = run.samples[-1]
    done = next((s for s in run.samples if s.records >= run.calls), last)
    begin = next((s for s in run.samples if s.t >= first.t + skip_s), None)
    if begin is None or done.t - begin.t < 5:
        span = done.t - first.t + 1e-9
        return done.records / max(
            span, 1.0
        ), "overall (run shorter than 15 s after the first write)"
    return (done.records - begin.records) / (
        done.t - begin.t
    ), f"steady, after the first {skip_s:.0f} s"


# -- naive baseline ----------------------------------------------------------------------


async def _naive(url: str, records: list[bytes], seconds: float) -> dict[str, float]:
    """One ``createCall`` per event, paced to 190 per rolling 10 s on its own token,
    retrying 429s: what an integration without coalescing does."""
    import orjson

    sent: list[float] = []
    done = requests = throttled = 0
    stop_at = time.monotonic() + seconds
    queue = list(reversed(records))

    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        auth = {"authorization": f"Bearer {NAIVE_TOKEN}", "content-type": "application/json"}

        async def worker() -> None:
            nonlocal done, requests, throttled
            while queue and time.monotonic() < stop_at:
                now = time.monotonic()
                while sent and sent[0] <= now - 10:
                    sent.pop(0)
                if len(sent) >= RATE_10S:
                    await asyncio.sleep(max(0.01, min(sent[0] + 10, stop_at) - now))
                    continue
                value = orjson.loads(queue.pop())
                sent.append(now)
                body = orjson.dumps({"properties": value["properties"]})
                while True:
                    r = await client.post("/crm/v3/objects/calls", content=body, headers=auth)
                    requests += 1
                    if r.status_code != 429:
                        break
                    throttled += 1
                    await asyncio.sleep(1.0)
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(4)))
        wall = time.monotonic() - started
    return {"events": done, "requests": requests, "throttled": throttled, "wall_s": wall}


# -- the parts ---------------------------------------------------------------------------


def part_writer(bootstrap: str, sb: Sandbox, plan: WriterPlan, workdir: Path) -> dict[str, object]:
    out: dict[str, object] = {}
    t0 = time.monotonic()
    records, callers = backlog(plan.calls, seed=11)
    contacts = sb.seed_contacts(callers)
    topics = Topics()
    kafkaio.create_topic(bootstrap, topics.events)
    kafkaio.preload(bootstrap, topics.events, records)
    out["prepare_s"] = round(time.monotonic() - t0, 1)
    out["limits"] = sb.limits()
    ok, limited = sb.check_search_limit()
    out["search_check"] = {"ok": ok, "429": limited}
    out["contacts"] = contacts
    out["distinct_callers"] = len(set(callers))
    events = len(records)
    run = run_writer(
        "callbridge writer",
        bootstrap,
        sb,
        topics,
        events,
        plan.calls,
        plan.seconds,
        workdir,
        plan.sample_s,
    )
    out["run"] = run
    rate, how = steady_rate(run)
    out["records_per_s"], out["rate_basis"] = rate, how
    sizes = run.stats["batch_sizes"]
    out["batch_fill"] = sum(sizes) / (100 * len(sizes)) if sizes else 0.0  # type: ignore[arg-type]
    written = max(1, int(run.stats["records"]))  # type: ignore[call-overload]
    out["requests_per_100_calls"] = 100 * int(run.stats["requests"]) / written  # type: ignore[call-overload]
    committed = run.samples[-1].committed if run.samples else 0
    out["committed"] = committed
    out["cpu_s_per_10k_events"] = 10_000 * run.cpu_s / committed if committed > 0 else 0.0
    # naive baseline on the same backlog, its own token, a bounded sample
    sample = [value for _, value, _ in records]
    naive = asyncio.run(_naive(sb.url, sample, plan.naive_seconds))
    # 429s are not counted as spent requests (HubSpot does not count them; nor does the writer's figure)
    per_event = (naive["requests"] - naive["throttled"]) / max(1, naive["events"])
    events_per_call = events / plan.calls
    steady_events_s = RATE_10S / 10.0
    out["naive"] = {
        **naive,
        "requests_per_event": per_event,
        "requests_per_100_calls": 100 * per_event * events_per_call,
        "events_per_call": events_per_call,
        "extrapolated_wall_s": events / steady_events_s,
        "extrapolated_records_per_s": steady_events_s / events_per_call,
    }
    return out


def writer_report(w: dict[str, object]) -> str:
    run: WriterRun = w["run"]  # type: ignore[assignment]
    naive: dict[str, float] = w["naive"]  # type: ignore[assignment]
    rate = float(w["records_per_s"])  # type: ignore[arg-type]
    status = "drained" if run.finished else run.exit_note
    rows = [
        [
            "callbridge writer (measured)",
            fmt(run.stats["records"]),  # type: ignore[arg-type]
            fmt(rate),
            f"{rate / CEILING:.3f}",
            f"{float(w['batch_fill']):.3f}",  # type: ignore[arg-type]
            fmt(float(w["requests_per_100_calls"]), 1),  # type: ignore[arg-type]
            fmt(float(w["cpu_s_per_10k_events"]), 2),  # type: ignore[arg-type]
            fmt(run.peak_rss_mb),
            f"{run.stats['writer_cpu_pct']} / {run.stats['sandbox_cpu_pct']}",
            f"{run.wall_s:.0f} s ({status})",
        ],
        [
            "naive: 1 createCall/event (extrapolated)",
            f"{fmt(naive['events'])} of {fmt(run.events)}",
            fmt(naive["extrapolated_records_per_s"], 1),
            f"{naive['extrapolated_records_per_s'] / CEILING:.4f}",
            "-",
            fmt(naive["requests_per_100_calls"], 1),
            "-",
            "-",
            "-",
            f"{naive['wall_s']:.0f} s sample; all: {naive['extrapolated_wall_s'] / 3600:.1f} h",
        ],
    ]
    ok, limited = w["search_check"]["ok"], w["search_check"]["429"]  # type: ignore[index]
    limit, search = w["limits"]  # type: ignore[misc]
    head = (
        f"\nWriter vs HubSpot's ceiling ({limit} requests/10 s x 100 = {CEILING:,.0f} records/s): "
        f"{run.events:,} events for {run.calls:,} calls (4 per call, shuffled, +10 % duplicates), "
        f"{w['distinct_callers']:,} distinct callers, {w['contacts']:,} of them contacts in the sandbox"
    )
    notes = [
        f"sandbox limits: {limit}/10 s, {search} searches/s per token "
        f"(check: {2 * SEARCH_RATE} searches at once -> {ok} answered, {limited} x 429)",
        f"writer records/s: {w['rate_basis']}; HubSpot requests by operation: "
        + ", ".join(f"{k} x{v}" for k, v in run.stats["requests_by_op"].items()),  # type: ignore[attr-defined]
        f"naive: {naive['events']:.0f} events in {naive['wall_s']:.0f} s, {naive['requests']:.0f} requests "
        f"({naive['throttled']:.0f} answered 429); extrapolated to the whole backlog at 19 req/s "
        f"and {naive['events_per_call']:.1f} events per call (one record per event: duplicates)",
    ]
    return (
        table(
            head,
            [
                "writer",
                "records",
                "records/s",
                "ratio",
                "batch fill",
                "req/100 calls",
                "CPU s/10k ev",
                "peak RSS MB",
                "CPU % writer/sandbox",
                "wall",
            ],
            rows,
        )
        + "\n"
        + "\n".join(notes)
    )


def part_e2e(
    bootstrap: str, sb: Sandbox, rate: float, seconds: float, linger_ms: int, workdir: Path
) -> dict[str, object]:
    """Webhooks at ``rate``/s through the real ingress and writer; latency from the Kafka
    record's timestamp (set by the ingress at produce) to the record's ``createdAt``."""
    topics = Topics()
    ingress_port, health = free_port(), free_port()
    e = env(bootstrap, topics.env())
    e.update(
        {
            "CALLBRIDGE_HUBSPOT_URL": sb.url,
            "CALLBRIDGE_HUBSPOT_TOKEN": TOKEN,
            "CALLBRIDGE_HUBSPOT_RATE": str(RATE_10S),
            "CALLBRIDGE_HUBSPOT_SEARCH_RATE": str(SEARCH_RATE),
            "CALLBRIDGE_WRITER_LINGER_MS": str(linger_ms),
            "CALLBRIDGE_CONTACT_INDEX_DIR": str(workdir / f"contact-index-{topics.suffix}"),
        }
    )
    ingress = Child(
        "e2e-ingress",
        [*CLI, "ingress", "--host", "127.0.0.1", "--port", str(ingress_port)]
        + ["--metrics-port", str(free_port())],
        e,
        workdir / "logs",
    )
    url = f"http://127.0.0.1:{ingress_port}"
    writer = None
    try:
        wait_http(url + "/readyz", ingress)
        writer = Child(
            "e2e-writer",
            [*CLI, "writer", "--health-port", str(health), "--health-host", "127.0.0.1"],
            e,
            workdir / "logs",
        )
        wait_http(f"http://127.0.0.1:{health}/readyz", writer, timeout_s=60)
        time.sleep(2)  # partitions assigned
        tag = f"e2e{topics.suffix}"
        size_hint = int(rate * seconds * 1.2) + 1000
        sb.seed_contacts(caller_numbers(size_hint, random.Random(zlib_seed(tag))))
        load = run_wrk(url, workdir, connections=16, seconds=seconds, rate=rate, tag=tag)
        sent = load.requests - load.non2xx
        deadline = time.monotonic() + linger_ms / 1000 + 30
        base = None
        while time.monotonic() < deadline:  # until the writer settled all it was sent
            committed = kafkaio.GroupWatch(bootstrap, topics.events, topics.group)
            done = committed.committed()
            committed.close()
            if done >= sent:
                break
            base = done
            time.sleep(0.5)
    finally:
        if writer is not None:
            writer.stop()
        ingress.stop()
    in_kafka = kafkaio.end_offsets(bootstrap, topics.events)
    produced = kafkaio.read_timestamps(bootstrap, topics.events, in_kafka)
    created = sb.external_ids_created(f"generic:{tag}-")
    lat = [created[k] - ts for k, ts in produced.items() if k in created]
    return {
        "offered_rps": rate,
        "got_rps": load.rps,
        "accepted_202": sent,
        "sent": len(produced),
        "visible": len(lat),
        "missing": len(produced) - len(lat),
        "p50_ms": pct(lat, 50),
        "p99_ms": pct(lat, 99),
        "max_ms": max(lat) if lat else float("nan"),
        "linger_ms": linger_ms,
        "ingress_p50_ms": load.p50_ms,
        "ingress_p99_ms": load.p99_ms,
        "last_committed_seen": base,
    }


def zlib_seed(tag: str) -> int:
    import zlib

    return zlib.crc32(tag.encode())


def e2e_report(e: dict[str, object]) -> str:
    rows = [
        [
            fmt(float(e["offered_rps"]), 0),  # type: ignore[arg-type]
            f"{e['visible']:,} of {e['sent']:,}",
            fmt(float(e["p50_ms"])),  # type: ignore[arg-type]
            fmt(float(e["p99_ms"])),  # type: ignore[arg-type]
            fmt(float(e["max_ms"])),  # type: ignore[arg-type]
            fmt(float(e["linger_ms"])),  # type: ignore[arg-type]
            fmt(float(e["linger_ms"]) + 1000),  # type: ignore[arg-type]
            f"{float(e['ingress_p50_ms']):.1f} / {float(e['ingress_p99_ms']):.1f}",  # type: ignore[arg-type]
        ]
    ]
    return table(
        "\nEnd to end: webhook -> ingress -> Kafka -> writer -> record in the sandbox "
        "(Kafka timestamp to the record's createdAt), one call per webhook, at half the "
        "writer's measured rate",
        [
            "calls/s",
            "records visible",
            "p50 ms",
            "p99 ms",
            "max ms",
            "linger ms",
            "target p99",
            "ingress p50/p99 ms",
        ],
        rows,
    )


def part_backlog(bootstrap: str, sb: Sandbox, plan: WriterPlan, workdir: Path) -> dict[str, object]:
    """Writer RSS while it drains a backlog of ``4 x backlog_calls`` events, HubSpot's
    limits lifted (sandbox and the writer's own pacing) so draining runs at CPU speed."""
    topics = Topics()
    kafkaio.create_topic(bootstrap, topics.events)
    t0 = time.monotonic()
    events = kafkaio.preload(bootstrap, topics.events, cloned_backlog(plan.backlog_calls, seed=23))
    preload_s = time.monotonic() - t0
    with sb.unlimited():
        run = run_writer(
            "backlog",
            bootstrap,
            sb,
            topics,
            events,
            plan.backlog_calls,
            plan.backlog_seconds,
            workdir,
            plan.sample_s,
            extra_env={
                "CALLBRIDGE_HUBSPOT_RATE": "100000",
                "CALLBRIDGE_HUBSPOT_SEARCH_RATE": "1000",
            },
            until_records=False,
        )
    rss = [s.rss_mb for s in run.samples]
    half = len(rss) // 2
    return {
        "run": run,
        "events": events,
        "preload_s": preload_s,
        "rss_start_mb": rss[0] if rss else 0.0,
        "rss_end_mb": rss[-1] if rss else 0.0,
        "rss_peak_mb": run.peak_rss_mb or (max(rss) if rss else 0.0),
        "rss_second_half_growth_mb": (rss[-1] - rss[half]) if len(rss) > 2 else 0.0,
        "drained": run.samples[-1].committed if run.samples else 0,
    }


def backlog_report(b: dict[str, object]) -> str:
    run: WriterRun = b["run"]  # type: ignore[assignment]
    drained = int(b["drained"])  # type: ignore[call-overload]
    wall = max(run.wall_s, 1e-9)
    rows = [
        [
            f"{int(b['events']):,}",  # type: ignore[call-overload]
            f"{drained:,} ({100 * drained / max(1, int(b['events'])):.0f} %)",  # type: ignore[call-overload]
            fmt(drained / wall),
            fmt(float(b["rss_start_mb"])),  # type: ignore[arg-type]
            fmt(float(b["rss_peak_mb"])),  # type: ignore[arg-type]
            fmt(float(b["rss_end_mb"])),  # type: ignore[arg-type]
            fmt(float(b["rss_second_half_growth_mb"]), 1),  # type: ignore[arg-type]
            f"{run.stats['writer_cpu_pct']} / {run.stats['sandbox_cpu_pct']}",
            f"{run.wall_s:.0f} s ({'drained' if run.finished else run.exit_note})",
        ]
    ]
    return table(
        "\nWriter memory under backlog (HubSpot's limits lifted in the sandbox and the writer; RSS "
        "sampled each second, peak = the kernel's VmHWM)",
        [
            "backlog events",
            "committed",
            "events/s",
            "RSS start MB",
            "peak MB",
            "end MB",
            "2nd-half growth MB",
            "CPU % writer/sandbox",
            "wall",
        ],
        rows,
    )
