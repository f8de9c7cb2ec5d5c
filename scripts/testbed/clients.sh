#!/usr/bin/env bash
# Client toolchains for the client-matrix tests: Go with Debian's moby 20.10
# client and runc sources (builds offline in GOPATH mode:
# GO111MODULE=off GOPATH=/usr/share/gocode), PyPI `docker` for the python3 on
# PATH, npm packages of tests/clients/node; then the test programs' own build
# scripts (tests/clients/build.sh, tests/oracle/build.sh) when they exist.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
repo=$(cd "$(dirname "$0")/../.." && pwd)

apt_ensure golang-go golang-github-docker-docker-dev golang-github-opencontainers-runc-dev
log "$(go version) (GOPATH mode: GO111MODULE=off GOPATH=/usr/share/gocode)"

if ! (cd / && python3 -c 'import docker') >/dev/null 2>&1; then
    log "installing docker (PyPI) for $(command -v python3)"
    python3 -m pip install --quiet --disable-pip-version-check docker >/dev/null 2>&1 \
        || die "cannot install the PyPI package docker with pip"
fi
log "python3 docker $(cd / && python3 -c 'import docker; print(docker.__version__)')"

node_dir=$repo/tests/clients/node
if [ -f "$node_dir/package.json" ]; then
    command -v npm >/dev/null 2>&1 || apt_ensure npm
    stamp=$node_dir/node_modules/.execgate-testbed-stamp
    want=$(cat "$node_dir/package.json" "$node_dir/package-lock.json" 2>/dev/null | sha256sum | cut -d' ' -f1)
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        if [ -f "$node_dir/package-lock.json" ]; then
            log "npm ci in tests/clients/node"
            (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
        else
            log "npm install in tests/clients/node"
            (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
        fi
        echo "$want" >"$stamp"
    fi
    log "node $(node --version), tests/clients/node packages ready"
fi

for build in tests/clients/build.sh tests/oracle/build.sh; do
    if [ -x "$repo/$build" ]; then
        log "running $build"
        (cd "$repo" && "./$build" >&2) || die "$build failed"
    fi
done
