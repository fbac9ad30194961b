"""The writer as a real subprocess (``python -m service.cli writer``) for crash and drain tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from service.config import Settings
from service.localkafka import free_port

ROOT = Path(__file__).resolve().parents[2]


def settings_env(settings: Settings) -> dict[str, str]:
    """``CALLBRIDGE_*`` variables reproducing ``settings`` in a child process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        if hasattr(getattr(settings, name), "get_secret_value"):
            value = getattr(settings, name).get_secret_value()
        if isinstance(value, dict):
            import orjson

            value = orjson.dumps(value).decode()
        env[f"CALLBRIDGE_{name.upper()}"] = str(value)
    env["CALLBRIDGE_LOG_FORMAT"] = "json"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_writer_process(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    out = log.open("ab")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "writer",
            "--health-port",
            str(port),
            "--health-host",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env=settings_env(settings),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    return proc
