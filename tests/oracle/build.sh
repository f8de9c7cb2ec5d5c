#!/usr/bin/env bash
# Builds the user-spec oracle: runc 1.1.5's libcontainer/user (Debian's
# golang-github-opencontainers-runc-dev) called as dockerd 20.10 calls it.
# Offline apart from apt; idempotent (rebuilds only when the source changed).
#
#   tests/oracle/build.sh            # prints the binary's path
#
# The binary goes to $EXECGATE_USERSPEC_ORACLE, else
# ${EXECGATE_TESTBED_ROOT:-/opt/execgate-testbed}/bin/userspec-oracle, which is
# where tests/user_oracle.rs looks for it.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${EXECGATE_USERSPEC_ORACLE:-${EXECGATE_TESTBED_ROOT:-/opt/execgate-testbed}/bin/userspec-oracle}
gopath=/usr/share/gocode
pkg=$gopath/src/github.com/opencontainers/runc/libcontainer/user

need=()
command -v go >/dev/null 2>&1 || [ -x /usr/lib/go/bin/go ] || need+=(golang-go)
[ -f "$pkg/user.go" ] || need+=(golang-github-opencontainers-runc-dev)
if [ ${#need[@]} -gt 0 ]; then
    echo "installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y --no-install-recommends "${need[@]}" >&2 ||
        { apt-get update >&2 && apt-get install -y --no-install-recommends "${need[@]}" >&2; }
fi
go=$(command -v go || echo /usr/lib/go/bin/go)

if [ -x "$out" ] && [ "$out" -nt "$here/userspec/main.go" ] && [ "$out" -nt "$pkg/user.go" ]; then
    echo "$out"
    exit 0
fi

mkdir -p "$(dirname "$out")"
tmp=$(mktemp "$out.XXXXXX")
trap 'rm -f "$tmp"' EXIT
# GOPATH mode: the runc source comes from the Debian package, nothing is fetched.
(cd "$here/userspec" && GO111MODULE=off GOPATH=$gopath GOFLAGS= GOPROXY=off \
    GOCACHE=${GOCACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/go-build} \
    "$go" build -trimpath -o "$tmp" .)
chmod 0755 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT
echo "$out"
