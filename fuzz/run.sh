#!/usr/bin/env bash
# Bounded fuzz run of every target (libFuzzer through cargo-fuzz). Not part of CI's critical
# path. The sanitizer flags need unstable compiler options; RUSTC_BOOTSTRAP lets the stable
# toolchain accept them.
#
#   bash fuzz/run.sh            # 60 s per target
#   SECONDS_PER_TARGET=10 bash fuzz/run.sh
#
# The `operations` target decodes the input into an operation sequence (puts, deletes,
# transactions, index changes, compaction, reopening, injected I/O faults) and runs it against
# an embedded database and the model of tests/model_operations/ (whose modules it includes).
# Each input opens a fresh data directory, so it runs slower than the parsers; alone and
# longer:
#
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run operations -- -max_total_time=600 -timeout=60
#
# A failing input is saved under fuzz/artifacts/operations/; replay it with
# `cargo fuzz run operations <file>`.
# `cargo check` in fuzz/ builds every target on stable.
set -euo pipefail
cd "$(dirname "$0")"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
for target in filter_parser msgpack_metadata record_decoder request_parsing operations; do
  echo "== $target"
  cargo fuzz run "$target" -- -max_total_time="${SECONDS_PER_TARGET:-60}" -timeout=60 \
    -rss_limit_mb=2048 2>&1 \
    | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+== ERROR|SUMMARY)" || true
done
