"""Command line: `backfill`, `regular_phase` and `log-analyzer <command>`. Parses arguments, builds the
components from the settings and calls the pipeline; nothing else.

Exit codes: 0 ok (also when only publishing failed, another run of the phase holds the lock, or the
run is degraded: analysed, with a warning first in every output), 1 the analysis failed (a day or
window could not be read: the source or the database down, a failed shard, an index pattern that
matches no index, no logs where logs are expected, nothing readable), 2 a usage or configuration
error (nothing was done).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import sys
from collections.abc import Collection
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import click

from core import log, publish
from core.analysis import Analyser
from core.change import ChangeConfig
from core.classify import Classifier, FlowMap, Taxonomy, TaxonomyError
from core.config import ConfigError, Settings, load_settings, masked_url, overrides
from core.detect import DetectConfig
from core.fetch import NdjsonSource, SourceUnavailable
from core.fingerprint import Fingerprinter
from core.launch import fingerprint_filter
from core.layout import DETECTED, FieldMap, Layout
from core.pipeline import (
    Components,
    Publisher,
    RunIdentity,
    RunOutcome,
    Schedule,
    Thresholds,
    backfill,
    record_unreachable_store,
    regular_phase,
)
from core.propagate import PropagateConfig
from core.redact import Redactor
from core.registry import Registry
from core.report import ReportWriteError, report_stamp
from core.report.kibana import Kibana
from core.store import LockHeld, RunRecord, SchemaMissing, Store, StoreError, StoreUnavailable
from core.verdict import VerdictConfig

EXIT_FAILED = 1


class SettingError(click.ClickException):
    """A missing or invalid setting: exit 2, nothing done."""

    exit_code = 2

    def format_message(self) -> str:
        return f"configuration error: {self.message}"


_now_option = click.option(
    "--now",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
    hidden=True,
    help="Pretend the current UTC time is this (tests and replays).",
)


def _settings() -> Settings:
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise SettingError(str(exc)) from None
    log.setup(settings.log_format)
    return settings


def _components(settings: Settings, phase: str, *, dry_run: bool, output: Path | None = None) -> Components:
    """Build the pipeline's parts. Every setting is checked here, before any work: the store is
    opened last, as opening a SQLite store creates its file."""
    try:
        taxonomy = Taxonomy.load(settings.taxonomy_file) if settings.taxonomy_file else Taxonomy.default()
        flows = FlowMap.load(settings.flows_file) if settings.flows_file else FlowMap()
        propagate_config = overrides(PropagateConfig(), "PROPAGATE")
        if settings.dependencies_file:
            propagate_config = PropagateConfig.load(settings.dependencies_file, base=propagate_config)
        detect_config = overrides(DetectConfig(), "DETECT")
    except (TaxonomyError, ConfigError, OSError, ValueError) as exc:
        raise SettingError(str(exc)) from None
    _require_known_categories(taxonomy.categories, detect_config, propagate_config)
    fields = _layout(settings)
    if settings.es_endpoint() is not None:
        from core.fetch import ElasticsearchSource  # only the production path needs the client

        source = ElasticsearchSource.from_settings(settings, fields)
    else:
        if not settings.log_file.is_file():
            raise SettingError(
                f"LOG_FILE: {settings.log_file} does not exist "
                "(set ES_URL for Elasticsearch, or run `log-analyzer demo` to generate demo logs)"
            )
        source = NdjsonSource(settings.log_file)
    try:
        redactor = Redactor(settings.redact_patterns)
    except ValueError as exc:
        raise SettingError(f"REDACT_PATTERNS: {exc}") from None
    written = _written_folders(settings, phase, output, dry_run=dry_run)
    for name, folder in {"REGISTRY_DIR": settings.registry_dir, **written}.items():
        _require_folder(name, folder, writable=name in written)
    destinations = _destinations(settings, phase, dry_run=dry_run)
    try:
        store = _open_store(settings, redactor, dry_run=dry_run)
    except StoreUnavailable as exc:
        if not dry_run:
            record_unreachable_store(phase, settings.pushgateway_url)
        raise click.ClickException(str(exc)) from None
    return Components(
        analyser=Analyser(
            source,
            Fingerprinter(),
            Classifier(taxonomy, flows),
            fields=fields,
            max_message_bytes=settings.max_message_bytes,
            workers=settings.analysis_workers,
        ),
        store=store,
        registry=Registry(
            settings.registry_dir, redact=redactor.redact, peak_days=settings.registry_peak_days
        ),
        publisher=Publisher(destinations, redactor, settings.export_dir),
        thresholds=Thresholds(
            detect=detect_config,
            propagate=propagate_config,
            verdict=VerdictConfig(
                min_documents=settings.source_min_documents,
                max_unreadable_share=settings.source_max_unreadable_share,
                baseline=timedelta(days=max(1, settings.baseline_days)),
            ),
            change=ChangeConfig(window=timedelta(minutes=settings.change_window_minutes)),
        ),
        schedule=Schedule(
            baseline_days=settings.baseline_days,
            ingest_lag=timedelta(minutes=settings.ingest_lag_minutes),
            max_catchup_windows=settings.max_catchup_windows,
            retention_days=settings.retention_days,
        ),
        identity=RunIdentity(settings.k8s_job_name, settings.k8s_pod_name, settings.pushgateway_url),
    )


def _require_known_categories(
    known: Collection[str], detect: DetectConfig, propagate: PropagateConfig
) -> None:
    """Stop on a category the taxonomy cannot give a problem: it would never page or weigh."""
    for name, unknown in (
        ("DETECT_CRITICAL_CATEGORIES", detect.unknown_categories(known)),
        ("PROPAGATE_CATEGORY_PRIOR", propagate.unknown_categories(known)),
    ):
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"the taxonomy has {', '.join(sorted(known))}"
            raise SettingError(f"{name}: unknown category {unknown[0]!r} ({hint})")


def _written_folders(
    settings: Settings, phase: str, output: Path | None, *, dry_run: bool
) -> dict[str, Path]:
    """The folders the run will write to, by the name of their setting or option. A dry run writes
    only its output: --output, and for the regular phase EXPORT_DIR (its alerts). Every run reads
    REGISTRY_DIR."""
    folders = {"--output": output} if output is not None else {}
    if not dry_run:
        folders["REGISTRY_DIR"] = settings.registry_dir
    if not dry_run or phase == "regular":
        folders["EXPORT_DIR"] = settings.export_dir
    return folders


def _require_folder(name: str, folder: Path, *, writable: bool) -> None:
    """Stop before any work unless `folder` is a folder, or can be made one, that the run can use:
    found at the end of a run, a bad folder lost what the run had stored. Nothing is created here."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = folder if existing == folder else f"{folder} is under {existing}, which"
        raise SettingError(f"{name}: {what} is not a folder")
    if writable and not os.access(existing, os.W_OK | os.X_OK):
        what = folder if existing == folder else f"{folder} cannot be created: {existing}"
        raise SettingError(f"{name}: {what} is not writable")


def _destinations(settings: Settings, phase: str, *, dry_run: bool) -> publish.Destinations:
    """The publication channels the settings configure (a dry run keeps them only to shape the messages)."""
    if phase != "regular":
        try:
            settings.require_confluence_credentials()
        except ConfigError as exc:
            raise SettingError(str(exc)) from None
    policy = publish.RetryPolicy(
        max_attempts=settings.publish_max_attempts,
        max_seconds=settings.publish_max_seconds,
        timeout_s=settings.publish_timeout_s,
    )
    confluence = None
    if settings.confluence_url and settings.confluence_username and settings.confluence_password:
        confluence = publish.ConfluenceChannel.connect(
            settings.confluence_url,
            settings.confluence_username,
            settings.confluence_password.get_secret_value(),
            timeout_s=policy.timeout_s,
        )
    teams = None
    if settings.teams_enabled and settings.teams_webhook_url is not None:
        teams = publish.TeamsChannel(
            settings.teams_webhook_url.get_secret_value(), settings.teams_webhook_kind, policy.timeout_s
        )
    return publish.Destinations(
        confluence=confluence,
        teams=teams,
        daily_page_id=settings.confluence_daily_report_page_id,
        known_errors_page_id=settings.confluence_known_errors_page_id,
        known_peaks_page_id=settings.confluence_known_peaks_page_id,
        policy=policy,
        alert_repeat=timedelta(minutes=settings.alert_repeat_minutes),
        alert_resolve_windows=settings.alert_resolve_windows,
        alert_send_resolved=settings.alert_send_resolved,
        kibana=Kibana(settings.kibana_url, settings.kibana_data_view_id, _layout(settings))
        if settings.kibana_url
        else None,
        dry_run=dry_run,
    )


def _layout(settings: Settings) -> Layout | None:
    """The document layout: a preset, or with `auto` every preset detected per document (None when
    ES_FIELD_MAP is empty); ES_FIELD_MAP's paths apply over each."""
    try:
        if settings.es_field_preset == "auto":
            if not settings.es_field_map:
                return None
            return tuple(preset.override(settings.es_field_map) for preset in DETECTED)
        return FieldMap.preset(settings.es_field_preset).override(settings.es_field_map)
    except ValueError as exc:
        raise SettingError(f"ES_FIELD_MAP: {exc}") from None


def _open_store(settings: Settings, redactor: Redactor, *, dry_run: bool) -> Store:
    """The store, with the schema this version needs (SQLite is migrated on opening), redacting what
    it keeps as the reports are redacted unless STORE_RAW_SAMPLES is set."""
    url = settings.store_url()
    redact = None if settings.store_raw_samples else redactor.redact
    if dry_run and url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        # A dry run writes nothing outside its output folder: no database file is created.
        return Store.from_url("sqlite://", redact=redact)
    store = Store.from_url(url, redact=redact)
    try:
        store.require_schema()
    except SchemaMissing as exc:
        store.close()
        raise SettingError(str(exc)) from None
    return store


def _now(value: datetime | None) -> datetime:
    return value.replace(tzinfo=UTC) if value else datetime.now(UTC)


def _finish(outcome: RunOutcome) -> None:
    """Print the run summary (the lines operators grep for) and exit with the documented code: ✅ marks
    only what succeeded, and a run that failed or is degraded says so on its first line."""
    f = outcome.figures
    verdict = outcome.verdict
    echo = click.echo
    if not verdict.ok:
        echo(("❌ " if verdict.failed else "⚠️ ") + verdict.headline())
    done = "✅" if not f.days_failed else "❌"
    if outcome.phase == "backfill":
        echo(
            f"{done} Backfill processing finished for {f.days_processed} days "
            f"({f.days_succeeded} succeeded, {f.days_failed} failed) in {f.duration_s}s"
        )
    else:
        echo(
            f"{done} Regular phase processed {f.days_processed} windows "
            f"({f.days_failed} failed) in {f.duration_s}s"
        )
    read = "✅" if verdict.ok else "⚠️"
    skipped = sum(f.events_skipped.values())
    echo(
        f"{read} Events fetched: {f.events_fetched}"
        + (f" ({skipped} skipped: {f.events_skipped})" if skipped else "")
    )
    echo(f"{read} Incidents saved: {f.incidents_saved}")
    echo(f"Registry updated: {f.registry_updates} entries")
    if outcome.report_files:
        echo(f"{read} Problem reports generated:")
        for path in outcome.report_files.values():
            echo(f"   - {path}")
    if outcome.summary:
        echo("\nEXECUTIVE SUMMARY")
        for line in outcome.summary:
            echo(f"  {line}")
    if outcome.phase == "regular" and not outcome.alerts:
        echo(
            "[No Teams message: nothing critical]"
            if verdict.ok
            else "[No Teams message: no critical finding]"
        )
    for line in outcome.published:
        echo(f"Published: {line}")
    if outcome.run_id:
        echo(f"Run id: {outcome.run_id}")
    if outcome.failed:
        for failure in outcome.failed:
            click.echo(f"❌ failed: {failure}", err=True)
    if verdict.failed:
        sys.exit(EXIT_FAILED)
    if not verdict.ok:
        click.echo(f"⚠️ {verdict.headline()} (exit 0: the ranges were analysed)", err=True)


def _run_phase(fn, *args, **kwargs) -> None:
    try:
        outcome = fn(*args, **kwargs)
    except LockHeld as exc:
        click.echo(f"another run holds the lock, nothing done: {exc}", err=True)
        return
    except (StoreUnavailable, SourceUnavailable, ReportWriteError) as exc:
        click.echo(f"❌ {exc}", err=True)
        sys.exit(EXIT_FAILED)
    _finish(outcome)


def _days(
    days: int | None, date_from: datetime | None, date_to: datetime | None, now: datetime
) -> list[date]:
    if date_from or date_to:
        if not (date_from and date_to):
            raise click.UsageError("--from and --to go together")
        first, last = date_from.date(), date_to.date()
        if last < first:
            raise click.UsageError("--to is before --from")
        return [first + timedelta(days=n) for n in range((last - first).days + 1)]
    today = now.date()
    return [today - timedelta(days=n) for n in range(days or 1, 0, -1)]


@click.command("backfill")
@click.option(
    "--days",
    type=click.IntRange(1, 366),
    default=None,
    help="Analyse the N whole UTC days before today (default 1: yesterday).",
)
@click.option("--from", "date_from", type=click.DateTime(["%Y-%m-%d"]), help="First UTC day to analyse.")
@click.option(
    "--to", "date_to", type=click.DateTime(["%Y-%m-%d"]), help="Last UTC day to analyse (inclusive)."
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder for the problem reports (and, with --dry-run, what would be published).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and analyse for real, but write nothing outside --output and send nothing.",
)
@_now_option
def backfill_command(days, date_from, date_to, output, dry_run, now) -> None:
    """Analyse whole UTC days: incidents, peaks, registry, problem reports, publication."""
    settings = _settings()
    when = _now(now)
    selected = _days(days, date_from, date_to, when)
    if selected[-1] >= when.date():
        raise click.UsageError("backfill analyses whole past days; the last day must be before today (UTC)")
    components = _components(settings, "backfill", dry_run=dry_run, output=output)
    source = components.analyser.source.describe()
    click.echo(
        f"✅ Backfill processing started for {len(selected)} days "
        f"({selected[0].isoformat()} … {selected[-1].isoformat()}) from {source} "
        f"into {masked_url(settings.store_url()) if not dry_run else 'nothing (dry run)'}"
    )
    _run_phase(backfill, components, selected, output, dry_run=dry_run, now=when)


@click.command("regular_phase")
@click.option(
    "--window",
    "window_minutes",
    type=click.IntRange(15, 24 * 60),
    default=15,
    show_default=True,
    help="Minutes to look back on a first run; later runs catch up every window since the last one.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Read and analyse for real, but store nothing and send nothing; alerts go to EXPORT_DIR.",
)
@_now_option
def regular_phase_command(window_minutes, dry_run, now) -> None:
    """Analyse the latest 15-minute windows; alert Teams only for critical findings."""
    settings = _settings()
    components = _components(settings, "regular", dry_run=dry_run)
    _run_phase(regular_phase, components, timedelta(minutes=window_minutes), dry_run=dry_run, now=_now(now))


@click.group()
def main() -> None:
    """ai-log-analyzer: analyse Kubernetes error logs; see `backfill --help` and `regular_phase --help`."""


main.add_command(backfill_command, "backfill")
main.add_command(regular_phase_command, "regular-phase")


@main.command("demo")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("demo/logs.ndjson"),
    show_default=True,
    help="NDJSON file to write (LOG_FILE reads it by default).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 60),
    default=8,
    show_default=True,
    help="Days of logs ending yesterday (UTC); the last one holds the planted incidents.",
)
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed (same seed, same file).")
@click.option(
    "--scale", type=click.FloatRange(0.01, 100), default=1.0, show_default=True, help="Volume multiplier."
)
@_now_option
def demo_command(output, days, seed, scale, now) -> None:
    """Generate realistic demo logs (NDJSON, as Elasticsearch stores them) with planted incidents."""
    from core import demo  # the generator is only this command's: the phases do not import it

    end_day = _now(now).date() - timedelta(days=1)
    manifest = demo.generate(output, end_day, days=days, seed=seed, scale=scale)
    manifest_path = output.with_suffix(".manifest.json")
    manifest_path.write_text(json.dumps(manifest.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    click.echo(
        f"✅ Demo logs written: {output} ({days} days ending {end_day.isoformat()}); manifest {manifest_path}"
    )


@main.command("publish")
@click.argument("report_json", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("reports"),
    show_default=True,
    help="Folder of the reports: without REPORT_JSON its newest complete problem_report_*.json is "
    "published; the copies of what is published go to <output>/publish/.",
)
@click.option(
    "--channel",
    "channels",
    type=click.Choice(publish.publisher.CHANNELS),
    multiple=True,
    help="Publish only to this channel (repeatable; default: every configured one).",
)
@click.option(
    "--dry-run", is_flag=True, help="Write the exact payloads to <output>/publish/ and send nothing."
)
@_now_option
def publish_command(report_json, output, channels, dry_run, now) -> None:
    """Publish a problem report again by hand: the Confluence pages and the Teams summary.

    Without REPORT_JSON, the newest report whose analysis did not fail; a failed report is published
    only when named. Also delivers whatever earlier runs left in the outbox. Exit 0 when everything
    was delivered, 1 when a delivery failed (it stays in the outbox for the next run) or when every
    report in the folder is of a failed analysis."""
    settings = _settings()
    try:
        stored = _report_to_publish(report_json, output)
        redactor = Redactor(settings.redact_patterns)
    except (publish.ReportFileError, ValueError) as exc:
        raise SettingError(str(exc)) from None
    report = stored.report
    destinations = _destinations(settings, "publish", dry_run=dry_run)
    if channels:
        destinations = dataclasses.replace(
            destinations,
            confluence=destinations.confluence if "confluence" in channels else None,
            teams=destinations.teams if "teams" in channels else None,
        )
    try:
        store = _open_store(settings, redactor, dry_run=dry_run)
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    when = _now(now)
    messages = publish.report_messages(
        report,
        store.incidents_between(report.start, report.end),
        Registry(settings.registry_dir, redact=redactor.redact),
        destinations,
        redactor,
    )
    if channels:
        messages = [m for m in messages if m.channel in channels]
    outbox = None if dry_run else publish.Outbox(store.engine)
    files = publish.FileChannel(output, report_stamp(when))
    published = publish.publish(messages, destinations, outbox, files, when)
    for line in published.lines:
        click.echo(f"Published: {line}")
    if "failed" in published.status.values():
        sys.exit(EXIT_FAILED)


def _report_to_publish(named: Path | None, output: Path) -> publish.StoredReport:
    """The report named, or the newest complete one in `output`; says which one, and refuses (exit 1)
    when every report there failed: republishing one would announce a run that read nothing."""
    if named is not None:
        stored = publish.read_report(named)
        click.echo(f"publishing {named} ({stored.report.label})")
        if stored.failed:
            click.echo(f"⚠️ {named} is the report of a failed analysis; publishing it as named", err=True)
        return stored
    stored, failed = publish.newest_complete_report(output)
    if stored is None and not failed:
        raise click.UsageError(f"no readable problem_report_*.json in {output}; name the report to publish")
    if stored is None:
        click.echo(
            f"❌ nothing published: every report in {output} is of a failed analysis "
            f"(newest {failed[0]}); name it to publish it anyway: log-analyzer publish {failed[0]}",
            err=True,
        )
        sys.exit(EXIT_FAILED)
    skipped = f"; skipped {len(failed)} newer failed report(s), newest {failed[0].name}" if failed else ""
    click.echo(f"publishing {stored.path} ({stored.report.label}){skipped}")
    return stored


@main.command("fingerprint")
def fingerprint_command() -> None:
    """Read raw messages on stdin, one per line; print one fingerprint key per line, same order."""
    fingerprint_filter()  # `log-analyzer fingerprint` alone runs it without importing this module


@main.command("migrate")
def migrate_command() -> None:
    """Create or upgrade the database schema (runs as the DDL user when DB_DDL_USER is set)."""
    settings = _settings()
    try:
        url = settings.ddl_url()
    except ConfigError as exc:
        raise SettingError(str(exc)) from None
    try:
        with Store.from_url(url, migrate=False) as store:
            store.migrate(role=settings.db_ddl_role)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"✅ Schema up to date at {masked_url(url)}")


@main.command("status")
@click.argument("run_ref", required=False)
@click.option(
    "--limit", type=click.IntRange(1, 500), default=20, show_default=True, help="How many recent runs."
)
def status_command(run_ref, limit) -> None:
    """Show the recent runs, or one run (by run id or its first characters, Kubernetes Job name or pod
    name) with its steps. Exit 1 when no run matches. Only reads: it never creates a database."""
    settings = _settings()
    store = _open_recorded_store(settings)
    if not run_ref:
        runs = store.recent_runs(limit)
        if not runs:
            raise click.ClickException(f"no runs recorded yet in {store.url} (run backfill first)")
        for run in runs:
            click.echo(_run_line(run))
        return
    runs = store.find_runs(run_ref)
    if not runs:
        raise click.ClickException(f"no run matches {run_ref!r}; `log-analyzer status` lists recent runs")
    if len(runs) > 1:
        click.echo(f"{run_ref!r} is the start of several run ids; give more of one (newest first):", err=True)
        for run in runs:
            click.echo(f"  {_run_line(run)}", err=True)
        sys.exit(EXIT_FAILED)
    (run,) = runs
    click.echo(_run_line(run))
    for step in run.steps:
        click.echo(
            f"    {step.step:<28} {step.status:<9} {json.dumps(step.counts or {})}"
            + (f"  error: {step.error}" if step.error else "")
        )
    if run.error:
        click.echo(f"    error: {run.error}")


def _open_recorded_store(settings: Settings) -> Store:
    """The database for a command that only reads it. A SQLite file that does not exist is not created
    (opening it would): nothing was recorded yet, and saying so is the answer."""
    url = settings.store_url()
    path = Path(url.removeprefix("sqlite:///"))
    if url.startswith("sqlite:///") and not path.exists():
        raise click.ClickException(f"no runs recorded yet: {path} does not exist (run backfill first)")
    try:
        store = Store.from_url(url)
        store.require_schema()
    except StoreUnavailable as exc:
        raise click.ClickException(str(exc)) from None
    except SchemaMissing as exc:
        raise SettingError(str(exc)) from None
    return store


def _run_line(run: RunRecord) -> str:
    finished = run.finished_at.isoformat() if run.finished_at else "-"
    return (
        f"{run.id}  {run.phase:<8} {run.status:<9} {run.started_at.isoformat()} → {finished}"
        f"  job={run.k8s_job or '-'} pod={run.k8s_pod or '-'}  {json.dumps(run.counts or {})}"
    )


def backfill_main() -> None:
    backfill_command(prog_name="backfill")


def regular_phase_main() -> None:
    regular_phase_command(prog_name="regular_phase")
