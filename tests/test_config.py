"""Settings: the users' variable names, one clear line per bad setting, secrets never shown."""

from __future__ import annotations

import pytest

from core.config import DEFAULT_SQLITE, ConfigError, load_settings, masked_url, overrides
from core.detect import DetectConfig
from core.propagate import PropagateConfig

FAKE_PASSWORD = "fake-pass-123"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("DB_", "DATABASE_", "ES_", "TEAMS_", "CONFLUENCE_", "DETECT_", "PROPAGATE_")):
            monkeypatch.delenv(name)


def test_defaults_are_the_embedded_ones():
    settings = load_settings()
    assert settings.store_url() == DEFAULT_SQLITE
    assert settings.es_endpoint() is None
    assert str(settings.log_file) == "demo/logs.ndjson"
    assert (settings.store_raw_samples, settings.retention_days) == (False, 400)


@pytest.mark.parametrize("days", ["0", "9"])
def test_retention_may_keep_everything_or_just_the_history_detection_reads(monkeypatch, days):
    monkeypatch.setenv("RETENTION_DAYS", days)
    assert load_settings().retention_days == int(days)


def test_postgres_from_db_settings_and_password_masked_everywhere(monkeypatch):
    monkeypatch.setenv("DB_HOST", "db.example.com")
    monkeypatch.setenv("DB_NAME", "ailog_analyzer")
    monkeypatch.setenv("DB_USER", "ailog_analyzer_user")
    monkeypatch.setenv("DB_PASSWORD", FAKE_PASSWORD)
    monkeypatch.setenv("DB_DDL_USER", "ailog_analyzer_ddl_user")
    monkeypatch.setenv("DB_DDL_PASSWORD", FAKE_PASSWORD + "-ddl")
    settings = load_settings()
    url = settings.store_url()
    assert url.startswith("postgresql+psycopg://ailog_analyzer_user:")
    assert "@db.example.com:5432/ailog_analyzer" in url
    assert settings.ddl_url().startswith("postgresql+psycopg://ailog_analyzer_ddl_user:")
    assert FAKE_PASSWORD not in repr(settings) and FAKE_PASSWORD not in str(settings)
    assert FAKE_PASSWORD not in masked_url(url)
    assert "db.example.com" in masked_url(url)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DB_PORT": "not-a-port"}, "DB_PORT"),
        ({"DB_HOST": "db.example.com"}, "DB_NAME"),
        ({"TEAMS_ENABLED": "true"}, "TEAMS_WEBHOOK_URL"),
        ({"ES_PORT": "70000"}, "ES_PORT"),
        ({"ES_CA_CERTS": "/nonexistent/ca.pem"}, "ES_CA_CERTS"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"REGISTRY_PEAK_DAYS": "0"}, "REGISTRY_PEAK_DAYS"),
        ({"RETENTION_DAYS": "-1"}, "RETENTION_DAYS"),
        ({"RETENTION_DAYS": "8"}, "RETENTION_DAYS"),  # BASELINE_DAYS (7) + 1: detection reads that far
        ({"RETENTION_DAYS": "30", "BASELINE_DAYS": "30"}, "RETENTION_DAYS"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(monkeypatch, env, named):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert named in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("env", "endpoint"),
    [
        ({"ES_URL": "https://es.example.com:9243"}, "https://es.example.com:9243"),
        ({"ES_HOST": "es.example.com"}, "http://es.example.com:9200"),
        ({"ES_HOST": "https://es.example.com", "ES_PORT": "9500"}, "https://es.example.com:9500"),
        ({"ES_HOST": "https://es.example.com:9500"}, "https://es.example.com:9500"),
    ],
)
def test_elasticsearch_endpoint_from_url_or_host_and_port(monkeypatch, env, endpoint):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert load_settings().es_endpoint() == endpoint


def test_stage_thresholds_are_overridden_by_prefixed_variables():
    env = {
        "DETECT_SPIKE_RATIO": "4.5",
        "DETECT_BURST_MIN_COUNT": "80",
        "DETECT_CRITICAL_CATEGORIES": '["DATABASE"]',
        "PROPAGATE_DEPENDENCIES": '{"payments": ["core-db"]}',
    }
    detect = overrides(DetectConfig(), "DETECT", env)
    assert detect.spike_ratio == 4.5 and detect.burst_min_count == 80
    assert tuple(detect.critical_categories) == ("DATABASE",)
    assert detect.spike_z == DetectConfig().spike_z  # untouched
    propagate = overrides(PropagateConfig(), "PROPAGATE", env)
    assert dict(propagate.dependencies)["payments"] in (["core-db"], ("core-db",))


def test_an_unparseable_threshold_names_its_variable():
    with pytest.raises(ConfigError, match="DETECT_SPIKE_RATIO"):
        overrides(DetectConfig(), "DETECT", {"DETECT_SPIKE_RATIO": "lots"})


def test_a_ddl_user_with_a_single_database_url_is_an_error_not_ignored(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://app:fake@db.example.com/ailog")
    monkeypatch.setenv("DB_DDL_USER", "ailog_analyzer_ddl_user")
    with pytest.raises(ConfigError, match="DB_DDL_USER"):
        load_settings().ddl_url()
