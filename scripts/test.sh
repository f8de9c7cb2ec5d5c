#!/usr/bin/env bash
# The one test command: prepares the real Docker test bed (packages, dockerd,
# busybox image), then runs every test against it. Needs root on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/testbed.sh
cargo fmt --check
# Benches are built here (they must compile) but run by scripts/bench.sh.
cargo build --all-targets
# Unit and integration tests; the Docker-backed ones fail (never skip) when
# the daemon is missing.
cargo test "$@"
