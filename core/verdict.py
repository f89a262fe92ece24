"""How far an analysed range can be trusted: its `Verdict`, decided from facts the source gives cheaply.

A monitoring tool's worst output is a false all-clear. A range the source could not deliver (no
logs at all where logs are expected, every document unreadable) is `failed` and says nothing about
the problems in it; a range read in part (many documents unreadable) is `degraded`. A range whose
source could not be read at all fails before this, with the source's error as the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.fetch import Source
from core.model import InputStats, Verdict

LEVEL_FILTERED = frozenset({"not_error_level"})
"""Skip reasons that are the level filter at work, not documents the analysis could not read."""


@dataclass(frozen=True, slots=True)
class VerdictConfig:
    """The thresholds of the verdict (settings `SOURCE_MIN_DOCUMENTS`, `SOURCE_MAX_UNREADABLE_SHARE`)."""

    min_documents: int = 1  # fewer documents of any level in a range: its logs did not arrive (0: off)
    max_unreadable_share: float = 0.5  # more of the read documents unreadable: the range is degraded
    baseline: timedelta = timedelta(days=7)  # where to look for logs when a range has none


EXPECTED_BEFORE_SILENCE = 20
"""Documents per range of its size that the baseline must have had on average before an empty range
counts as logs that stopped arriving. Counts are roughly Poisson: with 20 expected, an empty range by
chance has odds of e^-20 (about 2 in a billion); with 3 expected (a small cluster's quiet night, a
sparse test source) it has 1 in 20, which is no sign of anything."""


def volume_verdict(
    source: Source, start: datetime, end: datetime, label: str, config: VerdictConfig
) -> Verdict:
    """`failed` when the range holds fewer documents of any level than expected: none at all in the
    source's baseline either ("no logs"), or fewer than `min_documents` where the baseline makes many
    certain ("logs stopped arriving"). Zero error-level documents where other documents exist is a quiet
    range, not a failure. Raises `SourceUnavailable`."""
    if config.min_documents <= 0:
        return Verdict("ok", (), label)
    found = source.volume(start, end, enough=config.min_documents)
    if found >= config.min_documents:
        return Verdict("ok", (), label)
    days = max(1, round(config.baseline / timedelta(days=1)))
    expected = max(EXPECTED_BEFORE_SILENCE, config.min_documents)
    certain = math.ceil(expected * (config.baseline / (end - start)))
    before = source.volume(start - config.baseline, start, enough=certain)
    documents = "no documents" if found == 0 else f"only {found} document{'s' if found != 1 else ''}"
    if before == 0:
        reason = f"no logs: {documents} of any level in {source.describe()}, nor in the {days} days before"
    elif before >= certain:
        reason = (
            f"logs stopped arriving: {documents} of any level in {source.describe()}, where the "
            f"{days} days before had {expected} or more per {_size(end - start)} on average"
        )
    else:
        return Verdict("ok", (), label)  # a sparse source: an empty range is no sign
    return Verdict("failed", (reason,), label)


def _size(span: timedelta) -> str:
    if span == timedelta(days=1):
        return "day"
    minutes = round(span.total_seconds() / 60)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes / 60:g} hours"


def read_verdict(stats: InputStats, label: str, config: VerdictConfig) -> Verdict:
    """`failed` when not one fetched document could be read, `degraded` when more than the allowed
    share could not; the reasons name the skip reasons and their counts."""
    unreadable = {r: n for r, n in stats.skipped.items() if r not in LEVEL_FILTERED and n}
    total = sum(unreadable.values())
    if not stats.fetched or not total:
        return Verdict("ok", (), label)
    reasons = ", ".join(f"{reason}: {n}" for reason, n in sorted(unreadable.items(), key=lambda kv: -kv[1]))
    if stats.accepted == 0 and total == stats.fetched:
        return Verdict(
            "failed", (f"none of the {stats.fetched} documents read could be used ({reasons})",), label
        )
    share = total / stats.fetched
    if share > config.max_unreadable_share:
        return Verdict(
            "degraded",
            (
                f"{share:.0%} of the {stats.fetched} documents read could not be used ({reasons}); "
                f"more than {config.max_unreadable_share:.0%} allowed",
            ),
            label,
        )
    return Verdict("ok", (), label)
