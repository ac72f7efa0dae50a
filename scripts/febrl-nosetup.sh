#!/bin/sh
# FEBRL through the graph with no set-up step: serve with no flags beyond
# the store and keys, import, match, export profiles, score the profiles'
# rec_id pairs against FEBRL's truth (rec-N-org / rec-N-dup-K).
# usage: scripts/febrl-nosetup.sh STORE FILE[:SOURCE]...   (STORE: a fresh
# directory, or bolt://neo4j:password@host:port for a reset Neo4j)
# A literal `match` among the arguments runs `idgraph match` at that point
# (and not after the last file), to measure imports matched incrementally
# with the model a first match trained: STORE a.csv match b.csv
# ID_COLUMN names the record-ID column (default rec_id); its values must
# match rec-N-… as FEBRL's and `idgraph synth`'s do.
set -eu
store=$1; shift
idcol=${ID_COLUMN:-rec_id}
bin=${IDGRAPH_BIN:-./idgraph}
addr=127.0.0.1:${PORT:-18080}
"$bin" serve --store "$store" --addr "$addr" --write-key wk --read-key rk --steward-key sk 2>"${TMPDIR:-/tmp}/febrl-serve.log" &
pid=$!
trap 'kill $pid' EXIT
for _ in $(seq 50); do curl -sf "http://$addr/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
start=$(date +%s.%N)
matched=
for arg in "$@"; do
	if [ "$arg" = match ]; then
		"$bin" match --server "http://$addr" --key sk --resume-file ""
		matched=1
		continue
	fi
	file=${arg%%:*}; src=${arg#*:}; [ "$src" = "$arg" ] && src=crm
	"$bin" import --server "http://$addr" --key wk --source "$src" --identifiers "$idcol" "$file"
done
imported=$(date +%s.%N)
[ -n "$matched" ] || "$bin" match --server "http://$addr" --key sk --resume-file ""
done_=$(date +%s.%N)
"$bin" export profiles --server "http://$addr" --key rk | IDCOL="$idcol" python3 -c '
import json, os, re, sys
ent = {}; tp = pred = 0
for line in sys.stdin:
    ids = [i["value"] for i in json.loads(line)["identifiers"] if i["type"] == os.environ["IDCOL"]]
    c = {}
    for v in ids:
        e = re.match(r"rec-(\d+)-", v).group(1); c[e] = c.get(e, 0) + 1; ent[e] = ent.get(e, 0) + 1
    pred += len(ids) * (len(ids) - 1) // 2; tp += sum(n * (n - 1) // 2 for n in c.values())
truth = sum(n * (n - 1) // 2 for n in ent.values())
p, r = tp / pred, tp / truth
print("cluster pairs: precision %.4f recall %.4f F1 %.4f" % (p, r, 2 * p * r / (p + r)))'
echo "import $(echo "$imported - $start" | bc) s, match $(echo "$done_ - $imported" | bc) s"
