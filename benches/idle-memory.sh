#!/usr/bin/env bash
# Server memory when idle after a small-object load: starts `asterope serve` on a fresh data
# directory, stores N small objects with a metadata document each through the server (CLIENTS
# curl processes, each sending its own slice of keys with `--parallel`, PARALLEL requests in
# flight per process), runs a few listings, queries and counts, then waits IDLE_SECS and samples
# the server's RssAnon and thread count (/proc/PID/status). SERVE_ARGS and the environment (e.g.
# MALLOC_ARENA_MAX) pass through to the server.
#
#   bash benches/idle-memory.sh                                   # 200,000 objects
#   OBJECTS=20000 bash benches/idle-memory.sh
#   BIN=target/release/asterope SERVE_ARGS="--cache-size 16777216" bash benches/idle-memory.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OBJECTS=${OBJECTS:-200000}
CLIENTS=${CLIENTS:-4}
PARALLEL=${PARALLEL:-16}
IDLE_SECS=${IDLE_SECS:-10}
PORT=${PORT:-17881}
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin asterope -q
  BIN=$PWD/target/release/asterope
fi
mkdir -p target/bench-scratch
WORK=$(mktemp -d "$PWD/target/bench-scratch/idlemem.XXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

# shellcheck disable=SC2086
"$BIN" --data "$WORK/data" serve --listen 127.0.0.1:$PORT ${SERVE_ARGS:-} 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:$PORT/v1/health 2>/dev/null && break; sleep 0.1; done
status() { awk -v k="$1:" '$1 == k { print $2 }' /proc/$SERVER_PID/status; }
echo "RssAnon at start: $(( $(status RssAnon) / 1024 )) MiB, threads: $(status Threads)"

# One curl config per client: a PUT of a ~100-byte body with a metadata header per key.
for c in $(seq 0 $((CLIENTS - 1))); do
  awk -v c="$c" -v n="$OBJECTS" -v clients="$CLIENTS" -v port="$PORT" 'BEGIN {
    for (i = c; i < n; i += clients) {
      printf "url = \"http://127.0.0.1:%d/v1/objects/obj/%07d\"\n", port, i
      printf "request = \"PUT\"\n"
      printf "data-binary = \"object %07d payload of about one hundred bytes, distinct per key ........ %d\"\n", i, i * 7919
      printf "header = \"x-asterope-meta: {\\\"n\\\":%d,\\\"group\\\":\\\"g%d\\\",\\\"name\\\":\\\"object-%d\\\"}\"\n", i, i % 100, i
      printf "header = \"content-type: application/octet-stream\"\n"
      printf "output = \"/dev/null\"\nfail\n"
      if (i + clients < n) printf "next\n"
    }
  }' > "$WORK/client-$c.conf"
done
started=$(date +%s.%N)
pids=()
for c in $(seq 0 $((CLIENTS - 1))); do
  curl -sS -Z --parallel-max "$PARALLEL" -K "$WORK/client-$c.conf" 2>>"$WORK/client-errors" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
ended=$(date +%s.%N)
errors=$(grep -c "curl: (" "$WORK/client-errors" || true)
grep -o "curl: (.*" "$WORK/client-errors" | sort | uniq -c | sort -rn | head -3 || true
awk -v s="$started" -v e="$ended" -v n="$OBJECTS" \
  'BEGIN { printf "Loaded %d objects in %.1f s (%.0f/s)\n", n, e - s, n / (e - s) }'
echo "RssAnon after the load: $(( $(status RssAnon) / 1024 )) MiB, threads: $(status Threads)"

# A few reads of the kind a long-running server answers.
for g in 1 2 3 4 5; do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/v1/objects?prefix=obj/00$g&limit=1000"
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"filter\":{\"group\":\"g$g\"},\"limit\":1000}" "http://127.0.0.1:$PORT/v1/query"
  curl -fsS -o /dev/null -H 'content-type: application/json' \
    -d "{\"filter\":{\"n\":{\"\$gte\":$((g * 1000))}}}" "http://127.0.0.1:$PORT/v1/query/count"
done
count=$(curl -fsS -H 'content-type: application/json' -d '{"filter":{}}' "http://127.0.0.1:$PORT/v1/query/count")
echo "RssAnon after the reads: $(( $(status RssAnon) / 1024 )) MiB, threads: $(status Threads)"
sleep "$IDLE_SECS"
idle=$(( $(status RssAnon) / 1024 ))
threads=$(status Threads)
echo "| idle after $OBJECTS objects (${SERVE_ARGS:-defaults}${MALLOC_ARENA_MAX:+, MALLOC_ARENA_MAX=$MALLOC_ARENA_MAX}) | value |"
echo "|---|---|"
echo "| failed client processes / error lines / objects counted | $failed / $errors / $count |"
echo "| server RssAnon after ${IDLE_SECS} s idle | $idle MiB |"
echo "| server threads after ${IDLE_SECS} s idle | $threads |"
kill $SERVER_PID
