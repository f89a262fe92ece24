"""Bad input at scale (hypothesis): arbitrary documents and text never make normalize, fingerprint,
classify or the report writers raise, and what they write stays well-formed: JSON that parses,
CSV that pandas reads back row for row, Confluence XHTML that parses as XML."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import publish
from core.classify import Classifier
from core.fingerprint import Fingerprinter
from core.layout import valid_text
from core.model import Detection, Finding, Incident, InputStats, Peak, ProblemState
from core.normalize import normalize
from core.redact import Redactor
from core.report import RunFigures, build_report, csv_text, report_to_csv, report_to_dict, report_to_text

DAY = datetime(2026, 2, 9, tzinfo=UTC)
NAMESPACES = 'xmlns:ac="http://atlassian.com/content" xmlns:ri="http://atlassian.com/resource/identifier"'
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text as logs bring it: any code point (controls, lone surrogates as JSON escapes carry them, NUL),
# markup and secrets.
hostile = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=("Cs",))),
    # A lone surrogate, as a JSON escape of a string cut inside an emoji brings it (hypothesis never does).
    st.builds(lambda head, tail: f"{head}\ud83d{tail}", st.text(max_size=20), st.text(max_size=20)),
    st.sampled_from(
        [
            "</td></tr></table><script>alert(1)</script>]]><![CDATA[",
            "card 4111 1111 1111 1111 for jane@example.com password=hunter2",
            '=HYPERLINK("http://example.com")',
            "\x00\x1b[31m\ufffe\r\n\t",
        ]
    ),
)
# The same text as normalize hands it on (lone surrogates replaced): what analysis and reports get.
logged = hostile.map(valid_text)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), hostile)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile, inner, max_size=4),
    max_leaves=20,
)
timestamps = st.one_of(
    hostile,
    st.integers(),
    st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2100, 1, 1)).map(
        lambda d: d.isoformat() + "Z"
    ),
)


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Anything a source may yield: documents shaped like ECS or Fluent Bit with hostile values, or junk."""
    shaped = st.fixed_dictionaries(
        {},
        optional={
            "@timestamp": timestamps,
            "message": hostile,
            "log": st.one_of(hostile, st.fixed_dictionaries({}, optional={"level": hostile})),
            "kubernetes": st.fixed_dictionaries(
                {},
                optional={
                    "namespace": hostile,
                    "namespace_name": hostile,
                    "pod": st.one_of(hostile, st.fixed_dictionaries({}, optional={"name": hostile})),
                    "pod_name": hostile,
                    "labels": st.dictionaries(hostile, hostile, max_size=3),
                    "container": json_values,
                },
            ),
            "error": json_values,
            "trace": json_values,
        },
    )
    hit = shaped.map(lambda source: {"_id": "x", "_source": source})
    return draw(st.one_of(shaped, hit, json_values))


@SETTINGS
@given(st.lists(documents(), max_size=8))
def test_normalize_never_raises_and_accounts_for_every_document(docs: list[Any]) -> None:
    stats = InputStats()
    events = list(normalize(docs, stats, max_message_bytes=256))
    assert stats.accepted == len(events)
    assert stats.accepted + stats.skipped_total == len(docs)
    for event in events:
        assert event.timestamp.tzinfo is not None
        assert len(event.message.encode("utf-8")) <= 256 + 64  # cut, with a marker at most
        # Every text is valid UTF-8 (no lone surrogate), as files, databases and web pages need.
        texts = [event.namespace, event.pod, event.container, event.workload.name, event.app]
        "".join([*texts, event.error_type or "", event.trace_id or ""]).encode("utf-8")


@SETTINGS
@given(hostile, st.one_of(st.none(), hostile))
def test_fingerprint_never_raises_and_is_stable(message: str, error_type: str | None) -> None:
    first = Fingerprinter().fingerprint(message, error_type)
    assert first == Fingerprinter().fingerprint(message, error_type)
    assert len(first.key) == 16 and all(c in "0123456789abcdef" for c in first.key)


@SETTINGS
@given(st.lists(documents(), min_size=1, max_size=6))
def test_classify_never_raises_and_gives_a_well_formed_problem_id(docs: list[Any]) -> None:
    classifier, fingerprinter = Classifier(), Fingerprinter()
    for event in normalize(docs, InputStats()):
        problem = classifier.classify(event, fingerprinter.fingerprint(event.message, event.error_type))
        assert problem.id.count(":") >= 2 and all(problem.id.split(":"))


@st.composite
def incidents(draw: st.DrawFn) -> list[Incident]:
    made = []
    for n in range(draw(st.integers(1, 4))):
        start = DAY + timedelta(minutes=15 * draw(st.integers(0, 95)))
        text = draw(logged)
        made.append(
            Incident(
                problem_id=f"APPLICATION:{draw(logged) or 'flow'}:{n}",
                category="APPLICATION",
                flow="flow",
                error_class=str(n),
                severity=draw(st.sampled_from(["critical", "high", "medium", "low"])),
                window_start=start,
                window_end=start + timedelta(minutes=15),
                namespace=draw(logged) or "ns",
                workload_kind="Deployment",
                workload_name=draw(logged) or "app",
                count=draw(st.integers(1, 10_000)),
                first_seen=start,
                last_seen=start + timedelta(minutes=1),
                samples=[text],
                fingerprints={"0123456789abcdef": text},
                trace_ids=[],
                apps=[],
            )
        )
    return made


def report_of(made: list[Incident], text: str):
    first = made[0]
    peak = Peak("spike", "problem", first.problem_id, first.window_start, first.window_end, 50.0, 2.0, 25.0)
    finding = Finding("new", first.problem_id, first.window_start, "high", text, (first.namespace,))
    state = ProblemState(first.problem_id, DAY, DAY)
    return build_report(
        generated_at=DAY + timedelta(days=1),
        phase="backfill",
        start=DAY,
        end=DAY + timedelta(days=1),
        incidents=made,
        detection=Detection([peak], [finding]),
        chains=[],
        states={first.problem_id: state},
        registry={first.problem_id: {"status": "known", "owner": text, "ticket": text, "notes": text}},
        classes={},
        stats=InputStats(fetched=1, accepted=1),
        figures=RunFigures(days_processed=1, days_succeeded=1),
        redactor=Redactor(),
    )


@SETTINGS
@given(incidents(), logged)
def test_the_report_writers_keep_their_formats_whatever_the_logs_contain(
    made: list[Incident], text: str
) -> None:
    report = report_of(made, text)
    problems = len({i.problem_id for i in made})

    document = json.loads(json.dumps(report_to_dict(report), ensure_ascii=False))
    assert len(document["problems"]) == problems

    written = report_to_csv(report)
    table = pd.read_csv(io.StringIO(written), dtype=str, keep_default_na=False)
    assert len(table) == problems
    assert list(table["count"]) == [str(p.count) for p in report.problems]
    assert list(table["id"]) == [csv_text(p.id) for p in report.problems]
    assert len(list(csv.reader(io.StringIO(written)))) == problems + 1

    assert report_to_text(report).startswith("PROBLEM_ANALYSIS_REPORT\n")

    page = publish.confluence_daily_page(report, chart_filename="trend.png")
    ET.fromstring(f"<page {NAMESPACES}>{page}</page>")  # raises on anything that is not well-formed
