"""``callbridge run`` says plainly when it uses a broker it did not start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from service.cli import _foreign_broker_notice
from service.localkafka import LocalKafka, free_port

ROOT = Path(__file__).resolve().parents[2]


def test_run_on_a_broker_it_did_not_start_says_so(kafka_broker: LocalKafka, tmp_path: Path) -> None:
    """Against an already running broker: a notice, a banner without "started", no broker
    of its own (and SIGTERM stops it cleanly)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
    env.update(
        {
            "CALLBRIDGE_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
            "CALLBRIDGE_HUBSPOT_URL": f"http://127.0.0.1:{free_port()}",  # no sandbox started
            "CALLBRIDGE_INGRESS_PORT": str(free_port()),
            "CALLBRIDGE_WRITER_HEALTH_PORT": str(free_port()),
            "CALLBRIDGE_TOPIC_EVENTS": f"calls.events.run-{free_port()}",
        }
    )
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "run", "--data-dir", str(tmp_path / "kafka")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while "callbridge is running" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert f"using the Kafka broker at {kafka_broker.bootstrap}" in text
        assert "NOT started by this command" in text
        assert "local broker started" not in text
        assert not (tmp_path / "kafka").exists()  # it started no broker of its own
        health = f"http://127.0.0.1:{env['CALLBRIDGE_INGRESS_PORT']}/healthz"
        while time.monotonic() < deadline:
            try:
                if httpx.get(health, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        proc.kill()
        proc.wait(30)


def test_the_default_address_taken_is_called_out() -> None:
    """Something on 127.0.0.1:9092 is named as not started here, maybe an earlier run's."""
    notice = _foreign_broker_notice("127.0.0.1:9092")
    assert "did NOT start it" in notice and "earlier run" in notice
