#!/usr/bin/env bash
# Builds the client programs tests/clients.rs drives that need a build step:
# the Go SDK client (Debian's moby 20.10 client, golang-github-docker-docker-dev)
# in GOPATH mode, offline. Idempotent: rebuilds only when the source is newer.
# The Python and Node clients need no build (scripts/testbed.sh installs PyPI
# `docker` and runs `npm ci` in tests/clients/node).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${EXECGATE_CLIENTS_BIN:-$repo/target/clients}
gocode=/usr/share/gocode

die() { printf 'clients/build.sh: error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "no go toolchain: apt-get install golang-go"
[ -d "$gocode/src/github.com/docker/docker/client" ] \
    || die "no Go Docker SDK in $gocode: apt-get install golang-github-docker-docker-dev"

mkdir -p "$out"
bin=$out/execgate-go-client
# Go's own build cache (~/.cache/go-build) when there is a home, else one here.
if [ -z "${GOCACHE:-}" ] && [ -z "${HOME:-}" ] && [ -z "${XDG_CACHE_HOME:-}" ]; then
    export GOCACHE=$out/go-cache
fi
if [ ! -x "$bin" ] || [ -n "$(find "$here/go" -name '*.go' -newer "$bin")" ]; then
    (
        cd "$here/go"
        GO111MODULE=off GOPATH=$gocode GOPROXY=off GOFLAGS= CGO_ENABLED=0 go build -o "$bin.tmp.$$" .
    )
    mv "$bin.tmp.$$" "$bin"
    printf 'clients/build.sh: built %s\n' "$bin" >&2
fi
