#!/usr/bin/env bash
# What execgate holds per client connection and per exec session, its RSS
# with 1,000 idle connections, and how long it keeps fds after each kind of
# session ends (benches/fds.rs prints the tables). Against dockerd 20.10 by
# default; it waits out the idle timeouts between steps, so a run takes
# about ten minutes.
#
#   scripts/measure-fds.sh
#   EXECGATE_TEST_DOCKER_SOCK=/run/execgate-testbed/d28.sock scripts/measure-fds.sh
#   EXECGATE_MEASURE_ARGS="--head-timeout 10s" scripts/measure-fds.sh
#
# Settings (EXECGATE_MEASURE_ARGS, _BIN, _CONNS, _SESSIONS, _SETTLE,
# _MAX_WAIT) come from the environment; see benches/fds.rs.
set -euo pipefail

cd "$(dirname "$0")/.."
bash scripts/testbed.sh
EXECGATE_TEST_DOCKER_SOCK=${EXECGATE_TEST_DOCKER_SOCK:-/var/run/docker.sock} cargo bench --bench fds
