#!/usr/bin/env bash
# Podman 4.3 from bookworm and its Docker-compatible API service on a private
# socket (inside its own network namespace), with the busybox test image loaded
# (it becomes localhost/execgate-test/busybox:latest).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LOG=$TB_LOGS/execgate-podman.log
CONF=/etc/containers/containers.conf.d/execgate-testbed.conf

apt_ensure podman

# Rootful containers fail here with "error setting rlimit type 7" unless the
# ulimits are explicit.
want='# Written by execgate scripts/testbed/podman.sh.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]'
if [ "$(cat "$CONF" 2>/dev/null)" != "$want" ]; then
    log "writing $CONF"
    mkdir -p "$(dirname "$CONF")"
    printf '%s\n' "$want" >"$CONF"
fi

if ! answers "$PODMAN_SOCK"; then
    log "starting podman system service on $PODMAN_SOCK (log: $LOG)"
    mkdir -p "$TB_RUN"
    chmod 0755 "$TB_RUN"
    rm -f "$PODMAN_SOCK"
    spawn "$LOG" unshare --net -- podman system service --time=0 "unix://$PODMAN_SOCK"
    wait_answer "$PODMAN_SOCK" 60 "$LOG"
fi
chmod 0660 "$PODMAN_SOCK"
chown root:root "$PODMAN_SOCK"
log "podman $(dk "$PODMAN_SOCK" version --format '{{.Server.Version}} (API {{.Server.APIVersion}})') on $PODMAN_SOCK"

if ! podman image exists "$PODMAN_IMAGE"; then
    log "loading $PODMAN_IMAGE into podman (from $D20_SOCK)"
    tar=$(mktemp --suffix=.tar)
    trap 'rm -f "$tar"' EXIT
    dk "$D20_SOCK" save -o "$tar" "$IMAGE"
    podman load -q -i "$tar" >/dev/null
    podman image exists "$PODMAN_IMAGE" || die "podman load did not give $PODMAN_IMAGE"
    fresh=1
fi

# run and exec straight on the service, as the tests will use it.
if [ "${fresh:-}" = 1 ] || [ "${EXECGATE_TESTBED_VERIFY:-1}" = 1 ]; then
    out=$(dk "$PODMAN_SOCK" run --rm --network none "$PODMAN_IMAGE" echo ok 2>&1) \
        && [ "$out" = ok ] || die "docker run on podman failed: $out"
    name=execgate-testbed-check-$$
    dk "$PODMAN_SOCK" run -d --name "$name" --network none --user app "$PODMAN_IMAGE" sleep 60 >/dev/null \
        || die "docker run -d on podman failed"
    out=$(dk "$PODMAN_SOCK" exec "$name" id -un 2>&1) || true
    dk "$PODMAN_SOCK" rm -f "$name" >/dev/null || true
    [ "$out" = app ] || die "docker exec on podman failed: $out"
fi
log "image $PODMAN_IMAGE ready on podman (run and exec checked)"
