#!/usr/bin/env bash
# Prepare a real Docker test bed on a fresh Debian machine (root):
# install dockerd + busybox, start the daemon if none answers, build the
# busybox test images with `docker import` (no registry is reachable here).
# Idempotent: every step checks first and reuses what is already there.
set -euo pipefail

SOCK=${EXECGATE_TEST_DOCKER_SOCK:-/var/run/docker.sock}
IMAGE=${EXECGATE_TEST_IMAGE:-execgate-test/busybox:latest}
LOG=${EXECGATE_TESTBED_LOG:-/tmp/execgate-dockerd.log}

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts dockerd)"

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || need_pkgs+=(docker.io)
[ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v iptables >/dev/null 2>&1 || need_pkgs+=(iptables)
command -v socat >/dev/null 2>&1 || need_pkgs+=(socat)
command -v script >/dev/null 2>&1 || need_pkgs+=(bsdutils)
if [ ${#need_pkgs[@]} -gt 0 ]; then
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

# asciinema checks that TTY recordings are asciicast v2 it can read.
if ! python3 -c 'import asciinema' >/dev/null 2>&1; then
    log "installing asciinema (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check asciinema >/dev/null 2>&1 \
        || die "cannot install asciinema with pip"
fi

# The CLI first on PATH is the one the tests drive (28.x at /usr/local/bin).
log "docker CLI: $(command -v docker) ($(docker version --format '{{.Client.Version}}' 2>/dev/null || echo unknown))"

if ! docker -H "unix://$SOCK" version >/dev/null 2>&1; then
    log "starting dockerd on $SOCK (log: $LOG)"
    nohup dockerd --host "unix://$SOCK" >"$LOG" 2>&1 &
    for _ in $(seq 1 120); do
        docker -H "unix://$SOCK" version >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker -H "unix://$SOCK" version >/dev/null 2>&1 \
        || { tail -n 30 "$LOG" >&2; die "dockerd did not answer on $SOCK within 60 s"; }
fi
log "dockerd $(docker -H "unix://$SOCK" version --format '{{.Server.Version}}') on $SOCK"

if ! docker -H "unix://$SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "building $IMAGE from busybox"
    bb=$(command -v busybox || echo /bin/busybox)
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/root" "$root/home/app"
    chmod 1777 "$root/tmp"
    cp "$bb" "$root/bin/busybox"
    for a in $("$bb" --list); do
        [ "$a" = busybox ] || ln -sf busybox "$root/bin/$a"
    done
    cat >"$root/etc/passwd" <<'PW'
root:x:0:0:root:/root:/bin/sh
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PW
    cat >"$root/etc/group" <<'GR'
root:x:0:
app:x:1000:
nogroup:x:65534:
GR
    chown 1000:1000 "$root/home/app"
    tar -C "$root" -c . | docker -H "unix://$SOCK" import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
fi
log "image $IMAGE ready"
