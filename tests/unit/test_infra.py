"""Offline checks of the deployment files: alert rules (promtool), compose, Kubernetes manifests, NGINX, Grafana.

CI installs promtool, docker-compose and nginx (.ci/run); a check skips only where its tool is missing outside CI.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ragbus.stack.servers import MILVUS_TIME_TICK_MS

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
STAGES = ("extractor", "chunker", "embedder", "indexer")
INPUT_TOPICS = {
    "extractor": "ragbus.documents.v1",
    "chunker": "ragbus.extracted.v1",
    "embedder": "ragbus.chunks.v1",
    "indexer": "ragbus.embedded.v1",
}
REQUIRED_ALERTS = {
    "EventGivenUpAfterRetries",
    "HighErrorRate",
    "HighLatency",
    "LowPrecision",
    "ConsumerLagHigh",
    "DeadLettersGrowing",
    "StaleIndex",
}


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is missing in CI: .ci/run installs it (apt-get)")
        pytest.skip(f"{name} not installed (apt-get install prometheus docker-compose nginx; CI installs them)")
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False, env=env, cwd=ROOT)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load((INFRA / "prometheus" / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


# --- Prometheus -------------------------------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    out = _run(_tool("promtool"), "check", "rules", str(INFRA / "prometheus" / "alerts.yml"))
    assert "SUCCESS" in out


def test_every_alert_fires_in_the_rule_unit_tests() -> None:
    tests = INFRA / "prometheus" / "tests" / "alerts_test.yml"
    out = _run(_tool("promtool"), "test", "rules", str(tests))
    assert "SUCCESS" in out
    # Each alert appears in an alert_rule_test that expects it to fire (exp_alerts not empty).
    fired = {
        case["alertname"]
        for test in yaml.safe_load(tests.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case["exp_alerts"]
    }
    assert {rule["alert"] for rule in _alerts()} <= fired


def test_prometheus_config_is_valid_with_the_rules_it_loads() -> None:
    out = _run(_tool("promtool"), "check", "config", str(INFRA / "prometheus" / "prometheus.yml"))
    assert "SUCCESS: 1 rule files found" in out or "SUCCESS" in out


def test_embedded_stack_prometheus_config_is_valid() -> None:
    out = _run(_tool("promtool"), "check", "config", str(INFRA / "prometheus" / "prometheus-embedded.yml"))
    assert "SUCCESS" in out


def test_each_alert_has_severity_summary_and_an_existing_runbook_section() -> None:
    alerts = _alerts()
    assert {rule["alert"] for rule in alerts} >= REQUIRED_ALERTS
    headings = re.findall(r"^## (.+)$", (ROOT / "docs" / "runbooks.md").read_text(), flags=re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    for rule in alerts:
        assert rule["labels"]["severity"] in {"page", "warn"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page == "docs/runbooks.md", rule["alert"]
        assert anchor == rule["alert"].lower() and anchor in anchors, f"no runbook section for {rule['alert']}"


def test_grafana_dashboard_plots_only_metrics_the_code_defines() -> None:
    dashboard = json.loads((INFRA / "grafana" / "dashboards" / "ragbus.json").read_text())
    code = "\n".join(p.read_text() for p in [*ROOT.glob("ragbus/*.py"), *ROOT.glob("query_api/*.py")])
    rules = (INFRA / "prometheus" / "alerts.yml").read_text()
    assert len(dashboard["panels"]) >= 12
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            for name in re.findall(r"\b((?:rag|ragbus)_[a-z0-9_]+|ragbus:[a-z0-9_:]+)", target["expr"]):
                base = re.sub(r"_(bucket|count|sum)$", "", name)
                assert f'"{base}"' in code or f"record: {name}" in rules, f"{panel['title']}: unknown {name}"


def _defined_metrics() -> dict[str, str]:
    """Name -> file of every Prometheus metric the services define (the first argument of Counter(...) etc.)."""
    kinds = {"Counter", "Gauge", "Histogram", "Summary", "Info", "Enum"}
    found: dict[str, str] = {}
    for package in ("ragbus", "workers", "query_api", "producers"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in kinds):
                    continue
                if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                    found[node.args[0].value] = str(path.relative_to(ROOT))
    return found


def test_every_metric_has_the_ragbus_prefix_and_no_file_names_the_old_one() -> None:
    defined = _defined_metrics()
    # Both the workers' and the API's metrics are found (the API's were rag_* before 6 Dec 2026).
    assert {"ragbus_stage_messages_total", "ragbus_queries_total", "ragbus_breaker_state"} <= set(defined)
    assert [f"{name} ({where})" for name, where in defined.items() if not name.startswith("ragbus_")] == []
    readers = [*INFRA.rglob("*.yml"), *INFRA.rglob("*.json"), *(ROOT / "docs").glob("*.md"), *ROOT.glob("bench/*.py")]
    old = [f"{p.relative_to(ROOT)}: {m}" for p in readers for m in re.findall(r"\brag_[a-z0-9_]+", p.read_text())]
    assert old == [], "metrics were renamed to ragbus_*"


def test_the_image_contains_every_package_the_project_ships() -> None:
    import tomllib

    dockerfile = (ROOT / "Dockerfile").read_text()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in project["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} {package}$", dockerfile, flags=re.MULTILINE), f"{package} not copied"
    assert re.search(r"^COPY pyproject.toml README.md ", dockerfile, flags=re.MULTILINE)  # readme = README.md
    assert "RAGBUS_WORKER_METRICS_HOST=0.0.0.0" in dockerfile
    assert re.search(r"^USER (?!root)", dockerfile, flags=re.MULTILINE)  # never runs as root
    assert re.search(r"^EXPOSE 8000 9100$", dockerfile, flags=re.MULTILINE)


# --- docker compose ---------------------------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    env = {**os.environ, "MINIO_ROOT_PASSWORD": "test-only", "GRAFANA_ADMIN_PASSWORD": "test-only"}
    compose = _tool("docker-compose")
    _run(compose, "-f", str(ROOT / "docker-compose.yml"), "config", "-q", env=env)  # schema-validated
    parsed: dict[str, Any] = yaml.safe_load(_run(compose, "-f", str(ROOT / "docker-compose.yml"), "config", env=env))
    return parsed


def _mount(mount: str | dict[str, Any]) -> tuple[str, str]:
    """(source, target) of a volume, whichever syntax `config` prints: Compose v2 the long form, v1 "src:dst[:ro]"."""
    if isinstance(mount, dict):
        return str(mount.get("source", "")), str(mount["target"])
    source, target, *_ = mount.split(":")
    return source, target


def test_compose_file_is_valid_and_every_service_has_a_health_check() -> None:
    services = _compose()["services"]
    sources = {"source-postgres", "source-debezium", "source-watch"}
    expected = {"kafka", "etcd", "minio", "milvus", "redis", "prometheus", "grafana", "api", *STAGES, *sources}
    assert expected <= set(services)
    for name in expected:
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no health check"
    assert services["api"]["healthcheck"]["test"] != services["chunker"]["healthcheck"]["test"]  # /readyz


def test_compose_runs_workers_and_api_from_one_image_and_compacts_the_documents_topic() -> None:
    services = _compose()["services"]
    images = {services[name]["image"] for name in (*STAGES, "api")}
    assert images == {"ragbus:latest"}
    for source in ("source-postgres", "source-debezium", "source-watch"):
        assert services[source]["image"] == "ragbus:latest"
        assert services[source]["environment"]["RAGBUS_SOURCE_METRICS_PORT"] == "9100"  # its health check's port
    for stage in STAGES:
        assert services[stage]["command"] == ["worker", stage]
        env = services[stage]["environment"]
        assert env["RAGBUS_WORKER_METRICS_HOST"] == "0.0.0.0"  # Prometheus scrapes from another container
        assert env["RAGBUS_WORKER_METRICS_PORT"] == "9100"
    topics = " ".join(services["kafka-topics"]["command"])
    assert "--topic ragbus.documents.v1" in topics
    assert "cleanup.policy=compact" in topics
    assert "KAFKA_PROCESS_ROLES" in services["kafka"]["environment"]  # KRaft, no ZooKeeper
    assert "ETCD_ENDPOINTS" in services["milvus"]["environment"]
    assert "MINIO_ADDRESS" in services["milvus"]["environment"]
    for mount in (*services["prometheus"]["volumes"], *services["grafana"]["volumes"], *services["milvus"]["volumes"]):
        source, _ = _mount(mount)
        if source.startswith("/"):
            assert Path(source).exists(), source


def test_the_production_milvus_engine_gets_the_time_tick_the_embedded_one_runs_with() -> None:
    mounts = [_mount(m) for m in _compose()["services"]["milvus"]["volumes"]]
    sources = [source for source, target in mounts if target == "/milvus/configs/user.yaml"]
    assert len(sources) == 1 and Path(sources[0]) == INFRA / "milvus" / "user.yaml"
    overrides = yaml.safe_load((INFRA / "milvus" / "user.yaml").read_text())
    assert overrides["proxy"]["timeTickInterval"] == MILVUS_TIME_TICK_MS


def test_the_production_milvus_does_bm25_so_production_serves_hybrid() -> None:
    """Milvus 2.4 has no BM25: the compose stack served dense-only without a word (issue 27). 2.5+ does BM25."""
    from ragbus.milvus.retrieval_mode import predates_bm25

    services = _compose()["services"]
    repository, _, tag = services["milvus"]["image"].partition(":")
    assert repository == "milvusdb/milvus" and re.fullmatch(r"v\d+\.\d+\.\d+", tag), tag  # a release, not latest
    assert not predates_bm25(tag), f"{tag} has no BM25: hybrid retrieval would be off in production"
    assert "RAGBUS_MILVUS_BM25" not in services["api"]["environment"]  # auto: new collections get the BM25 field
    assert services["api"]["environment"].get("RAGBUS_API_RETRIEVAL", "hybrid") == "hybrid"
    # Standalone needs only etcd and MinIO beside it (its message queue is embedded), and the docs name the release.
    assert {"etcd", "minio"} <= set(services["milvus"]["depends_on"])
    minor = ".".join(tag.lstrip("v").split(".")[:2])
    assert f"Milvus {minor} standalone" in (ROOT / "docs" / "deployment.md").read_text()
    k8s = _by_kind("ConfigMap")["ragbus-settings"]["data"]  # the Kubernetes settings as well
    assert k8s.get("RAGBUS_MILVUS_BM25", "auto") == "auto" and k8s.get("RAGBUS_API_RETRIEVAL", "hybrid") == "hybrid"


def test_compose_refuses_to_start_without_the_admin_secrets() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"MINIO_ROOT_PASSWORD", "GRAFANA_ADMIN_PASSWORD"}}
    done = subprocess.run(
        [_tool("docker-compose"), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode != 0
    assert "MINIO_ROOT_PASSWORD" in done.stderr or "GRAFANA_ADMIN_PASSWORD" in done.stderr


# --- Kubernetes -------------------------------------------------------------------------------------------------


def _manifests() -> list[dict[str, Any]]:
    resources = yaml.safe_load((INFRA / "k8s" / "kustomization.yaml").read_text())["resources"]
    assert {p.name for p in (INFRA / "k8s").glob("*.yaml")} == {*resources, "kustomization.yaml"}
    return [doc for name in resources for doc in yaml.safe_load_all((INFRA / "k8s" / name).read_text()) if doc]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in _manifests() if doc["kind"] == kind}


KEDA_SCALED_OBJECT = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {"name": {"type": "string"}, "kind": {"type": "string"}},
                },
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "properties": {
                            "type": {"const": "kafka"},
                            "metadata": {
                                "type": "object",
                                "required": ["bootstrapServers", "consumerGroup", "topic", "lagThreshold"],
                                # KEDA reads trigger metadata as a map of strings.
                                "additionalProperties": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


def test_builtin_kubernetes_resources_pass_strict_schema_validation() -> None:
    builtin = [doc for doc in _manifests() if doc["kind"] != "ScaledObject"]
    assert {doc["kind"] for doc in builtin} >= {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"}
    for doc in builtin:
        # Raises ValidationError naming the field; SchemaNotFoundError for a kind or apiVersion that does not exist.
        kubernetes_validate.validate(doc, "1.30", strict=True)
        kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


def test_strict_validation_would_catch_a_misspelt_probe() -> None:
    deployment = _by_kind("Deployment")["ragbus-api"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbes"] = container.pop("livenessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30", strict=True)


def test_api_three_workers_and_the_sources_have_probes_resources_and_settings() -> None:
    deployments = _by_kind("Deployment")
    sources = {f"ragbus-source-{s}" for s in ("postgres", "debezium", "watch")}
    assert set(deployments) == {"ragbus-api", *(f"ragbus-{s}" for s in STAGES), *sources}
    for name in sources:  # off until the user fills in their settings; never more than one reader
        assert deployments[name]["spec"]["replicas"] == 0, name
    for name, deployment in deployments.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["livenessProbe"] and container["readinessProbe"], name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), name
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert sources == {"ragbus-settings", "ragbus-secrets"}, name
    api = deployments["ragbus-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"  # out of the Service while a dependency is down
    settings = _by_kind("ConfigMap")["ragbus-settings"]["data"]
    assert settings["RAGBUS_WORKER_METRICS_HOST"] == "0.0.0.0"
    # Nothing secret in the ConfigMap.
    assert not {"RAGBUS_REDIS_URL", "RAGBUS_MILVUS_TOKEN", "RAGBUS_LLM_API_KEY"} & set(settings)


def test_api_autoscales_on_cpu_and_memory() -> None:
    hpa = _by_kind("HorizontalPodAutoscaler")["ragbus-api"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "ragbus-api"}
    assert {m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"} == {"cpu", "memory"}


def test_each_worker_scales_with_keda_on_its_consumer_group_lag() -> None:
    import jsonschema

    scaled = _by_kind("ScaledObject")
    deployments = _by_kind("Deployment")
    partitions = int(_by_kind("ConfigMap")["ragbus-settings"]["data"]["RAGBUS_KAFKA_PARTITIONS"])
    assert set(scaled) == {f"ragbus-{s}" for s in STAGES}
    for stage in STAGES:
        obj = scaled[f"ragbus-{stage}"]
        jsonschema.validate(obj, KEDA_SCALED_OBJECT)
        assert obj["spec"]["scaleTargetRef"]["name"] in deployments
        live, bulk = obj["spec"]["triggers"]  # one group reads both lanes' input topics
        for trigger, topic in ((live, INPUT_TOPICS[stage]), (bulk, INPUT_TOPICS[stage].replace(".v1", ".bulk.v1"))):
            assert trigger["metadata"]["consumerGroup"] == f"ragbus.{stage}"  # <prefix>.<stage>, as workers join
            assert trigger["metadata"]["topic"] == topic
            assert int(trigger["metadata"]["lagThreshold"]) > 0
        assert obj["spec"]["maxReplicaCount"] <= partitions  # more consumers than partitions would sit idle


# --- NGINX ------------------------------------------------------------------------------------------------------


def test_nginx_example_balances_least_conn_and_passes_nginx_t(tmp_path: Path) -> None:
    conf = INFRA / "nginx" / "ragbus.conf"
    text = conf.read_text()
    upstream = re.search(r"upstream ragbus_api \{(.*?)\}", text, flags=re.DOTALL)
    assert upstream and "least_conn;" in upstream.group(1)
    assert len(re.findall(r"^\s*server \S+:8000", upstream.group(1), flags=re.MULTILINE)) >= 2
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n  include {conf};\n}}\n")
    _run(_tool("nginx"), "-t", "-q", "-e", str(tmp_path / "error.log"), "-p", str(tmp_path), "-c", str(main))
