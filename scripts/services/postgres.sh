# shellcheck shell=bash
# PostgreSQL from Debian's packages: one cluster on 127.0.0.1, the analyzer's database and roles.
# Sourced by scripts/services.sh after common.sh.

# The newest major version that has a cluster called main; empty when there is none.
pg_main_version() {
  pg_lsclusters --no-header 2>/dev/null | awk '$2 == "main" {print $1}' | sort -V | tail -n 1
}

# Prints the major version of cluster main, creating the cluster when the packages made none.
pg_ensure_cluster() {
  local version
  version="$(pg_main_version)"
  if [ -z "$version" ]; then
    version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$version" ] || die "no PostgreSQL server under /usr/lib/postgresql after installing the postgresql package"
    log "creating PostgreSQL $version cluster 'main'"
    pg_createcluster "$version" main >/dev/null || die "pg_createcluster $version main failed"
  fi
  printf '%s\n' "$version"
}

# Runs psql as the postgres superuser from /, reading SQL from stdin: the postgres user may not be
# able to enter the checkout. Without the PGOPTIONS, re-runs print a NOTICE per grant already there.
pg_psql_as_superuser() {
  (cd / && runuser -u postgres -- env PGOPTIONS='--client-min-messages=warning' \
    psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 "$@")
}

# Writes our settings into the cluster's conf.d; succeeds only when the file changed.
pg_write_settings() {
  local version="$1" file
  file="/etc/postgresql/$version/main/conf.d/ai-log-analyzer.conf"
  local wanted
  wanted="# Written by scripts/services.sh: the analyzer's local test server.
listen_addresses = '$PG_HOST'
port = $PG_PORT
password_encryption = 'scram-sha-256'"
  if [ -f "$file" ] && [ "$(cat "$file")" = "$wanted" ]; then
    return 1
  fi
  printf '%s\n' "$wanted" >"$file"
}

pg_start() {
  require_root start
  ensure_packages postgresql
  local version
  version="$(pg_ensure_cluster)"
  if pg_write_settings "$version" && pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    log "PostgreSQL settings changed: restarting cluster $version/main"
    pg_ctlcluster "$version" main restart || die "pg_ctlcluster $version main restart failed; see /var/log/postgresql/"
  fi
  if ! pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    log "starting PostgreSQL $version/main"
    pg_ctlcluster "$version" main start \
      || die "pg_ctlcluster $version main start failed: $(tail -n 20 "/var/log/postgresql/postgresql-$version-main.log" 2>/dev/null)"
  fi
  local waited=0
  until pg_isready --quiet --host "$PG_HOST" --port "$PG_PORT"; do
    [ "$waited" -lt 30 ] || die "PostgreSQL is not accepting connections on $PG_HOST:$PG_PORT after 30 s"
    sleep 1
    waited=$((waited + 1))
  done

  pg_psql_as_superuser --dbname postgres \
    --set ddl_password="$PG_DDL_PASSWORD" \
    --set app_password="$PG_APP_PASSWORD" \
    --set admin_password="$PG_TEST_ADMIN_PASSWORD" \
    <"$SERVICES_DIR/postgres_roles.sql" || die "creating the analyzer's roles and database failed"
  pg_psql_as_superuser --dbname "$PG_DATABASE" <"$SERVICES_DIR/postgres_database_grants.sql" \
    || die "granting privileges in database $PG_DATABASE failed"

  # The check that matters: the application user logs in over TCP with its password.
  PGPASSWORD="$PG_APP_PASSWORD" psql --no-psqlrc --quiet --host "$PG_HOST" --port "$PG_PORT" \
    --username "$PG_APP_USER" --dbname "$PG_DATABASE" --command 'SELECT 1' >/dev/null \
    || die "$PG_APP_USER cannot log in to $PG_HOST:$PG_PORT/$PG_DATABASE with its password (check pg_hba.conf of cluster $version/main)"
  log "PostgreSQL $version is up on $PG_HOST:$PG_PORT, database $PG_DATABASE"
}

pg_stop() {
  require_root stop
  command -v pg_lsclusters >/dev/null || return 0
  local version
  version="$(pg_main_version)"
  [ -n "$version" ] || return 0
  if pg_ctlcluster "$version" main status >/dev/null 2>&1; then
    pg_ctlcluster "$version" main stop || die "pg_ctlcluster $version main stop failed"
    log "PostgreSQL $version/main stopped"
  fi
}

pg_status() {
  if pg_isready --quiet --host "$PG_HOST" --port "$PG_PORT" 2>/dev/null; then
    echo "postgresql: up on $PG_HOST:$PG_PORT"
  else
    echo "postgresql: down"
    return 1
  fi
}
