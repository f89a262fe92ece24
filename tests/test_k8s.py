"""Tests for the Helm chart: renders it with helm when one is installed (scripts/check_k8s.sh
builds a pinned one), else reads k8s/rendered/, which check_k8s.sh keeps equal to the render."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "k8s" / "ai-log-analyzer"
RENDERED = ROOT / "k8s" / "rendered" / "ai-log-analyzer.yaml"
KUBERNETES_VERSION = "1.31.0"
SECRET_NAME = re.compile(r"PASSWORD|WEBHOOK_URL|API_KEY|TOKEN|SECRET|USERNAME|_USER$|DATABASE_URL")

Manifest = dict[str, Any]


def find_helm() -> str | None:
    cached = Path.home() / ".cache" / "ai-log-analyzer" / "helm-v3.19.0" / "helm"
    candidates = [os.environ.get("HELM"), shutil.which("helm"), str(cached)]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


HELM = find_helm()
needs_helm = pytest.mark.skipif(HELM is None, reason="helm not installed (scripts/check_k8s.sh builds it)")


def helm_template(*args: str) -> subprocess.CompletedProcess[str]:
    assert HELM is not None
    command = [HELM, "template", "ai-log-analyzer", str(CHART), "--namespace", "ai-log-analyzer"]
    command += ["--kube-version", KUBERNETES_VERSION, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def manifests() -> list[Manifest]:
    if HELM is None:
        return [doc for doc in yaml.safe_load_all(RENDERED.read_text()) if doc]
    result = helm_template()
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    [found] = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, Manifest]]:
    for m in manifests:
        if m["kind"] == "CronJob":
            yield m["metadata"]["name"], m["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif m["kind"] == "Job":
            yield m["metadata"]["name"], m["spec"]["template"]["spec"]


def env_of(pod: Manifest) -> dict[str, Manifest]:
    [container] = pod["containers"]
    return {entry["name"]: entry for entry in container.get("env", [])}


@pytest.mark.parametrize(
    ("name", "schedule", "backoff", "successful", "failed", "requests", "limits"),
    [
        ("ai-log-analyzer-regular", "*/15 * * * *", 2, 5, 3, ("1Gi", "500m"), ("2Gi", "1000m")),
        ("ai-log-analyzer-backfill", "0 9 * * *", 3, 3, 5, ("2Gi", "1000m"), ("4Gi", "2000m")),
    ],
)
def test_cronjob_schedule_history_and_resources(
    manifests: list[Manifest],
    name: str,
    schedule: str,
    backoff: int,
    successful: int,
    failed: int,
    requests: tuple[str, str],
    limits: tuple[str, str],
) -> None:
    cronjob = one(manifests, "CronJob", name)
    spec = cronjob["spec"]
    assert spec["schedule"] == schedule
    assert spec["timeZone"] == "Etc/UTC"
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0
    assert (spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (successful, failed)
    assert spec["jobTemplate"]["spec"]["backoffLimit"] == backoff
    pod = spec["jobTemplate"]["spec"]["template"]
    job_type = name.rsplit("-", 1)[1]
    assert cronjob["metadata"]["labels"]["job-type"] == job_type
    assert pod["metadata"]["labels"]["job-type"] == job_type
    assert pod["spec"]["restartPolicy"] == "OnFailure"
    resources = pod["spec"]["containers"][0]["resources"]
    assert (resources["requests"]["memory"], resources["requests"]["cpu"]) == requests
    assert (resources["limits"]["memory"], resources["limits"]["cpu"]) == limits


def test_cronjob_commands_are_the_scripts(manifests: list[Manifest]) -> None:
    regular = dict(pod_specs(manifests))["ai-log-analyzer-regular"]["containers"][0]
    backfill = dict(pod_specs(manifests))["ai-log-analyzer-backfill"]["containers"][0]
    assert regular["command"] == ["python3", "scripts/regular_phase.py"]
    assert backfill["command"] == [
        "python3",
        "scripts/backfill.py",
        "--days",
        "1",
        "--output",
        "/data/exports/reports",
    ]


def test_every_pod_runs_non_root_read_only_without_capabilities(manifests: list[Manifest]) -> None:
    pods = dict(pod_specs(manifests))
    assert set(pods) == {"ai-log-analyzer-regular", "ai-log-analyzer-backfill", "ai-log-analyzer-migrate"}
    for name, pod in pods.items():
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] == 10001, name
        assert context["fsGroup"] == 10001, name
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        [container] = pod["containers"]
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        tmp = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        assert any(m["mountPath"] == "/tmp" and m["name"] in tmp for m in container["volumeMounts"]), name


def test_no_secret_value_anywhere(manifests: list[Manifest]) -> None:
    assert not [m for m in manifests if m["kind"] == "Secret"], "the chart must never create a Secret"
    for name, pod in pod_specs(manifests):
        for env_name, entry in env_of(pod).items():
            if SECRET_NAME.search(env_name):
                assert "value" not in entry, f"{name}: {env_name} has a literal value"
                assert "secretKeyRef" in entry["valueFrom"], f"{name}: {env_name} not from a Secret"
    config = one(manifests, "ConfigMap", "ai-log-analyzer")["data"]
    assert not [key for key in config if SECRET_NAME.search(key)]
    assert not [value for value in config.values() if re.search(r"://[^/@\s]+:[^/@\s]+@", value)]


def test_values_file_holds_no_credentials() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert not [key for key in values["config"] if SECRET_NAME.search(key)]
    # the credentials section only maps environment names to keys of the existing Secret
    for group, mapping in values["credentials"].items():
        if group != "existingSecret":
            assert all(env == key for env, key in mapping.items()), group


def test_credentials_come_from_the_existing_secret_per_job(manifests: list[Manifest]) -> None:
    pods = dict(pod_specs(manifests))

    def secret_env(name: str) -> dict[str, tuple[str, str]]:
        return {
            env: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
            for env, e in env_of(pods[name]).items()
            if "secretKeyRef" in e.get("valueFrom", {})
        }

    secret = "ai-log-analyzer-credentials"
    regular, backfill = secret_env("ai-log-analyzer-regular"), secret_env("ai-log-analyzer-backfill")
    migrate = secret_env("ai-log-analyzer-migrate")
    assert regular["DB_PASSWORD"] == (secret, "DB_PASSWORD")
    assert regular["TEAMS_WEBHOOK_URL"] == (secret, "TEAMS_WEBHOOK_URL")
    assert {"ES_USERNAME", "ES_PASSWORD", "ES_API_KEY"} <= set(regular)
    assert backfill["CONFLUENCE_PASSWORD"] == (secret, "CONFLUENCE_PASSWORD")
    assert "CONFLUENCE_PASSWORD" not in regular, "only the backfill publishes to Confluence"
    assert "DB_DDL_PASSWORD" not in regular and "DB_DDL_PASSWORD" not in backfill
    assert migrate["DB_DDL_USER"] == (secret, "DB_DDL_USER")
    assert migrate["DB_DDL_PASSWORD"] == (secret, "DB_DDL_PASSWORD")


def test_job_and_pod_names_reach_the_app(manifests: list[Manifest]) -> None:
    for name, pod in pod_specs(manifests):
        env = env_of(pod)
        job_name = env["K8S_JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
        assert job_name == "metadata.labels['batch.kubernetes.io/job-name']", name
        assert env["K8S_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name", name


def test_config_map_feeds_the_cronjobs_and_points_into_the_volume(manifests: list[Manifest]) -> None:
    config = one(manifests, "ConfigMap", "ai-log-analyzer")["data"]
    assert config["REGISTRY_DIR"] == "/data/registry"
    assert config["EXPORT_DIR"] == "/data/exports"
    assert config["PUSHGATEWAY_URL"].startswith("http")
    for name, pod in pod_specs(manifests):
        if name != "ai-log-analyzer-migrate":
            assert pod["containers"][0]["envFrom"] == [{"configMapRef": {"name": "ai-log-analyzer"}}]


def test_pvc_is_mounted_at_data_by_both_cronjobs(manifests: list[Manifest]) -> None:
    claim = one(manifests, "PersistentVolumeClaim", "ai-log-analyzer-data")
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for name in ("ai-log-analyzer-regular", "ai-log-analyzer-backfill"):
        pod = dict(pod_specs(manifests))[name]
        volumes = {v["name"]: v for v in pod["volumes"]}
        [data] = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/data"]
        assert volumes[data["name"]]["persistentVolumeClaim"]["claimName"] == "ai-log-analyzer-data"


def test_migration_is_a_pre_install_and_pre_upgrade_hook(manifests: list[Manifest]) -> None:
    job = one(manifests, "Job", "ai-log-analyzer-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["log-analyzer", "migrate"]
    # the hook runs before the ConfigMap exists, so its settings must be inline
    assert env_of(job["spec"]["template"]["spec"])["DB_HOST"]["value"] == "postgres.example.com"


def test_service_account_has_no_token(manifests: list[Manifest]) -> None:
    account = one(manifests, "ServiceAccount", "ai-log-analyzer")
    assert account["automountServiceAccountToken"] is False
    for name, pod in pod_specs(manifests):
        if name != "ai-log-analyzer-migrate":
            assert pod["serviceAccountName"] == "ai-log-analyzer"


def test_network_policy_allows_only_the_listed_egress(manifests: list[Manifest]) -> None:
    policy = one(manifests, "NetworkPolicy", "ai-log-analyzer")["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in policy, "the jobs serve nothing"
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "ai-log-analyzer"
    ports = set()
    for rule in policy["egress"]:
        assert rule["to"], "an empty 'to' would allow every destination"
        ports |= {(p["port"], p["protocol"]) for p in rule["ports"]}
    assert ports == {(53, "UDP"), (53, "TCP"), (9200, "TCP"), (5432, "TCP"), (443, "TCP"), (9091, "TCP")}
    cidrs = {peer["ipBlock"]["cidr"] for rule in policy["egress"] for peer in rule["to"] if "ipBlock" in peer}
    assert cidrs == {"192.0.2.10/32", "192.0.2.20/32", "198.51.100.0/28", "203.0.113.0/24"}


@needs_helm
def test_rendered_manifests_are_up_to_date() -> None:
    committed = [doc for doc in yaml.safe_load_all(RENDERED.read_text()) if doc]
    assert committed == [doc for doc in yaml.safe_load_all(helm_template().stdout) if doc]


@needs_helm
def test_values_schema_rejects_a_password_in_the_config_map() -> None:
    result = helm_template("--set", "config.DB_PASSWORD=hunter2")
    assert result.returncode != 0
    assert "DB_PASSWORD" in result.stderr


CHART_OWNED = {"REGISTRY_DIR", "EXPORT_DIR", "PUSHGATEWAY_URL", "ES_CA_CERTS", "K8S_JOB_NAME", "K8S_POD_NAME"}
"""Settings the chart sets itself (paths into its volume, the gateway, the pod's identity)."""


def settable_names() -> list[str]:
    """Every setting a person may put in the ConfigMap: all but credentials, the chart's own and the
    offline log file, with one variable of each stage's overrides."""
    from core.config import Settings

    names = [
        str(field.validation_alias.choices[0]) if field.validation_alias else name.upper()
        for name, field in Settings.model_fields.items()
    ]
    names = [n for n in names if not SECRET_NAME.search(n) and n not in CHART_OWNED and n != "LOG_FILE"]
    return [*names, "DETECT_SPIKE_RATIO", "PROPAGATE_MAX_GAP_MINUTES"]


@needs_helm
def test_every_setting_but_credentials_can_be_set_in_the_config_map() -> None:
    names = settable_names()
    assert {"ANALYSIS_WORKERS", "ES_FIELD_MAP", "TAXONOMY_FILE", "BASELINE_DAYS"} <= set(names)
    values = {n: {"TEAMS_WEBHOOK_KIND": "connector"}.get(n, "7") for n in names}
    result = helm_template(*(arg for n, v in values.items() for arg in ("--set-string", f"config.{n}={v}")))
    assert result.returncode == 0, result.stderr
    config = one([d for d in yaml.safe_load_all(result.stdout) if d], "ConfigMap", "ai-log-analyzer")["data"]
    assert {n: config.get(n) for n in names} == values


@needs_helm
@pytest.mark.parametrize("name", sorted(CHART_OWNED - {"ES_CA_CERTS"}))
def test_what_the_chart_sets_itself_cannot_be_set_twice(name) -> None:
    result = helm_template("--set-string", f"config.{name}=/elsewhere")
    assert result.returncode != 0
    assert name in result.stderr


@needs_helm
def test_unset_destination_is_left_out_not_opened_to_all() -> None:
    result = helm_template("--set", "networkPolicy.egress.teams.cidrs=null")
    policy = one([d for d in yaml.safe_load_all(result.stdout) if d], "NetworkPolicy", "ai-log-analyzer")
    assert all(rule["to"] for rule in policy["spec"]["egress"])
    assert len(policy["spec"]["egress"]) == 5
