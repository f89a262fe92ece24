"""Links to the evidence (core/report/kibana.py): a Kibana Discover URL per problem and alert.

The URL follows ElastAlert2's `elastalert/kibana_discover.py` (jertel/elastalert2): the Discover app
URL, then `?_g=` the rison-encoded global state (`filters`, `refreshInterval`, `time.from/to`) and
`&_a=` the app state (`columns`, `filters`, `index` = the data view id, `interval`), each URL-quoted;
the query is KQL (`query: (language: kuery, query: …)`), as Discover stores it in its app state.
"""

from __future__ import annotations

import json
import urllib.parse
from datetime import UTC, datetime, timedelta

import pytest
import rison
from test_report import DB, scenario_report

from core.config import Settings
from core.layout import ECS, FLUENT_BIT
from core.model import Finding, Workload
from core.publish.teams import connector_card
from core.report import report_from_dict, report_to_dict, report_to_text
from core.report.confluence import confluence_daily_page
from core.report.kibana import Kibana, constant_words, link_problems
from core.report.teams import teams_alert_card

T = datetime(2026, 2, 9, 16, 20, tzinfo=UTC)
API = Workload("Deployment", "core-db", "core-data-api")
PG = Workload("StatefulSet", "core-db", "postgres")


def states(url: str) -> tuple[dict, dict]:
    """The global and app state of a Discover URL, decoded back."""
    base, _, fragment = url.partition("#")
    assert base == "https://kibana.example.com/app/discover"
    query = urllib.parse.parse_qs(fragment.removeprefix("/?"))
    return rison.loads(query["_g"][0]), rison.loads(query["_a"][0])


def test_the_link_shows_the_time_the_data_view_and_a_query_of_namespace_workload_and_words() -> None:
    kibana = Kibana("https://kibana.example.com/", "logs-k8s-view", (ECS,))
    url = kibana.discover(
        start=T,
        end=T + timedelta(minutes=25),
        namespaces=["core-db"],
        workloads=[PG, API],
        template="FATAL: sorry, too many clients already for user <*> at <HOST>",
    )
    g, a = states(url)
    assert g["time"] == {"from": "2026-02-09T16:19:00Z", "to": "2026-02-09T16:46:00Z"}
    assert a["index"] == "logs-k8s-view" and a["query"]["language"] == "kuery"
    query = a["query"]["query"]
    assert '(kubernetes.namespace:"core-db" or kubernetes.namespace_name:"core-db")' in query
    assert "kubernetes.pod.name:(core-data-api-* or postgres-*)" in query
    assert 'message:("already" and "clients" and "FATAL" and "sorry" and "many" and "user")' in query
    assert "HOST" not in query  # a placeholder is no constant word


def test_every_preset_path_is_asked_for_when_the_layout_is_not_one() -> None:
    _, a = states(Kibana("https://kibana.example.com").discover(start=T, end=T, namespaces=["cards"]))
    query = a["query"]["query"]
    for path in ("kubernetes.namespace", "kubernetes.namespace_name", "kubernetes.pod_namespace"):
        assert f'{path}:"cards"' in query
    assert "index" not in a  # Kibana's default data view


def test_hostile_values_stay_values() -> None:
    # A quote, a colon or a parenthesis in a name must not end the phrase or open a clause.
    kibana = Kibana("https://kibana.example.com", layout=(FLUENT_BIT,))
    url = kibana.discover(
        start=T,
        end=T,
        namespaces=['pay"ments) or (x:y'],
        workloads=[Workload("Pod", "payments", "weird(pod):1")],
    )
    _, a = states(url)
    query = a["query"]["query"]
    assert 'kubernetes.namespace_name:"pay\\"ments) or (x:y"' in query
    assert "kubernetes.pod_name:weird\\(pod\\)\\:1" in query  # a pod by its name, not a prefix
    assert url.count("#") == 1 and " " not in url  # the fragment is quoted as a whole


def test_constant_words_leave_placeholders_out() -> None:
    assert constant_words("Connection to <HOST> refused after <NUM> ms") == ["Connection", "refused", "after"]
    assert constant_words("<*> <*>") == []


def test_every_problem_of_a_report_carries_its_link_in_every_output() -> None:
    report = scenario_report()
    assert all(p.kibana_url is None for p in report.problems)  # none without KIBANA_URL
    link_problems(report, Kibana("https://kibana.example.com", "view-1", (ECS,)))
    db = next(p for p in report.problems if p.id == DB)
    g, a = states(db.kibana_url)
    assert g["time"]["from"] == "2026-02-09T03:00:00Z"  # its first event, less a minute
    assert '"batch-a"' in a["query"]["query"] and "etl-*" in a["query"]["query"]
    assert f"  Events: {db.kibana_url}" in report_to_text(report)
    assert db.kibana_url.replace("&", "&amp;") in confluence_daily_page(report, chart_filename=None)

    document = json.loads(json.dumps(report_to_dict(report)))
    assert {p["id"]: p["kibana_url"] for p in document["problems"]}[DB] == db.kibana_url
    assert next(p for p in report_from_dict(document).problems if p.id == DB).kibana_url == db.kibana_url


def test_every_alert_incident_links_to_its_events_in_both_teams_kinds() -> None:
    finding = Finding(
        "new", "DATABASE:core_db:too_many_connections", T, "critical", "new", ("core-db",),
        first_seen=T, origin=str(PG), workloads=(str(PG), str(API)),
    )  # fmt: skip
    plain = teams_alert_card([finding])
    assert "ActionSet" not in json.dumps(plain)
    card = teams_alert_card([finding], kibana=Kibana("https://kibana.example.com", "view-1", (ECS,)))
    body = card["attachments"][0]["content"]["body"]
    (links,) = [b for b in body if b["type"] == "ActionSet"]
    (action,) = links["actions"]
    g, a = states(action["url"])
    assert g["time"] == {"from": "2026-02-09T16:19:00Z", "to": "2026-02-09T16:36:00Z"}
    assert "kubernetes.pod.name:(core-data-api-* or postgres-*)" in a["query"]["query"]
    connector = connector_card(card, "https://example.com/webhook", 1.0).payload
    buttons = [b for s in connector["sections"] for b in s.get("potentialAction", [])]
    assert [b["target"][0] for b in buttons] == [action["url"]]


@pytest.mark.parametrize("url", ["kibana.example.com", "ftp://kibana.example.com", "https://:5601"])
def test_a_kibana_url_that_is_no_http_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="KIBANA_URL|kibana_url"):
        Settings(kibana_url=url)
