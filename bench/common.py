"""What every part of the bench shares: tables, child processes, their RSS and CPU, topics.

The bench drives callbridge only through its processes (``callbridge ingress|writer|
sandbox``) and what they expose: HTTP answers, ``/_sandbox/stats``, Kafka offsets and
``/proc``. It never imports the writer, so it keeps measuring while the writer is rebuilt.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SECRET = "bench-secret"
TOKEN = "sandbox-token"
CLI = [sys.executable, "-m", "service.cli"]


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A right-aligned plain-text table with a title line."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]
    line = "  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))
    out = [title, line, "-" * len(line)]
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(out)


def say(text: str = "") -> None:
    print(text, flush=True)


def machine() -> dict[str, object]:
    return {
        "cores": os.cpu_count() or 0,
        "memory_mb": round(psutil.virtual_memory().total / 2**20),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_avg_1m_at_start": round(os.getloadavg()[0], 2),
    }


@dataclass
class Topics:
    """Fresh topic names and a fresh consumer group: every part starts from empty."""

    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def events(self) -> str:
        return f"bench.events.{self.suffix}"

    def env(self) -> dict[str, str]:
        s = self.suffix
        return {
            "CALLBRIDGE_TOPIC_EVENTS": self.events,
            "CALLBRIDGE_TOPIC_IDS": f"bench.ids.{s}",
            "CALLBRIDGE_TOPIC_DLQ": f"bench.dlq.{s}",
            "CALLBRIDGE_TOPIC_PARKED": f"bench.parked.{s}",
            "CALLBRIDGE_WRITER_GROUP": self.group,
        }

    @property
    def group(self) -> str:
        return f"bench-writer-{self.suffix}"


def env(bootstrap: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a callbridge child: nothing inherited from ``CALLBRIDGE_*``."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    out.update(
        {
            "CALLBRIDGE_KAFKA_BOOTSTRAP": bootstrap,
            "CALLBRIDGE_GENERIC_SECRET": SECRET,
            "CALLBRIDGE_LOG_LEVEL": "WARNING",
            "CALLBRIDGE_TOPIC_PARTITIONS": "6",
        }
    )
    out.update(extra or {})
    return out


class Child:
    """A child process with its output in a log file, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, cmd: Sequence[str], environ: dict[str, str], logdir: Path):
        self.name = name
        logdir.mkdir(parents=True, exist_ok=True)
        self.log_path = logdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            list(cmd), cwd=ROOT, env=environ, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.ps = psutil.Process(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_mb(self) -> float:
        return self.ps.memory_info().rss / 2**20

    def peak_rss_mb(self) -> float:
        """The kernel's high-water mark (``VmHWM``): the true peak, not a sampled one."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return self.rss_mb()

    def cpu_s(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def tail(self, lines: int = 15) -> str:
        self._log.flush()
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout_s: float = 30.0) -> int | None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


def wait_http(url: str, child: Child | None = None, timeout_s: float = 60.0) -> None:
    """Until ``url`` answers 200 (raising with the child's log if it died or never did)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if child is not None and not child.alive():
            raise RuntimeError(f"{child.name} exited:\n{child.tail()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    tail = f":\n{child.tail()}" if child is not None else ""
    raise RuntimeError(f"{url} not ready after {timeout_s:.0f} s{tail}")


def pct(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def fmt(value: float, digits: int = 0) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:,.{digits}f}"
