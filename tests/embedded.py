"""A run's components on the embedded defaults, built in-process: SQLite and the YAML registry in one
folder, the default taxonomy and rules, no baseline days."""

from __future__ import annotations

from pathlib import Path

from core.classify import Classifier, FlowMap, Taxonomy
from core.detect import DetectConfig
from core.fingerprint import Fingerprinter
from core.pipeline import Components
from core.propagate import PropagateConfig
from core.redact import Redactor
from core.registry import Registry
from core.store import Store


def components(directory: Path, source, workers: int = 1) -> Components:
    return Components(
        source=source,
        store=Store.from_url(f"sqlite:///{directory / 'state.db'}"),
        registry=Registry(directory / "registry"),
        fingerprinter=Fingerprinter(),
        classifier=Classifier(Taxonomy.default(), FlowMap()),
        detect_config=DetectConfig(),
        propagate_config=PropagateConfig(),
        redactor=Redactor([]),
        baseline_days=0,
        export_dir=directory / "exports",
        analysis_workers=workers,
    )
