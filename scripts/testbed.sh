#!/usr/bin/env bash
# Prepare the real test bed on a fresh Debian bookworm machine (root, no
# registry but Debian's, PyPI's, npm's and crates.io):
#
#   docker20  dockerd 20.10 (bookworm), the system daemon   /var/run/docker.sock
#   docker28  dockerd 28.5 (sid, private, own netns)        /run/execgate-testbed/d28.sock
#   plugins   docker compose 2.40 and buildx 0.29 (sid)     ~/.docker/cli-plugins/
#   podman    podman 4.3 (bookworm) API service             /run/execgate-testbed/podman.sock
#   clients   Go + moby client sources, PyPI docker, npm packages, test program builds
#
#   scripts/testbed.sh             # every part, in that order
#   scripts/testbed.sh docker20    # only the parts named
#
# Each daemon gets the busybox test image execgate-test/busybox:latest (podman:
# localhost/execgate-test/busybox:latest), built with `docker import` on 20.10
# and copied to the others. Idempotent: every step checks first and reuses what
# is there (a re-run takes seconds). Details and paths: scripts/testbed/lib.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/testbed/lib.sh"

all=(docker20 docker28 plugins podman clients)
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=("${all[@]}")
for part in "${parts[@]}"; do
    [ -f "$here/testbed/$part.sh" ] && [[ " ${all[*]} " == *" $part "* ]] \
        || die "unknown part '$part' (parts: ${all[*]})"
done

# One test bed at a time (a demo and a test run may start together).
mkdir -p "$TB_RUN"
exec 9>"$TB_RUN/testbed.lock"
flock -w 900 9 || die "another scripts/testbed.sh has held $TB_RUN/testbed.lock for 15 minutes"

for part in "${parts[@]}"; do
    bash "$here/testbed/$part.sh"
done

# A caller that picked a daemon for the tests (or the benches) gets it checked.
if [ -n "${EXECGATE_TEST_DOCKER_SOCK:-}" ]; then
    answers "$EXECGATE_TEST_DOCKER_SOCK" \
        || die "EXECGATE_TEST_DOCKER_SOCK=$EXECGATE_TEST_DOCKER_SOCK: no daemon answers there"
    dk "$EXECGATE_TEST_DOCKER_SOCK" image inspect "$IMAGE" >/dev/null 2>&1 \
        || die "EXECGATE_TEST_DOCKER_SOCK=$EXECGATE_TEST_DOCKER_SOCK: no image $IMAGE there"
fi
log "ready: ${parts[*]}"
