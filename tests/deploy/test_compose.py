"""deploy/compose.yaml runs official Apache Kafka in KRaft mode and the same hardened image."""

from __future__ import annotations

import re
import shlex
from typing import Any

import pytest
import yaml

from tests.deploy.helpers import DEPLOY, K8S, image_user, load_yaml_all, plain_envs, secret_envs

COMPOSE = DEPLOY / "compose.yaml"
CALLBRIDGE_SERVICES = ("sandbox", "ingress", "writer")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def _seconds(duration: str) -> float:
    m = re.fullmatch(r"(\d+)s", duration)
    assert m, duration
    return float(m.group(1))


def test_has_kafka_sandbox_ingress_and_writer() -> None:
    """Compose runs Kafka, the sandbox, the ingress and the writer."""
    assert {"kafka", *CALLBRIDGE_SERVICES} <= set(services())


def test_kafka_is_the_official_image_in_kraft_mode() -> None:
    """The broker is apache/kafka at a pinned version, combined broker+controller, no ZooKeeper."""
    kafka = services()["kafka"]
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", kafka["image"])
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert not any("ZOOKEEPER" in k for k in env)
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert kafka["healthcheck"]["test"][0] == "CMD"


def test_kafka_is_the_version_the_tests_run_against() -> None:
    """Compose runs the same Kafka release as the test harness's local broker."""
    localkafka = pytest.importorskip("service.localkafka")
    assert services()["kafka"]["image"] == f"apache/kafka:{localkafka.KAFKA_VERSION}"
    assert services()["topics"]["image"] == services()["kafka"]["image"]


def test_callbridge_services_share_one_hardened_image() -> None:
    """Sandbox, ingress and writer build deploy/Dockerfile and run non-root, read-only."""
    uid, gid = image_user()
    for name in CALLBRIDGE_SERVICES:
        svc = services()[name]
        assert svc["image"] == "callbridge:dev", name
        assert svc["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
        assert svc["user"] == f"{uid}:{gid}", name
        assert svc["read_only"] is True, name
        assert "/tmp" in svc["tmpfs"], name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        assert "entrypoint" not in svc, f"{name} must keep tini as the entrypoint"
        assert svc["command"][0] == name


def test_environment_names_are_real_settings() -> None:
    """Every CALLBRIDGE_* variable compose sets is a field of Settings (no silent typos)."""
    known = plain_envs() | secret_envs()
    for name in CALLBRIDGE_SERVICES:
        env = services()[name].get("environment", {})
        unknown = {k for k in env if k.startswith("CALLBRIDGE_")} - known
        assert not unknown, f"{name}: {unknown}"


def test_services_wait_for_their_dependencies() -> None:
    """Topics exist before callbridge starts, and the writer waits for a healthy sandbox."""
    svc = services()
    assert svc["topics"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in ("ingress", "writer"):
        assert svc[name]["depends_on"]["topics"]["condition"] == "service_completed_successfully"
    assert svc["writer"]["depends_on"]["sandbox"]["condition"] == "service_healthy"
    assert svc["writer"]["environment"]["CALLBRIDGE_CREATE_TOPICS"] == "false"


def test_writer_stop_grace_exceeds_flush_deadline() -> None:
    """`docker compose stop` gives the writer more than its flush deadline before SIGKILL."""
    writer = services()["writer"]
    deadline = float(writer["environment"]["CALLBRIDGE_WRITER_FLUSH_DEADLINE_S"])
    assert _seconds(writer["stop_grace_period"]) >= deadline + 5


def _compose_topics() -> dict[str, dict[str, str]]:
    """topic -> its kafka-topics.sh options, from the topics service's script."""
    script = services()["topics"]["command"][0]
    out = {}
    for line in script.splitlines():
        words = shlex.split(line)
        if not words or words[0] != "t":
            continue
        opts: dict[str, str] = {}
        for key, value in zip(words[1::2], words[2::2], strict=True):
            if key == "--config":
                k, _, v = value.partition("=")
                opts[k] = v
            else:
                opts[key] = value
        out[opts["--topic"]] = opts
    return out


def test_topics_match_the_kafka_topic_resources() -> None:
    """Compose creates the KafkaTopics' topics with the same partitions, policy and retention."""
    declared = {t["spec"]["topicName"]: t for t in load_yaml_all(K8S / "base" / "topics.yaml")}
    created = _compose_topics()
    assert set(created) == set(declared)
    for name, topic in declared.items():
        assert int(created[name]["--partitions"]) == topic["spec"]["partitions"], name
        for key in ("cleanup.policy", "retention.ms", "min.compaction.lag.ms"):
            assert created[name].get(key) == topic["spec"]["config"].get(key), (name, key)
