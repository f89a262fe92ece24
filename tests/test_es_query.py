"""The query built for the mapped field types, without Elasticsearch: one clause per type met, limited to
its indices where the indices disagree; no clause a type would reject."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from core.es_query import at_least, error_query, field_types, time_range
from core.layout import LevelField

START = datetime(2026, 2, 9, 8, 0, tzinfo=UTC)
END = START + timedelta(hours=1)


def caps(**fields: dict) -> dict:
    """A `_field_caps` answer: per field, {type: indices or None}."""
    return {
        "fields": {
            path: {
                kind: {"type": kind, "searchable": True} | ({"indices": list(indices)} if indices else {})
                for kind, indices in kinds.items()
            }
            for path, kinds in fields.items()
        }
    }


def test_a_field_of_several_types_gets_one_clause_per_type_limited_to_its_indices() -> None:
    types = field_types(caps(level={"long": ["pino"], "keyword": ["ecs-a", "ecs-b"]}))
    query = error_query(types, [LevelField("level", (50, None))], [], START, END)
    keyword, long = query["bool"]["should"][:2]
    assert keyword["bool"]["filter"][0] == {"terms": {"_index": ["ecs-a", "ecs-b"]}}
    assert keyword["bool"]["filter"][1]["bool"]["should"][0]["term"]["level"]["case_insensitive"]
    assert long == {"bool": {"filter": [{"terms": {"_index": ["pino"]}}, {"range": {"level": {"gte": 50}}}]}}


def test_a_numeric_level_without_a_convention_and_an_unmapped_field_get_no_clause() -> None:
    types = field_types(caps(severity={"long": None}))
    query = error_query(types, [LevelField("severity"), LevelField("level")], [], START, END)
    absent = [{"bool": {"must_not": [{"exists": {"field": path}}]}} for path in ("severity", "level")]
    assert query["bool"]["should"] == [{"bool": {"filter": absent}}]


def test_a_number_that_states_no_level_counts_as_no_level_field() -> None:
    # The OTel filelog receiver without a severity parser writes severity_number 0: normalize reads the
    # level from the body then, so the query must fetch such documents.
    types = field_types(caps(severity_number={"long": None}))
    query = error_query(types, [LevelField("severity_number", (17, 24), (0,))], [], START, END)
    no_level = query["bool"]["should"][-1]
    assert no_level == {
        "bool": {
            "filter": [
                {
                    "bool": {
                        "should": [
                            {"bool": {"must_not": [{"exists": {"field": "severity_number"}}]}},
                            {"terms": {"severity_number": [0]}},
                        ],
                        "minimum_should_match": 1,
                    }
                }
            ]
        }
    }


def test_text_levels_are_matched_and_syslog_codes_bounded_on_both_ends() -> None:
    types = field_types(caps(level={"text": None}, code={"byte": None}))
    query = error_query(types, [LevelField("level"), LevelField("code", (0, 3))], [], START, END)
    text, code = query["bool"]["should"][:2]
    assert "error" in text["match"]["level"]["query"].split()
    assert code == {"range": {"code": {"gte": 0, "lte": 3}}}


def test_timestamps_are_ranged_as_dates_epoch_millis_or_iso_strings() -> None:
    types = field_types(
        caps(**{"@timestamp": {"date_nanos": None}, "timestamp": {"long": None}, "time": {"keyword": None}})
    )
    clauses = time_range(types, ["@timestamp", "timestamp", "time", "unmapped"], START, END)["bool"]["should"]
    assert clauses == [
        {
            "range": {
                "@timestamp": {
                    "gte": "2026-02-09T08:00:00.000000Z",
                    "lt": "2026-02-09T09:00:00.000000Z",
                    "format": "strict_date_optional_time",
                }
            }
        },
        {"range": {"timestamp": {"gte": 1770624000000, "lt": 1770627600000}}},
        {"range": {"time": {"gte": "2026-02-09T08:00:00", "lt": "2026-02-09T09:00:00"}}},
    ]


def test_a_keyword_level_with_a_numeric_convention_also_matches_those_numbers_as_text() -> None:
    types = field_types(caps(level={"keyword": None}, code={"keyword": None}))
    query = error_query(types, [LevelField("level", (50, None)), LevelField("code", (0, 3))], [], START, END)
    level, code = (clause["bool"]["should"][-1] for clause in query["bool"]["should"][:2])
    assert level == {"regexp": {"level": at_least(50)}}
    assert code == {"terms": {"code": ["0", "1", "2", "3"]}}


def test_at_least_matches_exactly_the_whole_numbers_from_its_bound() -> None:
    for low in (0, 3, 9, 17, 50, 99, 100, 109, 190):
        whole = re.compile(f"(?:{at_least(low)})")
        assert [n for n in range(1500) if whole.fullmatch(str(n))] == list(range(low, 1500)), low
