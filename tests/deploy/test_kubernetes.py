"""The kustomize overlays render, validate offline, and run every pod hardened and probed."""

from __future__ import annotations

import pytest
from kubernetes_validate import utils as kv

from tests.deploy.helpers import (
    COMPONENTS,
    CRD_KINDS,
    K8S,
    OVERLAYS,
    Doc,
    all_containers,
    by_role,
    config_map,
    flag,
    image_user,
    kustomize,
    named,
    of_kind,
    pod_spec,
    topics,
    workloads,
)

#: The oldest Kubernetes the manifests support (native preStop `sleep` needs 1.30) and the
#: newest schema kubernetes-validate ships.
K8S_VERSIONS = ["1.30.0", "1.37.0"]


def test_overlays_exist() -> None:
    """Both a dev and a prod overlay are shipped."""
    assert {"dev", "prod"} <= set(OVERLAYS)


def test_base_renders() -> None:
    """The base renders on its own with kustomize."""
    assert of_kind(kustomize(K8S / "base"), "Deployment")


def test_every_component_is_used_by_an_overlay() -> None:
    """No component escapes rendering and validation: each is included by some overlay."""
    used = set()
    for overlay in OVERLAYS:
        text = (K8S / "overlays" / overlay / "kustomization.yaml").read_text()
        used |= {c for c in COMPONENTS if f"components/{c}" in text}
    assert used == set(COMPONENTS)


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_non_crd_objects_validate_strictly(rendered: list[Doc], version: str) -> None:
    """kubernetes-validate --strict accepts every rendered object that is not a CRD kind."""
    for doc in rendered:
        if (doc["apiVersion"], doc["kind"]) in CRD_KINDS:
            continue
        # SchemaNotFoundError (an unknown kind or apiVersion) fails the test too.
        kv.validate(doc, version, strict=True)


def test_strict_validation_rejects_unknown_fields(rendered: list[Doc]) -> None:
    """The validator used above really rejects a misspelt field (the check can fail)."""
    deployment = of_kind(rendered, "Deployment")[0]
    pod_spec(deployment)["containers"][0]["readOnlyRootFilesytem"] = True
    with pytest.raises(kv.ValidationError):
        kv.validate(deployment, K8S_VERSIONS[-1], strict=True)


def test_only_known_crd_kinds(rendered: list[Doc]) -> None:
    """Every non-Kubernetes kind rendered is one test_crds.py checks."""
    for doc in rendered:
        group = doc["apiVersion"].rpartition("/")[0]
        if "." in group and not group.endswith(".k8s.io"):
            assert (doc["apiVersion"], doc["kind"]) in CRD_KINDS, doc["kind"]


def test_containers_are_hardened(rendered: list[Doc]) -> None:
    """Every container runs as the image's non-root user, read-only, with no capabilities."""
    uid, gid = image_user()
    for w, c in all_containers(rendered):
        where = f"{w['metadata']['name']}/{c['name']}"
        pod = pod_spec(w).get("securityContext", {})
        sc = {**pod, **c.get("securityContext", {})}
        assert sc.get("runAsNonRoot") is True, where
        assert sc.get("runAsUser") == uid and uid != 0, where
        assert sc.get("runAsGroup") == gid, where
        assert sc.get("readOnlyRootFilesystem") is True, where
        assert sc.get("allowPrivilegeEscalation") is False, where
        assert sc.get("privileged", False) is False, where
        assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], where
        assert not c["securityContext"]["capabilities"].get("add"), where
        assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", where


def test_pods_mount_no_service_account_token(rendered: list[Doc]) -> None:
    """No pod gets a Kubernetes API token: callbridge never talks to the API server."""
    for w in workloads(rendered):
        assert pod_spec(w).get("automountServiceAccountToken") is False, w["metadata"]["name"]


def test_tmp_is_a_writable_empty_dir(rendered: list[Doc]) -> None:
    """With a read-only root filesystem, /tmp is an emptyDir volume in every container."""
    for w, c in all_containers(rendered):
        volumes = {v["name"]: v for v in pod_spec(w).get("volumes", [])}
        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{w['metadata']['name']}/{c['name']} has no /tmp"
        assert not mounts["/tmp"].get("readOnly", False)
        assert "emptyDir" in volumes[mounts["/tmp"]["name"]]


def test_resources_are_requested_and_limited(rendered: list[Doc]) -> None:
    """Every container requests and limits both CPU and memory."""
    for w, c in all_containers(rendered):
        res = c.get("resources", {})
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(res.get(kind, {})), (w["metadata"]["name"], kind)


def test_containers_keep_the_image_entrypoint(rendered: list[Doc]) -> None:
    """No container overrides `command`, so tini stays PID 1 and forwards SIGTERM."""
    for w, c in all_containers(rendered):
        assert "command" not in c, w["metadata"]["name"]
        assert c.get("args"), w["metadata"]["name"]


def _port(container: Doc, ref: int | str) -> int:
    if isinstance(ref, int):
        return ref
    ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
    return int(ports[ref])


def _http_probe(container: Doc, probe: str) -> tuple[str, int]:
    get = container[probe]["httpGet"]
    return get["path"], _port(container, get["port"])


def test_ingress_probes_hit_the_served_port(rendered: list[Doc]) -> None:
    """Ingress liveness/startup use /healthz and readiness /readyz on the port it listens on."""
    cm = config_map(rendered)
    found = by_role(rendered, "ingress")
    assert found
    for _, c in found:
        port = int(flag(c["args"], "--port") or cm["CALLBRIDGE_INGRESS_PORT"])
        assert _http_probe(c, "livenessProbe") == ("/healthz", port)
        assert _http_probe(c, "startupProbe") == ("/healthz", port)
        assert _http_probe(c, "readinessProbe") == ("/readyz", port)
        assert flag(c["args"], "--host") == "0.0.0.0"


def test_writer_probes_hit_the_health_port(rendered: list[Doc]) -> None:
    """Writer liveness uses /healthz (poll age) and readiness /readyz on its health port."""
    cm = config_map(rendered)
    found = by_role(rendered, "writer")
    assert found
    for _, c in found:
        port = int(flag(c["args"], "--health-port") or cm["CALLBRIDGE_WRITER_HEALTH_PORT"])
        assert port == int(cm["CALLBRIDGE_WRITER_HEALTH_PORT"])
        assert _http_probe(c, "livenessProbe") == ("/healthz", port)
        assert _http_probe(c, "readinessProbe") == ("/readyz", port)


def test_ingress_service_targets_the_ingress_port(rendered: list[Doc]) -> None:
    """The ingress Service selects the ingress pods and forwards to their listening port."""
    svc = named(rendered, "Service", "callbridge-ingress")
    deployment = named(rendered, "Deployment", "callbridge-ingress")
    labels = pod_spec_labels(deployment)
    assert svc["spec"]["selector"].items() <= labels.items()
    c = pod_spec(deployment)["containers"][0]
    target = svc["spec"]["ports"][0]["targetPort"]
    assert _port(c, target) == int(flag(c["args"], "--port") or 0)


def pod_spec_labels(workload: Doc) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def test_writer_grace_period_exceeds_flush_deadline(rendered: list[Doc]) -> None:
    """The writer gets SIGKILL only after its flush deadline plus 5 s for commit and close."""
    deadline = float(config_map(rendered)["CALLBRIDGE_WRITER_FLUSH_DEADLINE_S"])
    for w, _ in by_role(rendered, "writer"):
        assert pod_spec(w)["terminationGracePeriodSeconds"] >= deadline + 5


def _writer_ceiling(docs: list[Doc]) -> int:
    """The most writer pods the overlay can ever run: replicas, HPA or KEDA maximum."""
    names = {w["metadata"]["name"] for w, _ in by_role(docs, "writer")}
    ceiling = max(
        w["spec"].get("replicas", 1) for w in workloads(docs) if w["metadata"]["name"] in names
    )
    for hpa in of_kind(docs, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] in names:
            ceiling = max(ceiling, hpa["spec"]["maxReplicas"])
    for so in of_kind(docs, "ScaledObject"):
        if so["spec"]["scaleTargetRef"]["name"] in names:
            ceiling = max(ceiling, so["spec"]["maxReplicaCount"])
    return int(ceiling)


def test_writers_never_outnumber_partitions(rendered: list[Doc]) -> None:
    """Writer replicas, even fully scaled out, stay within calls.events' partition count."""
    cm = config_map(rendered)
    partitions = topics(rendered)[cm["CALLBRIDGE_TOPIC_EVENTS"]]["spec"]["partitions"]
    assert 1 <= _writer_ceiling(rendered) <= partitions
    for w, _ in by_role(rendered, "writer"):
        assert w["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0


def test_writers_stay_within_hubspot_limits(rendered: list[Doc]) -> None:
    """Per-process HubSpot rates times the most writers fit 190 requests/10 s and 5 searches/s."""
    cm = config_map(rendered)
    ceiling = _writer_ceiling(rendered)
    assert int(cm["CALLBRIDGE_HUBSPOT_RATE"]) * ceiling <= 190
    assert int(cm["CALLBRIDGE_HUBSPOT_SEARCH_RATE"]) * ceiling <= 5


def test_disruption_budgets_cover_ingress_and_writer(rendered: list[Doc]) -> None:
    """Ingress and writer each have a PDB that selects their pods and allows one eviction."""
    for name in ("callbridge-ingress", "callbridge-writer"):
        pdb = named(rendered, "PodDisruptionBudget", name)
        labels = pod_spec_labels(named(rendered, "Deployment", name))
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        replicas = named(rendered, "Deployment", name)["spec"]["replicas"]
        if "minAvailable" in pdb["spec"]:
            assert pdb["spec"]["minAvailable"] < replicas, f"{name}: PDB blocks every drain"


def test_ingress_autoscales_on_cpu(rendered: list[Doc]) -> None:
    """An HPA scales the ingress Deployment between sane bounds."""
    hpa = named(rendered, "HorizontalPodAutoscaler", "callbridge-ingress")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "callbridge-ingress",
    }
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]


def _selects(policy: Doc, labels: dict[str, str]) -> bool:
    sel = policy["spec"]["podSelector"]
    if not sel.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in sel.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def test_every_pod_is_isolated_by_network_policy(rendered: list[Doc]) -> None:
    """Each callbridge pod is selected by a policy denying ingress and egress by default."""
    policies = of_kind(rendered, "NetworkPolicy")
    for w in workloads(rendered):
        labels = pod_spec_labels(w)
        mine = [p for p in policies if _selects(p, labels)]
        types = {t for p in mine for t in p["spec"]["policyTypes"]}
        assert types == {"Ingress", "Egress"}, w["metadata"]["name"]


def test_network_policies_open_the_served_ports(rendered: list[Doc]) -> None:
    """The ingress may receive on 8080, the writer on its health port, and both reach Kafka."""
    policies = of_kind(rendered, "NetworkPolicy")
    for wanted, port_flag in (("ingress", "--port"), ("writer", "--health-port")):
        for w, c in by_role(rendered, wanted):
            mine = [p for p in policies if _selects(p, pod_spec_labels(w))]
            port = int(flag(c["args"], port_flag) or 0)
            ingress_ports = {
                pt["port"] for p in mine for r in p["spec"].get("ingress", []) for pt in r["ports"]
            }
            egress_ports = {
                pt["port"] for p in mine for r in p["spec"].get("egress", []) for pt in r["ports"]
            }
            assert port in ingress_ports, wanted
            assert {53, 9092} <= egress_ports, wanted


def test_images_are_pinned(rendered: list[Doc]) -> None:
    """Every container image has an explicit tag that is not `latest`."""
    for _, c in all_containers(rendered):
        image = c["image"]
        assert ":" in image.rsplit("/", 1)[-1] or "@sha256:" in image, image
        assert not image.endswith(":latest"), image


def test_prod_targets_real_hubspot_and_dev_the_sandbox(rendered_all: dict[str, list[Doc]]) -> None:
    """prod writes to https://api.hubapi.com; dev writes to the in-cluster sandbox it deploys."""
    assert config_map(rendered_all["prod"])["CALLBRIDGE_HUBSPOT_URL"] == "https://api.hubapi.com"
    assert not by_role(rendered_all["prod"], "sandbox")
    dev = rendered_all["dev"]
    url = config_map(dev)["CALLBRIDGE_HUBSPOT_URL"]
    svc = named(dev, "Service", "callbridge-sandbox")
    assert url == f"http://callbridge-sandbox:{svc['spec']['ports'][0]['port']}"
    assert by_role(dev, "sandbox")
