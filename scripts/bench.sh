#!/usr/bin/env bash
# Benchmarks against a real Docker daemon, each printing markdown tables:
#   proxy      request rate and latency (direct vs execgate vs socat), exec stream throughput
#   exec_gate  one policy decision, and the latency exec create adds
#   audit_log  fsync'd audit records per second with group commit
#
#   scripts/bench.sh                                   # all three, default flags
#   EXECGATE_BENCH_ARGS="--workers 2" scripts/bench.sh  # compare runtime flavours
#
# Settings (EXECGATE_BENCH_SECS, _WARMUP, _CONNS, _ARGS, _STREAM_BYTES,
# _STREAM_RUNS, _CREATES) come from the environment; see each file in benches/.
set -euo pipefail

cd "$(dirname "$0")/.."
bash scripts/testbed.sh
cargo bench --bench proxy
cargo bench --bench exec_gate
cargo bench --bench audit_log
