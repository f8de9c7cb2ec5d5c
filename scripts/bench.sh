#!/usr/bin/env bash
# Benchmarks against the real Docker daemons of the test bed, each printing
# markdown tables:
#   proxy      request rate and latency (direct vs execgate vs socat), exec stream throughput
#   exec_gate  one policy decision, and the latency exec create adds
#   request_gate  the latency container create takes with no request policy and with the lockdown pack
#   audit_log  fsync'd audit records per second with group commit (no daemon)
# proxy and exec_gate run once per Docker daemon: dockerd 20.10 (the system
# one) and the test bed's Docker 28.5.
#
#   scripts/bench.sh                                   # everything, default flags
#   EXECGATE_BENCH_ARGS="--workers 2" scripts/bench.sh  # compare runtime flavours
#   EXECGATE_BENCH_DAEMONS=/var/run/docker.sock scripts/bench.sh   # one daemon only
#
# Settings (EXECGATE_BENCH_SECS, _WARMUP, _CONNS, _ARGS, _STREAM_BYTES,
# _STREAM_RUNS, _CREATES) come from the environment; see each file in benches/.
set -euo pipefail

cd "$(dirname "$0")/.."
bash scripts/testbed.sh
daemons=${EXECGATE_BENCH_DAEMONS:-"/var/run/docker.sock /run/execgate-testbed/d28.sock"}
for sock in $daemons; do
    version=$(docker -H "unix://$sock" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
    printf '\n## Docker %s at %s\n\n' "$version" "$sock"
    EXECGATE_TEST_DOCKER_SOCK=$sock cargo bench --bench proxy
    EXECGATE_TEST_DOCKER_SOCK=$sock cargo bench --bench exec_gate
    EXECGATE_TEST_DOCKER_SOCK=$sock cargo bench --bench request_gate
done
cargo bench --bench audit_log
