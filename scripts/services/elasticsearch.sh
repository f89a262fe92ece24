# shellcheck shell=bash
# Elasticsearch from the integ-test-zip distribution on Maven Central: one local node per major
# version (8 and 9), each with its own port, state dir and JDK. Sourced by scripts/services.sh after
# common.sh. `es_node 8|9` points the ES_* settings below at one node; the other functions act on it.

es_node() {
  ES_MAJOR="$1"
  case "$ES_MAJOR" in
  8)
    ES_VERSION="$ES8_VERSION" ES_PORT="$ES8_PORT"
    ES_STATE_DIR="$AILOG_STATE_DIR/elasticsearch"
    ;;
  9)
    ES_VERSION="$ES9_VERSION" ES_PORT="$ES9_PORT"
    ES_STATE_DIR="$AILOG_STATE_DIR/elasticsearch9"
    ;;
  *) die "no Elasticsearch node $ES_MAJOR: the nodes are ${ES_NODES[*]}" ;;
  esac
  ES_ARTIFACT="org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ES_VERSION}:zip"
  ES_URL="http://${ES_HOST}:${ES_PORT}"
  ES_HOME="${AILOG_CACHE_DIR}/elasticsearch-${ES_VERSION}"
  ES_PID_FILE="$ES_STATE_DIR/elasticsearch.pid"
  ES_CONFIG_DIR="$ES_STATE_DIR/config"
  ES_LOG_DIR="$ES_STATE_DIR/logs"
  ES_DATA_DIR="$ES_STATE_DIR/data"
  ES_LOG_FILE="$ES_LOG_DIR/ai-log-analyzer-test.log"
}

# The distribution has no bundled JDK. The 8 node runs on the machine's own (`java` on PATH, JDK 17),
# the 9 node on the newer JDK the machine carries beside it.
es_java_home() {
  if [ "$ES_MAJOR" = 9 ]; then
    [ -x "$ES9_JAVA_HOME/bin/java" ] \
      || die "no JDK at $ES9_JAVA_HOME: Elasticsearch $ES_VERSION needs JDK 21 or newer (set AILOG_ES9_JAVA_HOME)"
    printf '%s\n' "$ES9_JAVA_HOME"
    return
  fi
  if [ -n "${ES_JAVA_HOME:-}" ]; then
    printf '%s\n' "$ES_JAVA_HOME"
    return
  fi
  local java
  java="$(command -v java)" || die "no 'java' on PATH: Elasticsearch $ES_VERSION needs a JDK 17 or newer (apt-get install openjdk-17-jdk-headless)"
  java="$(readlink -f "$java")"
  printf '%s\n' "${java%/bin/java}"
}

# Fetches the distribution through Maven (cached in ~/.m2) and keeps an unpacked copy in the cache dir.
es_install() {
  [ -x "$ES_HOME/bin/elasticsearch" ] && return 0
  command -v mvn >/dev/null || die "no 'mvn' on PATH: Maven fetches Elasticsearch from Maven Central (apt-get install maven)"
  local download="$AILOG_CACHE_DIR/download"
  rm -rf "$download" "$ES_HOME.partial"
  mkdir -p "$download"
  log "fetching $ES_ARTIFACT from Maven Central"
  local fetch_started=$SECONDS
  mvn -B -Dstyle.color=never org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
    -Dartifact="$ES_ARTIFACT" -DoutputDirectory="$download" >"$download/mvn.log" 2>&1 \
    || die "Maven could not fetch $ES_ARTIFACT (is Maven Central reachable? does version $ES_VERSION exist?):
$(grep -E 'ERROR|Could not' "$download/mvn.log" | head -n 3)"
  log "fetched in $((SECONDS - fetch_started)) s"
  local zip="$download/elasticsearch-$ES_VERSION.zip"
  [ -f "$zip" ] || die "Maven reported success but $zip is missing"
  log "unpacking $(du -h "$zip" | cut -f1) into $ES_HOME"
  unzip -q "$zip" -d "$ES_HOME.partial" || die "unzip $zip failed"
  # Moved into place only when complete, so an interrupted start never leaves a half-unpacked copy.
  mv "$ES_HOME.partial/elasticsearch-$ES_VERSION" "$ES_HOME"
  rm -rf "$ES_HOME.partial" "$download"
}

es_prepare_node() {
  id -u "$ES_SYSTEM_USER" >/dev/null 2>&1 \
    || useradd --system --no-create-home --home-dir "$ES_STATE_DIR" --shell /usr/sbin/nologin "$ES_SYSTEM_USER" \
    || die "could not create the system user $ES_SYSTEM_USER that runs Elasticsearch"
  mkdir -p "$ES_CONFIG_DIR/jvm.options.d" "$ES_LOG_DIR" "$ES_DATA_DIR"
  # The node writes its keystore into the config dir, so it gets its own copy of the distribution's.
  cp -rn "$ES_HOME/config/." "$ES_CONFIG_DIR/"
  cp "$SERVICES_DIR/elasticsearch.yml" "$ES_CONFIG_DIR/elasticsearch.yml"
  printf '%s\n' "-Xms$ES_HEAP" "-Xmx$ES_HEAP" >"$ES_CONFIG_DIR/jvm.options.d/ai-log-analyzer-heap.options"
  chown -R "$ES_SYSTEM_USER:" "$ES_STATE_DIR"
}

es_running_pid() {
  local pid
  [ -f "$ES_PID_FILE" ] || return 1
  pid="$(cat "$ES_PID_FILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && printf '%s\n' "$pid"
}

es_log_tail() {
  printf '\n--- last lines of %s ---\n' "$ES_LOG_FILE"
  tail -n 40 "$ES_LOG_FILE" 2>/dev/null || echo "(no log file)"
}

es_wait_for_health() {
  local deadline=$((SECONDS + ES_START_TIMEOUT)) status
  while [ "$SECONDS" -lt "$deadline" ]; do
    es_running_pid >/dev/null || die "Elasticsearch $ES_VERSION exited while starting$(es_log_tail)"
    status="$(curl -sS --max-time 10 "$ES_URL/_cluster/health?wait_for_status=yellow&timeout=5s" 2>/dev/null \
      | grep -o '"status":"[a-z]*"')"
    case "$status" in
    *green* | *yellow*) return 0 ;;
    esac
    sleep 1
  done
  die "Elasticsearch $ES_VERSION did not report yellow or green health on $ES_URL within $ES_START_TIMEOUT s$(es_log_tail)"
}

es_put_template() {
  local response code
  response="$(curl -sS --max-time 30 -X PUT "$ES_URL/_index_template/logs-k8s" \
    -H 'Content-Type: application/json' --data-binary "@$SERVICES_DIR/logs-k8s-template.json" -w '\n%{http_code}')" \
    || die "could not reach $ES_URL to install the logs-k8s index template"
  code="${response##*$'\n'}"
  [ "$code" = 200 ] || die "Elasticsearch refused the logs-k8s index template (HTTP $code): ${response%$'\n'*}"
}

# Launches one node (daemonized) without waiting for it: both nodes start side by side.
es_launch() {
  es_install
  es_prepare_node
  ES_LAUNCHED_AT=""
  if es_running_pid >/dev/null; then
    log "Elasticsearch $ES_VERSION already running (pid $(es_running_pid))"
    return 0
  fi
  if curl -sS --max-time 5 "$ES_URL" >/dev/null 2>&1; then
    die "something else already answers on $ES_URL; stop it or set AILOG_ES_PORT / AILOG_ES9_PORT"
  fi
  local java_home
  java_home="$(es_java_home)"
  log "starting Elasticsearch $ES_VERSION on $ES_URL (heap $ES_HEAP, java $java_home)"
  ES_LAUNCHED_AT=$SECONDS
  # The working dir is the log dir: the JVM writes gc.log relative to it, as the node's user. The
  # console copy of the node's log is dropped; the log file has it, and failures print its tail.
  (cd "$ES_LOG_DIR" && runuser -u "$ES_SYSTEM_USER" -- env -u ES_JAVA_OPTS \
    ES_JAVA_HOME="$java_home" ES_PATH_CONF="$ES_CONFIG_DIR" \
    timeout "$ES_START_TIMEOUT" "$ES_HOME/bin/elasticsearch" --daemonize --pidfile "$ES_PID_FILE" \
    -E path.data="$ES_DATA_DIR" -E path.logs="$ES_LOG_DIR" -E http.port="$ES_PORT" \
    -E node.name="ai-log-analyzer-test-node-$ES_MAJOR" >/dev/null) \
    || die "Elasticsearch $ES_VERSION failed to start$(es_log_tail)"
}

es_start() {
  require_root start
  ensure_packages curl unzip
  local node started=$SECONDS
  for node in "${ES_NODES[@]}"; do
    es_node "$node"
    es_launch
  done
  for node in "${ES_NODES[@]}"; do
    es_node "$node"
    es_wait_for_health
    es_put_template
    log "Elasticsearch $ES_VERSION is up on $ES_URL with index template logs-k8s"
  done
  log "Elasticsearch nodes ready in $((SECONDS - started)) s"
}

es_stop() {
  require_root stop
  local node pid waited
  for node in "${ES_NODES[@]}"; do
    es_node "$node"
    pid="$(es_running_pid)" || continue
    kill "$pid"
    waited=0
    while kill -0 "$pid" 2>/dev/null; do
      [ "$waited" -lt 60 ] || die "Elasticsearch $ES_VERSION (pid $pid) did not stop within 60 s"
      sleep 1
      waited=$((waited + 1))
    done
    rm -f "$ES_PID_FILE"
    log "Elasticsearch $ES_VERSION stopped"
  done
}

es_status() {
  local node pid rc=0
  for node in "${ES_NODES[@]}"; do
    es_node "$node"
    if pid="$(es_running_pid)"; then
      echo "elasticsearch $ES_MAJOR: up on $ES_URL (pid $pid, version $ES_VERSION)"
    else
      echo "elasticsearch $ES_MAJOR: down"
      rc=1
    fi
  done
  return "$rc"
}
