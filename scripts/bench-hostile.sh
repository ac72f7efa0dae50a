#!/usr/bin/env bash
# bench-hostile.sh: the server CPU time each hostile request costs before it
# is refused, and normal lookups' p99 with and without 10 hostile clients.
# Usage: [RUNS=3] [DEBUG_ADDR=127.0.0.1:6060] scripts/bench-hostile.sh [port]
# (embedded store in a temp dir; DEBUG_ADDR serves pprof, for profiling)
# The server's CPU is read from /proc/PID/stat (user + system ticks) around
# N requests of each case, so the figure is the server's work, not curl's.
set -euo pipefail
port=${1:-18702}
url=http://127.0.0.1:$port
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
go build -o "$dir/idgraph" ./cmd/idgraph
"$dir/idgraph" serve --addr 127.0.0.1:$port --store "$dir/data" \
	--write-key wk --read-key rk --steward-key sk ${DEBUG_ADDR:+--debug-addr "$DEBUG_ADDR"} 2>"$dir/log" &
pid=$!
until curl -sf $url/healthz >/dev/null; do sleep 0.2; done

deep() { python3 -c "import sys; n=int(sys.argv[1]); print('['*n + ']'*n, end='')" "$1"; }
# A profile with 1,000 identifiers, for the alias bomb.
python3 - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
for b in range(5):
    msgs = [{"type": "track", "event": "Seen", "userId": "big", "anonymousId": f"big-{b*200+i}",
             "timestamp": "2026-01-01T10:00:00Z"} for i in range(200)]
    open(f"{d}/seed{b}.json", "w").write(json.dumps({"batch": msgs}))
EOF
for b in 0 1 2 3 4; do curl -s -u wk: $url/v1/batch --data-binary @"$dir/seed$b.json" >/dev/null; done
gql() { curl -s $url/graphql -H 'Authorization: Bearer rk' -H 'Content-Type: application/json' --data-binary @"$1"; }
id=$(echo '{"query":"{ lookup(type: \"user_id\", value: \"big\") { id } }"}' >"$dir/q.json"; gql "$dir/q.json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["lookup"]["id"])')

# The hostile bodies.
printf '{"userId":"victim","timestamp":"9223372036854775807"}' >"$dir/ts.json"
printf '{"source":"crm","records":[{"line":2,"identifiers":{"email":"a@corp.io"},"traits":{"x":%s}}]}' "$(deep 20000)" >"$dir/deep20k.json"
n=$(( ((4 << 20) - 100) / 2 ))
printf '{"source":"crm","records":[{"line":2,"identifiers":{"email":"a@corp.io"},"traits":{"x":%s}}]}' "$(deep $n)" >"$dir/deep4m.json"
python3 - "$dir" "$id" <<'EOF'
import json, sys
d, pid = sys.argv[1], sys.argv[2]
q = "query($id: ID!) {" + "".join(f" a{i}: profile(id: $id) {{ graph {{ edges {{ id }} }} }}" for i in range(200)) + " }"
open(f"{d}/alias.json", "w").write(json.dumps({"query": q, "variables": {"id": pid}}))
q = '{ lookup(type: "user_id", value: "big") { ' + "id " * 20000 + "} }"
open(f"{d}/fields.json", "w").write(json.dumps({"query": q}))
q = '{ lookup(type: "user_id", value: "big") { ' + "id " * 1001 + "} }"
open(f"{d}/fields1001.json", "w").write(json.dumps({"query": q}))
EOF

ticks() { awk '{print $14 + $15}' /proc/$pid/stat; }
hz=$(getconf CLK_TCK)
measure() { # name repetitions command...
	local name=$1 reps=$2; shift 2
	local before after
	before=$(ticks)
	# curl may fail to send the rest of a body the server refused early.
	for ((i = 0; i < reps; i++)); do "$@" >/dev/null || true; done
	after=$(ticks)
	printf '%-44s %4d requests  %8.2f ms CPU each   (last answer: %s)\n' "$name" "$reps" \
		"$(echo "($after - $before) * 1000 / $hz / $reps" | bc -l)" "$("$@" | head -c 110 || true)"
}
echo "== server CPU per refused request"
measure "timestamp 9223372036854775807 (clamped)" 50 curl -s -u wk: $url/v1/identify -d @"$dir/ts.json"
measure "import record 20,000 deep" 50 curl -s -u wk: $url/v1/import --data-binary @"$dir/deep20k.json"
measure "import body 4 MB nested" 10 curl -s -u wk: $url/v1/import --data-binary @"$dir/deep4m.json"
measure "200 aliases of a 1,000-id graph" 50 gql "$dir/alias.json"
measure "20,000 repeated fields" 50 gql "$dir/fields.json"
measure "1,001 repeated fields" 50 gql "$dir/fields1001.json"
measure "/v1/match with the write key" 50 curl -s -u wk: $url/v1/match -d '{"limit":10}'

# The hostile load comes from `idgraph bench-lookup --hostile`: 10
# goroutines posting the four costly bodies round and round over kept-alive
# connections, so that the client's CPU is small next to the server's. It
# measures lookups alone, then with the hostile clients, in one run; repeat
# with RUNS (default 3), each with hostile clients that do not pause and
# with ones that pause 0.1 s between requests.
echo "== lookup latency, 16 clients, 20,000 lookups over 1,000 profiles; alone, then with 10 hostile clients"
for run in $(seq "${RUNS:-3}"); do for pause in 0s 100ms; do
	echo "-- run $run, hostile clients pausing $pause between requests, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
	"$dir/idgraph" bench-lookup --server $url --key rk --write-key wk --profiles 1000 --requests 20000 --clients 16 \
		--server-pid $pid --hostile-clients 10 --hostile-pause $pause \
		--hostile /v1/import="$dir/deep4m.json" --hostile /graphql="$dir/alias.json" \
		--hostile /graphql="$dir/fields.json" --hostile /v1/import="$dir/deep20k.json"
done; done
