"""The test servers behave like production: PostgreSQL's DDL/DML split, and Elasticsearch with the
logs-k8s template indexing both the ECS and the Fluent Bit layout, on the 8 and the 9 node."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest
from elasticsearch import Elasticsearch
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import ProgrammingError

from .conftest import DDL_ROLE, IndexDocuments, PostgresServer, PostgresUrls

pytestmark = pytest.mark.every_elasticsearch  # the Elasticsearch tests: the 8 and the 9 node


@contextmanager
def engine(url: str) -> Iterator[Engine]:
    created = create_engine(url)
    try:
        yield created
    finally:
        created.dispose()


def assert_insufficient_privilege(url: str, statement: str) -> None:
    with engine(url) as db, pytest.raises(ProgrammingError) as refused, db.begin() as connection:
        connection.execute(text(statement))
    assert isinstance(refused.value.orig, psycopg.errors.InsufficientPrivilege)


def create_incident_table(ddl_url: str) -> None:
    with engine(ddl_url) as db, db.begin() as connection:
        connection.execute(
            text("CREATE TABLE incident (id bigserial PRIMARY KEY, problem_id text NOT NULL, count integer)")
        )


def test_each_test_gets_a_fresh_empty_database(postgres_urls: PostgresUrls) -> None:
    assert postgres_urls.database != "ailog_analyzer"
    with engine(postgres_urls.ddl_url) as db, db.connect() as connection:
        name = connection.execute(text("SELECT current_database()")).scalar_one()
        tables = connection.execute(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
        assert name == postgres_urls.database
        assert tables.scalar_one() == 0


def test_app_user_writes_rows_in_tables_the_ddl_user_created(postgres_urls: PostgresUrls) -> None:
    create_incident_table(postgres_urls.ddl_url)
    with engine(postgres_urls.app_url) as db, db.begin() as connection:
        # bigserial: the insert only works with USAGE on the table's sequence.
        connection.execute(
            text(
                "INSERT INTO incident (problem_id, count) VALUES ('DATABASE:batch:pool', 3), ('AUTH:x:y', 1)"
            )
        )
        connection.execute(text("UPDATE incident SET count = count + 1 WHERE problem_id = 'AUTH:x:y'"))
        connection.execute(text("DELETE FROM incident WHERE problem_id = 'DATABASE:batch:pool'"))
        rows = connection.execute(text("SELECT problem_id, count FROM incident")).all()
    assert [tuple(row) for row in rows] == [("AUTH:x:y", 2)]


def test_tables_created_by_the_ddl_user_belong_to_the_ddl_role(postgres_urls: PostgresUrls) -> None:
    create_incident_table(postgres_urls.ddl_url)
    with engine(postgres_urls.app_url) as db, db.connect() as connection:
        owner = connection.execute(text("SELECT tableowner FROM pg_tables WHERE tablename = 'incident'"))
        assert owner.scalar_one() == DDL_ROLE


def test_app_user_cannot_create_alter_or_drop_tables(postgres_urls: PostgresUrls) -> None:
    create_incident_table(postgres_urls.ddl_url)
    assert_insufficient_privilege(postgres_urls.app_url, "CREATE TABLE sneaky (id integer)")
    # Only the owner may change or drop a table, and that is the DDL role.
    assert_insufficient_privilege(postgres_urls.app_url, "ALTER TABLE incident ADD COLUMN note text")
    assert_insufficient_privilege(postgres_urls.app_url, "DROP TABLE incident")


def test_the_long_lived_database_has_the_same_split(postgres_server: PostgresServer) -> None:
    with engine(postgres_server.app_url) as db, db.connect() as connection:
        usage, create = connection.execute(
            text("SELECT has_schema_privilege('public', 'USAGE'), has_schema_privilege('public', 'CREATE')")
        ).one()
    assert (usage, create) == (True, False)
    with engine(postgres_server.ddl_url) as db, db.connect() as connection:
        assert connection.execute(text("SELECT has_schema_privilege('public', 'CREATE')")).scalar_one()


def test_each_node_runs_its_major_version(es_client: Elasticsearch, es_version: str) -> None:
    versions = [node["version"] for node in es_client.nodes.info(node_id="_local")["nodes"].values()]
    assert len(versions) == 1
    assert versions[0].startswith(f"{es_version}."), versions


def test_logs_k8s_template_gives_test_indices_no_replicas(
    es_client: Elasticsearch, index_documents: IndexDocuments
) -> None:
    template = es_client.indices.get_index_template(name="logs-k8s")["index_templates"][0]["index_template"]
    assert template["index_patterns"] == ["logs-k8s-*"]
    assert template["template"]["settings"]["index"]["number_of_replicas"] == "0"

    index = index_documents([{"@timestamp": "2024-05-01T10:00:00Z", "message": "probe"}])
    settings = es_client.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["number_of_replicas"] == "0"
    health = es_client.cluster.health(index=index)
    assert health["status"] == "green"


ECS_ERROR = {
    "@timestamp": "2024-05-01T10:05:00.000Z",
    "message": "Connection refused: db.example.com:5432",
    "log": {"level": "ERROR"},
    "error": {"type": "java.net.ConnectException"},
    "trace": {"id": "4bf92f3577b34da6a3ce929d0e0e4736"},
    "kubernetes": {
        "namespace": "card-opening",
        "pod": {"name": "card-api-7d9f8b6c5d-x2x7q"},
        "container": {"name": "card-api"},
        "labels": {"app": "card-api", "app.kubernetes.io/name": "card-api"},
    },
}
FLUENT_BIT_ERROR = {
    "@timestamp": "2024-05-01T10:10:00.000Z",
    "log": "Payment for 4111 1111 1111 1111 declined for user@example.com",
    "level": "ERROR",
    "kubernetes": {
        "namespace_name": "card-servicing",
        "pod_name": "ledger-0",
        "container_name": "ledger",
        "labels": {"app": "ledger"},
    },
}


def test_both_layouts_are_searchable_by_time_range_and_level(
    es_client: Elasticsearch, index_documents: IndexDocuments
) -> None:
    documents = [
        ECS_ERROR,
        FLUENT_BIT_ERROR,
        {**ECS_ERROR, "log": {"level": "INFO"}, "message": "ecs info inside the window"},
        {**FLUENT_BIT_ERROR, "level": "INFO", "log": "fluent bit info inside the window"},
        {**ECS_ERROR, "@timestamp": "2024-05-01T09:59:59.999Z", "message": "ecs error before the window"},
        # Exactly at the window's end: windows are half-open, so this belongs to the next one.
        {**FLUENT_BIT_ERROR, "@timestamp": "2024-05-01T10:15:00.000Z", "log": "fluent bit error at the end"},
    ]
    index = index_documents(documents)

    response = es_client.search(
        index=index,
        query={
            "bool": {
                "filter": [
                    {"range": {"@timestamp": {"gte": "2024-05-01T10:00:00Z", "lt": "2024-05-01T10:15:00Z"}}}
                ],
                "should": [{"term": {"log.level": "ERROR"}}, {"term": {"level": "ERROR"}}],
                "minimum_should_match": 1,
            }
        },
        sort=[{"@timestamp": "asc"}],
    )

    hits = [hit["_source"] for hit in response["hits"]["hits"]]
    assert hits == [ECS_ERROR, FLUENT_BIT_ERROR]


def test_fields_of_both_layouts_get_plain_types(
    es_client: Elasticsearch, index_documents: IndexDocuments
) -> None:
    index = index_documents([ECS_ERROR, FLUENT_BIT_ERROR])
    fields = es_client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    types = {name: mapping["type"] for name, mapping in fields.items()}
    assert types == {
        "@timestamp": "date",
        "message": "text",
        "log": "text",
        "log.level": "keyword",
        "level": "keyword",
        "error.type": "keyword",
        "trace.id": "keyword",
        "kubernetes.namespace": "keyword",
        "kubernetes.pod.name": "keyword",
        "kubernetes.container.name": "keyword",
        "kubernetes.namespace_name": "keyword",
        "kubernetes.pod_name": "keyword",
        "kubernetes.container_name": "keyword",
        "kubernetes.labels.app": "keyword",
        "kubernetes.labels.app.kubernetes.io/name": "keyword",
    }


def test_labels_with_dotted_names_are_keywords(
    es_client: Elasticsearch, index_documents: IndexDocuments
) -> None:
    index = index_documents([ECS_ERROR, FLUENT_BIT_ERROR])
    by_name = es_client.search(
        index=index, query={"term": {"kubernetes.labels.app.kubernetes.io/name": "card-api"}}
    )
    by_app = es_client.search(index=index, query={"term": {"kubernetes.labels.app": "ledger"}})
    assert [hit["_source"] for hit in by_name["hits"]["hits"]] == [ECS_ERROR]
    assert [hit["_source"] for hit in by_app["hits"]["hits"]] == [FLUENT_BIT_ERROR]
