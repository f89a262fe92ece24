"""Settings: the users' variable names, one clear line per bad setting, secrets never shown."""

from __future__ import annotations

import pytest

from core.classify import Taxonomy
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


@pytest.mark.parametrize(("value", "minutes"), [(None, 30), ("0", 0), ("1440", 1440)])
def test_the_change_window_is_30_minutes_unless_set(monkeypatch, value, minutes):
    if value is not None:
        monkeypatch.setenv("CHANGE_WINDOW_MINUTES", value)
    assert load_settings().change_window_minutes == minutes


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
        ({"CHANGE_WINDOW_MINUTES": "-5"}, "CHANGE_WINDOW_MINUTES"),
        ({"CHANGE_WINDOW_MINUTES": "1441"}, "CHANGE_WINDOW_MINUTES"),
        ({"RETENTION_DAYS": "8"}, "RETENTION_DAYS"),  # BASELINE_DAYS (7) + 1: detection reads that far
        ({"RETENTION_DAYS": "30", "BASELINE_DAYS": "30"}, "RETENTION_DAYS"),
        ({"ES_FIELD_MAP": "{message: msg}"}, "ES_FIELD_MAP: not valid JSON"),
        ({"ES_FIELD_MAP": '["msg"]'}, "ES_FIELD_MAP"),
        ({"ES_FIELD_MAP": '{"message": 1}'}, "ES_FIELD_MAP: message:"),
        ({"REDACT_PATTERNS": "[unclosed"}, "REDACT_PATTERNS: not valid JSON"),
        ({"REDACT_PATTERNS": '{"card": "[0-9]{16}"}'}, "REDACT_PATTERNS"),
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL: not a database URL"),
        ({"DATABASE_URL": "mysql://app:x@db/ailog"}, "DATABASE_URL: unsupported database 'mysql'"),
        ({"ES_URL": "es.example.com:9200"}, "ES_URL: must start with http:// or https://"),
        ({"ES_URL": "ftp://es.example.com"}, "ES_URL"),
        ({"ES_URL": "https://:9200"}, "ES_URL: no host"),
        ({"ES_HOST": "es.example.com:92OO"}, "ES_HOST"),
        ({"ES_URLS": "https://es.example.com"}, "ES_URLS: unknown setting (did you mean ES_URL?)"),
        (
            {"DB_HOST": "postgresql://db", "DB_NAME": "ailog", "DB_USER": "app", "DB_PASSWORD": "x"},
            "DB_HOST: 'postgresql://db' is not a host name",
        ),
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


@pytest.mark.parametrize("name", ["DATABASE_URL", "ES_URL"])
@pytest.mark.parametrize(
    "template",
    [
        "postgresql://app:{}@db.example.com:port/ailog",
        "mysql://app:{}@db.example.com/ailog",
        "ftp://app:{}@x",
    ],
)
def test_a_bad_url_is_named_without_its_password(monkeypatch, name, template):
    monkeypatch.setenv(name, template.format(FAKE_PASSWORD))
    with pytest.raises(ConfigError, match=name) as info:
        load_settings()
    assert FAKE_PASSWORD not in str(info.value)


def test_every_supported_database_url_is_accepted(monkeypatch):
    for url in ("sqlite:///var/x.db", "postgresql://a:b@h/d", "postgresql+psycopg://a:b@h:5433/d"):
        monkeypatch.setenv("DATABASE_URL", url)
        assert load_settings().store_url() == url


def test_a_misspelt_threshold_is_an_error_with_the_closest_name():
    with pytest.raises(ConfigError) as info:
        overrides(DetectConfig(), "DETECT", {"DETECT_SPIKE_RATOI": "4"})
    assert str(info.value) == "DETECT_SPIKE_RATOI: unknown setting (did you mean DETECT_SPIKE_RATIO?)"


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("DETECT_SPIKE_BASELINE_QUANTILE", "1.5", "less than or equal to 1"),
        ("DETECT_SPIKE_BASELINE_QUANTILE", "-0.1", "greater than or equal to 0"),
        ("DETECT_SPIKE_RATIO", "0", "greater than 0"),
        ("DETECT_BURST_RATIO", "-2", "greater than 0"),
        ("DETECT_SPIKE_MIN_COUNT", "0", "greater than or equal to 1"),
        ("DETECT_SPIKE_MIN_BASELINE_WINDOWS", "0", "greater than or equal to 1"),
        ("DETECT_BURST_MAX_MINUTES", "0", "greater than or equal to 1"),
        ("DETECT_CROSS_NS_MIN", "1", "greater than or equal to 2"),
        ("DETECT_CROSS_NS_GAP_MINUTES", "-5", "greater than or equal to 0"),
        ("DETECT_BURST_MIN_COUNT", "12.5", "valid integer"),
        ("DETECT_CRITICAL_CATEGORIES", '"DATABASE"', "valid array"),
        ("PROPAGATE_MIN_CONFIDENCE", "1.2", "less than or equal to 1"),
        ("PROPAGATE_MIN_SHARED_TRACES", "0", "greater than or equal to 1"),
        ("PROPAGATE_MAX_GAP_MINUTES", "0", "greater than 0"),
        ("PROPAGATE_CATEGORY_PRIOR", '{"DATABASE": 2}', "DATABASE: Input should be less than or equal to 1"),
        ("PROPAGATE_DEPENDENCIES", '{"payments": "core-db"}', "payments: Input should be a valid array"),
    ],
)
def test_a_threshold_outside_its_range_is_one_line_naming_it(name, value, problem):
    config = DetectConfig() if name.startswith("DETECT_") else PropagateConfig()
    with pytest.raises(ConfigError) as info:
        overrides(config, name.split("_", 1)[0], {name: value})
    message = str(info.value)
    assert message.startswith(f"{name}: ") and problem in message
    assert "\n" not in message


def test_the_edges_of_each_range_are_accepted():
    env = {
        "DETECT_SPIKE_BASELINE_QUANTILE": "1",
        "DETECT_SPIKE_RECENT_WINDOWS": "0",
        "DETECT_CRITICAL_MIN_COUNT": "0",
        "DETECT_CROSS_NS_GAP_MINUTES": "0",
        "DETECT_CRITICAL_CATEGORIES": "[]",
    }
    detect = overrides(DetectConfig(), "DETECT", env)
    assert (detect.spike_baseline_quantile, detect.spike_recent_windows, detect.critical_min_count) == (
        1,
        0,
        0,
    )
    assert detect.critical_categories == frozenset()
    propagate = overrides(PropagateConfig(), "PROPAGATE", {"PROPAGATE_MIN_CONFIDENCE": "0"})
    assert propagate.min_confidence == 0


def test_a_category_the_taxonomy_does_not_have_is_found():
    known = Taxonomy.default().categories
    assert {"DATABASE", "INFRA", "APPLICATION", "UNCLASSIFIED"} <= known
    detect = overrides(DetectConfig(), "DETECT", {"DETECT_CRITICAL_CATEGORIES": '["DATABSE", "NETWORK"]'})
    assert detect.unknown_categories(known) == ["DATABSE"]
    propagate = overrides(PropagateConfig(), "PROPAGATE", {"PROPAGATE_CATEGORY_PRIOR": '{"NETWRK": 0.5}'})
    assert propagate.unknown_categories(known) == ["NETWRK"]


def test_the_default_categories_stay_valid_under_a_taxonomy_without_them():
    assert DetectConfig().unknown_categories(set()) == []
    assert PropagateConfig().unknown_categories(set()) == []
