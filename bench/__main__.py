"""``make bench``: every benchmark, each printing tables of measured figures.

.venv/bin/python -m bench            # pipeline (ingress + writer) and sandbox throughput
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    runs = [
        [sys.executable, "-m", "bench.pipeline"],
        [
            sys.executable,
            "bench/sandbox_throughput.py",
            "--seconds",
            "3",
            "--concurrency",
            "1",
            "4",
            "16",
        ],
    ]
    for cmd in runs:
        print(f"\n$ {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
