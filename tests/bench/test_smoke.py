"""`make bench-smoke` keeps the benchmark code working: every part runs at tiny sizes.

Benchmarks are not tests: nothing here asserts on speed, only that each part ran and
wrote its figures as numbers.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.localkafka import LocalKafka

ROOT = Path(__file__).resolve().parents[2]

KEYS = (
    "ingress_rps",
    "ceiling_rps",
    "ingress_ratio",
    "ingress_p99_ms_at_1k",
    "writer_records_per_s",
    "writer_ceiling_records_per_s",
    "writer_ratio",
    "batch_fill",
    "requests_per_100_calls",
    "naive_requests_per_100_calls",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "writer_peak_rss_mb",
    "contacts_cold_searches",
    "contacts_cold_ratio",
    "contacts_warm_ratio",
    "contacts_sustained_steady_ratio",
)


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(280)
def test_bench_smoke_writes_every_figure_as_a_number(
    kafka_broker: LocalKafka, tmp_path: Path
) -> None:
    """`python -m bench --smoke` runs every part and writes latest.json with numeric figures
    and the three plots."""
    assert shutil.which("wrk"), "wrk is missing: `make bench-tools` installs it"
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--bootstrap", kafka_broker.bootstrap]
        + ["--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=270,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    assert result["errors"] == []
    for key in KEYS:
        value = result.get(key)
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value), (key, value)
    assert result["writer_ceiling_records_per_s"] == 1900
    assert isinstance(result["machine"]["cores"], int) and result["machine"]["memory_mb"] > 0
    assert result["timestamp"]
    for png in ("ingress_latency.png", "writer_records.png", "writer_rss.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    for table in ("Ingress:", "Writer vs HubSpot", "End to end", "memory under backlog"):
        assert table in proc.stdout, table
    assert "Contact matching at scale" in proc.stdout
    # every call of the contact-matching check is associated with its caller's contact
    for run in ("cold", "warm", "sustained"):
        assert result[f"contacts_{run}_right_contact"] == result[f"contacts_{run}_calls"], run
