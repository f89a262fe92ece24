#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR source-path=SCRIPTDIR/services
# The real PostgreSQL and Elasticsearch (an 8.x and a 9.x node) that the integration tests and CI use,
# on this machine.
#
#   bash scripts/services.sh start    install (once, cached) and start all; safe to repeat (root)
#   bash scripts/services.sh stop     stop all (root)
#   bash scripts/services.sh status   say what is up; non-zero when something is down
#   bash scripts/services.sh env      print the export lines the tests read:
#                                     eval "$(bash scripts/services.sh env)"
#
# Details, versions and measured timings: docs/services.md.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/services/common.sh"
source "$SERVICES_DIR/postgres.sh"
source "$SERVICES_DIR/elasticsearch.sh"

services_env() {
  local server="$PG_HOST:$PG_PORT/$PG_DATABASE"
  echo "export TEST_DATABASE_URL='postgresql+psycopg://$PG_APP_USER:$PG_APP_PASSWORD@$server'"
  echo "export TEST_DATABASE_DDL_URL='postgresql+psycopg://$PG_DDL_USER:$PG_DDL_PASSWORD@$server'"
  echo "export TEST_DATABASE_ADMIN_URL='postgresql+psycopg://$PG_TEST_ADMIN_USER:$PG_TEST_ADMIN_PASSWORD@$PG_HOST:$PG_PORT/postgres'"
  es_node 8
  echo "export TEST_ES_URL='$ES_URL'"
  es_node 9
  echo "export TEST_ES9_URL='$ES_URL'"
}

case "${1:-}" in
start)
  pg_start
  es_start
  ;;
stop)
  es_stop
  pg_stop
  ;;
status)
  rc=0
  pg_status || rc=1
  es_status || rc=1
  exit "$rc"
  ;;
env)
  services_env
  ;;
*)
  echo "usage: bash scripts/services.sh start|stop|status|env" >&2
  exit 2
  ;;
esac
