#!/usr/bin/env bash
# HTTP/1.1 against HTTP/2 (h2c) on the same `asterope serve` in the same run, both driven by curl
# (`curl --http1.1` and `curl --http2-prior-knowledge`): PUT then GET of one large object per
# protocol per round, the two protocols alternating (which goes first swaps every round). Each
# upload has its own content (a round-and-protocol stamp over the first bytes of one random file),
# so deduplication never shortcuts it; puts are durable as the server always makes them. GETs read
# the object just written (warm page cache) and curl receives every byte over the socket.
# Prints min / median / max per protocol and the median of the per-round HTTP/1.1 / HTTP/2 ratios.
#
#   bash benches/http1-vs-http2.sh                    # 1024 MiB, 5 rounds
#   SIZE_MIB=256 ROUNDS=7 bash benches/http1-vs-http2.sh
#   BIN=target/release/asterope bash benches/http1-vs-http2.sh   # skip the build
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-17879}
if [ -z "${BIN:-}" ]; then
  cargo build --release --bin asterope -q
  BIN=$PWD/target/release/asterope
fi
mkdir -p target/bench-scratch
WORK=$(mktemp -d "$PWD/target/bench-scratch/h1h2.XXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/blob"
"$BIN" --data "$WORK/data" serve --listen 127.0.0.1:$PORT 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 50); do curl -fsS -o /dev/null http://127.0.0.1:$PORT/v1/health 2>/dev/null && break; sleep 0.1; done

# curl_time FLAG ARGS...: seconds of one transfer (fails the script on an HTTP error).
curl_time() { curl -fsS "$@" -o /dev/null -w '%{time_total}'; }
flag() { [ "$1" = h1 ] && echo --http1.1 || echo --http2-prior-knowledge; }
: > "$WORK/times"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="h1 h2"; else order="h2 h1"; fi
  for proto in $order; do
    # Fresh content: stamp this round and protocol over the first bytes (the file stays cached).
    printf 'round %08d %s %s' "$round" "$proto" "$RANDOM$RANDOM" |
      dd of="$WORK/blob" conv=notrunc status=none
    put=$(curl_time "$(flag $proto)" -T "$WORK/blob" "http://127.0.0.1:$PORT/v1/objects/$proto-$round")
    echo "$round $proto put $put" >> "$WORK/times"
  done
  for proto in $order; do
    get=$(curl_time "$(flag $proto)" "http://127.0.0.1:$PORT/v1/objects/$proto-$round")
    echo "$round $proto get $get" >> "$WORK/times"
  done
  for proto in h1 h2; do
    curl -fsS -o /dev/null -X DELETE "http://127.0.0.1:$PORT/v1/objects/$proto-$round"
  done
done

echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Raw times (round protocol op seconds):"
cat "$WORK/times"
echo
echo "| $SIZE_MIB MiB, $ROUNDS rounds | HTTP/1.1 min / median / max | HTTP/2 min / median / max | median of per-round ratios HTTP/1.1 / HTTP/2 |"
echo "|---|---|---|---|"
for op in put get; do
  awk -v op=$op -v mib="$SIZE_MIB" '
    function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function stats(a, n) { sortn(a, n); return sprintf("%.2f / %.2f / %.2f GB/s", a[1], med(a, n), a[n]) }
    $3 == op { gbps = mib * 1048576 / $4 / 1e9; if ($2 == "h1") h1[$1] = gbps; else h2[$1] = gbps }
    END {
      n = 0; for (r in h1) { n++; x[n] = h1[r]; y[n] = h2[r]; q[n] = h1[r] / h2[r] }
      sortn(q, n)
      printf "| %s | %s | %s | %.2f (%.2f - %.2f) |\n", toupper(op), stats(x, n), stats(y, n), med(q, n), q[1], q[n]
    }' "$WORK/times"
done
kill $SERVER_PID
