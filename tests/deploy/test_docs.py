"""deploy/README.md carries the "Deploy to Kubernetes" section and names files that exist."""

from __future__ import annotations

import re

from tests.deploy.helpers import DEPLOY, OVERLAYS

README = DEPLOY / "README.md"


def test_readme_has_the_deploy_to_kubernetes_section() -> None:
    """The README has a "Deploy to Kubernetes" section covering image, secrets and overlays."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Deploy to Kubernetes", 1)[1].split("\n## ", 1)[0]
    for needle in ("docker build", "create secret", "kubectl apply -k", "Scaling", "KafkaTopic"):
        assert needle in section, needle
    for overlay in OVERLAYS:
        assert f"deploy/k8s/overlays/{overlay}" in section, overlay


def test_readme_names_only_existing_files() -> None:
    """Every deploy/ path the README mentions in backticks exists."""
    text = README.read_text(encoding="utf-8")
    paths = set(re.findall(r"`((?:deploy/)?(?:k8s/[\w./-]+|[\w-]+\.(?:md|yaml|lock|py)))`", text))
    assert paths
    names = {p.name for p in DEPLOY.rglob("*")} | {"secrets.yaml"}  # the git-ignored copy
    for path in paths:
        relative = path.removeprefix("deploy/")
        if "/" not in relative:
            assert relative in names, path
        else:
            assert (DEPLOY / relative).exists() or (DEPLOY / "k8s" / relative).exists(), path
