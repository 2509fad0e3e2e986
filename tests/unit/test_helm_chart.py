"""The Helm chart (deploy/helm/fraud-monitor): it lints, it renders with the default and the
production values into objects the Kubernetes API's own types accept (tests/kubecheck), and
what it renders holds together: the settings file loads with the worker's ``load_settings``,
every secret arrives by ``secretKeyRef`` only, probes reach /healthz and /readyz on the
worker's port, optional objects appear only when enabled, and the dashboard is the one in
deploy/grafana. Helm and kubecheck are built by `make helm kubecheck`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.config import Settings, load_settings
from tests.helmchart import (
    CHART,
    RELEASE,
    ROOT,
    helm,
    kinds,
    kubecheck_binary,
    objects,
    only,
    template,
    worker,
)

PRODUCTION = CHART / "values-production.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "fraudmon.json"

# Mutual TLS on top of SASL_SSL: every kafka.* security setting the worker has.
MUTUAL_TLS = ["kafka.securityProtocol=SASL_SSL", "kafka.sasl.mechanism=SCRAM-SHA-256",
              "kafka.sasl.username=fraudmon", "kafka.sasl.passwordSecret.name=kafka-user",
              "kafka.tls.caSecret.name=kafka-user", "kafka.tls.certSecret.name=kafka-user",
              "kafka.tls.keySecret.name=kafka-user",
              "kafka.tls.keyPasswordSecret.name=kafka-key", "kafka.tls.checkHostname=false",
              "api.tokenSecret.name=fraudmon-api"]
CASES: dict[str, tuple[list[Path], list[str]]] = {
    "default": ([], []), "production": ([PRODUCTION], []), "mutual-tls": ([], MUTUAL_TLS)}

@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return {name: template(values, sets) for name, (values, sets) in CASES.items()}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No FRAUDMON_* variable of this machine leaks into the settings under test."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("FRAUDMON_"):
            monkeypatch.delenv(name)
    yield


def settings_of(rendered: list[dict[str, Any]], tmp_path: Path) -> Settings:
    """The rendered settings file, loaded by the worker's own loader."""
    text = only(rendered, "ConfigMap", "-config")["data"]["config.yaml"]
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return load_settings(path)


def env_names(node: Any) -> Iterator[str]:
    """The values of every ``*_env`` key in a settings tree: the variables it names (keys
    left at their defaults are not in the rendered file, and need no variable)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key.endswith("_env") and isinstance(value, str):
                yield value
            else:
                yield from env_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from env_names(item)


@pytest.mark.parametrize("values", [[], [PRODUCTION]], ids=["default", "production"])
def test_helm_lint_passes_strict(values: list[Path]) -> None:
    done = helm("lint", "--strict", str(CHART), *[a for p in values for a in ("-f", str(p))])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("case", list(CASES))
def test_rendered_objects_match_the_kubernetes_api_types(
        rendered: dict[str, str], case: str) -> None:
    done = subprocess.run([str(kubecheck_binary())], input=rendered[case], capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"kubecheck: {len(objects(rendered[case]))} objects valid" in done.stdout


@pytest.mark.parametrize(("break_it", "reason"), [
    (("containerPort:", "containerPorts:"), 'unknown field "spec.template.spec.containers[0]'),
    (("{path: /readyz, port: http}", "{path: /readyz, port: web}"),
     "readinessProbe.httpGet.port: Not found"),
    (("apiVersion: policy/v1", "apiVersion: policy/v2"), "no kind"),
    (("maxUnavailable: 1", "maxUnavailable: 1\n  minAvailable: 1"), "exactly one of"),
    (("mountPath: /tmp", "mountPath: tmp"), "must be absolute"),
])
def test_kubecheck_refuses_broken_manifests(
        rendered: dict[str, str], break_it: tuple[str, str], reason: str) -> None:
    old, new = break_it
    text = rendered["default"]
    assert old in text
    done = subprocess.run([str(kubecheck_binary())], input=text.replace(old, new, 1),
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 1
    assert reason in done.stdout, done.stdout


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.usefixtures("clean_env")
def test_the_settings_file_loads_and_names_every_secret_by_reference(
        rendered: dict[str, str], case: str, tmp_path: Path) -> None:
    docs = objects(rendered[case])
    settings = settings_of(docs, tmp_path)
    container = worker(docs)
    pod = only(docs, "StatefulSet")["spec"]["template"]["spec"]
    # The worker answers its probes and the Service on the pod's port, and keeps its
    # state on the state volume.
    assert settings.web.host == "0.0.0.0"  # noqa: S104 - probes come from outside the pod
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["http"] == \
        settings.web.port
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert settings.processing.state_dir.is_relative_to(mounts["state"])
    assert f"--config={mounts['config']}/config.yaml" == "=".join(container["args"][1:])
    # Secrets: no Secret object, no value; each variable the settings name comes from a
    # secretKeyRef, and every secretKeyRef is a variable the settings name.
    assert "Secret" not in kinds(docs)
    env = {e["name"]: e for e in container.get("env", [])}
    by_ref = {name: e["valueFrom"]["secretKeyRef"] for name, e in env.items()
              if "secretKeyRef" in e.get("valueFrom", {})}
    assert all("value" not in env[name] for name in by_ref)
    assert set(env) - set(by_ref) <= {"PGSSLROOTCERT", "POD_IP", "FRAUDMON_WEB__ADVERTISED_URL"}
    # Each worker advertises its pod address for forwarded entity lookups.
    assert env["POD_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.podIP"}}
    assert env["FRAUDMON_WEB__ADVERTISED_URL"]["value"] == \
        f"http://$(POD_IP):{settings.web.port}"
    raw = yaml.safe_load(only(docs, "ConfigMap", "-config")["data"]["config.yaml"])
    named = set(env_names(raw))
    assert named == set(by_ref)
    # Files the settings name come from the projected Secret volume.
    files = {item["path"] for source in next(
                 (v["projected"]["sources"] for v in pod["volumes"] if v["name"] == "tls"), [])
             for item in source["secret"]["items"]}
    for path in (settings.kafka.ssl_cafile, settings.kafka.ssl_certfile,
                 settings.kafka.ssl_keyfile):
        if path is not None:
            assert str(path.parent) == mounts["tls"] and path.name in files
    if case == "default":
        assert settings.kafka.security_protocol == "PLAINTEXT" and not by_ref
    if case == "mutual-tls":
        assert settings.kafka.ssl_certfile is not None and settings.kafka.ssl_keyfile
        assert settings.kafka.ssl_key_password_env == "FRAUDMON_KAFKA_KEY_PASSWORD"
        assert by_ref["FRAUDMON_KAFKA_KEY_PASSWORD"] == {"name": "kafka-key", "key": "password"}
        assert settings.kafka.ssl_check_hostname is False
    if case == "production":
        production_settings(settings, by_ref, env)


def production_settings(settings: Settings, by_ref: dict[str, Any],
                        env: dict[str, Any]) -> None:
    values = yaml.safe_load(PRODUCTION.read_text())
    kafka = settings.kafka
    assert (kafka.security_protocol, kafka.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    assert kafka.bootstrap_servers == values["kafka"]["bootstrapServers"]
    assert kafka.sasl_username == "fraudmon" and kafka.ssl_check_hostname is True
    assert by_ref[kafka.sasl_password_env or ""] == values["kafka"]["sasl"]["passwordSecret"]
    receivers = {r.name: r for r in settings.webhooks.receivers}
    for given in values["webhooks"]["receivers"]:
        receiver = receivers[given["name"]]
        assert receiver.url == given["url"]
        assert receiver.min_severity == given["minSeverity"]
        assert list(receiver.patterns) == given.get("patterns", [])
        assert by_ref[receiver.secret_env] == given["secret"]
        # The variable's name is documented (README): FRAUDMON_WEBHOOK_SECRET_<NAME>.
        assert receiver.secret_env == "FRAUDMON_WEBHOOK_SECRET_" + given["name"].upper(
            ).replace("-", "_")
    assert settings.store.url == values["store"]["url"]
    assert by_ref[str(settings.store.password_env)] == values["store"]["passwordSecret"]
    assert env["PGSSLROOTCERT"]["value"] == "/etc/fraudmon/tls/store-ca.pem"
    for role, value in (("analyst", "analystTokensSecret"), ("admin", "adminTokensSecret")):
        name = getattr(settings.api, f"{role}_tokens_env")
        assert by_ref[str(name)] == values["api"][value]
    assert by_ref[settings.api.metrics_token_env or ""] == values["api"]["metricsTokenSecret"]
    assert settings.kafka.partitions == 12 and settings.webhooks.allow_private_targets


@pytest.mark.parametrize("case", list(CASES))
def test_probes_reach_healthz_and_readyz_on_the_web_port(
        rendered: dict[str, str], case: str) -> None:
    docs = objects(rendered[case])
    container = worker(docs)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert [p["name"] for p in container["ports"]] == ["http"]
    for service in (o for o in docs if o["kind"] == "Service"):
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    statefulset = only(docs, "StatefulSet")
    labels = statefulset["spec"]["template"]["metadata"]["labels"]
    assert statefulset["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert only(docs, "Service", "fraud-monitor")["spec"]["selector"].items() <= labels.items()
    annotations = statefulset["spec"]["template"]["metadata"]["annotations"]
    if case == "production":
        assert "prometheus.io/scrape" not in annotations
    else:
        port = container["ports"][0]["containerPort"]
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_pdb_and_servicemonitor_only_when_enabled(rendered: dict[str, str]) -> None:
    default = objects(rendered["default"])
    assert "ServiceMonitor" not in kinds(default)
    labels = only(default, "StatefulSet")["spec"]["template"]["metadata"]["labels"]
    pdb = only(default, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "PodDisruptionBudget" not in kinds(
        objects(template(sets=["podDisruptionBudget.enabled=false"])))

    plain = only(objects(template(sets=["metrics.serviceMonitor.enabled=true"])),
                 "ServiceMonitor")
    assert "authorization" not in plain["spec"]["endpoints"][0]
    production = objects(rendered["production"])
    monitor = only(production, "ServiceMonitor")
    endpoint = monitor["spec"]["endpoints"][0]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    assert endpoint["authorization"] == {
        "type": "Bearer", "credentials": {"name": "fraudmon-api", "key": "metrics-token"}}
    assert {"targetLabel": "job", "replacement": "fraudmon"} in endpoint["relabelings"]
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    # It selects the API Service, not the headless one (each pod would be scraped twice).
    selector = monitor["spec"]["selector"]["matchLabels"].items()
    services = {o["metadata"]["name"]: o["metadata"]["labels"].items()
                for o in production if o["kind"] == "Service"}
    assert [name for name, labels in services.items() if selector <= labels] == [
        f"{RELEASE}-fraud-monitor"]


def test_the_dashboard_configmap_is_the_grafana_dashboard(rendered: dict[str, str]) -> None:
    source = DASHBOARD.read_text(encoding="utf-8")
    chart_copy = CHART / "dashboards" / "fraudmon.json"
    assert chart_copy.read_text(encoding="utf-8") == source, (
        f"the chart's copy differs: cp {DASHBOARD.relative_to(ROOT)} "
        f"{chart_copy.relative_to(ROOT)}")
    configmap = only(objects(rendered["default"]), "ConfigMap", "-dashboard")
    assert configmap["data"]["fraudmon.json"] == source
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert configmap["metadata"]["annotations"]["grafana_folder"] == "fraud-monitor"
    disabled = objects(template(sets=["grafanaDashboard.enabled=false"]))
    assert not [o for o in disabled if o["metadata"]["name"].endswith("-dashboard")]


@pytest.mark.parametrize("case", ["default", "production"])
def test_resources_security_and_placement(rendered: dict[str, str], case: str) -> None:
    docs = objects(rendered[case])
    statefulset = only(docs, "StatefulSet")
    pod = statefulset["spec"]["template"]["spec"]
    container = worker(docs)
    resources = container["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]}}
    # With a read-only root, everything the worker writes is on a volume.
    mounted = {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")}
    assert mounted == {"/var/lib/fraudmon", "/tmp"}  # noqa: S108 - the pod's own emptyDir
    anti = pod["affinity"]["podAntiAffinity"]
    if case == "production":
        assert statefulset["spec"]["replicas"] == 3
        term = anti["requiredDuringSchedulingIgnoredDuringExecution"][0]
    else:
        term = anti["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    assert term["labelSelector"]["matchLabels"] == statefulset["spec"]["selector"][
        "matchLabels"]


def test_persistence_is_a_claim_per_pod_or_an_empty_dir(rendered: dict[str, str]) -> None:
    claimed = only(objects(rendered["default"]), "StatefulSet")["spec"]
    assert [c["metadata"]["name"] for c in claimed["volumeClaimTemplates"]] == ["state"]
    assert "state" not in {v["name"] for v in claimed["template"]["spec"]["volumes"]}
    ephemeral = only(objects(rendered["production"]), "StatefulSet")["spec"]
    assert "volumeClaimTemplates" not in ephemeral
    state = {v["name"]: v for v in ephemeral["template"]["spec"]["volumes"]}["state"]
    assert state["emptyDir"] == {"sizeLimit": "10Gi"}


@pytest.mark.parametrize(("sets", "reason"), [
    (["kafka.securityProtocol=SASL_SSL"], "needs kafka.sasl.mechanism"),
    (["kafka.sasl.username=fraudmon"], "kafka.sasl is set but kafka.securityProtocol is"),
    (["kafka.securityProtocol=SSL", "kafka.tls.certSecret.name=client"], "go together"),
    (["kafka.tls.caSecret.name=ca"], "kafka.tls is set but kafka.securityProtocol is PLAINTEXT"),
    (["config.kafka.bootstrap_servers=broker:9092"],
     "config.kafka.bootstrap_servers is set by the chart"),
    (["config.processing.checkpoint_store=file", "replicaCount=2"], "checkpoint_store: file"),
    (["store.url=postgresql://fraudmon:hunter2@db/fraudmon"], "store.url carries a password"),
    (["store.passwordSecret.name=pg"], "set store.url too"),
    (["kafka.sasl.mechansim=PLAIN"], "additional properties 'mechansim' not allowed"),
    # A secret's value has no place among the values: only {name, key} references.
    (["kafka.sasl.password=hunter2"], "additional properties 'password' not allowed"),
    (["api.adminTokensSecret.value=hunter2"], "additional properties 'value' not allowed"),
    (["kafka.securityProtocol=TLS"], "value must be one of"),
    (["webhooks.receivers[0].name=Risk Team", "webhooks.receivers[0].url=https://r.example",
      "webhooks.receivers[0].secret.name=hooks", "webhooks.receivers[0].secret.key=k"],
     "/webhooks/receivers/0/name"),
])
def test_values_the_worker_would_refuse_fail_at_install(sets: list[str], reason: str) -> None:
    args = ["template", RELEASE, str(CHART)] + [a for s in sets for a in ("--set", s)]
    done = helm(*args)
    assert done.returncode != 0
    assert reason in done.stderr, done.stderr
