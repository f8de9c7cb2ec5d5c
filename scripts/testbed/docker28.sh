#!/usr/bin/env bash
# Docker 28.5 from the sid prefix (scripts/testbed/sid.sh), run as a private
# daemon beside the system's 20.10: its own socket (root only), config, data
# root, exec root, pid file, cgroup parent, and containerd 2.x (first on its
# PATH) with its own namespaces; bookworm's runc 1.1.5. It lives in its own
# network namespace, so its default `bridge` network (docker0, 172.17.0.0/16,
# no iptables, no masquerading) exists only in there: containers created
# without --network get it as on any stock daemon (28.x refuses, for example,
# a rename with "network bridge not found" when the daemon has no bridge), and
# the host's docker0 and iptables are never touched. The busybox test image is
# copied over from 20.10. A daemon running with other flags is restarted.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

bash "$here/sid.sh"

LOG=$TB_LOGS/execgate-d28.log
DATA=$TB_STATE/d28
EXEC=$TB_RUN/d28
PID=$TB_RUN/d28.pid
CONF=$TB_ROOT/d28.json
SERIES=${EXECGATE_TESTBED_D28_SERIES:-28.}
DOCKERD=$D28_PREFIX/usr/sbin/dockerd

cmd=(
    "$DOCKERD"
    --config-file "$CONF"
    --host "unix://$D28_SOCK" --group root
    --data-root "$DATA" --exec-root "$EXEC" --pidfile "$PID"
    --containerd-namespace d28 --containerd-plugins-namespace d28p
    --cgroup-parent /execgate-d28
    --iptables=false --ip6tables=false --ip-masq=false
)

# The pid of our dockerd 28 when it is running, else nothing.
running() {
    local pid
    pid=$(cat "$PID" 2>/dev/null) || return 0
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | head -n 1 | grep -qx "$DOCKERD" && echo "$pid"
    return 0
}

pid=$(running)
if [ -n "$pid" ] && [ "$(tr '\0' '\n' <"/proc/$pid/cmdline")" != "$(printf '%s\n' "${cmd[@]}")" ]; then
    log "restarting dockerd 28 (pid $pid): its flags are not the test bed's"
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && die "dockerd 28 (pid $pid) did not stop within 30 s"
    pid=
fi

if ! answers "$D28_SOCK"; then
    if [ -n "$pid" ]; then
        log "dockerd 28 (pid $pid) is not answering yet on $D28_SOCK; waiting"
    else
        log "starting dockerd $("$DOCKERD" --version | sed 's/^Docker version //; s/,.*//') on $D28_SOCK (log: $LOG)"
        mkdir -p "$TB_RUN" "$DATA"
        chmod 0755 "$TB_RUN"
        [ -f "$CONF" ] || echo '{}' >"$CONF"
        rm -f "$D28_SOCK"
        # The prefix first on PATH: its containerd, containerd-shim-runc-v2 and
        # docker-init; runc is bookworm's (/usr/sbin/runc, further down PATH).
        spawn "$LOG" unshare --net -- env PATH="$D28_PREFIX/usr/sbin:$D28_PREFIX/usr/bin:$PATH" "${cmd[@]}"
    fi
    wait_answer "$D28_SOCK" 60 "$LOG"
fi
# --group root makes it root:root 0660 already; say so explicitly.
chown root:root "$D28_SOCK"
chmod 0660 "$D28_SOCK"
v=$(dk "$D28_SOCK" version --format '{{.Server.Version}} (API {{.Server.APIVersion}}, containerd {{range .Server.Components}}{{if eq .Name "containerd"}}{{.Version}}{{end}}{{end}})')
case $v in
    "$SERIES"*) ;;
    *) log "WARNING: the daemon on $D28_SOCK is $v, not the $SERIES* series this test bed expects (sid moved on?)" ;;
esac
log "dockerd $v on $D28_SOCK"

if ! dk "$D28_SOCK" image inspect "$IMAGE" >/dev/null 2>&1; then
    log "loading $IMAGE into dockerd 28 (from $D20_SOCK)"
    dk "$D20_SOCK" save "$IMAGE" | dk "$D28_SOCK" load >/dev/null
fi
log "image $IMAGE ready on 28"
