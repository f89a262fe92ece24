"""Settings from the environment, with the names the users already have, validated before any work.

A wrong or missing setting is one line naming it (`ConfigError`); secrets are `SecretStr`, so they
never show in a repr, a log line or a report.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import typing
from collections.abc import Collection, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

DEFAULT_SQLITE = "sqlite:///var/ai-log-analyzer.db"
DATABASE_DRIVERS = ("sqlite", "postgresql", "postgresql+psycopg")
"""The stores the analyzer is built and tested for (psycopg 3 is the PostgreSQL driver it ships)."""
ES_SCHEMES = ("http", "https")


class ConfigError(Exception):
    """A setting is missing or invalid; the message names it."""


class Settings(BaseSettings):
    """Every setting of the analyzer. Environment variable = field name in upper case."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", env_ignore_empty=True)

    # PostgreSQL (or one DATABASE_URL; SQLite when none is set)
    database_url: SecretStr | None = None
    db_host: str | None = None
    db_port: int = Field(5432, ge=1, le=65535)
    db_name: str | None = None
    db_user: str | None = None
    db_password: SecretStr | None = None
    db_ddl_user: str | None = None
    db_ddl_password: SecretStr | None = None
    db_ddl_role: str | None = None

    # Elasticsearch (or the NDJSON file source when no ES_URL/ES_HOST is set)
    es_url: str | None = None
    es_host: str | None = None
    es_port: int = Field(9200, ge=1, le=65535)
    es_username: str | None = None
    es_password: SecretStr | None = None
    es_api_key: SecretStr | None = None
    es_ca_certs: Path | None = None
    es_index_pattern: str = "logs-*"
    es_field_preset: typing.Literal["auto", "ecs", "fluent-bit", "vector", "otel"] = "auto"
    # field (or owner.<Kind>) → path(s), over ES_FIELD_PRESET (with auto: over every preset)
    es_field_map: typing.Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    es_page_size: int = Field(2000, ge=100, le=10000)
    es_slices: int = Field(2, ge=1, le=32)
    es_timeout_s: float = Field(60.0, gt=0)
    log_file: Path = Path("demo/logs.ndjson")
    max_message_bytes: int = Field(65536, ge=256)
    # A range with fewer documents of any level failed ("logs stopped arriving"; 0: no such check);
    # one where more of the documents read could not be used is degraded.
    source_min_documents: int = Field(1, ge=0)
    source_max_unreadable_share: float = Field(0.5, ge=0, le=1)
    analysis_workers: int = Field(1, ge=1, le=64)  # processes per analysed range (1: the run's own)

    # Registry and exports
    registry_dir: Path = Path("var/registry")
    registry_peak_days: int = Field(90, ge=1, le=3650)  # untouched peaks older than this before the newest go
    export_dir: Path = Path("reports")

    # Classification and propagation inputs (optional user files)
    taxonomy_file: Path | None = None
    flows_file: Path | None = None
    dependencies_file: Path | None = None
    redact_patterns: typing.Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Personal data at rest (docs/data-model.md)
    store_raw_samples: bool = False  # keep samples and templates in the database as logged, unredacted
    retention_days: int = Field(400, ge=0, le=36500)  # incidents, peaks and run records kept; 0: forever

    # Scheduling
    ingest_lag_minutes: int = Field(5, ge=0, le=180)
    baseline_days: int = Field(7, ge=0, le=60)
    max_catchup_windows: int = Field(2976, ge=1)
    # A new or regressed problem first seen this long after its workload rolled out a new image tag
    # says so in the report (docs/detection.md, "What changed"); 0: not looked for.
    change_window_minutes: int = Field(30, ge=0, le=24 * 60)

    # Publishing
    teams_webhook_url: SecretStr | None = None
    teams_enabled: bool = False
    confluence_url: str | None = None
    confluence_username: str | None = None
    confluence_password: SecretStr | None = None
    confluence_daily_report_page_id: str | None = None
    confluence_known_errors_page_id: str | None = None
    confluence_known_peaks_page_id: str | None = None
    teams_webhook_kind: typing.Literal["workflows", "connector"] = "workflows"
    publish_max_attempts: int = Field(5, ge=1, le=20)
    publish_max_seconds: float = Field(120.0, gt=0, le=3600)
    publish_timeout_s: float = Field(30.0, gt=0, le=300)
    alert_repeat_minutes: int = Field(120, ge=0, le=7 * 24 * 60)
    alert_resolve_windows: int = Field(4, ge=1, le=96)
    alert_send_resolved: bool = True
    pushgateway_url: str | None = None
    # Links to the evidence: a Kibana Discover link per problem and alert (docs/publishing.md)
    kibana_url: str | None = None
    kibana_data_view_id: str | None = None

    # Where the run comes from (set by the CronJob through the downward API)
    k8s_job_name: str | None = Field(None, validation_alias=AliasChoices("K8S_JOB_NAME", "JOB_NAME"))
    k8s_pod_name: str | None = Field(
        None, validation_alias=AliasChoices("K8S_POD_NAME", "POD_NAME", "HOSTNAME")
    )
    log_format: typing.Literal["auto", "json", "console"] = "auto"

    @field_validator("es_field_map", "redact_patterns", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        # Parsed here rather than by pydantic-settings, whose error is a multi-line traceback.
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos})") from None

    @field_validator("kibana_url")
    @classmethod
    def _kibana(cls, value: str | None) -> str | None:
        if value and (problem := _http_url_problem(value, "e.g. https://kibana.example.com")):
            raise ValueError(problem)
        return value or None

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and (problem := _database_url_problem(value.get_secret_value())):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if self.database_url is None and self.db_host:
            for name in ("db_name", "db_user", "db_password"):
                if not getattr(self, name):
                    raise ValueError(f"{name.upper()} is required when DB_HOST is set")
            if _database_url_problem(self.store_url()):
                raise ValueError(f"DB_HOST: {self.db_host!r} is not a host name (the port is DB_PORT)")
        if self.teams_enabled and self.teams_webhook_url is None:
            raise ValueError("TEAMS_WEBHOOK_URL is required when TEAMS_ENABLED is true")
        if 0 < self.retention_days <= self.baseline_days + 1:
            # Detection compares a range with the BASELINE_DAYS before it (the peaks with one day more).
            raise ValueError(
                f"RETENTION_DAYS must be 0 (keep everything) or more than BASELINE_DAYS + 1 "
                f"({self.baseline_days + 1}), the history detection reads"
            )
        if self.es_ca_certs is not None and not self.es_ca_certs.is_file():
            raise ValueError(f"ES_CA_CERTS: {self.es_ca_certs} is not a readable file")
        endpoint = self.es_endpoint()
        if endpoint is not None and (problem := _es_url_problem(endpoint)):
            raise ValueError(f"{'ES_URL' if self.es_url else 'ES_HOST'}: {problem}")
        return self

    def require_confluence_credentials(self) -> None:
        """The phases that publish to Confluence need its credentials once CONFLUENCE_URL is set
        (the regular phase shares the ConfigMap but gets no Confluence credentials)."""
        if self.confluence_url:
            for name in ("confluence_username", "confluence_password"):
                if not getattr(self, name):
                    raise ConfigError(f"{name.upper()} is required when CONFLUENCE_URL is set")

    def store_url(self) -> str:
        """The application's database URL (DML user)."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        if self.db_host:
            return _pg_url(self.db_user, self.db_password, self.db_host, self.db_port, self.db_name)
        return DEFAULT_SQLITE

    def ddl_url(self) -> str:
        """The URL migrations run with: the DDL user when one is configured, else the app URL."""
        if self.db_ddl_user and self.database_url is not None:
            raise ConfigError(
                "DB_DDL_USER is used with DB_HOST/DB_PORT/DB_NAME, not with DATABASE_URL "
                "(to migrate with one URL, point DATABASE_URL at the DDL user)"
            )
        if self.db_host and self.db_ddl_user:
            if self.db_ddl_password is None:
                raise ConfigError("DB_DDL_PASSWORD is required when DB_DDL_USER is set")
            return _pg_url(self.db_ddl_user, self.db_ddl_password, self.db_host, self.db_port, self.db_name)
        return self.store_url()

    def es_endpoint(self) -> str | None:
        if self.es_url:
            return self.es_url
        if self.es_host:
            host = self.es_host if "://" in self.es_host else f"http://{self.es_host}"
            return host if host.rsplit(":", 1)[-1].isdigit() else f"{host}:{self.es_port}"
        return None


def _pg_url(user, password, host, port, name) -> str:
    url = URL.create(
        "postgresql+psycopg",
        username=user,
        password=password.get_secret_value() if password else None,
        host=host,
        port=port,
        database=name,
    )
    return url.render_as_string(hide_password=False)


def _database_url_problem(url: str) -> str | None:
    """What is wrong with a database URL, or None. The words never hold the URL: when it does not
    parse, its password could not be masked."""
    try:
        driver = make_url(url).drivername
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return "not a database URL (e.g. postgresql+psycopg://user:password@host:5432/name or sqlite:///path)"
    if driver not in DATABASE_DRIVERS:
        return f"unsupported database {driver!r} (supported: {', '.join(DATABASE_DRIVERS)})"
    return None


def _es_url_problem(url: str) -> str | None:
    """What is wrong with an Elasticsearch URL, or None; in words that show no credentials."""
    return _http_url_problem(url, "e.g. https://es.example.com:9200")


def _http_url_problem(url: str, example: str) -> str | None:
    """What is wrong with an http(s) URL, or None; in words that show no credentials."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - reading the port is what validates it
    except ValueError:
        return f"not a URL with a valid port ({example})"
    if parts.scheme not in ES_SCHEMES:
        return f"must start with http:// or https:// ({example})"
    if not parts.hostname:
        return f"no host in the URL ({example})"
    return None


def masked_url(url: str) -> str:
    """A database URL fit for a log line: the password replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database url>"


def load_settings() -> Settings:
    """Read and validate the settings; raise `ConfigError` with one line naming the bad setting."""
    known = {name.upper() for name in Settings.model_fields if name.startswith("es_")}
    _reject_unknown("ES", known)
    try:
        return Settings()
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        raise ConfigError(_one_line(str(loc[0]).upper() if loc else "", loc[1:], err["msg"])) from None


def _reject_unknown(prefix: str, known: Collection[str], environ: Mapping[str, str] | None = None) -> None:
    """Raise `ConfigError` for a `<PREFIX>_*` variable that is no setting: a misspelt threshold
    would otherwise be ignored without a word. The closest known name is the hint."""
    env = os.environ if environ is None else environ
    for name in sorted(env):
        if name.startswith(f"{prefix}_") and name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(sorted(known))}"
            raise ConfigError(f"{name}: unknown setting ({hint})")


def _one_line(name: str, where: typing.Sequence[int | str], msg: str) -> str:
    """A validation error as `NAME: where: message`; `where` is the place inside a JSON value."""
    parts = [name] if name else []
    if where:
        parts.append(".".join(str(part) for part in where))
    return ": ".join([*parts, msg.removeprefix("Value error, ")])


T = typing.TypeVar("T")


def overrides(config: T, prefix: str, environ: Mapping[str, str] | None = None) -> T:
    """Override a stage's config dataclass from `<PREFIX>_<FIELD>` variables (e.g. DETECT_SPIKE_RATIO).

    Each value is validated against its field's annotation, bounds included (numbers as numbers,
    sets and mappings as JSON); a bad value, or a `<PREFIX>_` name that is no field, is a
    `ConfigError` naming the variable.
    """
    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(type(config), include_extras=True)
    names = {f"{prefix}_{f.name}".upper(): f.name for f in dataclasses.fields(config)}  # type: ignore[arg-type]
    _reject_unknown(prefix, names, env)
    changes: dict[str, object] = {}
    for name, field in names.items():
        raw = env.get(name)
        if raw:
            changes[field] = _parse(name, raw, hints[field])
    return dataclasses.replace(config, **changes) if changes else config  # type: ignore[type-var]


def _parse(name: str, raw: str, hint: object) -> object:
    adapter = TypeAdapter(hint)
    base = typing.get_args(hint)[0] if typing.get_origin(hint) is typing.Annotated else hint
    try:
        if typing.get_origin(base) in (dict, list, tuple, frozenset, set):
            return adapter.validate_json(raw)
        return adapter.validate_strings(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        raise ConfigError(_one_line(name, err["loc"], err["msg"])) from None
