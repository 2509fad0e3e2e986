"""The deployment files: Prometheus rules pass their unit tests, configs pass their own
checkers, the dashboard holds together, the OpenAPI file is current (the Helm chart:
test_helm_chart.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import yaml

from monitor.interfaces.openapi import document

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path is not None, f"{name} is missing: run `make apt-deps`"
    return path


def run(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_promtool_rule_unit_tests_pass() -> None:
    out = run(tool("promtool"), "test", "rules",
              str(DEPLOY / "prometheus" / "tests" / "rules_test.yml"))
    assert "SUCCESS" in out


def test_prometheus_and_alertmanager_configs_are_valid() -> None:
    run(tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    run(tool("promtool"), "check", "rules", *map(str, (DEPLOY / "prometheus" / "rules")
                                                 .glob("*.yml")))
    run(tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))


def test_every_alerting_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules" / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "prometheus" / "tests" / "rules_test.yml").read_text())
    tested = {case["alertname"] for test in tests["tests"]
              for case in test.get("alert_rule_test", []) if case.get("exp_alerts")}
    assert alerts == tested


def test_the_dashboard_panels_all_query_prometheus() -> None:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "fraudmon.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}"
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"])
    provisioning = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "fraudmon.yml").read_text())
    assert provisioning["providers"][0]["type"] == "file"


def test_the_committed_openapi_document_is_current() -> None:
    committed = json.loads((ROOT / "docs" / "openapi.json").read_text())
    assert committed == document(), "run `fraudmon openapi --out docs/openapi.json`"
    assert set(committed["paths"]) == {"/healthz", "/readyz", "/metrics", "/openapi.json",
                                       "/alerts", "/entities/{entity}", "/labels", "/whoami",
                                       "/settings", "/cases", "/cases/{alert_id}",
                                       "/entities/{entity}/movements", "/ui"}
    roles = {(method.upper(), path): operation.get("x-fraudmon-role")
             for path, operations in committed["paths"].items()
             for method, operation in operations.items()}
    assert roles[("GET", "/settings")] == "admin" and roles[("GET", "/alerts")] == "analyst"
    assert roles[("GET", "/metrics")] is None
