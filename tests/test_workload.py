"""Tests for core.workload's owner fields and core.model.Workload's CronJob: the Job before its
CronJob, a Kind/name reference, a ReplicaSet's Deployment, and one key whatever the shipper."""

from __future__ import annotations

import pytest

from core.model import Workload
from core.workload import attribute

NIGHTLY = "nightly-settlement-29936280"
POD = f"{NIGHTLY}-abcde"


def test_the_job_wins_over_its_cronjob_and_keeps_it_as_parent() -> None:
    # Filebeat with add_resource_metadata.cronjob writes both kubernetes.job.name and kubernetes.cronjob.name.
    workload = attribute("batch", POD, owners={"CronJob": "nightly-settlement", "Job": NIGHTLY})
    assert workload == Workload("Job", "batch", NIGHTLY)
    assert workload.cronjob == "nightly-settlement"
    assert workload.label == "Job/batch/nightly-settlement-29936280 of CronJob nightly-settlement"


def test_the_fluent_bit_and_filebeat_forms_of_one_pod_are_one_key() -> None:
    filebeat = attribute("batch", POD, owners={"Job": NIGHTLY, "CronJob": "nightly-settlement"})
    fluent_bit = attribute("batch", POD, labels={"job-name": NIGHTLY})
    by_name = attribute("batch", POD)
    assert filebeat == fluent_bit == by_name
    assert len({filebeat, fluent_bit, by_name}) == 1
    assert {w.cronjob for w in (filebeat, fluent_bit, by_name)} == {"nightly-settlement"}


def test_a_cronjob_field_alone_still_names_the_job_of_the_pod() -> None:
    assert attribute("batch", POD, owners={"CronJob": "nightly-settlement"}) == Workload(
        "Job", "batch", NIGHTLY
    )
    # A pod name that holds no Job of that CronJob leaves the CronJob as the workload.
    assert attribute("batch", "runner", owners={"CronJob": "nightly-settlement"}) == Workload(
        "CronJob", "batch", "nightly-settlement"
    )


@pytest.mark.parametrize(
    ("reference", "pod", "expected"),
    [
        ("ReplicaSet/api-7d4b9c6f5", "api-7d4b9c6f5-x2k4q", ("Deployment", "api")),
        (
            "Job/statement-export-29936280",
            "statement-export-29936280-q7w8e",
            ("Job", "statement-export-29936280"),
        ),
        ("StatefulSet/ledger-db", "ledger-db-0", ("StatefulSet", "ledger-db")),
        ("DaemonSet/node-agent", "node-agent-z9x8c", ("DaemonSet", "node-agent")),
        ("ReplicaSet/standalone", "standalone-a1b2c", ("ReplicaSet", "standalone")),
        # A static pod is owned by its Node: no workload, so the pod name decides.
        ("Node/controlplane", "kube-apiserver-controlplane", ("Pod", "kube-apiserver-controlplane")),
    ],
)
def test_vector_pod_owner_reference(reference: str, pod: str, expected: tuple[str, str]) -> None:
    assert attribute("cards", pod, owners={"reference": reference}) == Workload(
        expected[0], "cards", expected[1]
    )


def test_a_replicaset_field_names_its_deployment_by_the_pod_template_hash() -> None:
    # Elastic Agent since 8.10.4 adds kubernetes.replicaset.name but not kubernetes.deployment.name
    # unless add_resource_metadata.deployment is on.
    labels = {"pod-template-hash": "5c9d8f7b6"}
    assert attribute(
        "ledger",
        "ledger-writer-5c9d8f7b6-m4n5p",
        labels=labels,
        owners={"ReplicaSet": "ledger-writer-5c9d8f7b6"},
    ) == Workload("Deployment", "ledger", "ledger-writer")


@pytest.mark.parametrize(
    ("workload", "cronjob"),
    [
        (Workload("Job", "batch", "statement-export-29936280"), "statement-export"),
        (Workload("Job", "batch", "migrate"), None),
        (Workload("Job", "batch", "etl-1234567"), None),  # 7 digits: no CronJob's minute
        (Workload("Deployment", "batch", "export-29936280"), None),
    ],
)
def test_the_cronjob_of_a_job_is_read_from_its_name(workload: Workload, cronjob: str | None) -> None:
    assert workload.cronjob == cronjob
    assert workload.label == (f"{workload} of CronJob {cronjob}" if cronjob else str(workload))
