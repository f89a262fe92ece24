"""The registry of known problems and peaks: YAML files people edit, kept up to date by the pipeline.

`problems.yaml` maps problem id → entry, `peaks.yaml` maps peak id → entry. People own the human
fields (a problem's triage, until, reason, owner, ticket, notes, resolved_at; a peak's status and
notes) and their comments; the pipeline rewrites only the machine fields (a problem's fact and what
follows it), and changes a triage only to reopen a resolved problem that came back.
"""

from __future__ import annotations

import bisect
import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import filelock
from ruamel.yaml import YAML, CommentedMap
from ruamel.yaml.error import YAMLError

from core.layout import valid_text
from core.model import FACTS, TRIAGES, Peak, ProblemRecord, isoformat, utc
from core.redact import redact as default_redact
from core.report import csv_text

PEAK_STATUSES = ("new", "known", "ignored", "resolved", "regressed")
LEGACY_TRIAGE = {
    "new": "open", "known": "acknowledged", "regressed": "open", "ignored": "ignored", "resolved": "resolved",
}  # fmt: skip
"""A problem's `status` as files written before triage and fact were two fields have it: its triage
(a `regressed` one is open, with the fact `regressed`). Such an entry is rewritten with `triage` on the
next update."""
MAX_SAMPLE_CHARS = 500
"""A registry sample is a reminder of what the problem looks like, not evidence: keep it short."""

PROBLEMS_HEADER = """\
Known problems, kept up to date by ai-log-analyzer.
Edit triage (open, acknowledged, ignored, resolved), until (an ignore's end date), reason, owner,
ticket and notes: the pipeline keeps them and your comments, and rewrites only the fields from fact
(new, recurring, regressed: what the pipeline saw) to sample. An ignored problem is never alerted."""
PEAKS_HEADER = """\
Known peaks (spikes and bursts), kept up to date by ai-log-analyzer.
Edit status and notes: the pipeline keeps them and your comments, and rewrites only the other fields.
Peaks older than REGISTRY_PEAK_DAYS before the newest one are removed, unless status or notes were edited."""

ERRORS_COLUMNS = (
    "problem_id", "triage", "until", "reason", "fact", "owner", "ticket", "category", "flow",
    "error_class", "severity", "first_seen", "last_seen", "occurrences", "namespaces", "workloads",
    "template", "sample", "notes", "resolved_at",
)  # fmt: skip
PEAKS_COLUMNS = (
    "peak_id", "kind", "scope", "scope_id", "problem_id", "namespace", "window_start", "window_end",
    "observed", "baseline", "ratio", "status", "notes",
)  # fmt: skip
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
NEW_PROBLEM = {"triage": "open", "until": None, "reason": None, "owner": None, "ticket": None, "notes": None}
NEW_PEAK = {"status": "new", "notes": None}


@dataclass(frozen=True, slots=True)
class RegistryIssue:
    """Something people wrote in a registry file that the pipeline cannot use as written: a file that
    does not parse, or a status it does not know. Shown to the people who edit the files (run
    summary, report, known-errors page), who rarely read the log."""

    file: Path
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}{f' line {self.line}' if self.line else ''}: {self.message}"


class RegistryError(Exception):
    """A registry file cannot be used as it is; `issue` names the file and, if known, the line."""

    def __init__(self, issue: RegistryIssue) -> None:
        super().__init__(str(issue))
        self.issue = issue


class _EntryMapping(Mapping[str, Any]):
    """An entry also reads as the mapping it is in the YAML file (`dict(entry)`, `entry["owner"]`)."""

    __slots__ = ()

    def __getitem__(self, key: str) -> Any:
        if key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in fields(self))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class RegistryEntry(_EntryMapping):
    """One known problem: the human fields, then the machine facts."""

    problem_id: str
    triage: str  # open | acknowledged | ignored | resolved (LEGACY_TRIAGE for a `status` of old)
    until: datetime | None  # an ignore's end
    reason: str | None  # why it is ignored or acknowledged
    owner: str | None
    ticket: str | None
    notes: str | None
    resolved_at: datetime | None
    fact: str  # new | recurring | regressed, "" before the pipeline wrote one
    category: str
    flow: str
    error_class: str
    severity: str
    first_seen: datetime | None
    last_seen: datetime | None
    occurrences: int
    namespaces: list[str]
    workloads: list[str]
    template: str
    sample: str  # redacted


@dataclass(frozen=True, slots=True)
class PeakEntry(_EntryMapping):
    """One known peak."""

    peak_id: str
    status: str
    notes: str | None
    kind: str
    scope: str
    scope_id: str
    problem_id: str | None
    namespace: str | None
    window_start: datetime | None
    window_end: datetime | None
    observed: float
    baseline: float
    ratio: float


@dataclass(frozen=True, slots=True)
class RegistryUpdate:
    problems_added: int
    problems_updated: int
    peaks_added: int
    peaks_expired: int = 0


def peak_id(peak: Peak) -> str:
    """The registry key of a peak, e.g. `spike:namespace:cards@2024-05-01T10:15:00Z`."""
    return f"{peak.kind}:{peak.scope}:{peak.scope_id}@{isoformat(peak.window_start)}"


@dataclass(slots=True)
class _Parsed:
    """A registry file as last parsed: its bytes (None: no file), its document (None: it does not
    parse, and `issues` says why), what people wrote that cannot be used, the entries read from it."""

    raw: bytes | None
    doc: CommentedMap | None
    issues: list[RegistryIssue]
    entries: dict[str, Any] | None = None


class Registry:
    """`problems.yaml` and `peaks.yaml` in `directory` (REGISTRY_DIR).

    Every read reads the file; it is parsed again only when its bytes differ from the last parse (a
    run reads the registry once per day and again to report), so an edit on disk is always seen.
    """

    def __init__(
        self, directory: Path | str, redact: Callable[[str], str] = default_redact, peak_days: int = 90
    ) -> None:
        self.directory = Path(directory)
        self.peak_days = peak_days  # REGISTRY_PEAK_DAYS: untouched peaks kept before the newest one
        self.problems_path = self.directory / "problems.yaml"
        self.peaks_path = self.directory / "peaks.yaml"
        self._redact = redact
        self._parsed: dict[Path, _Parsed] = {}

    def load(self) -> dict[str, RegistryEntry]:
        """The known problems by id (empty when there is no file yet). Entries are shared between
        calls while the file is unchanged: read them, do not change them."""
        return dict(self._entries(self.problems_path, PROBLEMS_HEADER, _registry_entry))

    def load_peaks(self) -> dict[str, PeakEntry]:
        """The known peaks by peak id, oldest first (shared between calls, like `load`)."""
        return dict(self._entries(self.peaks_path, PEAKS_HEADER, _peak_entry))

    def triages(self) -> dict[str, RegistryEntry]:
        """The entries whose triage can be used, to overlay what people decided on the store's facts.
        An entry with a triage outside TRIAGES is left out, so the store's state holds for it (a
        misspelt `ignore` must not silence a problem, nor count as anything else)."""
        return {pid: entry for pid, entry in self.load().items() if entry.triage in TRIAGES}

    def issues(self) -> list[RegistryIssue]:
        """What people wrote that the pipeline cannot use, problems.yaml first, in file order. As
        cheap as `load`: the issues are found once per parse."""
        return [
            *self._parsed_file(self.problems_path, PROBLEMS_HEADER).issues,
            *self._parsed_file(self.peaks_path, PEAKS_HEADER).issues,
        ]

    def update(
        self,
        problems: Sequence[ProblemRecord],
        peaks: Sequence[Peak],
        now: datetime | None = None,
        renames: Mapping[str, str] | None = None,
    ) -> RegistryUpdate:
        """Merge the store's facts into the registry without losing what people wrote.

        `renames` (old problem id → new, the store's `problem_renames`): entries of problems that a
        change of the masking rules renamed move to their new ids first, with what people wrote.

        New problems get triage `open` and new peaks status `new`; a `resolved` one without
        `resolved_at` gets `now`; a `resolved` problem seen since its `resolved_at` is reopened
        (`open`) with the fact `regressed`. Each problem's fact follows from the store and the entry
        alone (`_fact_of`), so a run killed halfway and completed by the next one writes what one
        whole run would. An entry written with a `status` of old gets its `triage` (LEGACY_TRIAGE) in
        its place. Peaks that started more than
        `peak_days` before the newest one, and that nobody gave a status or notes, are removed (the
        store keeps every peak). A file that does not parse is left as it is (`issues()` says why)
        and the other one is still updated; the store keeps every fact, so the broken file catches
        up with the first update after it is fixed.
        """
        now = utc(now or datetime.now(UTC))
        self.directory.mkdir(parents=True, exist_ok=True)
        # Both phases may update at once; people's editors are covered by the re-read before writing.
        with filelock.FileLock(self.directory / ".registry.lock", timeout=120):
            for _attempt in range(3):
                problems_raw, problem_doc = self._document_to_change(self.problems_path, PROBLEMS_HEADER)
                peaks_raw, peak_doc = self._document_to_change(self.peaks_path, PEAKS_HEADER)
                if renames:
                    _rename_problems(problem_doc, peak_doc, renames)
                result = self._merge(problem_doc, peak_doc, problems, peaks, now)
                if _unchanged_since(self.problems_path, problems_raw) and _unchanged_since(
                    self.peaks_path, peaks_raw
                ):
                    break
            else:
                raise RegistryError(
                    RegistryIssue(self.problems_path, None, "keeps changing while being updated; not written")
                )
            if problem_doc is not None:
                _write(self.problems_path, problem_doc, problems_raw)
            if peak_doc is not None:
                _write(self.peaks_path, peak_doc, peaks_raw)
        return result

    def _parsed_file(self, path: Path, header: str) -> _Parsed:
        """The file as parsed from its current bytes; parsed again only when they changed."""
        raw = _read_bytes(path)
        parsed = self._parsed.get(path)
        if parsed is None or parsed.raw != raw:
            try:
                doc = _parse(path, header, raw)
            except RegistryError as exc:
                parsed = _Parsed(raw, None, [exc.issue])
            else:
                issues = _triage_issues if path == self.problems_path else _peak_status_issues
                parsed = _Parsed(raw, doc, issues(path, doc))
            self._parsed[path] = parsed
        return parsed

    def _entries(self, path: Path, header: str, entry: Callable[[str, CommentedMap], Any]) -> dict[str, Any]:
        parsed = self._parsed_file(path, header)
        if parsed.doc is None:
            raise RegistryError(parsed.issues[0])
        if parsed.entries is None:
            keyed = ((_str(key), value) for key, value in parsed.doc.items())
            parsed.entries = {key: entry(key, value) for key, value in keyed}
        return parsed.entries

    def _document_to_change(self, path: Path, header: str) -> tuple[bytes | None, CommentedMap | None]:
        """The file's bytes and a document the caller may change (None: the file does not parse).
        The parsed document is handed over and forgotten, so no later read sees the changed one."""
        parsed = self._parsed_file(path, header)
        if parsed.doc is not None:
            del self._parsed[path]
        return parsed.raw, parsed.doc

    def _merge(
        self,
        problem_doc: CommentedMap | None,
        peak_doc: CommentedMap | None,
        problems: Sequence[ProblemRecord],
        peaks: Sequence[Peak],
        now: datetime,
    ) -> RegistryUpdate:
        """Merge into the documents that parsed (None: a file that does not, which is left out)."""
        added, updated = (0, 0) if problem_doc is None else self._merge_problems(problem_doc, problems, now)
        peaks_added, expired = (0, 0) if peak_doc is None else self._merge_peaks(peak_doc, peaks)
        return RegistryUpdate(added, updated, peaks_added, expired)

    def _merge_problems(
        self,
        problem_doc: CommentedMap,
        problems: Sequence[ProblemRecord],
        now: datetime,
    ) -> tuple[int, int]:
        """Merge the problems; returns how many were added and updated."""
        added: list[tuple[str, CommentedMap]] = []
        updated: set[str] = set()
        for pid, entry in problem_doc.items():
            if _legacy_to_triage(entry):
                updated.add(pid)
            if _triage(entry) == "resolved" and not entry.get("resolved_at"):
                entry["resolved_at"] = isoformat(now)
                updated.add(pid)
        for record in problems:
            entry = problem_doc.get(record.problem_id)
            fact = _fact_of(record, entry)
            machine = {"fact": fact, **self._problem_facts(record)}
            if entry is None:
                added.append((record.problem_id, _new_entry(NEW_PROBLEM, machine)))
                continue
            if fact == "regressed" and _triage(entry) == "resolved":
                entry["triage"] = "open"  # reopened: people resolved it, and it came back
                updated.add(record.problem_id)
            if _set_all(entry, machine):
                updated.add(record.problem_id)
        _insert_sorted(problem_doc, added)
        return len(added), len(updated)

    def _merge_peaks(self, peak_doc: CommentedMap, peaks: Sequence[Peak]) -> tuple[int, int]:
        """Merge the peaks and expire the old ones; returns how many were added and removed."""
        new_peaks: dict[str, CommentedMap] = {}
        for peak in peaks:
            key, facts = peak_id(peak), _peak_facts(peak)
            if key in peak_doc:
                _set_all(peak_doc[key], facts)
            else:
                new_peaks[key] = _new_entry(NEW_PEAK, facts)
        _insert_sorted(peak_doc, list(new_peaks.items()))
        expired = self._expire_peaks(peak_doc, keep={peak_id(peak) for peak in peaks})
        return len(new_peaks), expired

    def _expire_peaks(self, peak_doc: CommentedMap, keep: set[str]) -> int:
        """Remove the old peaks nobody touched: without this `peaks.yaml`, which every run reads and
        rewrites, grows with every peak ever found. Counted from the newest peak, not the clock, so a
        backfill of last year keeps last year's peaks."""
        starts = {key: _time(entry.get("window_start")) for key, entry in peak_doc.items()}
        known = [start for start in starts.values() if start is not None]
        if not known:
            return 0
        cutoff = max(known) - timedelta(days=self.peak_days)
        old = [
            key
            for key, start in starts.items()
            if start is not None
            and start < cutoff
            and key not in keep
            and _status(peak_doc[key]) == "new"
            and not _text(peak_doc[key].get("notes"))
        ]
        for key in old:
            del peak_doc[key]
        return len(old)

    def _problem_facts(self, record: ProblemRecord) -> dict[str, Any]:
        return {
            "category": record.category,
            "flow": record.flow,
            "error_class": record.error_class,
            "severity": record.severity,
            "first_seen": isoformat(record.first_seen),
            "last_seen": isoformat(record.last_seen),
            "occurrences": record.total_count,
            "namespaces": list(record.namespaces),
            "workloads": list(record.workloads),
            "template": self._redact(record.templates[0]) if record.templates else "",
            "sample": self._redact(record.sample)[:MAX_SAMPLE_CHARS],
        }

    def export_csv(self, export_dir: Path | str) -> list[Path]:
        """Write `errors_table_latest.csv` (most frequent first) and `peaks_table_latest.csv`
        (newest first); columns are ERRORS_COLUMNS and PEAKS_COLUMNS. The export of a file that does
        not parse keeps its last version (`issues()` says why): an empty table would look like news."""
        export_dir = Path(export_dir)
        export_dir.mkdir(parents=True, exist_ok=True)
        written = []
        if self._parsed_file(self.problems_path, PROBLEMS_HEADER).doc is not None:
            problems = sorted(self.load().values(), key=lambda e: (-e.occurrences, e.problem_id))
            written.append((export_dir / "errors_table_latest.csv", _csv(ERRORS_COLUMNS, problems)))
        if self._parsed_file(self.peaks_path, PEAKS_HEADER).doc is not None:
            peaks = sorted(
                self.load_peaks().values(),
                key=lambda e: (isoformat(e.window_start), e.peak_id) if e.window_start else ("", e.peak_id),
                reverse=True,
            )
            written.append((export_dir / "peaks_table_latest.csv", _csv(PEAKS_COLUMNS, peaks)))
        for path, text in written:
            _atomic_write(path, text.encode("utf-8"))
        return [path for path, _ in written]


# --- YAML ------------------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: keeps comments, key order and people's quoting
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # long samples stay on one line instead of being re-folded
    return yaml


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes; None when there is no file."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _parse(path: Path, header: str, raw: bytes | None) -> CommentedMap:
    """The round-trip document of a registry file's bytes."""
    try:
        doc = _yaml().load(raw) if raw else None
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark else None
        raise RegistryError(RegistryIssue(path, line, f"invalid YAML: {problem}")) from None
    if doc is None:
        doc = CommentedMap()
        doc.yaml_set_start_comment(header)
    if not isinstance(doc, CommentedMap):
        raise RegistryError(RegistryIssue(path, 1, "expected a mapping of id → entry"))
    for key, entry in doc.items():
        if not isinstance(entry, CommentedMap):
            line = doc.lc.key(key)[0] + 1
            raise RegistryError(RegistryIssue(path, line, f"entry {key!r} is not a mapping of fields"))
    return doc


def _peak_status_issues(path: Path, doc: CommentedMap) -> list[RegistryIssue]:
    """An issue for each peak whose status is not one of PEAK_STATUSES, at the line of its status."""
    return [
        RegistryIssue(
            path,
            entry.lc.key("status")[0] + 1,
            f"unknown status {_str(entry['status']).strip()!r} (allowed: {', '.join(PEAK_STATUSES)})",
        )
        for entry in doc.values()
        if _status(entry) not in PEAK_STATUSES
    ]


def _triage_issues(path: Path, doc: CommentedMap) -> list[RegistryIssue]:
    """An issue for each problem whose triage is not one of TRIAGES, or whose `until` is not a date,
    at the line of the field."""
    issues = []
    for entry in doc.values():
        if _triage(entry) not in TRIAGES:
            key = "triage" if "triage" in entry else "status"
            value = _str(entry[key]).strip()
            issues.append(
                RegistryIssue(
                    path, entry.lc.key(key)[0] + 1, f"unknown {key} {value!r} (allowed: {', '.join(TRIAGES)})"
                )
            )
        if entry.get("until") not in (None, "") and _time(entry["until"]) is None:
            issues.append(
                RegistryIssue(
                    path,
                    entry.lc.key("until")[0] + 1,
                    f"until {_str(entry['until']).strip()!r} is not a date (write e.g. 2026-12-31)",
                )
            )
    return issues


def _unchanged_since(path: Path, raw: bytes | None) -> bool:
    try:
        return path.read_bytes() == raw
    except FileNotFoundError:
        return raw is None


def _write(path: Path, doc: CommentedMap, raw: bytes | None) -> None:
    """Replace the file atomically, keeping the previous version as `<name>.bak`; an unchanged
    document is not rewritten."""
    buffer = io.StringIO()
    _yaml().dump(doc, buffer)
    data = buffer.getvalue().encode("utf-8")
    if data == raw:
        return
    if raw is not None:
        _atomic_write(path.with_name(path.name + ".bak"), raw)
    _atomic_write(path, data)


def _atomic_write(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # People edit these files: keep the mode they have (mkstemp's own is owner-only).
        os.chmod(temp, path.stat().st_mode & 0o777 if path.exists() else 0o644)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _new_entry(human: dict[str, Any], facts: dict[str, Any]) -> CommentedMap:
    return CommentedMap({**human, **facts})


def _set_all(entry: CommentedMap, facts: Mapping[str, Any]) -> bool:
    """Set the machine fields; only changed values are assigned, so people's formatting of the
    others (and comments attached to them) stays as it is."""
    changed = False
    for key, value in facts.items():
        if entry.get(key) != value:
            entry[key] = value
            changed = True
    return changed


def _rename_problems(
    problem_doc: CommentedMap | None, peak_doc: CommentedMap | None, renames: Mapping[str, str]
) -> None:
    """Move the entries of renamed problems, and of their peaks, to the new ids. When two land on one
    id, the fields people left empty in the first are taken from the other (triage `open` and peak
    status `new` count as empty)."""
    for doc, new_key in ((problem_doc, _renamed_problem), (peak_doc, _renamed_peak)):
        if doc is None:
            continue
        moves = [(key, new) for key, entry in doc.items() if (new := new_key(_str(key), entry, renames))]
        moved: dict[str, CommentedMap] = {}
        for key, new in moves:
            entry = doc.pop(key)
            if entry.get("scope") == "problem":  # a peak of the problem: it names the problem twice
                entry["scope_id"] = entry["problem_id"] = renames[_str(entry["scope_id"])]
            target = doc[new] if new in doc else moved.get(new)
            if target is None:
                moved[new] = entry
            else:
                _fill_from(target, entry)
        _insert_sorted(doc, list(moved.items()))


def _renamed_problem(key: str, entry: Any, renames: Mapping[str, str]) -> str | None:
    return renames.get(key)


def _renamed_peak(key: str, entry: Any, renames: Mapping[str, str]) -> str | None:
    if not isinstance(entry, Mapping) or entry.get("scope") != "problem":
        return None
    old = _str(entry.get("scope_id"))
    return key.replace(f":problem:{old}@", f":problem:{renames[old]}@", 1) if old in renames else None


def _fill_from(target: CommentedMap, other: CommentedMap) -> None:
    for name in ("owner", "ticket", "notes", "resolved_at", "until", "reason"):
        if not _text(target.get(name)) and _text(other.get(name)):
            target[name] = other[name]
    if "scope" in target:  # a peak
        if _status(target) == "new" and _status(other) != "new":
            target["status"] = other["status"]
        return
    _legacy_to_triage(target)
    _legacy_to_triage(other)
    if _triage(target) == "open" and _triage(other) != "open":
        target["triage"] = other["triage"]


def _insert_sorted(doc: CommentedMap, new: list[tuple[str, CommentedMap]]) -> None:
    """Insert new entries in key order among the existing ones, which keep their place."""
    keys = [str(k) for k in doc]
    for key, entry in sorted(new, key=lambda item: item[0]):
        position = bisect.bisect(keys, key)
        doc.insert(position, key, entry)
        keys.insert(position, key)


# --- entries -----------------------------------------------------------------------------------


def _status(entry: Mapping[str, Any]) -> str:
    """The `status` an entry is written with: a peak's, or a problem's in a file of old."""
    return _str(entry.get("status") or "new").strip().lower()


def _triage(entry: Mapping[str, Any]) -> str:
    """A problem's triage; from its `status` in a file written before there was one."""
    if "triage" in entry or "status" not in entry:
        return _str(entry.get("triage") or "open").strip().lower()
    status = _status(entry)
    return LEGACY_TRIAGE.get(status, status)


def _fact_of(record: ProblemRecord, entry: Mapping[str, Any] | None) -> str:
    """What the store says of a problem (FACTS): `regressed` when seen since people resolved it (and
    until they triage it again), `new` while all its sightings lie in the UTC day it first appeared,
    else `recurring`."""
    if entry is not None:
        resolved_at = _time(entry.get("resolved_at"))
        if _triage(entry) == "resolved" and resolved_at is not None and utc(record.last_seen) >= resolved_at:
            return "regressed"
        if _fact(entry) == "regressed" and _triage(entry) == "open":
            return "regressed"
    return "new" if utc(record.first_seen).date() == utc(record.last_seen).date() else "recurring"


def _legacy_to_triage(entry: CommentedMap) -> bool:
    """Give an entry with a `status` of old its `triage`, in the same place; True if it had one.
    A status the pipeline does not know stays as written, for its issue to name."""
    if "triage" in entry or "status" not in entry or _status(entry) not in LEGACY_TRIAGE:
        return False
    status = _status(entry)
    entry.insert(list(entry).index("status"), "triage", LEGACY_TRIAGE[status])
    del entry["status"]
    if status == "regressed" and not entry.get("fact"):
        entry["fact"] = "regressed"
    return True


def _str(value: Any) -> str:
    """A value as text that any file takes: a YAML escape such as `"\\ud83d"` (half an emoji)
    gives a lone surrogate, which no UTF-8 file, CSV or report can hold."""
    return valid_text(str(value))


def _text(value: Any) -> str | None:
    return None if value is None else _str(value)


def _time(value: Any) -> datetime | None:
    """A timestamp as people may write it: quoted ISO text, a YAML timestamp or a bare date. None for
    anything else: a typo in a date must not cost every other entry its status."""
    if isinstance(value, str) and value.strip():
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        try:
            return utc(value)
        except OverflowError:  # past year 9999 or before year 1 in UTC
            return None
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _registry_entry(pid: str, entry: Mapping[str, Any]) -> RegistryEntry:
    return RegistryEntry(
        problem_id=pid,
        triage=_triage(entry),
        until=_time(entry.get("until")),
        reason=_text(entry.get("reason")),
        owner=_text(entry.get("owner")),
        ticket=_text(entry.get("ticket")),
        notes=_text(entry.get("notes")),
        resolved_at=_time(entry.get("resolved_at")),
        fact=_fact(entry),
        category=_str(entry.get("category") or ""),
        flow=_str(entry.get("flow") or ""),
        error_class=_str(entry.get("error_class") or ""),
        severity=_str(entry.get("severity") or ""),
        first_seen=_time(entry.get("first_seen")),
        last_seen=_time(entry.get("last_seen")),
        occurrences=int(entry.get("occurrences") or 0),
        namespaces=[_str(n) for n in entry.get("namespaces") or []],
        workloads=[_str(w) for w in entry.get("workloads") or []],
        template=_str(entry.get("template") or ""),
        sample=_str(entry.get("sample") or ""),
    )


def _fact(entry: Mapping[str, Any]) -> str:
    """The pipeline's fact of an entry: "" for one it has not written yet (a `regressed` status of
    old says regressed)."""
    fact = _str(entry.get("fact") or "").strip().lower()
    if not fact and "triage" not in entry and _status(entry) == "regressed":
        return "regressed"
    return fact if fact in FACTS else ""


def _peak_facts(peak: Peak) -> dict[str, Any]:
    return {
        "kind": peak.kind,
        "scope": peak.scope,
        "scope_id": peak.scope_id,
        "problem_id": peak.problem_id,
        "namespace": peak.namespace,
        "window_start": isoformat(peak.window_start),
        "window_end": isoformat(peak.window_end),
        "observed": round(float(peak.observed), 3),
        "baseline": round(float(peak.baseline), 3),
        "ratio": round(float(peak.ratio), 3),
    }


def _peak_entry(key: str, entry: Mapping[str, Any]) -> PeakEntry:
    return PeakEntry(
        peak_id=key,
        status=_status(entry),
        notes=_text(entry.get("notes")),
        kind=_str(entry.get("kind") or ""),
        scope=_str(entry.get("scope") or ""),
        scope_id=_str(entry.get("scope_id") or ""),
        problem_id=_text(entry.get("problem_id")),
        namespace=_text(entry.get("namespace")),
        window_start=_time(entry.get("window_start")),
        window_end=_time(entry.get("window_end")),
        observed=float(entry.get("observed") or 0.0),
        baseline=float(entry.get("baseline") or 0.0),
        ratio=float(entry.get("ratio") or 0.0),
    )


# --- CSV ---------------------------------------------------------------------------------------


def _csv(columns: Sequence[str], entries: Iterable[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for entry in entries:
        writer.writerow([_cell(entry[c]) for c in columns])
    return buffer.getvalue()


def _cell(value: Any) -> str | int | float:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return isoformat(value)
    if isinstance(value, list):
        value = "; ".join(value)
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        # A log line must not become a spreadsheet formula when someone opens the export.
        value = "'" + value
    return csv_text(value)
