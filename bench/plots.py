"""PNG plots beside ``latest.json`` (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def ingress_latency(paced: dict[str, list[dict[str, Any]]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, runs in paced.items():
        if not runs:
            continue
        xs = [r["offered_rps"] for r in runs]
        ax.plot(xs, [r["p50_ms"] for r in runs], "o-", label=f"{kind} p50")
        ax.plot(xs, [r["p99_ms"] for r in runs], "s--", label=f"{kind} p99")
    ax.set_xlabel("offered rate (req/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_yscale("log")
    ax.set_title("Ingress latency against offered rate (wrk, paced)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def writer_progress(samples: list[dict[str, Any]], ceiling: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    ts = [s["t"] for s in samples]
    rates = []  # over a trailing 5 s window: per-sample rates are spikes (batches land at once)
    for i, s in enumerate(samples):
        j = i
        while j > 0 and s["t"] - samples[j - 1]["t"] <= 5.0:
            j -= 1
        span = s["t"] - samples[j]["t"]
        rates.append((s["records"] - samples[j]["records"]) / span if span > 0 else 0.0)
    ax.plot(ts, rates, label="records/s (trailing 5 s)")
    ax.axhline(ceiling, color="grey", linestyle=":", label=f"ceiling {ceiling:,.0f}/s")
    ax.set_xlabel("seconds since the writer started")
    ax.set_ylabel("records/s")
    ax2 = ax.twinx()
    ax2.plot(ts, [s["fill"] for s in samples], color="tab:orange", label="batch fill (cumulative)")
    ax2.set_ylim(0, 1.05)
    ax2.set_ylabel("batch fill")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right")
    ax.set_title("Writer against HubSpot's ceiling")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def rss(samples: list[dict[str, Any]], path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    ts = [s["t"] for s in samples]
    ax.plot(ts, [s["rss_mb"] for s in samples], label="RSS MB")
    ax.set_xlabel("seconds since the writer started")
    ax.set_ylabel("RSS (MB)")
    ax.set_ylim(bottom=0)
    ax2 = ax.twinx()
    ax2.plot(ts, [s["committed"] for s in samples], color="tab:green", label="events committed")
    ax2.set_ylabel("events committed")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="lower right")
    ax.set_title("Writer RSS while draining the backlog")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
