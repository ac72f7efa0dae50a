#!/usr/bin/env bash
# Stop a server started by scripts/neo4j-dev-start.sh DATA_DIR.
#
#   scripts/neo4j-dev-stop.sh DATA_DIR
#
# Sends TERM (the JVM shutdown hook flushes the stores), then KILL after
# NEO4J_DEV_STOP_TIMEOUT seconds (default 20), and waits until the process is gone.
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 DATA_DIR" >&2
  exit 2
fi
PIDFILE=$1/neo4j-dev.pid
TIMEOUT=${NEO4J_DEV_STOP_TIMEOUT:-20}

if [[ ! -f $PIDFILE ]]; then
  echo "neo4j-dev-stop: no pid file at $PIDFILE; nothing to stop" >&2
  exit 0
fi
PID=$(cat "$PIDFILE")

# A zombie (dead but not yet reaped, e.g. under a PID 1 that does not reap) still
# answers kill -0, so look at the process state as well.
alive() {
  local stat
  stat=$(ps -o stat= -p "$PID" 2>/dev/null) || return 1
  [[ -n $stat && $stat != Z* ]]
}
# Guard against a recycled PID belonging to something else.
ours() { ps -o args= -p "$PID" 2>/dev/null | grep -q 'dev\.idgraph\.Neo4jDev'; }

if ! alive || ! ours; then
  echo "neo4j-dev-stop: pid $PID is not running" >&2
  rm -f "$PIDFILE"
  exit 0
fi

kill -TERM "$PID" 2>/dev/null || true
deadline=$((SECONDS + TIMEOUT))
while alive && ((SECONDS < deadline)); do
  sleep 0.2
done
if alive; then
  echo "neo4j-dev-stop: pid $PID did not exit within ${TIMEOUT}s; sending KILL" >&2
  kill -KILL "$PID" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while alive && ((SECONDS < deadline)); do
    sleep 0.2
  done
  if alive; then
    echo "neo4j-dev-stop: pid $PID still alive after KILL" >&2
    exit 1
  fi
fi
rm -f "$PIDFILE"
echo "neo4j-dev-stop: stopped (pid $PID)"
