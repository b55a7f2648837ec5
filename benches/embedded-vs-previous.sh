#!/usr/bin/env bash
# Embedded CLI put and get, this build against a previous one, in the same run. Each round puts
# one large file (`asterope --data DIR put KEY FILE`, durable when it returns) into a fresh data
# directory and reads it back (`asterope --data DIR get KEY | wc -c`: every byte crosses a pipe,
# with the default CRC-32 check of every block) four times, the binaries in the order A B B A
# (B A A B the next round: a transfer runs slower after another than first, so each binary takes
# an outer and an inner place every round); then SMALL_COUNT small objects, one CLI process per
# put and per get, the binaries alternating object by object. Every transfer has its own content.
# Each command's wall-clock time and CPU time (user + system, its children included) is kept and
# summed per binary and round. Prints min / median / max per binary and the median (and range)
# of the per-round ratios: current / previous rate, and previous / current CPU time; above 1
# means the current binary is faster.
#
#   PREVIOUS=/path/to/old/asterope bash benches/embedded-vs-previous.sh
#   PREVIOUS=... CURRENT=target/release/asterope SIZE_MIB=1024 ROUNDS=5 SMALL_COUNT=1000 \
#     SMALL_KIB=100 bash benches/embedded-vs-previous.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-1024}
ROUNDS=${ROUNDS:-5}
SMALL_COUNT=${SMALL_COUNT:-1000}
SMALL_KIB=${SMALL_KIB:-100}
: "${PREVIOUS:?set PREVIOUS to the previous release binary}"
if [ -z "${CURRENT:-}" ]; then
  cargo build --release --bin asterope -q
  CURRENT=$PWD/target/release/asterope
fi
mkdir -p target/bench-scratch
WORK=$(mktemp -d "$PWD/target/bench-scratch/embedded.XXXX")
trap 'rm -rf "$WORK"' EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/blob"
# measure ROUND WHICH OP BYTES COMMAND...: appends "round which op wall-seconds cpu-seconds bytes";
# CPU is user + system time of the command and its children (bash's `time`), which the other
# work on a shared machine disturbs far less than the wall clock.
measure() {
  local round=$1 which=$2 op=$3 bytes=$4 t
  shift 4
  t=$( { TIMEFORMAT='%R %U %S'; time "$@" > /dev/null; } 2>&1 )
  echo "$round $which $op $(echo "$t" | awk '{ print $1, $2 + $3 }') $bytes" >> "$WORK/times"
}
put_big() { "$bin" --data "$data" put big "$WORK/blob"; }
get_big() {
  local got
  got=$("$bin" --data "$data" get big | wc -c)
  [ "$got" = $((SIZE_MIB << 20)) ] || { echo "get returned $got bytes" >&2; return 1; }
}
: > "$WORK/times"
: > "$WORK/disk"
for round in $(seq "$ROUNDS"); do
  if [ $((round % 2)) = 1 ]; then order="previous current"; else order="current previous"; fi
  rm -rf "$WORK/small" "$WORK"/data-* && mkdir "$WORK/small"
  # Large object: A B B A (B A A B the next round), each in a fresh directory removed after
  # its get, so each binary runs once in an outer and once in an inner place every round: the
  # page cache and writeback left by the transfer before weigh on both alike.
  slot=0
  for which in $order $(echo $order | awk '{ print $2, $1 }'); do
    slot=$((slot + 1))
    if [ $which = previous ]; then bin=$PREVIOUS; else bin=$CURRENT; fi
    data="$WORK/data-big-$slot"
    printf 'round %08d %s %s' "$round" "$slot" "$RANDOM$RANDOM" |
      dd of="$WORK/blob" conv=notrunc status=none
    measure "$round" $which put $((SIZE_MIB << 20)) put_big
    measure "$round" $which get $((SIZE_MIB << 20)) get_big
    echo "$round $which disk-after-large-put $(du -sk "$data" | cut -f1)" >> "$WORK/disk"
    rm -rf "$data"
  done
  # Small objects: the binaries alternate object by object, so a change in the machine's load
  # falls on both alike.
  if [ "$SMALL_COUNT" -gt 0 ]; then
    head -c $((SMALL_COUNT * SMALL_KIB << 10)) /dev/urandom |
      (cd "$WORK/small" && split -a 5 -d -b "${SMALL_KIB}K" - o)
  fi
  for op in small-put small-get; do
    [ "$SMALL_COUNT" -gt 0 ] || break
    for f in "$WORK"/small/o*; do
      for which in $order; do
        if [ $which = previous ]; then bin=$PREVIOUS; else bin=$CURRENT; fi
        data="$WORK/data-$which"
        if [ $op = small-put ]; then
          measure "$round" $which $op $((SMALL_KIB << 10)) "$bin" --data "$data" put "small/${f##*/}" "$f"
        else
          measure "$round" $which $op $((SMALL_KIB << 10)) sh -c '"$1" --data "$2" get "$3" | wc -c' - "$bin" "$data" "small/${f##*/}"
        fi
      done
    done
  done
  for which in $order; do
    [ "$SMALL_COUNT" -gt 0 ] || break
    echo "$round $which disk-after-small-puts $(du -sk "$WORK/data-$which" | cut -f1)" >> "$WORK/disk"
  done
done

echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "Raw (round binary op wall-seconds cpu-seconds bytes; small objects summed per round):"
awk '{ k = $1 " " $2 " " $3; if (!(k in w)) order[++n] = k; w[k] += $4; c[k] += $5; b[k] += $6 }
  END { for (i = 1; i <= n; i++) printf "%s %.3f %.3f %d\n", order[i], w[order[i]], c[order[i]], b[order[i]] }' "$WORK/times" > "$WORK/sums"
cat "$WORK/sums"
echo "Disk use (round binary when KiB of the data directory):"
cat "$WORK/disk"
echo
echo "| operation, $ROUNDS rounds | previous min / median / max | current min / median / max | median of per-round ratios current / previous (range) |"
echo "|---|---|---|---|"
for op in put get small-put small-get; do
  grep -q " $op " "$WORK/sums" || continue
  awk -v op=$op -v small=$((SMALL_KIB << 10)) '
    function sortn(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t } }
    function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
    function stats(a, n, unit, f) { sortn(a, n); return sprintf(f " / " f " / " f " %s", a[1], med(a, n), a[n], unit) }
    $3 == op {
      rate = op ~ /^small/ ? $6 / small / $4 : $6 / $4 / 1e9
      if ($2 == "previous") { pw[$1] = rate; pc[$1] = $5 } else { cw[$1] = rate; cc[$1] = $5 }
    }
    END {
      n = 0; for (r in pw) { n++; x[n] = pw[r]; y[n] = cw[r]; q[n] = cw[r] / pw[r]; u[n] = pc[r]; v[n] = cc[r]; w[n] = pc[r] / cc[r] }
      sortn(q, n); sortn(w, n)
      unit = op ~ /^small/ ? "objects/s" : "GB/s"
      printf "| %s, wall-clock rate | %s | %s | %.2f (%.2f - %.2f) |\n", op, stats(x, n, unit, "%.3f"), stats(y, n, unit, "%.3f"), med(q, n), q[1], q[n]
      printf "| %s, CPU seconds (user + sys) | %s | %s | %.2f (%.2f - %.2f) |\n", op, stats(u, n, "s", "%.2f"), stats(v, n, "s", "%.2f"), med(w, n), w[1], w[n]
    }' "$WORK/sums"
done
