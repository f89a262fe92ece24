"""A run's components on the embedded defaults, built in-process: SQLite and the YAML registry in one
folder, the default taxonomy and rules, no baseline days."""

from __future__ import annotations

from pathlib import Path

from core import publish
from core.analysis import Analyser
from core.classify import Classifier, FlowMap, Taxonomy
from core.fingerprint import Fingerprinter
from core.pipeline import Components, Publisher, Schedule, Thresholds
from core.redact import Redactor
from core.registry import Registry
from core.store import Store

NO_BASELINE = Schedule(baseline_days=0)
DEFAULT_THRESHOLDS = Thresholds()


def components(
    directory: Path,
    source,
    workers: int = 1,
    *,
    schedule: Schedule = NO_BASELINE,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
) -> Components:
    classifier = Classifier(Taxonomy.default(), FlowMap())
    return Components(
        analyser=Analyser(source, Fingerprinter(), classifier, workers=workers),
        store=Store.from_url(f"sqlite:///{directory / 'state.db'}"),
        registry=Registry(directory / "registry"),
        publisher=Publisher(publish.Destinations(), Redactor([]), directory / "exports"),
        thresholds=thresholds,
        schedule=schedule,
    )
