#!/usr/bin/env bash
# Instructions per ingest request, counted by valgrind's callgrind: unlike time, the count
# does not move with the machine's load (runs at one commit agree within ~0.5%), so two
# commits can be compared on a shared machine. It runs `hookgate serve` (default settings and log level)
# under callgrind, warms it with 200 requests, zeroes the counters, sends N more with the
# bundled generator (64 connections, 1 KiB bodies), dumps and prints the count per request.
# Slow server, big batches: the group commit's share is smaller than at full speed.
#
# Run: bench/instructions.sh [N] [admin database URL]   (defaults: 1500, the local server)
# Compare with the bare app: BARE=1 bench/instructions.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1500}
ADMIN=${2:-postgresql://postgres@127.0.0.1:5432/postgres}
DB="instructions_$$"
PORT=$(.venv/bin/python -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
TMP=$(mktemp -d)
psql "$ADMIN" -qc "CREATE DATABASE $DB"
cleanup() {
  [ -n "${VP:-}" ] && kill "$VP" 2>/dev/null && wait "$VP" 2>/dev/null
  psql "$ADMIN" -qc "DROP DATABASE IF EXISTS $DB" || true
  rm -rf "$TMP"
}
trap cleanup EXIT
cat > "$TMP/hookgate.yaml" <<YAML
database: {url: "${ADMIN%/*}/$DB"}
server: {host: 127.0.0.1, port: $PORT, max_body: 1MiB}
relay: {enabled: false}
sources: {bench: {event_type: "json:type"}}
targets: {sink0: {url: "http://127.0.0.1:9/hooks", concurrency: 64}}
routes: [{source: bench, targets: [sink0]}]
YAML
if [ -n "${BARE:-}" ]; then
  COMMAND=(.venv/bin/python bench/bare.py --port "$PORT")
else
  COMMAND=(.venv/bin/python .venv/bin/hookgate serve --config "$TMP/hookgate.yaml")
fi
valgrind --tool=callgrind --callgrind-out-file="$TMP/cg.%p" "${COMMAND[@]}" > "$TMP/server.log" 2>&1 &
VP=$!
for _ in $(seq 600); do curl -sf -m 5 "http://127.0.0.1:$PORT/healthz" > /dev/null && break; sleep 0.5; done
load() { .venv/bin/python bench/loadgen.py "http://127.0.0.1:$PORT/in/bench" --requests "$1" --connections 64 --timeout 120 > /dev/null; }
load 200
callgrind_control -z "$VP" > /dev/null 2>&1
load "$N"
callgrind_control -d "$VP" > /dev/null 2>&1
sleep 1
DUMP=$(ls -t "$TMP"/cg.*.* | head -1)
TOTAL=$(awk '/^summary:/ {print $2}' "$DUMP")
echo "$([ -n "${BARE:-}" ] && echo bare || echo hookgate): $((TOTAL / N)) instructions a request ($N requests)"
