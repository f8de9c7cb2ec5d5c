#!/usr/bin/env bash
# The one test command. Prepares the test bed (scripts/testbed.sh: Docker 20.10
# and 28.5, Podman, CLI plugins, client toolchains, the busybox test images),
# builds once, then runs the tests against real daemons:
#
#   Docker 20.10  /var/run/docker.sock             every test (unit and integration)
#   Docker 28.5   /run/execgate-testbed/d28.sock   the integration tests again
#
# The daemon a pass uses reaches the tests as EXECGATE_TEST_DOCKER_SOCK (the
# Podman socket as EXECGATE_TEST_PODMAN_SOCK). A daemon that is missing fails
# the run; nothing is skipped. Both passes run even if the first fails.
#
#   scripts/test.sh                          # both passes
#   scripts/test.sh exec_                    # arguments go to each `cargo test`
#   EXECGATE_TEST_DAEMONS=d28 scripts/test.sh   # only the passes named (d20, d28)
#
# Needs root (it installs packages and starts daemons).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/testbed/lib.sh

daemons=${EXECGATE_TEST_DAEMONS:-d20 d28}
for daemon in $daemons; do
    case $daemon in d20 | d28) ;; *) die "EXECGATE_TEST_DAEMONS: unknown daemon '$daemon' (d20, d28)" ;; esac
done

bash scripts/testbed.sh
cargo fmt --check
# Benches are built here (they must compile) but run by scripts/bench.sh.
cargo build --all-targets

export EXECGATE_TEST_PODMAN_SOCK=$PODMAN_SOCK
failed=()
for daemon in $daemons; do
    case $daemon in
        d20) sock=$D20_SOCK scope=() what="all tests" ;;
        d28) sock=$D28_SOCK scope=(--test '*') what="integration tests" ;;
    esac
    answers "$sock" || die "no daemon answers on $sock ($daemon); scripts/testbed.sh should have started it"
    version=$(dk "$sock" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})')
    printf '\n==== %s against dockerd %s at %s\n\n' "$what" "$version" "$sock" >&2
    start=$SECONDS
    if EXECGATE_TEST_DOCKER_SOCK=$sock cargo test --no-fail-fast "${scope[@]}" "$@"; then
        printf '\n==== %s: passed against dockerd %s (%d s)\n' "$daemon" "$version" $((SECONDS - start)) >&2
    else
        printf '\n==== %s: FAILED against dockerd %s (%d s)\n' "$daemon" "$version" $((SECONDS - start)) >&2
        failed+=("$daemon")
    fi
done
[ ${#failed[@]} -eq 0 ] || die "tests failed against: ${failed[*]}"
