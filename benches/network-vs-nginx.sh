#!/usr/bin/env bash
# Large-transfer benchmark over loopback HTTP/2 cleartext: `asterope serve` against nginx
# (h2c, WebDAV PUT) serving and accepting the same file in the same run, both driven by curl.
# Also samples the Asterope server's peak RssAnon.
#
#   bash benches/network-vs-nginx.sh            # 4096 MiB
#   SIZE_MIB=1024 bash benches/network-vs-nginx.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${SIZE_MIB:-4096}
ROUNDS=${ROUNDS:-2}
command -v nginx >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; }
cargo build --release --bin asterope -q
BIN=$PWD/target/release/asterope
mkdir -p target/bench-scratch
WORK=$(mktemp -d "$PWD/target/bench-scratch/net.XXXX")
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT

head -c $((SIZE_MIB << 20)) /dev/urandom > "$WORK/blob"
cat "$WORK/blob" > /dev/null
mkdir -p "$WORK/www" "$WORK/nginx-tmp"
cp "$WORK/blob" "$WORK/www/blob"
cat > "$WORK/nginx.conf" <<CONF
daemon off;
user root;
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-tmp;
  proxy_temp_path $WORK/nginx-tmp; fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp; scgi_temp_path $WORK/nginx-tmp;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:18080 http2;
    root $WORK/www;
    client_max_body_size 0;
    dav_methods PUT;
  }
}
CONF
nginx -c "$WORK/nginx.conf" -p "$WORK" &
"$BIN" --data "$WORK/asterope-data" serve --listen 127.0.0.1:17878 2>"$WORK/asterope.log" &
ASTEROPE_PID=$!
sleep 1

# Peak anonymous RSS of the Asterope server, sampled every 20 ms.
( peak=0; while kill -0 $ASTEROPE_PID 2>/dev/null; do
    r=$(awk '/RssAnon/ {print $2}' /proc/$ASTEROPE_PID/status 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$peak" ] && peak=$r && echo $peak > "$WORK/peak"
    sleep 0.02; done ) &

curl_time() { curl -fsS --http2-prior-knowledge -o /dev/null -w '%{time_total}' "$@"; }
best() { sort -n | head -1; }
gbps() { awk -v t="$1" -v m="$SIZE_MIB" 'BEGIN { printf "%.2f", m * 1048576 / t / 1e9 }'; }

nginx_put=$(for _ in $(seq $ROUNDS); do curl_time -T "$WORK/blob" http://127.0.0.1:18080/upload; echo; done | best)
ast_put=$(for _ in $(seq $ROUNDS); do curl_time -T "$WORK/blob" http://127.0.0.1:17878/v1/objects/blob; echo; done | best)
nginx_get=$(for _ in $(seq $((ROUNDS + 1))); do curl_time http://127.0.0.1:18080/blob; echo; done | best)
ast_get=$(for _ in $(seq $((ROUNDS + 1))); do curl_time http://127.0.0.1:17878/v1/objects/blob; echo; done | best)
ast_get_nv=$(for _ in $(seq $((ROUNDS + 1))); do curl_time -H 'x-asterope-verify: client' http://127.0.0.1:17878/v1/objects/blob; echo; done | best)

echo "| $SIZE_MIB MiB over h2c (curl, best of $ROUNDS) | Asterope | nginx | ratio |"
echo "|---|---|---|---|"
echo "| PUT | $(gbps "$ast_put") GB/s | $(gbps "$nginx_put") GB/s | $(awk -v a="$ast_put" -v n="$nginx_put" 'BEGIN{printf "%.2f", n/a}') |"
echo "| GET (server checks every block's CRC-32 before sending it; default) | $(gbps "$ast_get") GB/s | $(gbps "$nginx_get") GB/s | $(awk -v a="$ast_get" -v n="$nginx_get" 'BEGIN{printf "%.2f", n/a}') |"
echo "| GET (verification left to the client) | $(gbps "$ast_get_nv") GB/s | $(gbps "$nginx_get") GB/s | $(awk -v a="$ast_get_nv" -v n="$nginx_get" 'BEGIN{printf "%.2f", n/a}') |"
echo "Asterope server peak RssAnon: $(( $(cat "$WORK/peak") / 1024 )) MiB"
