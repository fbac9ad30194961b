"""The ingress in every overlay: webhooks and metrics on separate ports (an Ingress routing
the webhook port never exposes /metrics), Prometheus scraping the metrics port, and a
configuration the ingress accepts at start-up even with Twilio enabled."""

from __future__ import annotations

import pytest

from service.config import Settings
from service.ingress import startup_problem
from tests.deploy.helpers import Doc, by_role, config_map, flag, named, of_kind


def _ingress(rendered: list[Doc]) -> tuple[Doc, Doc]:
    (found,) = by_role(rendered, "ingress")
    return found


def test_webhooks_and_metrics_are_on_separate_named_ports(rendered: list[Doc]) -> None:
    """--port is the container port named webhooks, --metrics-port the one named metrics,
    they differ, and probes use the webhook port (where /healthz and /readyz also answer)."""
    _, c = _ingress(rendered)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert int(flag(c["args"], "--port") or 0) == ports["webhooks"]
    assert int(flag(c["args"], "--metrics-port") or 0) == ports["metrics"]
    assert ports["webhooks"] != ports["metrics"]
    assert "http" not in ports, "the PodMonitor's writer endpoint (port http) would scrape webhooks"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"]["port"] == "webhooks"
    cm = config_map(rendered)
    assert int(cm["CALLBRIDGE_INGRESS_METRICS_PORT"]) == ports["metrics"]


def test_the_service_routes_webhooks_to_the_webhook_port(rendered: list[Doc]) -> None:
    """Service port 8080 (what an Ingress points at) targets the webhook port, not metrics."""
    svc = named(rendered, "Service", "callbridge-ingress")
    by_port = {p["port"]: p["targetPort"] for p in svc["spec"]["ports"]}
    assert by_port[8080] == "webhooks"


def test_prometheus_scrapes_the_ingress_metrics_port(rendered_all: dict[str, list[Doc]]) -> None:
    """The PodMonitor has an endpoint on the ingress's metrics port, and the network policy
    lets it in."""
    prod = rendered_all["prod"]
    (pm,) = of_kind(prod, "PodMonitor")
    assert "metrics" in {e["port"] for e in pm["spec"]["podMetricsEndpoints"]}
    w, c = _ingress(prod)
    metrics_port = int(flag(c["args"], "--metrics-port") or 0)
    opened = {
        pt["port"]
        for p in of_kind(prod, "NetworkPolicy")
        if p["spec"]["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        == w["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"]
        for r in p["spec"].get("ingress", [])
        for pt in r["ports"]
    }
    assert metrics_port in opened


def test_every_overlay_lets_the_ingress_start_with_twilio(
    rendered: list[Doc], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each overlay sets CALLBRIDGE_PUBLIC_URL (or trusted proxies), so an ingress with a
    Twilio token configured starts instead of refusing."""
    import os

    for key in [k for k in os.environ if k.startswith("CALLBRIDGE_")]:
        monkeypatch.delenv(key)
    for key, value in config_map(rendered).items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("CALLBRIDGE_TWILIO_AUTH_TOKEN", "placeholder")
    settings = Settings()
    assert settings.public_url or settings.trusted_proxies
    assert startup_problem(settings) is None
