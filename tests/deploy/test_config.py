"""Every CALLBRIDGE_* setting reaches the pods: plain ones by ConfigMap, secrets by reference."""

from __future__ import annotations

import re

import pytest

from service.config import PROVIDER_SECRETS, Settings
from tests.deploy.helpers import (
    DEPLOY,
    K8S,
    Doc,
    all_containers,
    by_role,
    config_map,
    env_name,
    is_secret,
    load_yaml_all,
    of_kind,
    plain_envs,
    secret_envs,
)

SECRETS_EXAMPLE = K8S / "secrets.example.yaml"
PLACEHOLDER = re.compile(r"^<[a-z0-9-]+>$")


def _example_secrets() -> dict[str, dict[str, str]]:
    """Secret name -> its keys and placeholder values, from secrets.example.yaml."""
    out = {}
    for doc in load_yaml_all(SECRETS_EXAMPLE):
        assert doc["kind"] == "Secret"
        assert "data" not in doc, "use stringData with placeholders"
        out[doc["metadata"]["name"]] = dict(doc["stringData"])
    return out


def _secret_refs(container: Doc) -> dict[str, tuple[str, str]]:
    """Env var -> (Secret name, key) for every secret a container reads."""
    refs = {}
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            refs[env["name"]] = (ref["name"], ref["key"])
    examples = _example_secrets()
    for src in container.get("envFrom", []):
        if "secretRef" in src:
            name = src["secretRef"]["name"]
            prefix = src.get("prefix", "")
            refs |= {prefix + key: (name, key) for key in examples.get(name, {})}
    return refs


def test_settings_are_introspected() -> None:
    """The settings under test come from Settings.model_fields, with secrets among them."""
    assert "CALLBRIDGE_KAFKA_BOOTSTRAP" in plain_envs()
    assert "CALLBRIDGE_HUBSPOT_TOKEN" in secret_envs()
    assert is_secret("generic_secret") and not is_secret("hubspot_url")


def test_every_plain_setting_is_in_the_config_map(rendered: list[Doc]) -> None:
    """Each non-secret setting is in the ConfigMap, or is optional and documented as such."""
    cm = config_map(rendered)
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name, field in Settings.model_fields.items():
        env = env_name(name)
        if is_secret(name) or env in cm:
            continue
        assert field.default is None and f"`{env}`" in readme, (
            f"{env} is neither in the ConfigMap nor an optional setting documented "
            "in deploy/README.md"
        )


def test_config_map_holds_only_known_plain_settings(rendered: list[Doc]) -> None:
    """No ConfigMap key is a secret or a misspelt setting (Settings ignores unknown names)."""
    cm = config_map(rendered)
    assert not set(cm) & secret_envs(), "a secret is in the ConfigMap"
    assert set(cm) <= plain_envs(), f"unknown settings: {set(cm) - plain_envs()}"


def test_config_map_parses_as_settings(
    rendered: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ConfigMap's values, read as environment, are accepted by the real Settings class."""
    import os

    for key in [k for k in os.environ if k.startswith("CALLBRIDGE_")]:
        monkeypatch.delenv(key)
    cm = config_map(rendered)
    for key, value in cm.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    assert settings.create_topics is False, "topics are KafkaTopic resources, not app-created"
    assert settings.ingress_host == "0.0.0.0"
    assert settings.writer_flush_deadline_s == float(cm["CALLBRIDGE_WRITER_FLUSH_DEADLINE_S"])


def test_workloads_read_the_config_map(rendered: list[Doc]) -> None:
    """Ingress and writer containers take every plain setting from the ConfigMap."""
    cm_name = next(
        d["metadata"]["name"]
        for d in of_kind(rendered, "ConfigMap")
        if d["metadata"]["name"].startswith("callbridge-config")
    )
    for wanted in ("ingress", "writer"):
        for _, c in by_role(rendered, wanted):
            names = [s["configMapRef"]["name"] for s in c.get("envFrom", []) if "configMapRef" in s]
            assert names == [cm_name], wanted


def test_no_secret_objects_are_rendered(rendered: list[Doc]) -> None:
    """No overlay renders a Secret: secret values are never committed."""
    assert not of_kind(rendered, "Secret")


def test_secret_settings_come_only_from_secret_refs(rendered: list[Doc]) -> None:
    """No container sets a secret setting by literal value; each comes from a Secret."""
    for w, c in all_containers(rendered):
        for env in c.get("env", []):
            if env["name"] in secret_envs():
                assert "value" not in env, f"{w['metadata']['name']}: {env['name']} literal"
                assert "secretKeyRef" in env["valueFrom"], env["name"]


def test_every_secret_setting_is_wired_and_exemplified(rendered: list[Doc]) -> None:
    """Each SecretStr setting is read from a Secret by some container, and the example has it."""
    examples = _example_secrets()
    wired: dict[str, tuple[str, str]] = {}
    for _, c in all_containers(rendered):
        wired |= _secret_refs(c)
    for env in secret_envs():
        assert env in wired, f"{env} reaches no container"
        secret, key = wired[env]
        assert key in examples.get(secret, {}), f"{secret}/{key} missing from the example"


def test_ingress_can_enable_every_provider(rendered: list[Doc]) -> None:
    """The ingress reads every provider's secret; the writer reads the HubSpot token."""
    for _, c in by_role(rendered, "ingress"):
        refs = _secret_refs(c)
        for attr in PROVIDER_SECRETS.values():
            assert env_name(attr) in refs, attr
    for _, c in by_role(rendered, "writer"):
        assert "CALLBRIDGE_HUBSPOT_TOKEN" in _secret_refs(c)


def test_least_privilege_for_secrets(rendered: list[Doc]) -> None:
    """The writer sees no webhook secrets, and the ingress no HubSpot token."""
    provider_envs = {env_name(a) for a in PROVIDER_SECRETS.values()}
    for _, c in by_role(rendered, "writer"):
        assert not set(_secret_refs(c)) & provider_envs
    for _, c in by_role(rendered, "ingress"):
        assert "CALLBRIDGE_HUBSPOT_TOKEN" not in _secret_refs(c)


def test_secret_example_holds_placeholders_only() -> None:
    """The example Secret file carries `<placeholders>`, never a value, for secret settings."""
    examples = _example_secrets()
    keys = set()
    for values in examples.values():
        for key, value in values.items():
            assert PLACEHOLDER.match(value), f"{key} has a non-placeholder value"
            keys.add(key)
    assert keys == secret_envs()


def test_secret_example_is_kept_out_of_kustomize_and_git() -> None:
    """No kustomization includes the example, and filled-in copies are git-ignored."""
    for kustomization in K8S.rglob("kustomization.yaml"):
        assert "secrets" not in kustomization.read_text().split("# ", 1)[0]
        for doc in load_yaml_all(kustomization):
            assert not doc.get("secretGenerator"), kustomization
    assert "secrets.yaml" in (DEPLOY / ".gitignore").read_text().splitlines()
