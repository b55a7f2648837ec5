#!/usr/bin/env bash
# Server memory under concurrent HTTP/1.1 uploads: N curl processes (`curl --http1.1 -T FILE`),
# each uploading its own content (distinct files, so deduplication never shortcuts one), to one
# `asterope serve`, with the server's RssAnon (/proc/PID/status) sampled every 100 ms from before
# the first upload starts until the last one ends. Prints the peak and the upload throughput.
#
#   bash benches/http1-upload-memory.sh                        # 16 x 256 MiB
#   UPLOADS=8 SIZE_MIB=64 bash benches/http1-upload-memory.sh
#   BIN=target/release/asterope bash benches/http1-upload-memory.sh   # skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-256}
UPLOADS=${UPLOADS:-16}
PORT=${PORT:-17880}
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin asterope -q
  BIN=$PWD/target/release/asterope
fi
mkdir -p target/bench-scratch
WORK=$(mktemp -d "$PWD/target/bench-scratch/h1mem.XXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/base"
for i in $(seq "$UPLOADS"); do
  cp "$WORK/base" "$WORK/blob-$i"
  printf 'upload %08d %s' "$i" "$RANDOM$RANDOM" | dd of="$WORK/blob-$i" conv=notrunc status=none
done
"$BIN" --data "$WORK/data" serve --listen 127.0.0.1:$PORT 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:$PORT/v1/health 2>/dev/null && break; sleep 0.1; done

# RssAnon in KiB, read with shell builtins only (no fork per sample).
rss() { local k v _; while read -r k v _; do if [ "$k" = RssAnon: ]; then echo "$v"; fi; done < /proc/$SERVER_PID/status; }
echo "RssAnon before the uploads: $(( $(rss) / 1024 )) MiB"
( while [ ! -e "$WORK/done" ]; do rss >> "$WORK/rss"; sleep 0.1; done ) &
SAMPLER=$!
started=$(date +%s.%N)
pids=()
for i in $(seq "$UPLOADS"); do
  curl -fsS --http1.1 -T "$WORK/blob-$i" -o /dev/null "http://127.0.0.1:$PORT/v1/objects/upload-$i" &
  pids+=($!)
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=$((failed + 1)); done
ended=$(date +%s.%N)
touch "$WORK/done"
wait $SAMPLER
stored=$(curl -fsS "http://127.0.0.1:$PORT/v1/objects?prefix=upload-" | grep -o '"key"' | wc -l)
echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| $UPLOADS concurrent HTTP/1.1 uploads of $SIZE_MIB MiB | value |"
echo "|---|---|"
echo "| failed uploads / objects listed | $failed / $stored |"
echo "| server peak RssAnon (sampled every 100 ms, $(wc -l < "$WORK/rss") samples) | $(( $(sort -n "$WORK/rss" | tail -1) / 1024 )) MiB |"
awk -v s="$started" -v e="$ended" -v n="$UPLOADS" -v m="$SIZE_MIB" \
  'BEGIN { printf "| aggregate upload rate (durable) | %.2f GB/s over %.1f s |\n", n * m * 1048576 / (e - s) / 1e9, e - s }'
kill $SERVER_PID
