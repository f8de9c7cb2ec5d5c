#!/usr/bin/env bash
# The docker CLI plugins compose (2.40) and buildx (0.29) from sid, copied into
# the CLI's plugin directory (${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins).
# With buildx present, `docker build` uses BuildKit (the /session and /grpc
# upgrades); DOCKER_BUILDKIT=0 still selects the legacy builder.
set -euo pipefail
here=$(dirname "$0")
. "$here/lib.sh"

bash "$here/sid.sh"

dir=${DOCKER_CONFIG:-${HOME:?HOME is not set}/.docker}/cli-plugins
mkdir -p "$dir"
for p in docker-compose docker-buildx; do
    src=$D28_PREFIX/usr/libexec/docker/cli-plugins/$p
    [ -x "$src" ] || die "$src is missing from the sid prefix"
    if ! cmp -s "$src" "$dir/$p"; then
        log "installing $p into $dir"
        install -m 0755 "$src" "$dir/$p.tmp"
        mv -f "$dir/$p.tmp" "$dir/$p"
    fi
done
compose=$(docker compose version --short 2>/dev/null) || die "docker compose does not run"
buildx=$(docker buildx version 2>/dev/null) || die "docker buildx does not run"
log "docker compose $compose, $buildx"
