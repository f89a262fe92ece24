"""Tests of core/registry.py: people's edits survive, output is deterministic, broken files are left alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from ruamel.yaml import CommentedMap

from core import registry as registry_module
from core.model import WINDOW, Peak, ProblemRecord
from core.registry import Registry, RegistryError, RegistryIssue, RegistryUpdate, peak_id

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
POOL = "DATABASE:card_servicing:connection_pool"
DENIED = "AUTH:card_opening:access_denied"
ALLOWED = "(allowed: open, acknowledged, ignored, resolved)"
PEAK_ALLOWED = "(allowed: new, known, ignored, resolved, regressed)"


def record(
    problem_id: str = POOL,
    total: int = 42,
    sample: str = "Connection to db.example.com refused",
    last_seen: datetime = T0 + timedelta(hours=2),
) -> ProblemRecord:
    category, flow, error_class = problem_id.split(":")
    return ProblemRecord(
        problem_id=problem_id,
        category=category,
        flow=flow,
        error_class=error_class,
        severity="high",
        first_seen=T0,
        last_seen=last_seen,
        total_count=total,
        namespaces=["cards"],
        workloads=["Deployment/cards/card-api"],
        templates=["Connection to <HOST> refused", "Pool <NUM> exhausted"],
        sample=sample,
    )


def peak(scope_id: str = "cards", window: int = 0) -> Peak:
    start = T0 + window * WINDOW
    return Peak("spike", "namespace", scope_id, start, start + WINDOW, 120.0, 10.0, 12.0, None, scope_id)


def upper(text: str) -> str:
    return text.upper()


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(tmp_path / "registry", redact=upper)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_new_problems_are_added_open_and_new_and_peaks_with_status_new(registry: Registry) -> None:
    result = registry.update([record(POOL), record(DENIED, total=1)], [peak()])
    assert (result.problems_added, result.problems_updated, result.peaks_added) == (2, 0, 1)

    entries = registry.load()
    assert list(entries) == [DENIED, POOL]  # sorted ids
    pool = entries[POOL]
    assert (pool.triage, pool.fact, pool.owner, pool.occurrences) == ("open", "new", None, 42)
    assert (pool.until, pool.reason) == (None, None)
    assert registry.load_peaks()[peak_id(peak())].status == "new"
    assert pool.first_seen == T0 and pool.last_seen == T0 + timedelta(hours=2)
    assert pool.template == "CONNECTION TO <HOST> REFUSED"  # redacted with the given function
    assert pool.sample == "CONNECTION TO DB.EXAMPLE.COM REFUSED"
    assert dict(pool)["workloads"] == ["Deployment/cards/card-api"]
    assert registry.load_peaks()[peak_id(peak())].ratio == 12.0


def test_samples_are_redacted_by_default(tmp_path: Path) -> None:
    Registry(tmp_path).update(
        [record(sample="charge of 4111 1111 1111 1111 failed for jane@example.com")], []
    )
    text = (tmp_path / "problems.yaml").read_text()
    assert "4111" not in text and "jane@example.com" not in text


def test_peoples_edits_and_comments_survive_updates(registry: Registry) -> None:
    registry.update([record(POOL), record(DENIED)], [peak()])
    problems = registry.problems_path
    person = (
        f"# the pool that bit us in March\n{POOL}:\n  triage: acknowledged  # triaged on Monday\n"
        "  owner: team-cards\n  ticket: CARD-1234\n  notes: raise the pool size\n"
        "  runbook: https://wiki.example.com/pool"
    )
    edit(problems, f"{POOL}:\n  triage: open\n  until:\n  reason:\n  owner:\n  ticket:\n  notes:", person)
    edit(registry.peaks_path, "status: new\n  notes:", "status: known\n  notes: nightly batch")

    result = registry.update(
        [record(POOL, total=50), record("NETWORK:card_servicing:timeout")], [peak(), peak(window=1)]
    )

    assert (result.problems_added, result.problems_updated, result.peaks_added) == (1, 1, 1)
    text = problems.read_text()
    assert "# the pool that bit us in March" in text and "# triaged on Monday" in text
    assert "runbook: https://wiki.example.com/pool" in text  # a field the pipeline does not know
    pool = registry.load()[POOL]
    assert (pool.triage, pool.owner, pool.ticket, pool.notes) == (
        "acknowledged",
        "team-cards",
        "CARD-1234",
        "raise the pool size",
    )
    assert pool.occurrences == 50
    assert registry.load_peaks()[peak_id(peak())].notes == "nightly batch"
    assert list(registry.load()) == sorted(registry.load())


def test_a_resolved_problem_seen_again_is_reopened_as_regressed(registry: Registry) -> None:
    registry.update([record(POOL), record(DENIED)], [])
    edit(registry.problems_path, "triage: open", "triage: resolved")  # DENIED comes first
    edit(registry.problems_path, "triage: open", "triage: ignored")  # then POOL
    now = datetime(2024, 5, 3, 9, 0, tzinfo=UTC)

    registry.update([record(POOL), record(DENIED)], [], now=now)
    entries = registry.triages()
    assert {pid: (e.triage, e.fact, e.resolved_at) for pid, e in entries.items()} == {
        DENIED: ("resolved", "new", now),  # resolved_at recorded; not seen since
        POOL: ("ignored", "new", None),
    }

    later = now + timedelta(hours=1)
    registry.update([record(POOL, last_seen=later), record(DENIED, last_seen=later)], [])
    entries = registry.triages()
    assert {pid: (e.triage, e.fact) for pid, e in entries.items()} == {
        DENIED: ("open", "regressed"),  # reopened: seen since it was resolved
        POOL: ("ignored", "recurring"),  # only a resolved problem is reopened; seen on two days
    }
    again = registry.update([record(POOL, last_seen=later), record(DENIED, last_seen=later)], [])
    assert registry.triages()[DENIED].fact == "regressed"  # until people triage it again
    assert again.problems_updated == 0  # nothing changed, nothing counted
    edit(registry.problems_path, "triage: open", "triage: acknowledged")
    registry.update([record(POOL, last_seen=later), record(DENIED, last_seen=later)], [])
    assert registry.triages()[DENIED].fact == "recurring"


def test_a_problem_is_new_while_seen_only_on_the_day_it_appeared(registry: Registry) -> None:
    registry.update([record(POOL, last_seen=T0 + timedelta(hours=15))], [])
    assert registry.load()[POOL].fact == "new"
    registry.update([record(POOL, last_seen=T0 + timedelta(days=1))], [])
    assert registry.load()[POOL].fact == "recurring"


def test_an_ignore_until_a_date_and_its_reason_are_read(registry: Registry) -> None:
    registry.update([record(POOL)], [])
    edit(
        registry.problems_path,
        "triage: open\n  until:\n  reason:",
        "triage: ignored\n  until: 2024-06-01\n  reason: known batch noise, fixed in 1.40",
    )
    pool = registry.triages()[POOL]
    assert (pool.triage, pool.until, pool.reason) == (
        "ignored",
        datetime(2024, 6, 1, tzinfo=UTC),
        "known batch noise, fixed in 1.40",
    )
    assert registry.issues() == []


def test_an_until_that_is_no_date_is_an_issue_with_its_line(registry: Registry) -> None:
    registry.update([record(POOL)], [])
    edit(registry.problems_path, "triage: open\n  until:", "triage: ignored\n  until: next friday")
    assert registry.issues() == [
        RegistryIssue(registry.problems_path, 7, "until 'next friday' is not a date (write e.g. 2026-12-31)")
    ]
    assert registry.triages()[POOL].until is None  # still ignored, with no end


@pytest.mark.parametrize(
    ("status", "triage", "fact"),
    [
        ("new", "open", "recurring"),
        ("known", "acknowledged", "recurring"),
        ("regressed", "open", "regressed"),
        ("ignored", "ignored", "recurring"),
        ("resolved", "resolved", "recurring"),
    ],
)
def test_a_status_of_old_is_read_as_its_triage_and_rewritten_in_place(
    registry: Registry, status: str, triage: str, fact: str
) -> None:
    registry.directory.mkdir()
    registry.problems_path.write_text(
        f"{POOL}:\n  status: {status}  # set by ops\n  owner: team-cards\n  occurrences: 3\n"
    )
    assert registry.triages()[POOL].triage == triage and registry.issues() == []

    registry.update([record(POOL, last_seen=T0 + timedelta(days=2))], [])

    text = registry.problems_path.read_text()
    assert "status:" not in text and text.index("triage:") < text.index("owner: team-cards")
    entry = registry.load()[POOL]
    assert (entry.triage, entry.fact, entry.owner) == (triage, fact, "team-cards")


def test_resolved_at_written_by_people_is_understood(registry: Registry) -> None:
    registry.update([record(POOL)], [])
    edit(registry.problems_path, "triage: open", "triage: Resolved\n  resolved_at: 2024-05-02")
    pool = registry.triages()[POOL]
    assert (pool.triage, pool.resolved_at) == ("resolved", datetime(2024, 5, 2, tzinfo=UTC))


@pytest.mark.parametrize("written", ["9999-12-31T23:00:00-05:00", '"0001-01-01T00:00:00+01:00"'])
def test_a_resolved_at_that_is_no_time_in_utc_is_ignored_not_fatal(registry: Registry, written: str) -> None:
    # Readable as a date, but past year 9999 (or before year 1) once in UTC.
    registry.update([record(POOL)], [])
    edit(registry.problems_path, "triage: open", f"triage: resolved\n  resolved_at: {written}")
    pool = registry.triages()[POOL]
    assert (pool.triage, pool.resolved_at) == ("resolved", None)


def test_a_rerun_writes_the_same_bytes_and_no_new_backup(registry: Registry) -> None:
    registry.update([record(POOL), record(DENIED)], [peak()])
    registry.update([record(POOL, total=43)], [peak()])
    first = registry.problems_path.read_bytes()
    backup = registry.problems_path.with_name("problems.yaml.bak").read_bytes()
    result = registry.update([record(POOL, total=43)], [peak()])

    assert registry.problems_path.read_bytes() == first
    assert registry.problems_path.with_name("problems.yaml.bak").read_bytes() == backup
    assert b"occurrences: 42" in backup  # the version before the last change
    assert (result.problems_added, result.problems_updated, result.peaks_added) == (0, 0, 0)


def test_the_same_input_gives_the_same_bytes_whatever_its_order(tmp_path: Path) -> None:
    one, two = Registry(tmp_path / "one", redact=upper), Registry(tmp_path / "two", redact=upper)
    one.update([record(POOL), record(DENIED)], [peak(), peak("payments")])
    two.update([record(DENIED), record(POOL)], [peak("payments"), peak()])
    assert one.problems_path.read_bytes() == two.problems_path.read_bytes()
    assert one.peaks_path.read_bytes() == two.peaks_path.read_bytes()


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"# people's notes\n{POOL}:\n  triage: [open\n  owner: team-cards\n", 4),  # unclosed [ seen here
        (f"# people's notes\n{POOL}:\n  triage: open\n  owner: team-cards\n   ticket: CARD-1\n", 5),
        (f"{POOL}:\n  triage: open\n{POOL}:\n  triage: open\n", 3),  # a duplicate id
    ],
)
def test_a_yaml_error_is_an_issue_with_file_and_line_and_that_file_is_left_as_written(
    registry: Registry, text: str, line: int
) -> None:
    export = registry.directory / "export"
    registry.update([record(POOL)], [peak()])
    registry.export_csv(export)
    registry.problems_path.write_text(text)
    (registry.directory / "problems.yaml.bak").write_text("previous\n")
    errors_export = (export / "errors_table_latest.csv").read_bytes()

    result = registry.update([record(POOL, total=99)], [peak(), peak(window=1)])

    assert result == RegistryUpdate(problems_added=0, problems_updated=0, peaks_added=1)
    assert registry.problems_path.read_text() == text
    assert (registry.directory / "problems.yaml.bak").read_text() == "previous\n"
    assert list(registry.load_peaks()) == [peak_id(peak()), peak_id(peak(window=1))]  # still updated
    (issue,) = registry.issues()
    assert (issue.file, issue.line) == (registry.problems_path, line)
    assert issue.message.startswith("invalid YAML: ")
    assert str(issue) == f"{registry.problems_path} line {line}: {issue.message}"
    with pytest.raises(RegistryError) as error:
        registry.triages()
    assert error.value.issue == issue
    assert registry.export_csv(export) == [export / "peaks_table_latest.csv"]
    assert (export / "errors_table_latest.csv").read_bytes() == errors_export


def test_an_unknown_status_is_an_issue_and_stays_as_written(registry: Registry) -> None:
    registry.update([record(POOL), record(DENIED)], [peak()])
    text = registry.problems_path.read_text()
    text = text.replace(f"{DENIED}:\n  triage: open", f"{DENIED}:\n  triage: Investigating  # by ops")
    text = text.replace(f"{POOL}:\n  triage: open", f"{POOL}:\n  triage: Acknowledged")  # any case is fine
    registry.problems_path.write_text(text)
    edit(registry.peaks_path, "status: new", "status: ignore")

    assert registry.issues() == [
        RegistryIssue(registry.problems_path, 6, f"unknown triage 'Investigating' {ALLOWED}"),
        RegistryIssue(registry.peaks_path, 5, f"unknown status 'ignore' {PEAK_ALLOWED}"),
    ]
    assert (
        str(registry.issues()[1]) == f"{registry.peaks_path} line 5: unknown status 'ignore' {PEAK_ALLOWED}"
    )
    assert registry.load()[DENIED].triage == "investigating"  # every entry still reads
    assert {pid: e.triage for pid, e in registry.triages().items()} == {POOL: "acknowledged"}

    registry.update([record(POOL), record(DENIED, total=7)], [peak()])

    assert "  triage: Investigating  # by ops\n" in registry.problems_path.read_text()
    assert "  status: ignore\n" in registry.peaks_path.read_text()
    assert registry.load()[DENIED].occurrences == 7
    assert [issue.line for issue in registry.issues()] == [6, 5]


def test_a_registry_without_files_has_no_issues(registry: Registry) -> None:
    assert registry.issues() == []


def test_an_edit_on_disk_between_two_loads_is_seen(registry: Registry) -> None:
    registry.update([record(POOL)], [peak()])
    assert registry.load()[POOL].owner is None
    edit(registry.problems_path, "owner:", "owner: team-a")
    assert registry.load()[POOL].owner == "team-a"
    # Same size, and likely the same mtime: the content decides, not the file's metadata.
    edit(registry.problems_path, "owner: team-a", "owner: team-b")
    assert registry.load()[POOL].owner == "team-b"
    edit(registry.peaks_path, "status: new", "status: ignored")
    assert registry.load_peaks()[peak_id(peak())].status == "ignored"


def test_an_edit_made_after_a_load_survives_the_next_update(registry: Registry) -> None:
    registry.update([record(POOL)], [])
    registry.triages()
    edit(registry.problems_path, "triage: open", "triage: acknowledged")
    edit(registry.problems_path, "  owner:", "  owner: team-cards  # mine")

    registry.update([record(POOL, total=50)], [])

    assert "owner: team-cards  # mine" in registry.problems_path.read_text()
    pool = registry.load()[POOL]
    assert (pool.triage, pool.owner, pool.occurrences) == ("acknowledged", "team-cards", 50)


def test_a_file_broken_after_a_load_is_an_error_not_the_old_content(registry: Registry) -> None:
    registry.update([record(POOL)], [])
    registry.load()
    registry.problems_path.write_text(f"{POOL}:\n  triage: [open\n")
    with pytest.raises(RegistryError):
        registry.load()


def test_an_unchanged_file_is_parsed_once(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    registry.update([record(POOL)], [peak()])
    parsed: list[str] = []
    real_parse = registry_module._parse

    def counting_parse(path: Path, header: str, raw: bytes | None) -> CommentedMap:
        parsed.append(path.name)
        return real_parse(path, header, raw)

    monkeypatch.setattr(registry_module, "_parse", counting_parse)
    for _day in range(3):
        registry.triages()
        registry.issues()
    registry.load()
    assert parsed == ["problems.yaml", "peaks.yaml"]
    registry.update([record(POOL, total=50)], [peak()])  # takes over the parsed documents
    assert parsed == ["problems.yaml", "peaks.yaml"]
    assert registry.load()[POOL].occurrences == 50  # the file it wrote is read again
    registry.load_peaks()
    registry.export_csv(registry.directory / "export")
    assert parsed == ["problems.yaml", "peaks.yaml", "problems.yaml", "peaks.yaml"]


def test_an_entry_that_is_not_a_mapping_is_an_error_with_its_line(registry: Registry) -> None:
    registry.directory.mkdir()
    registry.problems_path.write_text(f"{POOL}:\n  status: known\n{DENIED}: just a note\n")
    with pytest.raises(RegistryError) as error:
        registry.load()
    assert error.value.issue.line == 3


def test_csv_exports_are_readable_by_pandas(registry: Registry, tmp_path: Path) -> None:
    registry.update(
        [record(POOL), record(DENIED, total=7, sample='=HYPERLINK("http://example.com")')], [peak()]
    )
    errors_path, peaks_path = registry.export_csv(tmp_path / "export")

    errors = pd.read_csv(errors_path)
    assert list(errors["problem_id"]) == [POOL, DENIED]  # most frequent first
    assert list(errors["occurrences"]) == [42, 7]
    assert errors.loc[0, "namespaces"] == "cards"
    assert errors.loc[1, "sample"].startswith("'=")  # no formula when opened in a spreadsheet
    peaks = pd.read_csv(peaks_path)
    assert list(peaks["peak_id"]) == [peak_id(peak())]
    assert peaks.loc[0, "ratio"] == 12.0


def test_half_an_emoji_written_by_a_person_is_read_as_a_replacement_character(
    registry: Registry, tmp_path: Path
) -> None:
    # YAML can escape a lone surrogate ("\ud83d"); no UTF-8 file can hold one, so the CSV export failed.
    registry.update([record(POOL)], [peak()])
    edit(registry.problems_path, "  notes:", '  notes: "half an emoji \\ud83d"')
    edit(registry.peaks_path, "  notes:", '  notes: "half \\udc00 again"')
    assert registry.load()[POOL].notes == "half an emoji \ufffd"
    registry.update([record(POOL, total=50)], [peak()])
    errors_path, peaks_path = registry.export_csv(tmp_path / "export")
    assert "half an emoji \ufffd" in errors_path.read_text(encoding="utf-8")
    assert "half \ufffd again" in peaks_path.read_text(encoding="utf-8")
    assert registry.load()[POOL].occurrences == 50


DAY_WINDOWS = timedelta(days=1) // WINDOW


def test_untouched_peaks_older_than_the_kept_days_before_the_newest_are_removed(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry", peak_days=10)
    old, edited, commented = (peak(n) for n in ("old", "edited", "commented"))
    recent = peak("recent", window=5 * DAY_WINDOWS)
    registry.update([], [old, edited, commented, recent])
    edit(registry.peaks_path, f"{peak_id(edited)}:\n  status: new", f"{peak_id(edited)}:\n  status: known")
    edit(
        registry.peaks_path,
        f"{peak_id(commented)}:\n  status: new\n  notes:",
        f"{peak_id(commented)}:\n  status: new\n  notes: planned load test",
    )

    # the newest peak is 11 days after the old ones: 10 days are kept before it
    newest = peak("newest", window=11 * DAY_WINDOWS)
    result = registry.update([], [newest])

    assert result.peaks_expired == 1
    assert set(registry.load_peaks()) == {peak_id(p) for p in (edited, commented, recent, newest)}
    assert registry.load_peaks()[peak_id(commented)].notes == "planned load test"


def test_a_backfill_of_old_days_keeps_the_peaks_it_finds(tmp_path: Path) -> None:
    # Counted from the newest peak, not the clock: a run today over last year keeps last year's peaks.
    registry = Registry(tmp_path / "registry", peak_days=1)
    peaks = [peak(f"ns{n}", window=n) for n in range(3)]
    result = registry.update([], peaks, now=T0 + timedelta(days=400))
    assert result.peaks_expired == 0 and len(registry.load_peaks()) == 3


def test_a_peak_the_run_passes_is_kept_however_old(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry", peak_days=1)
    registry.update([], [peak("newer", window=10 * DAY_WINDOWS)])
    result = registry.update([], [peak("older", window=0)])
    assert result.peaks_expired == 0 and peak_id(peak("older")) in registry.load_peaks()
    assert registry.update([], []).peaks_expired == 1


def test_entries_of_renamed_problems_move_to_their_new_ids_with_what_people_wrote(
    registry: Registry,
) -> None:
    # A change of the masking rules renamed two problems into one (the store's problem_renames).
    icon_v1, proxy_v1 = "UNCLASSIFIED:cards:icon_state_5d1f0c2a", "UNCLASSIFIED:cards:close_sent_0b7e3d11"
    other_v1, proxy = "UNCLASSIFIED:cards:close_sent_9c4a7e20", "UNCLASSIFIED:cards:close_sent_received"
    spike = Peak("spike", "problem", proxy_v1, T0, T0 + WINDOW, 40.0, 4.0, 10.0, proxy_v1, "cards")
    registry.update([record(icon_v1), record(proxy_v1), record(other_v1)], [spike])
    problems = registry.problems_path
    edit(problems, f"{proxy_v1}:\n  triage: open", f"{proxy_v1}:\n  triage: acknowledged")
    edit(
        problems,
        f"{proxy_v1}:\n  triage: acknowledged\n  until:\n  reason:\n  owner:",
        f"{proxy_v1}:\n  triage: acknowledged\n  until:\n  reason:\n  owner: team-net",
    )
    edit(
        problems,
        f"{other_v1}:\n  triage: open\n  until:\n  reason:\n  owner:\n  ticket:",
        f"{other_v1}:\n  triage: ignored\n  until:\n  reason: noise\n  owner: x\n  ticket: NET-7",
    )
    edit(registry.peaks_path, "status: new\n  notes:", "status: known\n  notes: nightly batch")
    renames = {icon_v1: "UNCLASSIFIED:cards:icon_state", proxy_v1: proxy, other_v1: proxy}
    moved = Peak("spike", "problem", proxy, T0, T0 + WINDOW, 40.0, 4.0, 10.0, proxy, "cards")

    registry.update([record("UNCLASSIFIED:cards:icon_state"), record(proxy)], [moved], renames=renames)

    entries = registry.load()
    assert set(entries) == {"UNCLASSIFIED:cards:icon_state", proxy}
    assert (entries[proxy].triage, entries[proxy].owner, entries[proxy].ticket, entries[proxy].reason) == (
        "acknowledged",
        "team-net",
        "NET-7",
        "noise",
    )
    peaks = registry.load_peaks()
    assert list(peaks) == [peak_id(moved)]
    assert (peaks[peak_id(moved)].problem_id, peaks[peak_id(moved)].notes) == (proxy, "nightly batch")
    again = problems.read_bytes()
    registry.update([record("UNCLASSIFIED:cards:icon_state"), record(proxy)], [moved], renames=renames)
    assert problems.read_bytes() == again
