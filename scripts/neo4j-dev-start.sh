#!/usr/bin/env bash
# Start the embedded Neo4j 5 Community dev server (deploy/neo4j-dev) in the background.
#
#   scripts/neo4j-dev-start.sh DATA_DIR PORT
#
# Builds the Maven project if needed, logs to DATA_DIR/neo4j-dev.log, writes the PID to
# DATA_DIR/neo4j-dev.pid and returns once Bolt on 127.0.0.1:PORT accepts connections
# (auth disabled; use neo4j.NoAuth()). Stop it with scripts/neo4j-dev-stop.sh DATA_DIR.
#
# Environment:
#   NEO4J_DEV_START_TIMEOUT  seconds to wait for Bolt (default 120)
#   NEO4J_DEV_JAVA_OPTS      extra JVM options, appended after the defaults
#   JAVA                     java binary (default: java on PATH)
#   MVN                      maven binary (default: mvn on PATH)
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 DATA_DIR PORT" >&2
  exit 2
fi
if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > 65535)); then
  echo "neo4j-dev-start: invalid port: $2" >&2
  exit 2
fi
PORT=$2
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PROJ=$(cd "$SCRIPT_DIR/../deploy/neo4j-dev" && pwd)
mkdir -p "$1"
DATA_DIR=$(cd "$1" && pwd)
LOG=$DATA_DIR/neo4j-dev.log
PIDFILE=$DATA_DIR/neo4j-dev.pid
READYFILE=$DATA_DIR/neo4j-dev.ready
TIMEOUT=${NEO4J_DEV_START_TIMEOUT:-120}
JAVA=${JAVA:-java}
MVN=${MVN:-mvn}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if [[ -f $PIDFILE ]] && ps -o args= -p "$(cat "$PIDFILE")" 2>/dev/null | grep -q 'dev\.idgraph\.Neo4jDev'; then
  echo "neo4j-dev-start: already running (pid $(cat "$PIDFILE")) for $DATA_DIR" >&2
  exit 1
fi
if port_open; then
  echo "neo4j-dev-start: port $PORT is already in use" >&2
  exit 1
fi

# Build only when the output is missing or older than the sources. The lock keeps
# parallel callers (e.g. several test packages) from running Maven on top of each other.
STAMP=$PROJ/target/.neo4j-dev-built
needs_build() {
  [[ ! -f $STAMP || $PROJ/pom.xml -nt $STAMP ]] || [[ -n $(find "$PROJ/src" -newer "$STAMP" -print -quit) ]]
}
if needs_build; then
  mkdir -p "$PROJ/target"
  exec 9>"$PROJ/target/.build.lock"
  if command -v flock >/dev/null; then flock 9; fi
  if needs_build; then
    echo "neo4j-dev-start: building $PROJ" >&2
    # A changed pom may change the jar set; drop stale jars. (Not done for Java-only
    # changes, so a rebuild does not pull jars from under a server that is running.)
    if [[ ! -f $STAMP || $PROJ/pom.xml -nt $STAMP ]]; then
      rm -rf "$PROJ/target/lib"
    fi
    # copy-dependencies is bound to the package phase in pom.xml (-> target/lib).
    # Maven 3.8 prints bare ANSI resets even with -B -q; strip them to keep CI logs clean.
    "$MVN" -B -q -f "$PROJ/pom.xml" package 2>&1 | sed -e "s/$(printf '\033')\[[0-9;]*m//g" -e '/^$/d' >&2
    touch "$STAMP"
  fi
  exec 9>&-
fi

# --add-opens: without them Neo4j falls back to slower paths on Java 17 (page cache
# DirectByteBuffer access, file-descriptor advice for transaction logs) and warns.
JAVA_OPTS=(
  -Xms512m -Xmx1g
  -XX:+UseG1GC
  -XX:-OmitStackTraceInFastThrow
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dlog4j2.disable.jmx=true
)
if [[ -n ${NEO4J_DEV_JAVA_OPTS:-} ]]; then
  read -r -a EXTRA_OPTS <<<"$NEO4J_DEV_JAVA_OPTS"
  JAVA_OPTS+=("${EXTRA_OPTS[@]}")
fi

rm -f "$READYFILE"
nohup "$JAVA" "${JAVA_OPTS[@]}" -cp "$PROJ/target/classes:$PROJ/target/lib/*" \
  dev.idgraph.Neo4jDev "$DATA_DIR" "$PORT" "$READYFILE" >"$LOG" 2>&1 </dev/null &
PID=$!
echo "$PID" >"$PIDFILE"

fail() {
  echo "neo4j-dev-start: $1; last lines of $LOG:" >&2
  tail -n 40 "$LOG" >&2 || true
  if kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in {1..50}; do
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL "$PID" 2>/dev/null || true
  fi
  rm -f "$PIDFILE"
  exit 1
}

# Ready = our process wrote the ready file AND the port accepts TCP. Checking the ready
# file too avoids mistaking some other listener on PORT for our server.
deadline=$((SECONDS + TIMEOUT))
until [[ -f $READYFILE ]] && port_open; do
  kill -0 "$PID" 2>/dev/null || fail "server exited during startup"
  ((SECONDS < deadline)) || fail "Bolt not ready on 127.0.0.1:$PORT after ${TIMEOUT}s"
  sleep 0.5
done
echo "neo4j-dev-start: bolt ready on 127.0.0.1:$PORT (pid $PID, data $DATA_DIR)"
