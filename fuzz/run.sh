#!/usr/bin/env bash
# Bounded fuzz run of every target (libFuzzer through cargo-fuzz). Not part of CI's critical
# path. The sanitizer flags need unstable compiler options; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them.
#
#   bash fuzz/run.sh            # 60 s per target
#   SECONDS_PER_TARGET=10 bash fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in filter_parser msgpack_metadata record_decoder request_parsing; do
  echo "== $target"
  cargo fuzz run "$target" -- -max_total_time="${SECONDS_PER_TARGET:-60}" -rss_limit_mb=2048 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+== ERROR|SUMMARY)" || true
done
