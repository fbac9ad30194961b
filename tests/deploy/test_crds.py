"""CRD objects (Strimzi, KEDA, Prometheus Operator) carry their required fields and agree
with the rest of the deployment: topic names, partitions, consumer group, bootstrap."""

from __future__ import annotations

import json

from tests.deploy.helpers import (
    Doc,
    all_containers,
    by_role,
    config_map,
    named,
    of_kind,
    pod_spec,
    topics,
)

DAY_MS = 86_400_000


def _topic_config(topic: Doc) -> dict[str, str]:
    return {k: str(v) for k, v in topic["spec"].get("config", {}).items()}


def test_kafka_topics_have_required_fields(rendered: list[Doc]) -> None:
    """Each KafkaTopic names its cluster and sets partitions, replicas and config explicitly."""
    found = of_kind(rendered, "KafkaTopic")
    assert found
    for t in found:
        assert t["apiVersion"] == "kafka.strimzi.io/v1"
        assert t["metadata"]["labels"]["strimzi.io/cluster"]
        spec = t["spec"]
        assert isinstance(spec["partitions"], int) and spec["partitions"] >= 1
        assert isinstance(spec["replicas"], int) and 1 <= spec["replicas"] <= 32767
        config = _topic_config(t)
        assert config["cleanup.policy"] in {"delete", "compact"}
        assert 1 <= int(config["min.insync.replicas"]) <= spec["replicas"]
        if spec["replicas"] >= 3:
            assert int(config["min.insync.replicas"]) >= 2, "acks=all must survive a broker"


def test_every_configured_topic_is_declared(rendered: list[Doc]) -> None:
    """Each CALLBRIDGE_TOPIC_* the app uses has a KafkaTopic with that exact name."""
    cm = config_map(rendered)
    declared = topics(rendered)
    used = {v for k, v in cm.items() if k.startswith("CALLBRIDGE_TOPIC_") and "PARTITIONS" not in k}
    assert used == {"calls.events", "calls.dlq", "calls.ids", "calls.dlq.parked"}
    assert used <= set(declared)


def test_events_and_ids_are_co_partitioned(rendered: list[Doc]) -> None:
    """calls.events and calls.ids have the same partition count, and the app is told it."""
    cm = config_map(rendered)
    t = topics(rendered)
    events = t[cm["CALLBRIDGE_TOPIC_EVENTS"]]["spec"]["partitions"]
    assert events == t[cm["CALLBRIDGE_TOPIC_IDS"]]["spec"]["partitions"]
    assert events == int(cm["CALLBRIDGE_TOPIC_PARTITIONS"])


def test_retention_is_deliberate(rendered: list[Doc]) -> None:
    """calls.ids is compacted; events keep days, dead letters keep longer, parked the longest."""
    cm = config_map(rendered)
    t = {name: _topic_config(topic) for name, topic in topics(rendered).items()}
    assert t[cm["CALLBRIDGE_TOPIC_IDS"]]["cleanup.policy"] == "compact"
    retention = {}
    for key in ("EVENTS", "DLQ", "PARKED"):
        config = t[cm[f"CALLBRIDGE_TOPIC_{key}"]]
        assert config["cleanup.policy"] == "delete"
        retention[key] = int(config["retention.ms"])
    assert retention["EVENTS"] >= 3 * DAY_MS
    assert retention["DLQ"] >= 14 * DAY_MS and retention["DLQ"] > retention["EVENTS"]
    assert retention["PARKED"] >= retention["DLQ"]


def test_topics_belong_to_the_configured_cluster(rendered: list[Doc]) -> None:
    """Topics name one Strimzi cluster, whose bootstrap Service the app connects to."""
    clusters = {
        t["metadata"]["labels"]["strimzi.io/cluster"] for t in of_kind(rendered, "KafkaTopic")
    }
    assert len(clusters) == 1
    (cluster,) = clusters
    assert config_map(rendered)["CALLBRIDGE_KAFKA_BOOTSTRAP"].startswith(
        f"{cluster}-kafka-bootstrap"
    )
    for kafka in of_kind(rendered, "Kafka"):
        assert kafka["metadata"]["name"] == cluster


def test_strimzi_kafka_has_required_fields(rendered: list[Doc]) -> None:
    """A bundled Kafka has a plain listener on the bootstrap port, a Topic Operator, and a pool."""
    port = int(config_map(rendered)["CALLBRIDGE_KAFKA_BOOTSTRAP"].rsplit(":", 1)[1])
    for kafka in of_kind(rendered, "Kafka"):
        spec = kafka["spec"]
        listeners = spec["kafka"]["listeners"]
        for listener in listeners:
            assert {"name", "port", "type", "tls"} <= set(listener)
        assert any(li["port"] == port and li["tls"] is False for li in listeners)
        assert "topicOperator" in spec["entityOperator"]
        pools = [
            p
            for p in of_kind(rendered, "KafkaNodePool")
            if p["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        ]
        assert pools, "KRaft needs a KafkaNodePool"
        roles = {r for p in pools for r in p["spec"]["roles"]}
        assert roles == {"controller", "broker"}
        for p in pools:
            assert p["spec"]["replicas"] >= 1 and p["spec"]["storage"]["type"]
        brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
        for t in of_kind(rendered, "KafkaTopic"):
            assert t["spec"]["replicas"] <= brokers, t["metadata"]["name"]


def test_scaled_object_has_required_fields_and_matches_the_writer(rendered: list[Doc]) -> None:
    """A KEDA ScaledObject targets the writer, on its group, topic and bootstrap, lag-based."""
    cm = config_map(rendered)
    writers = {w["metadata"]["name"] for w, _ in by_role(rendered, "writer")}
    for so in of_kind(rendered, "ScaledObject"):
        assert so["apiVersion"] == "keda.sh/v1alpha1"
        spec = so["spec"]
        assert spec["scaleTargetRef"]["name"] in writers
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        assert spec["triggers"]
        for trigger in spec["triggers"]:
            assert trigger["type"] == "kafka"
            meta = trigger["metadata"]
            assert meta["bootstrapServers"] == cm["CALLBRIDGE_KAFKA_BOOTSTRAP"]
            assert meta["consumerGroup"] == cm["CALLBRIDGE_WRITER_GROUP"]
            assert meta["topic"] == cm["CALLBRIDGE_TOPIC_EVENTS"]
            assert isinstance(meta["lagThreshold"], str) and int(meta["lagThreshold"]) > 0
            assert meta.get("allowIdleConsumers", "false") == "false"


def test_prometheus_rule_has_required_fields(rendered: list[Doc]) -> None:
    """Each rule group has a name and rules; each alert an expr, a severity and a summary."""
    for rule in of_kind(rendered, "PrometheusRule"):
        assert rule["apiVersion"] == "monitoring.coreos.com/v1"
        groups = rule["spec"]["groups"]
        assert groups and len({g["name"] for g in groups}) == len(groups)
        for group in groups:
            assert group["rules"]
            for r in group["rules"]:
                assert ("alert" in r) != ("record" in r)
                assert isinstance(r["expr"], str) and r["expr"].strip()
                if "alert" in r:
                    assert r["labels"]["severity"] in {"critical", "warning", "info"}
                    assert r["annotations"]["summary"]


def test_pod_monitor_scrapes_both_processes(rendered: list[Doc]) -> None:
    """The PodMonitor selects the ingress and writer pods on a port each of them declares."""
    for pm in of_kind(rendered, "PodMonitor"):
        spec = pm["spec"]
        endpoints = spec["podMetricsEndpoints"]
        assert endpoints and all(e["path"] == "/metrics" for e in endpoints)
        selected = spec["selector"]["matchExpressions"][0]["values"]
        for wanted in ("ingress", "writer"):
            for w, c in by_role(rendered, wanted):
                assert w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] in (
                    selected
                )
                ports = {p["name"] for p in c["ports"]}
                assert any(e["port"] in ports for e in endpoints), wanted


def test_dashboard_config_map_is_labelled_for_grafana(
    rendered_all: dict[str, list[Doc]],
) -> None:
    """prod ships the alerts and the dashboard, as a ConfigMap Grafana's sidecar picks up."""
    prod = rendered_all["prod"]
    assert of_kind(prod, "PrometheusRule") and of_kind(prod, "PodMonitor")
    cm = named(prod, "ConfigMap", "callbridge-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["callbridge-dashboard.json"])["uid"] == "callbridge"


def test_every_workload_container_is_callbridge(rendered: list[Doc]) -> None:
    """Every container runs the callbridge image (one image for every process)."""
    images = {c["image"] for _, c in all_containers(rendered)}
    assert len(images) == 1
    for w, _ in all_containers(rendered):
        assert pod_spec(w)["serviceAccountName"] == "callbridge"
