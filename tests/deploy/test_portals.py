"""The portals file in Kubernetes: the optional ``callbridge-portals`` Secret mounted into
ingress and writer, off unless an overlay sets ``CALLBRIDGE_PORTALS_FILE`` as
deploy/README.md documents (rendered offline, nothing applied)."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pytest

from service.config import Settings
from service.portals import parse_portals_file
from tests.deploy.helpers import (
    DEPLOY,
    K8S,
    Doc,
    by_role,
    config_map,
    kustomize,
    pod_spec,
)

SECRET = "callbridge-portals"
MOUNT = "/etc/callbridge/portals"


def _portals_volume(workload: Doc) -> Doc:
    volumes = [v for v in pod_spec(workload).get("volumes", []) if "secret" in v]
    found = [v for v in volumes if v["secret"]["secretName"] == SECRET]
    assert len(found) == 1, workload["metadata"]["name"]
    return found[0]


def _mount_of(container: Doc, volume: str) -> Doc:
    mounts = [m for m in container.get("volumeMounts", []) if m["name"] == volume]
    assert len(mounts) == 1, (container["name"], volume)
    return mounts[0]


def test_ingress_and_writer_mount_the_portals_secret(rendered: list[Doc]) -> None:
    """Every ingress and writer pod mounts the optional callbridge-portals Secret read-only
    at /etc/callbridge/portals, readable by the pod's group and nobody else."""
    for wanted in ("ingress", "writer"):
        pairs = by_role(rendered, wanted)
        assert pairs, wanted
        for workload, container in pairs:
            volume = _portals_volume(workload)
            assert volume["secret"]["optional"] is True
            mode = volume["secret"]["defaultMode"]
            assert mode & 0o007 == 0 and mode & 0o040, oct(mode)
            assert pod_spec(workload)["securityContext"]["fsGroup"] == 10001
            mount = _mount_of(container, volume["name"])
            assert mount["mountPath"] == MOUNT and mount["readOnly"] is True
            assert "subPath" not in mount  # a subPath mount would never see a rotated Secret


def test_single_portal_overlays_leave_the_portals_file_unset(rendered: list[Doc]) -> None:
    """The shipped overlays do not set CALLBRIDGE_PORTALS_FILE: without the Secret nothing
    changes for a single-portal deployment."""
    assert "CALLBRIDGE_PORTALS_FILE" not in config_map(rendered)
    for wanted in ("ingress", "writer"):
        for _, container in by_role(rendered, wanted):
            assert all(e["name"] != "CALLBRIDGE_PORTALS_FILE" for e in container.get("env", []))


def _documented_literal() -> str:
    text = (DEPLOY / "README.md").read_text(encoding="utf-8")
    section = text.split("### Many portals", 1)[1].split("\n### ", 1)[0]
    found = re.findall(r"- (CALLBRIDGE_PORTALS_FILE=\S+)", section)
    assert len(found) == 1, "deploy/README.md documents one CALLBRIDGE_PORTALS_FILE literal"
    assert f"create secret generic {SECRET}" in section
    assert "--from-file=portals.yaml=" in section
    return str(found[0])


def test_the_documented_overlay_turns_portals_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An overlay on prod with the README's literal renders CALLBRIDGE_PORTALS_FILE pointing
    at the Secret's portals.yaml key inside the directory ingress and writer mount, and
    the ConfigMap still parses as settings."""
    literal = _documented_literal()
    overlay = tmp_path / "portals-overlay"
    overlay.mkdir()
    prod = Path(os.path.relpath(K8S / "overlays" / "prod", overlay))  # kustomize: relative
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        f"resources: [{prod.as_posix()}]\n"
        "configMapGenerator:\n"
        "  - name: callbridge-config\n"
        "    behavior: merge\n"
        f"    literals: [{literal}]\n"
    )
    rendered = kustomize(overlay)
    cm = config_map(rendered)
    path = PurePosixPath(cm["CALLBRIDGE_PORTALS_FILE"])
    assert path.name == "portals.yaml" and str(path.parent) == MOUNT
    for key in [k for k in os.environ if k.startswith("CALLBRIDGE_")]:
        monkeypatch.delenv(key)
    for key, value in cm.items():
        monkeypatch.setenv(key, value)
    settings = Settings()  # read as the pods read it: from the environment
    assert settings.portals_file == Path(str(path))
    for wanted in ("ingress", "writer"):
        for workload, container in by_role(rendered, wanted):
            volume = _portals_volume(workload)
            assert _mount_of(container, volume["name"])["mountPath"] == str(path.parent)


def test_the_example_portals_file_is_valid() -> None:
    """deploy/examples/portals.example.yaml (the Secret's shape) parses: three portals, a v3
    token portal, a 2026-03 token portal and an OAuth portal."""
    portals = parse_portals_file(DEPLOY / "examples" / "portals.example.yaml", Settings())
    shapes = [
        (p.id, p.hubspot.api_version, p.hubspot.token is not None, p.hubspot.oauth is not None)
        for p in portals
    ]
    assert shapes == [
        ("acme", "v3", True, False),
        ("bravo", "2026-03", True, False),
        ("charlie", "2026-03", False, True),
    ]
    assert all(p.enabled_providers for p in portals)
