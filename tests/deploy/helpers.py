"""Reading deploy/: rendered overlays, workloads, containers, settings and the Dockerfile.

Everything here is offline: kustomize renders, PyYAML parses, nothing is applied.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import typing
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
COMPONENTS = sorted(p.name for p in (K8S / "components").iterdir() if p.is_dir())

Doc = dict[str, Any]

#: Kinds served by CRDs, which kubernetes-validate has no schema for: each one is checked by
#: test_crds.py instead, and any other kind must validate against the Kubernetes schemas.
CRD_KINDS = {
    ("kafka.strimzi.io/v1", "Kafka"),
    ("kafka.strimzi.io/v1", "KafkaNodePool"),
    ("kafka.strimzi.io/v1", "KafkaTopic"),
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
}

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}


@cache
def renderer() -> tuple[str, ...]:
    """`kubectl kustomize` when kubectl embeds kustomize v5+, else `kustomize build`.

    Components and the `labels` transformer need kustomize v5; an old kubectl (Debian
    bookworm's kubernetes-client is 1.20, with kustomize v2) must not be used.
    """
    kubectl = shutil.which("kubectl")
    if kubectl:
        out = subprocess.run(
            [kubectl, "version", "--client"], capture_output=True, text=True, timeout=30
        )
        m = re.search(r"Kustomize Version: v(\d+)\.", out.stdout)
        if m and int(m.group(1)) >= 5:
            return (kubectl, "kustomize")
    venv_bin = str(Path(sys.executable).parent)
    kustomize = shutil.which("kustomize", path=venv_bin) or shutil.which("kustomize")
    if kustomize:
        return (kustomize, "build")
    raise RuntimeError(
        "no kustomize v5 renderer: install kubectl >= 1.27 or run deploy/install-kustomize.sh"
    )


def kustomize(path: Path) -> list[Doc]:
    """The objects kustomize renders for ``path`` (raises with its stderr on failure)."""
    out = subprocess.run([*renderer(), str(path)], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(renderer())} {path} failed:\n{out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@cache
def _rendered(overlay: str) -> str:
    return json.dumps(kustomize(K8S / "overlays" / overlay))


def render(overlay: str) -> list[Doc]:
    """An overlay's rendered objects: rendered once per session, a fresh copy per call."""
    return typing.cast(list[Doc], json.loads(_rendered(overlay)))


def load_yaml_all(path: Path) -> list[Doc]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def named(docs: list[Doc], kind: str, name: str) -> Doc:
    found = [d for d in of_kind(docs, kind) if d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def pod_spec(workload: Doc) -> Doc:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return typing.cast(Doc, spec["template"]["spec"])


def workloads(docs: list[Doc]) -> list[Doc]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    return list(spec.get("initContainers", [])) + list(spec["containers"])


def all_containers(docs: list[Doc]) -> Iterator[tuple[Doc, Doc]]:
    for w in workloads(docs):
        for c in containers(w):
            yield w, c


def role(container: Doc) -> str:
    """The callbridge subcommand a container runs: its first argument."""
    return str(container.get("args", ["ingress"])[0])


def by_role(docs: list[Doc], wanted: str) -> list[tuple[Doc, Doc]]:
    return [(w, c) for w, c in all_containers(docs) if role(c) == wanted]


def flag(argv: list[str], name: str) -> str | None:
    """The value following ``name`` in ``argv``, or None."""
    for i, arg in enumerate(argv[:-1]):
        if arg == name:
            return argv[i + 1]
    return None


def config_map(docs: list[Doc]) -> dict[str, str]:
    """The data of the rendered callbridge-config ConfigMap (its name carries a hash suffix)."""
    found = [
        d
        for d in of_kind(docs, "ConfigMap")
        if d["metadata"]["name"].startswith("callbridge-config")
    ]
    assert len(found) == 1, f"expected one callbridge-config ConfigMap, found {len(found)}"
    return typing.cast(dict[str, str], found[0]["data"])


def topics(docs: list[Doc]) -> dict[str, Doc]:
    """Kafka topic name -> its KafkaTopic."""
    return {
        d["spec"].get("topicName", d["metadata"]["name"]): d for d in of_kind(docs, "KafkaTopic")
    }


# ---- settings -----------------------------------------------------------------------------


def env_name(field: str) -> str:
    return "CALLBRIDGE_" + field.upper()


def is_secret(field: str) -> bool:
    """Whether a Settings field holds a secret: typed SecretStr (optionally | None)."""
    ann = Settings.model_fields[field].annotation
    return ann is SecretStr or SecretStr in typing.get_args(ann)


def secret_envs() -> set[str]:
    return {env_name(f) for f in Settings.model_fields if is_secret(f)}


def plain_envs() -> set[str]:
    return {env_name(f) for f in Settings.model_fields if not is_secret(f)}


# ---- Dockerfile ---------------------------------------------------------------------------


def dockerfile_instructions(path: Path = DEPLOY / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        out.append((instr.upper(), rest.strip()))
    return out


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form ENTRYPOINT/CMD, or None for shell form."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def image_user() -> tuple[int, int]:
    """The uid and gid of the final USER instruction (which must be numeric)."""
    users = [a for i, a in dockerfile_instructions() if i == "USER"]
    assert users, "the Dockerfile sets no USER"
    uid, _, gid = users[-1].partition(":")
    return int(uid), int(gid or uid)


def entrypoint() -> list[str]:
    eps = [a for i, a in dockerfile_instructions() if i == "ENTRYPOINT"]
    assert eps, "the Dockerfile has no ENTRYPOINT"
    argv = exec_form(eps[-1])
    assert argv is not None, f"ENTRYPOINT is not exec form: {eps[-1]}"
    return argv


def default_cmd() -> list[str]:
    cmds = [a for i, a in dockerfile_instructions() if i == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    argv = exec_form(cmds[-1])
    assert argv is not None, f"CMD is not exec form: {cmds[-1]}"
    return argv
