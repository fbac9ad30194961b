"""Alerts and the dashboard query only metrics of METRICS.md, which matches what the code exposes."""

from __future__ import annotations

import importlib
import importlib.util
import json
import pkgutil
import re
from typing import Any

import promql_parser
import pytest

from tests.deploy.helpers import DEPLOY, K8S, load_yaml_all

MONITORING = K8S / "components" / "monitoring"
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")
RANGE_FUNCTIONS = {"rate", "irate", "increase"}
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "6h"}

#: The signals issue 8 asks the dashboard and alerts to cover, by metric.
REQUIRED_ON_DASHBOARD = {
    "callbridge_ingress_requests_total",  # ingress rate and status codes
    "callbridge_kafka_produce_seconds",  # produce latency
    "callbridge_writer_consumer_lag",  # consumer lag
    "callbridge_writer_batch_size",  # batch sizes
    "callbridge_hubspot_requests_total",  # HubSpot requests
    "callbridge_hubspot_rate_limited_total",  # 429s
    "callbridge_dlq_records_total",  # DLQ growth
}


def metrics_doc() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, labels) from the table in deploy/METRICS.md."""
    rows = re.findall(
        r"^\| `(callbridge_\w+)` \| (\w+) \| ([^|]*) \|", (DEPLOY / "METRICS.md").read_text(), re.M
    )
    assert rows, "no metrics table in METRICS.md"
    out = {}
    for name, kind, labels in rows:
        assert name not in out, f"{name} listed twice"
        out[name] = (kind, set(re.findall(r"`(\w+)`", labels)))
    return out


def series(name: str, doc: dict[str, tuple[str, set[str]]]) -> str | None:
    """The documented metric a queried series belongs to (X_bucket -> histogram X)."""
    if name in doc:
        return name
    for suffix in HISTOGRAM_SERIES:
        base = name.removesuffix(suffix)
        if base != name and doc.get(base, ("",))[0] == "histogram":
            return base
    return None


def selectors(expr: str) -> tuple[set[str], set[str]]:
    """(every metric name an expression selects, those under rate/irate/increase)."""
    for var, value in GRAFANA_VARS.items():
        expr = expr.replace(var, value)
    tree = promql_parser.parse(expr)
    names: set[str] = set()
    ranged: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            assert node.name, f"selector without a metric name in {expr!r}"
            names.add(node.name)
        if isinstance(node, promql_parser.Call) and node.func.name in RANGE_FUNCTIONS:
            for arg in node.args:
                if isinstance(arg, promql_parser.MatrixSelector):
                    ranged.add(str(arg.vector_selector.name))

    promql_parser.walk(tree, visit)
    return names, ranged


def check_expr(expr: str, doc: dict[str, tuple[str, set[str]]]) -> set[str]:
    """Assert an expression parses and queries documented metrics sensibly; return them."""
    names, ranged = selectors(expr)
    assert names, f"{expr!r} queries no metric"
    used = set()
    for name in names:
        metric = series(name, doc)
        assert metric, f"{name} (in {expr!r}) is not in deploy/METRICS.md"
        used.add(metric)
    for name in ranged:
        kind = doc[series(name, doc) or name][0]
        assert kind == "counter" or (kind == "histogram" and name.endswith(HISTOGRAM_SERIES)), (
            f"rate()/increase() over {kind} {name} in {expr!r}"
        )
    return used


def alert_rules() -> list[dict[str, Any]]:
    (rule,) = load_yaml_all(MONITORING / "prometheusrule.yaml")
    return [r for g in rule["spec"]["groups"] for r in g["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads((MONITORING / "callbridge-dashboard.json").read_text()))


def panels(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for p in items:
        out.append(p)
        out += panels(p.get("panels", []))
    return out


def test_metrics_doc_is_well_formed() -> None:
    """METRICS.md lists prefixed names with a known type; counters end in _total."""
    doc = metrics_doc()
    for name, (kind, _) in doc.items():
        assert kind in {"counter", "gauge", "histogram"}, name
        assert name.endswith("_total") == (kind == "counter"), name
    assert REQUIRED_ON_DASHBOARD | {"callbridge_writer_last_poll_age_seconds"} <= set(doc)


def _registered() -> dict[str, tuple[str, set[str]]]:
    """name -> (type, labels) of every metric the service/**/metrics.py modules register."""
    from prometheus_client.metrics import MetricWrapperBase

    import service

    found: dict[str, tuple[str, set[str]]] = {}
    for mod in pkgutil.walk_packages(service.__path__, "service."):
        if mod.name.rsplit(".", 1)[-1] != "metrics":
            continue
        for value in vars(importlib.import_module(mod.name)).values():
            if isinstance(value, MetricWrapperBase):
                # prometheus_client keeps these private; they are stable across its releases.
                kind, name = str(value._type), str(value._name)
                name = name + "_total" if kind == "counter" else name
                found[name] = (kind, set(value._labelnames))
    return found


def test_metrics_doc_matches_the_code() -> None:
    """Every metric the code registers is documented with its type and labels, and no more."""
    assert _registered() == metrics_doc()


def test_expression_check_can_fail() -> None:
    """The checker rejects unknown metrics, rate() over a gauge and invalid PromQL."""
    doc = metrics_doc()
    with pytest.raises(AssertionError, match=r"not in deploy/METRICS\.md"):
        check_expr("rate(callbridge_nonexistent_total[5m])", doc)
    with pytest.raises(AssertionError, match="rate"):
        check_expr("rate(callbridge_writer_consumer_lag[5m])", doc)
    with pytest.raises(ValueError):
        check_expr("sum(rate(callbridge_dlq_records_total[5m])", doc)


def test_alert_expressions_use_documented_metrics() -> None:
    """Every alert expression parses as PromQL and queries only METRICS.md names."""
    doc = metrics_doc()
    for rule in alert_rules():
        check_expr(rule["expr"], doc)


def test_alerts_cover_the_failure_modes() -> None:
    """Alerts exist for DLQ growth, lag, HubSpot 429s, the daily budget and ingress 5xx."""
    doc = metrics_doc()
    used = {r["alert"]: check_expr(r["expr"], doc) for r in alert_rules()}
    exprs = {r["alert"]: r["expr"] for r in alert_rules()}

    def covered(metric: str, text: str = "") -> bool:
        return any(metric in used[a] and text in exprs[a] for a in used)

    assert covered("callbridge_dlq_records_total")
    assert covered("callbridge_writer_consumer_lag")
    assert covered("callbridge_hubspot_rate_limited_total")
    assert covered("callbridge_hubspot_requests_total", '"429"')
    assert covered("callbridge_hubspot_daily_remaining")
    assert covered("callbridge_ingress_requests_total", '"5..')
    assert covered("callbridge_writer_last_poll_age_seconds")


def test_dashboard_parses_and_queries_documented_metrics() -> None:
    """The dashboard JSON loads; every panel query parses and uses only METRICS.md names."""
    dash = dashboard()
    doc = metrics_doc()
    all_panels = panels(dash["panels"])
    ids = [p["id"] for p in all_panels]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    queried = set()
    for p in all_panels:
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        assert p["datasource"]["uid"] == "${datasource}", p["title"]
        for target in p["targets"]:
            queried |= check_expr(target["expr"], doc)
    assert REQUIRED_ON_DASHBOARD <= queried, REQUIRED_ON_DASHBOARD - queried


def test_dashboard_panels_do_not_overlap() -> None:
    """Panels tile the grid: none overlaps another and none is wider than 24 columns."""
    taken: set[tuple[int, int]] = set()
    for p in panels(dashboard()["panels"]):
        g = p["gridPos"]
        assert g["x"] + g["w"] <= 24, p["title"]
        cells = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & taken, f"{p['title']} overlaps"
        taken |= cells


def test_dashboard_datasource_is_a_variable() -> None:
    """The dashboard asks for its Prometheus datasource instead of hard-coding a uid."""
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
