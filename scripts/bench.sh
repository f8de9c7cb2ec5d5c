#!/usr/bin/env bash
# Benchmark execgate against a real Docker daemon: request rate and latency
# (direct vs execgate vs socat) and exec stream throughput, printed as markdown.
#
#   scripts/bench.sh                                  # default flags
#   EXECGATE_BENCH_ARGS="--workers 2" scripts/bench.sh # compare runtime flavours
#
# Settings (EXECGATE_BENCH_SECS, _WARMUP, _CONNS, _ARGS, _STREAM_BYTES,
# _STREAM_RUNS) are read from the environment; see benches/proxy.rs.
# Extra arguments go to `cargo bench`.
set -euo pipefail

cd "$(dirname "$0")/.."
scripts/testbed.sh
exec cargo bench --bench proxy "$@"
