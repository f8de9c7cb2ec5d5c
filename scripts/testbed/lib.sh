# Shared settings and helpers for scripts/testbed/*.sh (sourced, not run).
#
# Where everything lives (each overridable from the environment):
#   EXECGATE_TESTBED_ROOT  /opt/execgate-testbed      downloaded .debs, private apt state, the d28 prefix
#   EXECGATE_TESTBED_STATE /var/lib/execgate-testbed  data roots of the private daemons
#   EXECGATE_TESTBED_RUN   /run/execgate-testbed      their sockets, exec roots and pid files
#   EXECGATE_TESTBED_LOGS  /tmp                       their logs (execgate-*.log)
# Sockets the tests read (tests/common/mod.rs):
#   Docker 20.10 (bookworm, system)   /var/run/docker.sock
#   Docker 28.5  (sid, private)       $EXECGATE_TESTBED_RUN/d28.sock
#   Podman 4.3   (bookworm)           $EXECGATE_TESTBED_RUN/podman.sock
# EXECGATE_TEST_DOCKER_SOCK is the tests' choice of daemon, not the test bed's:
# the test bed always prepares all of them.

TB_ROOT=${EXECGATE_TESTBED_ROOT:-/opt/execgate-testbed}
TB_STATE=${EXECGATE_TESTBED_STATE:-/var/lib/execgate-testbed}
TB_RUN=${EXECGATE_TESTBED_RUN:-/run/execgate-testbed}
TB_LOGS=${EXECGATE_TESTBED_LOGS:-/tmp}

D20_SOCK=/var/run/docker.sock
D28_SOCK=$TB_RUN/d28.sock
PODMAN_SOCK=$TB_RUN/podman.sock
D28_PREFIX=$TB_ROOT/d28

IMAGE=${EXECGATE_TEST_IMAGE:-execgate-test/busybox:latest}
PODMAN_IMAGE=localhost/$IMAGE

log() { printf 'testbed: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# The CLI first on PATH is the one the tests drive (28.x at /usr/local/bin).
dk() { local sock=$1; shift; docker -H "unix://$sock" "$@"; }

# True when a daemon answers on $1 (podman's /version takes half a second: ping).
answers() {
    if command -v curl >/dev/null 2>&1; then
        [ "$(curl -s --max-time 10 --unix-socket "$1" http://docker/_ping 2>/dev/null)" = OK ]
    else
        dk "$1" version >/dev/null 2>&1
    fi
}

# Waits up to $2 seconds for a daemon on $1; on failure shows the tail of log $3 and dies.
wait_answer() {
    local sock=$1 secs=$2 logf=$3 i
    for ((i = 0; i < secs * 5; i++)); do
        answers "$sock" && return 0
        sleep 0.2
    done
    tail -n 40 "$logf" >&2 || true
    die "no daemon answered on $sock within $secs s (log: $logf)"
}

server_version() { dk "$1" version --format '{{.Server.Version}}' 2>/dev/null; }

# Installs Debian (bookworm) packages that are not installed yet; `apt-get update` only when needed.
apt_ensure() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    log "installing ${missing[*]} (apt)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# Starts "$@" detached: its own session, stdin closed, output to the log $1, and
# without the test bed's lock (fd 9), which a daemon must not hold.
spawn() {
    local logf=$1; shift
    setsid nohup "$@" </dev/null >"$logf" 2>&1 9>&- &
}
