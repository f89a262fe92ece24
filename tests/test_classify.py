"""Tests for core.classify: the default taxonomy, flows, user taxonomies, fallbacks and the cache."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.classify import (
    MESSAGE_PREFIX,
    Classifier,
    FlowMap,
    Taxonomy,
    TaxonomyError,
    derive_flow,
    exception_error_class,
    template_error_class,
)
from core.model import Event, Fingerprint, Workload

DOCS = Path(__file__).resolve().parent.parent / "docs" / "taxonomy.md"


def event(
    message: str,
    namespace: str = "card-servicing-prod",
    app: str = "card-api",
    error_type: str | None = None,
) -> Event:
    return Event(
        timestamp=datetime(2026, 2, 9, 8, 15, tzinfo=UTC),
        namespace=namespace,
        pod=f"{app}-7d9f8b6c5-x2x4q",
        container=app,
        workload=Workload("Deployment", namespace, app),
        app=app,
        level="error",
        message=message,
        error_type=error_type,
    )


def fingerprint(template: str, exception_type: str | None = None) -> Fingerprint:
    key = hashlib.sha256(f"{exception_type}|{template}".encode()).hexdigest()[:16]
    return Fingerprint(key=key, template=template, exception_type=exception_type)


def classify(
    message: str,
    exception_type: str | None = None,
    template: str | None = None,
    classifier: Classifier | None = None,
    **where: str,
) -> str:
    c = classifier or Classifier()
    return c.classify(event(message, **where), fingerprint(template or message, exception_type)).id


# One realistic message per default class: (message, exception type, expected CATEGORY:error_class).
DEFAULT_CASES = [
    (
        "HikariPool-1 - Connection is not available, request timed out after 30000ms.",
        "java.sql.SQLTransientConnectionException",
        "DATABASE:connection_pool",
    ),
    (
        "org.postgresql.util.PSQLException: FATAL: remaining connection slots are reserved for "
        "non-replication superuser connections",
        None,
        "DATABASE:too_many_connections",
    ),
    ("ORA-00018: maximum number of sessions exceeded", None, "DATABASE:too_many_connections"),
    (
        "Connection to db.example.com:5432 refused. Check that the hostname and port are correct and "
        "that the postmaster is accepting TCP/IP connections.",
        "org.postgresql.util.PSQLException",
        "DATABASE:connection_refused",
    ),
    (
        "ERROR: deadlock detected Detail: Process 4242 waits for ShareLock on transaction 991; "
        "blocked by process 4343.",
        None,
        "DATABASE:deadlock",
    ),
    (
        'ERROR: duplicate key value violates unique constraint "cards_pan_hash_key" (SQLSTATE 23505)',
        None,
        "DATABASE:constraint_violation",
    ),
    (
        "ERROR: canceling statement due to statement timeout",
        "org.springframework.dao.QueryTimeoutException",
        "DATABASE:query_timeout",
    ),
    ("FATAL: the database system is starting up (SQLSTATE 57P03)", None, "DATABASE:database_unavailable"),
    (
        "Failed to send connector request: java.net.ConnectException: Connection refused",
        "java.net.ConnectException",
        "NETWORK:connection_refused",
    ),
    ("java.net.SocketException: Connection reset by peer", None, "NETWORK:connection_reset"),
    (
        "HTTPSConnectionPool(host='api.example.com', port=443): Max retries exceeded with url: /v1/cards "
        "(Caused by NameResolutionError(\"Failed to resolve 'api.example.com' ([Errno -2] Name or service "
        'not known)"))',
        "requests.exceptions.ConnectionError",
        "NETWORK:dns_failure",
    ),
    (
        "PKIX path building failed: unable to find valid certification path to requested target",
        "javax.net.ssl.SSLHandshakeException",
        "NETWORK:tls_handshake",
    ),
    ("Read timed out", "java.net.SocketTimeoutException", "TIMEOUT:read_timeout"),
    (
        "upstream timed out (110: Connection timed out) while reading response header from upstream",
        None,
        "TIMEOUT:gateway_timeout",
    ),
    ("Card service call failed: HTTP 504", None, "TIMEOUT:gateway_timeout"),
    (
        "HTTPConnectionPool(host='limits.example.com', port=80): Max retries exceeded with url: /check "
        "(Caused by ConnectTimeoutError(<urllib3.connection.HTTPConnection object at 0x7f3a>, "
        "'Connection to limits.example.com timed out. (connect timeout=5)'))",
        "requests.exceptions.ConnectTimeout",
        "TIMEOUT:connect_timeout",
    ),
    (
        "rpc error: code = DeadlineExceeded desc = context deadline exceeded",
        None,
        "TIMEOUT:request_timeout",
    ),
    ("Request to scoring service timed out after 5000 ms", None, "TIMEOUT:request_timeout"),
    (
        "Access denied for user card-opening to resource /applications/9001",
        "org.springframework.security.access.AccessDeniedException",
        "AUTH:access_denied",
    ),
    ("GET https://auth.example.com/userinfo returned 403", None, "AUTH:access_denied"),
    (
        "401 Client Error: Unauthorized for url: https://api.example.com/v1/accounts",
        "requests.exceptions.HTTPError",
        "AUTH:unauthorized",
    ),
    (
        "JWT expired at 2026-02-09T08:00:00Z. Current time: 2026-02-09T08:15:03Z",
        "io.jsonwebtoken.ExpiredJwtException",
        "AUTH:token_expired",
    ),
    (
        'FATAL: password authentication failed for user "card_app"',
        "org.postgresql.util.PSQLException",
        "AUTH:invalid_credentials",
    ),
    (
        "Validation failed for card number 4111 1111 1111 1111: Luhn check failed",
        None,
        "BUSINESS:validation_error",
    ),
    (
        "Payment declined: insufficient funds on account CZ6508000000192000145399",
        None,
        "BUSINESS:insufficient_funds",
    ),
    (
        "Duplicate request rejected: idempotency key 0b8e2c1a already used",
        None,
        "BUSINESS:duplicate_request",
    ),
    ("Daily limit exceeded for card 4111 1111 1111 1111 (limit 50000 CZK)", None, "BUSINESS:limit_exceeded"),
    (
        'Container card-api in pod card-api-7d9f8b6c5-x2x4q terminated: reason "OOMKilled", exit code 137',
        None,
        "INFRA:out_of_memory",
    ),
    ("Java heap space", "java.lang.OutOfMemoryError", "INFRA:out_of_memory"),
    (
        "Back-off restarting failed container card-api in pod card-api-7d9f8b6c5-x2x4q: CrashLoopBackOff",
        None,
        "INFRA:crash_loop",
    ),
    (
        'Failed to pull image "registry.example.com/cards/card-api:1.4.2": ImagePullBackOff',
        None,
        "INFRA:image_pull",
    ),
    ("write /var/lib/app/export.csv: No space left on device", None, "INFRA:disk_full"),
    (
        "Job batch-etl-job-57438-0 failed: BackoffLimitExceeded (Job has reached the specified backoff "
        "limit)",
        None,
        "INFRA:job_failed",
    ),
    ("Job production/batch-etl-job-57438-0 failed to complete.", None, "INFRA:job_failed"),
    ("Node worker-3.example.com status is now: NodeNotReady", None, "INFRA:node_not_ready"),
    ("0/5 nodes are available: 5 Insufficient memory.", None, "INFRA:scheduling_failed"),
    (
        "Request to partner scoring returned status=502 Bad Gateway",
        None,
        "EXTERNAL:upstream_5xx",
    ),
    ("POST https://psp.example.com/v2/charges returned 429 Too Many Requests", None, "EXTERNAL:rate_limited"),
    (
        "CircuitBreaker 'cardProcessor' is OPEN and does not permit further calls",
        "io.github.resilience4j.circuitbreaker.CallNotPermittedException",
        "EXTERNAL:third_party_unavailable",
    ),
    ("Upstream responded HTTP/1.1 503 Service Unavailable", None, "EXTERNAL:third_party_unavailable"),
    (
        "Could not resolve placeholder 'cards.limits.url' in value \"${cards.limits.url}\"",
        "java.lang.IllegalArgumentException",
        "CONFIG:missing_config",
    ),
    (
        "Failed to bind properties under 'spring.datasource.hikari.maximum-pool-size' to int",
        None,
        "CONFIG:invalid_config",
    ),
    (
        'Error: secret "card-api-db-credentials" not found: CreateContainerConfigError',
        None,
        "CONFIG:secret_missing",
    ),
    (
        "Connection to node -1 (kafka-0.kafka.example.com/10.0.0.12:9092) could not be established. "
        "Broker may not be available.",
        None,
        "MESSAGING:kafka",
    ),
    (
        "JMSWMQ2002: Failed to get a message from destination 'CARDS.IN'. reason 2009 MQRC_CONNECTION_BROKEN",
        "com.ibm.msg.client.jms.DetailedJMSException",
        "MESSAGING:mq",
    ),
    (
        'Cannot invoke "com.example.cards.Card.getPan()" because "card" is null',
        "java.lang.NullPointerException",
        "APPLICATION:null_pointer",
    ),
    (
        "AttributeError: 'NoneType' object has no attribute 'account_id'",
        None,
        "APPLICATION:null_pointer",
    ),
    (
        "Index 3 out of bounds for length 3",
        "java.lang.ArrayIndexOutOfBoundsException",
        "APPLICATION:index_out_of_bounds",
    ),
    ("Transaction already completed", "java.lang.IllegalStateException", "APPLICATION:illegal_state"),
    (
        'JSON parse error: Unrecognized field "cardHolder" (class com.example.cards.CardRequest)',
        "org.springframework.http.converter.HttpMessageNotReadableException",
        "APPLICATION:serialization",
    ),
    (
        'Exception in thread "scheduler-1" com.example.cards.SettlementFailure: batch 42 rejected',
        None,
        "APPLICATION:unhandled_exception",
    ),
]


@pytest.mark.parametrize(("message", "exception_type", "expected"), DEFAULT_CASES)
def test_default_taxonomy_classifies_realistic_messages(
    message: str, exception_type: str | None, expected: str
) -> None:
    category, error_class = expected.split(":")
    assert classify(message, exception_type) == f"{category}:card_servicing:{error_class}"


def test_every_default_class_has_a_realistic_case() -> None:
    classes = {f"{r.category}:{r.error_class}" for r in Taxonomy.default().rules}
    assert classes == {case[2] for case in DEFAULT_CASES}


def test_every_default_class_is_documented_with_remediation() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for rule in Taxonomy.default().rules:
        assert f"| `{rule.category}` | `{rule.error_class}` | {rule.severity} |" in docs, rule.name
        assert 1 <= len(rule.remediation) <= 3, rule.name


def test_problem_class_carries_severity_and_remediation() -> None:
    problem = Classifier().classify(event("OOMKilled"), fingerprint("Container <*> terminated: OOMKilled"))
    assert problem.severity == "critical"
    assert any("memory limit" in line for line in problem.remediation)


def test_rules_match_the_raw_message_when_the_template_masked_the_code() -> None:
    # A fingerprinter may mask status codes; the raw message still carries them.
    assert (
        classify("GET /v1/cards/77 status=401", template="GET /v1/cards/<NUM> status=<NUM>")
        == "AUTH:card_servicing:unauthorized"
    )


@pytest.mark.parametrize("order", [("401", "503"), ("503", "401")])
def test_codes_a_template_masked_are_decided_per_code_whatever_comes_first(order: tuple[str, str]) -> None:
    c = Classifier()
    fp = fingerprint("GET <PATH> returned HTTP <NUM>")
    ids = {
        status: c.classify(event(f"GET /v1/cards/{n} returned HTTP {status}"), fp).id
        for n, status in enumerate(order * 3)
    }
    assert ids == {
        "401": "AUTH:card_servicing:unauthorized",
        "503": "EXTERNAL:card_servicing:third_party_unavailable",
    }


def test_rules_see_only_the_first_part_of_a_huge_message() -> None:
    message = "x" * MESSAGE_PREFIX + " OOMKilled"
    assert classify(message, template="<BLOB>").startswith("UNCLASSIFIED:")


def test_exception_type_falls_back_to_the_event_error_type() -> None:
    c = Classifier()
    problem = c.classify(event("boom", error_type="java.lang.NullPointerException"), fingerprint("boom"))
    assert problem.id == "APPLICATION:card_servicing:null_pointer"


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("upstream returned status=503", "503"),
        ('{"status":401,"error":"token"}', "401"),
        ("Received HTTP 401 from auth.example.com", "401"),
        ("HTTP/1.1 503 Service Unavailable", "503"),
        ("statusCode=429 from limits.example.com", "429"),
        ("call returned 403", "403"),
        ("409 Conflict while creating card", "409"),
    ],
)
def test_http_status_forms_are_recognised(text: str, status: str) -> None:
    rule = f"{{name: s, category: EXTERNAL, error_class: s{status}, match: {{http_status: [{status}]}}}}"
    taxonomy = Taxonomy.from_yaml(f"rules:\n  - {rule}")
    assert classify(text, classifier=Classifier(taxonomy)) == f"EXTERNAL:card_servicing:s{status}"


def test_urls_and_ports_are_not_taken_for_status_codes() -> None:
    taxonomy = Taxonomy.from_yaml(
        "rules:\n  - {name: s, category: X, error_class: s, match: {http_status: [1xx, 5xx]}}"
    )
    problem = classify("GET http://192.168.1.5:5432/x failed after 500ms", classifier=Classifier(taxonomy))
    assert problem.startswith("UNCLASSIFIED:")


# --- flows -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("namespace", "flow"),
    [
        ("card-opening-prod", "card_opening"),
        ("card-servicing-d1", "card_servicing"),
        ("uat-batch-processing", "batch_processing"),
        ("Card-Servicing-TEST", "card_servicing"),
        ("payments-dev3", "payments"),
        ("backup-s3", "backup_s3"),
        ("loans", "loans"),
    ],
)
def test_default_flow_is_derived_from_the_namespace(namespace: str, flow: str) -> None:
    assert derive_flow(namespace) == flow
    assert FlowMap().flow_for(namespace, "any-app") == flow


def test_environment_only_namespace_takes_the_flow_from_the_app() -> None:
    assert FlowMap().flow_for("production", "batch-etl-job") == "batch_etl_job"
    assert FlowMap().flow_for("prod", "prod") == "unknown"


def test_flow_map_globs_regexes_and_apps_override_the_derivation() -> None:
    flows = FlowMap.from_config(
        {
            "flows": [
                {"namespace": "pcb-*", "app": "opening-*", "flow": "card_opening"},
                {"namespace_regex": r"^svc-(?P<flow>[a-z]+)-", "app_regex": "."},
                {"app": "batch-*", "flow": "Batch Processing"},
            ]
        }
    )
    assert flows.flow_for("pcb-prod", "opening-api") == "card_opening"
    assert flows.flow_for("pcb-prod", "other-api") == "pcb"  # no route: derived
    assert flows.flow_for("svc-loans-prod", "x") == "loans"
    assert flows.flow_for("tools-prod", "batch-etl") == "batch_processing"


def test_flow_map_shorthand_and_file(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text("flows:\n  'cards-*': card_servicing\n  'onboarding': card_opening\n")
    flows = FlowMap.load(path)
    assert flows.flow_for("cards-t1", "x") == "card_servicing"
    assert flows.flow_for("onboarding", "x") == "card_opening"
    problem = Classifier(Taxonomy.default(), flows).classify(
        event("401 Unauthorized", namespace="onboarding"), fingerprint("<NUM> Unauthorized")
    )
    assert problem.id == "AUTH:card_opening:unauthorized"


def test_malformed_flow_map_names_file_line_and_problem(tmp_path: Path) -> None:
    path = tmp_path / "flows.yaml"
    path.write_text("flows:\n  - namespace: 'cards-*'\n    flow: cards\n  - app_regex: '('\n")
    with pytest.raises(TaxonomyError, match=r"flows\.yaml: line 4: flows\.1: .*invalid regex"):
        FlowMap.load(path)


# --- user taxonomies -------------------------------------------------------------------------

USER_TAXONOMY = """\
rules:
  - name: database.connection_pool   # replaces the default rule of that name, in its place
    category: DATABASE
    error_class: connection_pool
    severity: critical
    match:
      message: 'HikariPool-\\d+ - Connection is not available'
    remediation: [Page the DBA on call.]
  - name: cards.limit_service
    category: EXTERNAL
    error_class: limit_service_down
    severity: high
    namespaces: ['card-*']
    match:
      message: 'limit service (is )?unavailable'
"""


def test_user_file_replaces_same_named_rules_and_adds_new_ones_first(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text(USER_TAXONOMY)
    taxonomy = Taxonomy.load(path)
    default = Taxonomy.default()
    assert len(taxonomy.rules) == len(default.rules) + 1
    assert taxonomy.rules[0].name == "cards.limit_service"
    names = [r.name for r in taxonomy.rules]
    assert names[1:] == [r.name for r in default.rules]

    c = Classifier(taxonomy)
    pool = c.classify(
        event("HikariPool-2 - Connection is not available, request timed out after 30000ms."),
        fingerprint("HikariPool-<NUM> - Connection is not available, request timed out after <NUM>ms."),
    )
    assert (pool.severity, pool.remediation) == ("critical", ("Page the DBA on call.",))
    assert classify("limit service unavailable", classifier=c) == "EXTERNAL:card_servicing:limit_service_down"
    # the new rule is restricted to card-* namespaces: elsewhere the defaults decide
    assert (
        classify("limit service unavailable", classifier=c, namespace="loans-prod")
        == "EXTERNAL:loans:third_party_unavailable"
    )


def test_replace_true_discards_the_default(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_text("replace: true\n" + USER_TAXONOMY)
    taxonomy = Taxonomy.load(path)
    assert [r.name for r in taxonomy.rules] == ["database.connection_pool", "cards.limit_service"]
    assert classify("OOMKilled", classifier=Classifier(taxonomy)).startswith("UNCLASSIFIED:")


def test_priority_orders_rules_before_position() -> None:
    taxonomy = Taxonomy.from_yaml(
        """
rules:
  - {name: first, category: A, error_class: first, match: {message: boom}}
  - {name: urgent, category: B, error_class: urgent, priority: 10, match: {message: boom}}
"""
    )
    assert [r.name for r in taxonomy.rules] == ["urgent", "first"]
    assert classify("boom", classifier=Classifier(taxonomy)) == "B:card_servicing:urgent"


def test_rule_matchers_exception_glob_sql_state_db_error_and_k8s_reason() -> None:
    taxonomy = Taxonomy.from_yaml(
        """
rules:
  - {name: simple, category: A, error_class: simple_name, match: {exception: TimeoutError}}
  - {name: glob, category: A, error_class: glob, match: {exception: '*.PoolTimeout*'}}
  - {name: state, category: A, error_class: state, match: {sql_state: '08*'}}
  - {name: ora, category: A, error_class: ora, match: {db_error: ORA-125*}}
  - {name: k8s, category: A, error_class: k8s, match: {k8s_reason: Evicted}}
  - {name: app, category: A, error_class: app, apps: ['pay-*'], match: {message: 'boom'}}
"""
    )
    c = Classifier(taxonomy)
    assert classify("x", "asyncio.TimeoutError", classifier=c).endswith(":simple_name")
    assert classify("x", "psycopg_pool.PoolTimeoutError", classifier=c).endswith(":glob")
    assert classify("SQL State: 08001 no route", classifier=c).endswith(":state")
    assert classify("ORA-12514: TNS:listener does not know of service", classifier=c).endswith(":ora")
    assert classify("The node was low on resource: memory. Evicted", classifier=c).endswith(":k8s")
    assert classify("pod was evicted", classifier=c).startswith("UNCLASSIFIED:")  # reasons are exact
    assert classify("boom", classifier=c, app="pay-api").endswith(":app")
    assert classify("boom", classifier=c, app="card-api").startswith("UNCLASSIFIED:")


RULE_HEAD = "rules:\n  - name: a\n    category: DB\n    error_class: x\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules:\n  - name: a\n    category: DB\n   error_class: x\n", r"line \d+: not valid YAML"),
        (
            "rules:\n  - name: a\n    category: database\n    error_class: x\n    match: {message: a}\n",
            r"line 3: rules\.0\.category: String should match pattern",
        ),
        (
            RULE_HEAD + "    match: {mesage: a}\n",
            r"line 5: rules\.0\.match\.mesage: Extra inputs are not permitted",
        ),
        (
            RULE_HEAD + "    match: {message: '(unclosed'}\n",
            r"line 5: rules\.0\.match\.message: invalid regex",
        ),
        (RULE_HEAD + "    match: {http_status: [999]}\n", r"outside 100-599"),
        (RULE_HEAD + "    match: {}\n", r"line 5: rules\.0\.match: needs at least one of"),
        (RULE_HEAD + "    severity: urgent\n    match: {message: a}\n", r"line 5: rules\.0\.severity"),
        (
            "rules:\n  - {name: a, category: DB, error_class: x, match: {message: a}}\n"
            "  - {name: a, category: DB, error_class: y, match: {message: b}}\n",
            r"line 3: rules\.1\.name: rule name 'a' is used twice",
        ),
        ("- just\n- a list\n", r"the top level must be a mapping"),
        ("", r"the file is empty"),
    ],
)
def test_malformed_taxonomy_names_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "my-taxonomy.yaml"
    path.write_text(text)
    with pytest.raises(TaxonomyError, match=message) as err:
        Taxonomy.load(path)
    assert str(path) in str(err.value)


def test_missing_taxonomy_file_is_a_taxonomy_error(tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="cannot read"):
        Taxonomy.load(tmp_path / "absent.yaml")


# --- unmatched errors ------------------------------------------------------------------------


def test_unmatched_exception_becomes_an_application_problem_named_after_it() -> None:
    assert exception_error_class("java.lang.NullPointerException") == "null_pointer_exception"
    assert exception_error_class("KeyError") == "key_error"
    assert (
        exception_error_class("org.springframework.web.client.HttpClientErrorException$NotFound")
        == "http_client_error_exception_not_found"
    )
    assert (
        classify("settlement file rejected", "com.example.cards.SettlementFileRejectedException")
        == "APPLICATION:card_servicing:settlement_file_rejected_exception"
    )


def test_unmatched_template_gets_a_stable_readable_error_class() -> None:
    template = "Settlement batch <NUM> aborted for merchant <ID> after reconciliation mismatch"
    error_class = template_error_class(template)
    # a constant, not recomputed: the registry is keyed on it, so it must not change between releases
    assert error_class == "settlement_batch_aborted_for_merchant_after_reconciliation"
    assert classify("Settlement batch 7 aborted ...", template=template) == (
        f"UNCLASSIFIED:card_servicing:{error_class}"
    )


def test_placeholder_types_do_not_change_the_error_class() -> None:
    # one fingerprint may show <NUM> in one run and <HEX> in another (whichever line came first)
    assert template_error_class("render failed for account <NUM>") == template_error_class(
        "render failed for account <HEX>"
    )


def test_templates_that_start_alike_do_not_collide() -> None:
    a = template_error_class("Settlement batch <NUM> aborted for merchant <ID>: missing totals")
    b = template_error_class("Settlement batch <NUM> aborted for merchant <ID>: wrong currency")
    assert a != b


def test_unmatched_error_class_is_the_constant_words_cut_at_a_word() -> None:
    assert template_error_class("SMTP temporary failure for message <NUM> to <EMAIL>: try later") == (
        "smtp_temporary_failure_for_message_to_try_later"
    )
    long = "Reconciliation of settlement batches against acquirer statements failed because totals differ"
    assert template_error_class(long) == "reconciliation_of_settlement_batches_against_acquirer"
    assert template_error_class("<NUM> <IP>") == "unknown"


@pytest.mark.parametrize(
    "template",
    ["<NUM> <NUM>", "", "ÚČET:<ID>::Ž" * 40, "a:b:c " * 50, "Zahlung fehlgeschlagen: Konto gesperrt " * 10],
)
def test_fallback_error_classes_are_valid_id_parts(template: str) -> None:
    error_class = template_error_class(template)
    assert re.fullmatch(r"[a-z0-9_]{1,60}", error_class)
    assert template_error_class(template) == error_class


@settings(max_examples=200, deadline=None)
@given(template=st.text(max_size=300), exception=st.none() | st.text(max_size=80))
def test_any_input_gives_a_well_formed_id(template: str, exception: str | None) -> None:
    problem = Classifier().classify(
        event(template, namespace="cards:prod", app="api"), fingerprint(template, exception)
    )
    category, flow, error_class = problem.id.split(":")
    assert re.fullmatch(r"[A-Z0-9_]+", category)
    assert re.fullmatch(r"[a-z0-9_]+", flow)
    assert re.fullmatch(r"[a-z0-9_]{1,60}", error_class)


def test_id_parts_never_contain_colons() -> None:
    taxonomy = Taxonomy.from_yaml("rules: []")
    flows = FlowMap.from_config({"flows": [{"namespace": "*", "flow": "cards:opening"}]})
    problem = Classifier(taxonomy, flows).classify(
        event("x:y", error_type="com.example:Weird"), fingerprint("x:y")
    )
    assert problem.id.count(":") == 2
    assert problem.flow == "cards_opening"


# --- the cache -------------------------------------------------------------------------------


def test_classifying_many_events_evaluates_rules_once_per_distinct_problem() -> None:
    c = Classifier()
    problems = [
        (fingerprint(case[0], case[1]), case[0], ns, app)
        for case in DEFAULT_CASES[:20]
        for ns, app in (("card-servicing-prod", "card-api"), ("card-opening-prod", "opening-api"))
    ]
    once = Classifier()
    for fp, message, ns, app in problems:
        once.classify(event(message, ns, app), fp)
    for i in range(100_000):
        fp, message, ns, app = problems[i % len(problems)]
        c.classify(event(message, ns, app), fp)
    assert c.rule_evaluations == once.rule_evaluations <= len(problems) * len(c.taxonomy.rules)


def test_cached_decision_is_the_same_object_and_flow_depends_on_namespace() -> None:
    c = Classifier()
    fp = fingerprint("HikariPool-<NUM> - Connection is not available, request timed out after <NUM>ms.")
    first = c.classify(event("HikariPool-1 - Connection is not available, request timed out after 1ms."), fp)
    evaluations = c.rule_evaluations
    again = c.classify(event("HikariPool-2 - Connection is not available, request timed out after 2ms."), fp)
    assert again is first
    assert c.rule_evaluations == evaluations
    batch = event("HikariPool-1 - Connection is not available", namespace="batch-processing-d1")
    other = c.classify(batch, fp)
    assert c.rule_evaluations > evaluations  # a new namespace is a new problem: decided afresh
    assert other.id == "DATABASE:batch_processing:connection_pool"
