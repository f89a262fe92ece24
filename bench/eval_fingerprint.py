"""Measure fingerprint quality and speed on Loghub corpora with ground-truth templates.

Quality: grouping accuracy (GA, the share of lines whose predicted group is exactly their true group)
and pairwise precision/recall/F1, per dataset. Speed: lines per second, uncached and cached.
Reads every CSV in the data folder or its subfolders that has the Loghub columns `Content` and
`EventId`: the bundled excerpts (a quick check), or a folder of full `*_2k.log_structured.csv` files such
as the dev half of Loghub-2k with corrected ground truth (the figures in docs/fingerprint.md):

    python3 bench/eval_fingerprint.py --data ../shared/data/loghub-dev [--repeat 20]
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.fingerprint import Fingerprinter  # noqa: E402
from core.model import Fingerprint  # noqa: E402

DEFAULT_DATA = Path(__file__).parent / "data" / "loghub"


@dataclass(frozen=True, slots=True)
class Labelled:
    """One corpus: messages and their ground-truth template ids, in file order."""

    name: str
    messages: list[str]
    truth: list[str]


@dataclass(frozen=True, slots=True)
class Scores:
    lines: int
    true_groups: int
    predicted_groups: int
    grouping_accuracy: float
    precision: float
    recall: float
    f1: float


def load_corpus(path: Path) -> Labelled | None:
    """The labelled corpus in `path`; None for a CSV without the Loghub columns (a templates file)."""
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"Content", "EventId"} <= set(reader.fieldnames or ()):
            return None
        rows = list(reader)
    name = path.name.split("_")[0]
    # The true group is the ground-truth template where the file has one: the corrected Loghub-2k
    # gave some lines a new template but kept their old id (Linux E17 and E19 carry E18's template
    # and are missing from its templates file), so grouping by id would split one template in three.
    label = "EventTemplate" if "EventTemplate" in (reader.fieldnames or ()) else "EventId"
    return Labelled(name, [row["Content"] for row in rows], [row[label] for row in rows])


def _pairs(n: int) -> int:
    return n * (n - 1) // 2


def score(predicted: list[str], truth: list[str]) -> Scores:
    """GA as in Zhu et al., ICSE 2019: a predicted group counts only if it equals a true group."""
    members_by_prediction: dict[str, set[int]] = {}
    members_by_truth: dict[str, set[int]] = {}
    for index, (guess, label) in enumerate(zip(predicted, truth, strict=True)):
        members_by_prediction.setdefault(guess, set()).add(index)
        members_by_truth.setdefault(label, set()).add(index)
    exact = sum(
        len(members)
        for members in members_by_prediction.values()
        if members == members_by_truth[truth[next(iter(members))]]
    )
    same_both = sum(_pairs(n) for n in Counter(zip(predicted, truth, strict=True)).values())
    same_predicted = sum(_pairs(len(m)) for m in members_by_prediction.values())
    same_truth = sum(_pairs(len(m)) for m in members_by_truth.values())
    precision = same_both / same_predicted if same_predicted else 1.0
    recall = same_both / same_truth if same_truth else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Scores(
        lines=len(truth),
        true_groups=len(members_by_truth),
        predicted_groups=len(members_by_prediction),
        grouping_accuracy=exact / len(truth) if truth else 1.0,
        precision=precision,
        recall=recall,
        f1=f1,
    )


def throughput(fingerprinter: Fingerprinter, messages: list[str], repeat: int) -> float:
    """Lines per CPU-second over `repeat` passes of `messages` (CPU time: the machine is shared)."""
    started = time.process_time()
    for _ in range(repeat):
        for message in messages:
            fingerprinter.fingerprint(message)
    return repeat * len(messages) / (time.process_time() - started)


def show_errors(corpus: Labelled, prints: list[Fingerprint]) -> None:
    """Print true groups split over several keys and keys shared by several true groups."""
    keys_by_truth: dict[str, dict[str, str]] = {}
    truths_by_key: dict[str, set[str]] = {}
    for label, fingerprint in zip(corpus.truth, prints, strict=True):
        keys_by_truth.setdefault(label, {})[fingerprint.key] = fingerprint.template
        truths_by_key.setdefault(fingerprint.key, set()).add(label)
    for label, templates in sorted(keys_by_truth.items()):
        if len(templates) > 1:
            print(f"  split {label}: {sorted(templates.values())}")
    for key, labels in sorted(truths_by_key.items()):
        if len(labels) > 1:
            print(f"  merged {sorted(labels)} under {key}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of Loghub CSV files")
    parser.add_argument("--repeat", type=int, default=20, help="passes over all lines for the speed test")
    parser.add_argument("--show-errors", metavar="DATASET", help="print the mis-grouped templates of one set")
    args = parser.parse_args()

    loaded = (load_corpus(path) for path in sorted(args.data.rglob("*.csv")))
    corpora = [corpus for corpus in loaded if corpus is not None]
    if not corpora:
        parser.error(f"no CSV files with the columns Content and EventId in {args.data}")
    fingerprinter = Fingerprinter(cache_size=0)
    print(
        f"{'dataset':<12} {'lines':>5} {'true':>5} {'pred':>5} {'GA':>6} {'prec':>6} {'recall':>6} {'F1':>6}"
    )
    results: list[Scores] = []
    for corpus in corpora:
        prints = [fingerprinter.fingerprint(message) for message in corpus.messages]
        result = score([p.key for p in prints], corpus.truth)
        results.append(result)
        print(
            f"{corpus.name:<12} {result.lines:>5} {result.true_groups:>5} {result.predicted_groups:>5} "
            f"{result.grouping_accuracy:>6.3f} {result.precision:>6.3f} {result.recall:>6.3f} "
            f"{result.f1:>6.3f}"
        )
        if args.show_errors == corpus.name:
            show_errors(corpus, prints)
    count = len(results)
    print(
        f"{'average':<12} {sum(r.lines for r in results):>5} {'':>5} {'':>5} "
        f"{sum(r.grouping_accuracy for r in results) / count:>6.3f} "
        f"{sum(r.precision for r in results) / count:>6.3f} {sum(r.recall for r in results) / count:>6.3f} "
        f"{sum(r.f1 for r in results) / count:>6.3f}"
    )
    messages = [message for corpus in corpora for message in corpus.messages]
    uncached = throughput(Fingerprinter(cache_size=0), messages, args.repeat)
    cached = throughput(Fingerprinter(), messages, args.repeat)
    print(f"throughput: {uncached:,.0f} lines/s uncached, {cached:,.0f} lines/s with the LRU cache")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
