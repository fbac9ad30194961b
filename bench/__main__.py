"""``make bench``: callbridge against its ceilings, side by side in one run.

1. ingress (wrk) against bare Starlette; uvloop against asyncio's loop; latency against
   offered rate; a py-spy profile; aiokafka against confluent-kafka on the produce path;
2. the writer against HubSpot's 1,900 records/s ceiling, beside a naive one-create-per-event
   baseline;
3. end to end, webhook to record, at half the writer's measured rate;
4. writer memory while draining a 1M-event backlog.

Tables on stdout, figures in ``bench/results/latest.json``, plots beside it.

    .venv/bin/python -m bench              # the full run (< 15 min on 2 cores)
    .venv/bin/python -m bench --smoke      # seconds: every part, tiny sizes (make test)
    .venv/bin/python -m bench --bootstrap 127.0.0.1:9092   # an already running broker
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import tempfile
import time
import traceback
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import contacts_scale, ingress, kafkaio, plots, produce, writer
from bench.common import RESULTS, machine, say
from service.config import Settings

PARTS = ("ingress", "produce", "writer", "contacts", "e2e", "backlog")


def plans(smoke: bool) -> tuple[ingress.IngressPlan, writer.WriterPlan, tuple[int, ...], float]:
    if smoke:
        return (
            ingress.IngressPlan(
                seconds=1,
                connections=(8,),
                rates=(200,),
                rate_seconds=1,
                rate_connections=8,
                asyncio_loop=False,
                profile_seconds=1,
                rounds=1,
            ),
            writer.WriterPlan(
                calls=200,
                seconds=60,
                naive_seconds=2,
                e2e_seconds=2,
                backlog_calls=1000,
                backlog_seconds=20,
                sample_s=0.5,
                scale_calls=200,
                scale_sustained_calls=400,
            ),
            (4,),
            0.5,
        )
    return ingress.IngressPlan(), writer.WriterPlan(), (16, 64), 3.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, every part (seconds)")
    parser.add_argument("--bootstrap", help="use this Kafka broker instead of starting one")
    parser.add_argument(
        "--out",
        type=Path,
        help="where latest.json and the plots go (bench/results; a temporary folder in --smoke)",
    )
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    args = parser.parse_args()
    if args.out is None:
        args.out = (
            Path(tempfile.mkdtemp(prefix="callbridge-bench-smoke-")) if args.smoke else RESULTS
        )
    started = time.monotonic()
    ip, wp, produce_levels, produce_s = plans(args.smoke)
    workdir = Path(tempfile.mkdtemp(prefix="callbridge-bench-"))
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        from service.localkafka import LocalKafka, free_port

        broker = LocalKafka(
            data_dir=workdir / "kafka", port=free_port(), controller_port=free_port()
        )
        broker.start(fresh=True)
        asyncio.run(broker.wait_ready())
        bootstrap = broker.bootstrap
    result: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "smoke" if args.smoke else "full",
        "machine": machine(),
        "errors": [],
    }
    details: dict[str, Any] = {}
    try:
        run_parts(
            args.parts, bootstrap, ip, wp, produce_levels, produce_s, workdir, result, details
        )
    finally:
        if broker is not None:
            broker.stop()
    result["wall_s"] = round(time.monotonic() - started, 1)
    result["machine"]["load_avg_1m_at_end"] = round(os.getloadavg()[0], 2)
    result["details"] = details
    args.out.mkdir(parents=True, exist_ok=True)
    make_plots(details, args.out, result)
    (args.out / "latest.json").write_text(json.dumps(_clean(result), indent=2) + "\n")
    say(f"\nwrote {args.out / 'latest.json'} and plots in {time.monotonic() - started:.0f} s")
    shutil.rmtree(workdir, ignore_errors=True)
    if result["errors"]:
        say("errors:\n" + "\n".join(result["errors"]))
        raise SystemExit(1)


def run_parts(
    parts: list[str],
    bootstrap: str,
    ip: ingress.IngressPlan,
    wp: writer.WriterPlan,
    produce_levels: tuple[int, ...],
    produce_s: float,
    workdir: Path,
    result: dict[str, Any],
    details: dict[str, Any],
) -> None:
    def attempt(name: str, fn: Any) -> None:
        try:
            fn()
        except Exception as exc:
            result["errors"].append(f"{name}: {exc!r}")
            say(f"\n{name} failed: {traceback.format_exc()}")

    if "ingress" in parts:
        attempt("ingress", lambda: _ingress(bootstrap, ip, workdir, result, details))
    if "produce" in parts:
        attempt("produce", lambda: _produce(bootstrap, produce_levels, produce_s, details))
    if not {"writer", "contacts", "e2e", "backlog"} & set(parts):
        return
    sb = writer.Sandbox(workdir)
    try:
        if "writer" in parts:
            attempt("writer", lambda: _writer(bootstrap, sb, wp, workdir, result, details))
        if "contacts" in parts:
            attempt("contacts", lambda: _contacts(bootstrap, sb, wp, workdir, result, details))
        if "e2e" in parts:
            attempt("e2e", lambda: _e2e(bootstrap, sb, wp, workdir, result, details))
        if "backlog" in parts:
            attempt("backlog", lambda: _backlog(bootstrap, sb, wp, workdir, result, details))
    finally:
        sb.stop()


def _ingress(
    bootstrap: str,
    plan: ingress.IngressPlan,
    workdir: Path,
    result: dict[str, Any],
    details: dict[str, Any],
) -> None:
    res = ingress.run(bootstrap, plan, workdir)
    say(ingress.report(res))
    say("\n" + ingress.profile_report(res.profile))
    top = max(plan.connections)
    by_c = {k: {r.connections: r for r in runs} for k, runs in res.runs.items()}
    ing, bare = by_c["ingress"][top], by_c["bare"][top]
    at_1k = min(res.paced["ingress"], key=lambda r: abs((r.offered_rps or 0) - 1000))
    result.update(
        {
            "ingress_rps": ing.rps,
            "ceiling_rps": bare.rps,
            "ingress_ratio": ing.rps / bare.rps,
            "ingress_p99_ms_at_1k": at_1k.p99_ms,
            "ingress_connections": top,
            "ingress_p99_ms_at_1k_offered_rps": at_1k.offered_rps,
        }
    )
    if "ingress-asyncio" in by_c:
        before = by_c["ingress-asyncio"][top]
        result["ingress_rps_asyncio_loop"] = before.rps
        result["ingress_uvloop_speedup"] = ing.rps / before.rps
    details["ingress"] = {
        "runs": {k: [r.as_json() for r in v] for k, v in res.runs.items()},
        "all_runs": {k: [r.as_json() for r in v] for k, v in res.all_runs.items()},
        "paced": {k: [r.as_json() for r in v] for k, v in res.paced.items()},
        "accepted": res.accepted,
        "kafka_records": res.kafka_records,
        "profile": res.profile,
    }


def _produce(
    bootstrap: str, levels: tuple[int, ...], seconds: float, details: dict[str, Any]
) -> None:
    topic = f"bench.produce.{int(time.time())}"
    kafkaio.create_topic(bootstrap, topic)
    rows = produce.run_all(bootstrap, topic, levels, seconds)
    say(produce.report(rows))
    details["produce"] = rows


def _writer(
    bootstrap: str,
    sb: writer.Sandbox,
    plan: writer.WriterPlan,
    workdir: Path,
    result: dict[str, Any],
    details: dict[str, Any],
) -> None:
    w = writer.part_writer(bootstrap, sb, plan, workdir)
    say(writer.writer_report(w))
    run: writer.WriterRun = w["run"]
    rate = float(w["records_per_s"])
    result.update(
        {
            "writer_records_per_s": rate,
            "writer_ceiling_records_per_s": writer.CEILING,
            "writer_ratio": rate / writer.CEILING,
            "batch_fill": float(w["batch_fill"]),
            "requests_per_100_calls": float(w["requests_per_100_calls"]),
            "naive_requests_per_100_calls": float(w["naive"]["requests_per_100_calls"]),
            "writer_peak_rss_mb": run.peak_rss_mb,
            "writer_cpu_s_per_10k_events": float(w["cpu_s_per_10k_events"]),
            "writer_drained": 1 if run.finished else 0,
            "naive_records_per_s_extrapolated": float(w["naive"]["extrapolated_records_per_s"]),
        }
    )
    details["writer"] = {
        **{k: v for k, v in w.items() if k != "run"},
        "run": _run_json(run),
    }


def _contacts(
    bootstrap: str,
    sb: writer.Sandbox,
    plan: writer.WriterPlan,
    workdir: Path,
    result: dict[str, Any],
    details: dict[str, Any],
) -> None:
    scale = contacts_scale.ScalePlan(
        calls=plan.scale_calls,
        sustained_calls=plan.scale_sustained_calls,
        quiet_s=11.0 if plan.scale_calls >= 1000 else 0.5,
    )
    out = contacts_scale.part_contacts_scale(bootstrap, sb, scale, workdir)
    say(contacts_scale.scale_report(out))
    for r in out["runs"]:  # type: ignore[attr-defined]
        name = f"contacts_{r['label']}"
        result[f"{name}_searches"] = r["searches"]
        result[f"{name}_list_pages"] = r["list_pages"]
        result[f"{name}_records_per_s"] = r["records_per_s_from_start"]
        result[f"{name}_ratio"] = float(r["records_per_s_from_start"]) / writer.CEILING
        result[f"{name}_steady_ratio"] = float(r["records_per_s_steady"]) / writer.CEILING
        result[f"{name}_right_contact"] = r["associated_right"]
        result[f"{name}_calls"] = r["calls"]
    details["contacts"] = out


def _e2e(
    bootstrap: str,
    sb: writer.Sandbox,
    plan: writer.WriterPlan,
    workdir: Path,
    result: dict[str, Any],
    details: dict[str, Any],
) -> None:
    measured = float(result.get("writer_records_per_s") or 0.0)
    rate = max(5.0, min(measured, writer.CEILING) / 2)
    linger = Settings().writer_linger_ms
    e = writer.part_e2e(bootstrap, sb, rate, plan.e2e_seconds, linger, workdir)
    say(writer.e2e_report(e))
    result.update(
        {
            "e2e_p50_ms": e["p50_ms"],
            "e2e_p99_ms": e["p99_ms"],
            "e2e_rate_calls_per_s": rate,
            "writer_linger_ms": linger,
        }
    )
    details["e2e"] = e


def _backlog(
    bootstrap: str,
    sb: writer.Sandbox,
    plan: writer.WriterPlan,
    workdir: Path,
    result: dict[str, Any],
    details: dict[str, Any],
) -> None:
    b = writer.part_backlog(bootstrap, sb, plan, workdir)
    say(writer.backlog_report(b))
    run: writer.WriterRun = b["run"]
    result["backlog_events"] = b["events"]
    result["backlog_drained_events"] = b["drained"]
    result["backlog_peak_rss_mb"] = b["rss_peak_mb"]
    result["backlog_rss_second_half_growth_mb"] = b["rss_second_half_growth_mb"]
    result["writer_peak_rss_mb"] = max(
        float(result.get("writer_peak_rss_mb", 0.0)), float(b["rss_peak_mb"])
    )
    details["backlog"] = {**{k: v for k, v in b.items() if k != "run"}, "run": _run_json(run)}


def _run_json(run: writer.WriterRun) -> dict[str, Any]:
    d = asdict(run)
    sizes = d["stats"].pop("batch_sizes", [])
    d["stats"]["batches"] = len(sizes)
    d["stats"]["batch_inputs"] = sum(sizes)
    return d


def make_plots(details: dict[str, Any], out: Path, result: dict[str, Any]) -> None:
    try:
        if "ingress" in details:
            plots.ingress_latency(details["ingress"]["paced"], out / "ingress_latency.png")
        if "writer" in details:
            plots.writer_progress(
                details["writer"]["run"]["samples"], writer.CEILING, out / "writer_records.png"
            )
        if "backlog" in details:
            plots.rss(details["backlog"]["run"]["samples"], out / "writer_rss.png")
    except Exception as exc:
        result["errors"].append(f"plots: {exc!r}")


def _clean(value: Any) -> Any:
    """JSON without NaN/inf (they are not JSON): such a figure becomes null."""
    if isinstance(value, float):
        return round(value, 4) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


if __name__ == "__main__":
    main()
