#!/usr/bin/env bash
# Docker 20.10 from bookworm, the system daemon on /var/run/docker.sock, and
# the busybox test image built with `docker import` (no registry is reachable).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

LOG=${EXECGATE_TESTBED_LOG:-$TB_LOGS/execgate-dockerd.log}

need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
[ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || need+=(busybox-static)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v script >/dev/null 2>&1 || need+=(bsdutils)
[ ${#need[@]} -eq 0 ] || apt_ensure "${need[@]}"

# asciinema checks that TTY recordings are asciicast v2 it can read.
if ! python3 -c 'import asciinema' >/dev/null 2>&1; then
    log "installing asciinema (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check asciinema >/dev/null 2>&1 \
        || die "cannot install asciinema with pip"
fi

log "docker CLI: $(command -v docker) ($(docker version --format '{{.Client.Version}}' 2>/dev/null || echo unknown))"

if ! answers "$D20_SOCK"; then
    log "starting dockerd 20.10 on $D20_SOCK (log: $LOG)"
    spawn "$LOG" dockerd --host "unix://$D20_SOCK"
    wait_answer "$D20_SOCK" 60 "$LOG"
fi
v=$(server_version "$D20_SOCK")
case $v in 20.10.*) ;; *) die "the daemon on $D20_SOCK is $v, not 20.10" ;; esac
log "dockerd $v on $D20_SOCK"

if ! dk "$D20_SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
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
    tar -C "$root" -c . | dk "$D20_SOCK" import -c 'ENV PATH=/bin' - "$IMAGE" >/dev/null
fi
log "image $IMAGE ready on 20.10"
