# shellcheck shell=bash disable=SC2034  # the settings are read by the files that source this one
# Settings and small helpers shared by the PostgreSQL and Elasticsearch parts of scripts/services.sh.
# Every setting can be overridden from the environment; the defaults are what CI and tests expect.

SERVICES_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# System-wide, because `start` runs as root and the servers run as their own system users.
AILOG_CACHE_DIR="${AILOG_CACHE_DIR:-/var/cache/ai-log-analyzer}"
AILOG_STATE_DIR="${AILOG_STATE_DIR:-/var/lib/ai-log-analyzer}"

PG_HOST=127.0.0.1
PG_PORT="${AILOG_PG_PORT:-5432}"
PG_DATABASE=ailog_analyzer
PG_DDL_ROLE=role_ailog_analyzer_ddl
PG_DDL_USER=ailog_analyzer_ddl_user
PG_APP_USER=ailog_analyzer_user
# Creates one fresh database per test; never used by the analyzer itself.
PG_TEST_ADMIN_USER=ailog_analyzer_test_admin
# Local test-only passwords for a server bound to 127.0.0.1; deliberately not secret.
PG_DDL_PASSWORD=local-test-only-ddl-password
PG_APP_PASSWORD=local-test-only-app-password
PG_TEST_ADMIN_PASSWORD=local-test-only-admin-password

# Two nodes, one per major version the analyzer supports: the tests that touch the query run on both.
# 8: the newest 8.x on Maven Central, on the machine's JDK 17. 9: a 9.x, which needs JDK 21 or newer:
# the second JDK these machines carry. See docs/services.md.
ES8_VERSION="${AILOG_ES_VERSION:-8.19.21}"
ES8_PORT="${AILOG_ES_PORT:-9200}"
ES9_VERSION="${AILOG_ES9_VERSION:-9.2.4}"
ES9_PORT="${AILOG_ES9_PORT:-9201}"
ES9_JAVA_HOME="${AILOG_ES9_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
ES_HOST=127.0.0.1
ES_NODES=(8 9)
ES_START_TIMEOUT="${AILOG_ES_START_TIMEOUT:-180}"
ES_HEAP="${AILOG_ES_HEAP:-512m}"
# Elasticsearch refuses to run as root, so root runs it as this unprivileged system user.
ES_SYSTEM_USER=ailog-es

log() {
  printf 'services: %s\n' "$*" >&2
}

die() {
  printf 'services: ERROR: %s\n' "$*" >&2
  exit 1
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "'$1' installs packages and system users: run it as root (sudo bash scripts/services.sh $1)"
}

# Installs the Debian packages among "$@" that are missing, refreshing the package lists only then.
ensure_packages() {
  local missing=() package
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
  done
  [ "${#missing[@]}" -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}
