"""The hot loop: one range of a source folded into incident counts (normalize → fingerprint →
classify → aggregate), in this process or in forked workers, one part of the source each.

Workers send back only their counts, never events, merged in part order into exactly what the single
process would have counted.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from itertools import islice

from core import log
from core.aggregate import Aggregator
from core.classify import Classifier
from core.fetch import PartFetch, Source
from core.fingerprint import Fingerprinter
from core.layout import Layout
from core.model import InputStats, ProblemClass
from core.normalize import normalize

STAGE_BATCH = 1000
"""Events taken through each stage together, one stage after the other, rather than each event
through all stages: every stage's code and data stay hot in the CPU caches for a batch. Same calls
in the same order per stage, so the same results; 54–57 → 44 µs/event for the hot loop over one
day of the 1M bench (docs/performance.md). A batch is small next to a page of documents."""


@dataclass
class RangeCounts:
    """What the hot loop folded from (a part of) a range: small, so a worker can send it back."""

    aggregator: Aggregator
    stats: InputStats
    classes: dict[str, ProblemClass]

    def merge(self, later: RangeCounts) -> None:
        """Add a later part's counts (in part order, so first-seen choices are the single process's)."""
        self.aggregator.merge(later.aggregator)
        self.stats.merge(later.stats)
        for problem_id, problem in later.classes.items():
            self.classes.setdefault(problem_id, problem)


@dataclass(frozen=True)
class Analyser:
    """Reads a range from the source and counts it into incidents; owns the worker pool."""

    source: Source
    fingerprinter: Fingerprinter
    classifier: Classifier
    fields: Layout | None = None  # a tuple or None (every preset): detected per document among them
    max_message_bytes: int = 65536
    workers: int = 1  # processes analysing one range, each a part of it (1: in this process)

    def count(
        self, start: datetime, end: datetime, *, after_fork: Callable[[], None] = lambda: None
    ) -> RangeCounts:
        """The range's counts. `after_fork` runs first in each worker (e.g. to let go of the parent's
        pooled database connections, which a forked process must neither use nor close)."""
        if self.workers > 1:
            return self._count_in_workers(start, end, after_fork)
        return self._count(start, end, partial(self.source.fetch, start, end))

    def _count(self, start: datetime, end: datetime, fetch: PartFetch) -> RangeCounts:
        """The hot loop over the documents `fetch` yields."""
        counted = RangeCounts(Aggregator(start, end), InputStats(), {})
        aggregator, classes = counted.aggregator, counted.classes
        fingerprint, classify = self.fingerprinter.fingerprint, self.classifier.classify
        events = normalize(fetch(counted.stats), counted.stats, self.fields, self.max_message_bytes)
        while batch := list(islice(events, STAGE_BATCH)):
            fingerprints = [fingerprint(event.message, event.error_type) for event in batch]
            problems = [classify(event, fp) for event, fp in zip(batch, fingerprints, strict=True)]
            for event, fp, problem in zip(batch, fingerprints, problems, strict=True):
                classes.setdefault(problem.id, problem)
                aggregator.add(event, fp, problem)
        return counted

    def _count_in_workers(
        self, start: datetime, end: datetime, after_fork: Callable[[], None]
    ) -> RangeCounts:
        """One forked process per part of the source, their counts merged here in part order; a
        worker's error is raised here. Where no process can be forked or the source cannot be split,
        the range is counted here."""
        global _FORKED
        try:
            fork = multiprocessing.get_context("fork")
            with self.source.split(start, end, self.workers) as parts:
                _FORKED = _Forked(self, start, end, parts, after_fork)
                try:
                    with ProcessPoolExecutor(len(parts), mp_context=fork, initializer=_in_worker) as pool:
                        futures = [pool.submit(_count_part, i) for i in range(len(parts))]
                        counted = [future.result() for future in futures]
                except BrokenProcessPool as exc:
                    raise RuntimeError(f"an analysis worker died: {exc}") from None
                finally:
                    _FORKED = None
        except (ValueError, NotImplementedError, BlockingIOError) as exc:
            log.get().warning("analysing in one process", analysis_workers=self.workers, reason=str(exc))
            return self._count(start, end, partial(self.source.fetch, start, end))
        merged = counted[0]
        for later in counted[1:]:
            merged.merge(later)
        return merged


@dataclass(frozen=True)
class _Forked:
    """What the forked workers count: set just before the pool forks them, which copies it."""

    analyser: Analyser
    start: datetime
    end: datetime
    parts: list[PartFetch]
    after_fork: Callable[[], None]


_FORKED: _Forked | None = None


def _in_worker() -> None:
    assert _FORKED is not None
    _FORKED.after_fork()


def _count_part(index: int) -> RangeCounts:
    assert _FORKED is not None
    forked = _FORKED
    return forked.analyser._count(forked.start, forked.end, forked.parts[index])
