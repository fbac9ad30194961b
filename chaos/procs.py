"""The product's own processes, started with its own commands, signalled like an operator
(or the kernel) would: ``callbridge kafka``, ``callbridge sandbox``, ``callbridge ingress``,
``callbridge writer``, ``callbridge dlq replay``.

Every child is started in its own process group and watched; ``Cluster.close()`` stops
whatever is still running (SIGTERM, then SIGKILL), and each child gets the kernel's
parent-death signal, so a run never leaves processes behind, even when it is killed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from service.localkafka import die_with_parent

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def callbridge(*args: str) -> list[str]:
    """The ``callbridge`` command line (the installed entry point's module, same Python)."""
    return [sys.executable, "-m", "service.cli", *args]


@dataclass
class Proc:
    """One child process of the product, with its log file."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    #: set while the harness itself has stopped or killed it (not a crash of its own)
    held: bool = False

    def start(self) -> Proc:
        out = self.log.open("ab")
        out.write(f"\n--- start {self.starts + 1} at {time.time():.3f}\n".encode())
        out.flush()
        parent = os.getpid()
        self.popen = subprocess.Popen(  # noqa: S603
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # a killed harness takes its processes along (the broker follows its launcher)
            preexec_fn=(lambda: die_with_parent(parent)) if sys.platform == "linux" else None,
        )
        out.close()
        self.starts += 1
        self.held = False
        return self

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def wait(self, timeout_s: float) -> int | None:
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout_s: float = 30.0) -> int | None:
        """SIGTERM (and SIGCONT, in case it is stopped), then SIGKILL past ``timeout_s``."""
        if not self.alive():
            return self.popen.returncode if self.popen else None
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)
        code = self.wait(timeout_s)
        if code is None:
            self.kill()
            code = self.wait(10)
        return code

    def kill(self) -> None:
        """SIGKILL the process (its group too, should it have left children behind)."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.wait(10)


def wait_http(url: str, timeout_s: float = 60.0, proc: Proc | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


def wait_log(proc: Proc, text: str, timeout_s: float, since: int = 0) -> None:
    """Wait until ``text`` appears in the process's log after byte ``since``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.log.exists() and text in proc.log.read_bytes()[since:].decode("utf-8", "replace"):
            return
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited; see {proc.log}")
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name}: {text!r} not seen within {timeout_s}s; see {proc.log}")


@dataclass
class Cluster:
    """Every process of one run, on free ports under ``workdir``."""

    workdir: Path
    env: dict[str, str]
    writer_env: dict[str, str]
    kafka_port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    ingress_port: int = field(default_factory=free_port)
    ingress_metrics_port: int = field(default_factory=free_port)
    #: run ``callbridge hubspot setup`` (key mode); False leaves the writers in search mode
    hubspot_setup: bool = True
    sandbox_rate: int = 400
    sandbox_search_rate: int = 20
    broker: Proc | None = None
    sandbox: Proc | None = None
    ingress: Proc | None = None
    writers: dict[str, Proc] = field(default_factory=dict)
    retired: list[Proc] = field(default_factory=list)

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def ingress_url(self) -> str:
        return f"http://127.0.0.1:{self.ingress_port}"

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBRIDGE_")}
        env.update(self.env)
        env.update(
            {
                "CALLBRIDGE_KAFKA_BOOTSTRAP": self.bootstrap,
                "CALLBRIDGE_HUBSPOT_URL": self.sandbox_url,
                "CALLBRIDGE_PUBLIC_URL": self.ingress_url,
                "CALLBRIDGE_LOG_FORMAT": "json",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    # -- the broker, through its launcher ------------------------------------------------

    def start_broker(self, timeout_s: float = 120.0) -> float:
        """``callbridge kafka`` on this run's ports and data; seconds until it is ready."""
        started = time.monotonic()
        if self.broker is None:
            self.broker = Proc(
                "kafka",
                callbridge(
                    "kafka",
                    "--port",
                    str(self.kafka_port),
                    "--controller-port",
                    str(self.controller_port),
                    "--data-dir",
                    str(self.workdir / "kafka"),
                ),
                self.base_env(),
                self.workdir / "kafka.log",
            )
        since = self.broker.log.stat().st_size if self.broker.log.exists() else 0
        self.broker.start()
        wait_log(self.broker, "ready on", timeout_s, since)
        return time.monotonic() - started

    def stop_broker(self) -> None:
        """SIGTERM the launcher: it stops the broker (a controlled shutdown) and exits."""
        assert self.broker is not None
        code = self.broker.stop(60)
        if code is None:
            raise RuntimeError("callbridge kafka did not stop")

    # -- the others ----------------------------------------------------------------------

    def start_sandbox(self) -> None:
        self.sandbox = Proc(
            "sandbox",
            callbridge(
                "sandbox",
                "--port",
                str(self.sandbox_port),
                "--rate-limit",
                str(self.sandbox_rate),
                "--search-rate",
                str(self.sandbox_search_rate),
            ),
            self.base_env(),
            self.workdir / "sandbox.log",
        ).start()
        wait_http(self.sandbox_url + "/_sandbox/stats", 60, self.sandbox)
        if self.hubspot_setup:  # as a deployment does: idempotent creates by the call key
            result = subprocess.run(  # noqa: S603
                callbridge("hubspot", "setup"),
                cwd=ROOT,
                env=self.base_env(),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if result.returncode != 0:
                raise RuntimeError(f"callbridge hubspot setup failed: {result.stderr}")

    def start_ingress(self) -> None:
        self.ingress = Proc(
            "ingress",
            callbridge(
                "ingress",
                "--port",
                str(self.ingress_port),
                "--metrics-port",
                str(self.ingress_metrics_port),
            ),
            self.base_env(),
            self.workdir / "ingress.log",
        ).start()
        wait_http(self.ingress_url + "/healthz", 60, self.ingress)

    def ingress_restart(self) -> None:
        assert self.ingress is not None
        self.ingress.stop(20)
        self.ingress.start()
        wait_http(self.ingress_url + "/healthz", 60, self.ingress)

    def start_writer(self, name: str) -> Proc:
        proc = self.writers.get(name)
        if proc is None:
            port = free_port()
            env = self.base_env()
            env.update(self.writer_env)
            proc = Proc(
                name,
                callbridge("writer", "--health-port", str(port), "--health-host", "127.0.0.1"),
                env,
                self.workdir / f"{name}.log",
            )
            self.writers[name] = proc
        return proc.start()

    def crashed_writers(self) -> list[Proc]:
        """Writers that exited on their own (the harness neither killed nor stopped them)."""
        return [p for p in self.writers.values() if not p.alive() and not p.held]

    def last_error(self, proc: Proc) -> str:
        """The last line that looks like an exception in the process's log."""
        lines = proc.log.read_text(errors="replace").splitlines()
        for line in reversed(lines):
            if "Error" in line or "Exception" in line:
                return " ".join(line.replace("\\n", " ").split())[:240]
        return lines[-1][:300] if lines else ""

    def live_writers(self) -> list[str]:
        return sorted(n for n, p in self.writers.items() if p.alive())

    def dlq_replay(self, timeout_s: float = 300.0) -> tuple[int, str]:
        """``callbridge dlq replay`` with the run's settings: (exit code, its output)."""
        result = subprocess.run(  # noqa: S603
            callbridge("dlq", "replay"),
            cwd=ROOT,
            env=self.base_env(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        return result.returncode, (result.stdout + result.stderr).strip()

    def close(self) -> None:
        """Stop everything still running: writers, ingress, sandbox, then the broker."""
        for proc in [*self.writers.values(), *self.retired, self.ingress, self.sandbox]:
            if proc is not None:
                proc.stop(25)
        if self.broker is not None:
            self.broker.stop(60)
