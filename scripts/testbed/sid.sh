#!/usr/bin/env bash
# Docker 28.5 (docker.io, containerd 2.x, tini), docker-compose and
# docker-buildx from Debian sid, without installing them: a private apt state
# (sources, lists, caches) under $EXECGATE_TESTBED_ROOT/apt downloads the .debs
# and `dpkg-deb -x` unpacks them into the prefix $EXECGATE_TESTBED_ROOT/d28.
# Nothing of the system's apt or dpkg state is touched. sid's runc is not taken
# (it needs glibc 2.38; bookworm has 2.36): bookworm's /usr/sbin/runc is used.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# tini-static: docker.io's /usr/bin/docker-init is a link to it.
PKGS=(docker.io containerd tini tini-static docker-compose docker-buildx)
APT=$TB_ROOT/apt
DEBS=$TB_ROOT/debs
STAMP=$D28_PREFIX/.execgate-testbed-packages
# To take newer packages from sid: rm -rf "$EXECGATE_TESTBED_ROOT"/{debs,d28}, then re-run.

if [ -f "$STAMP" ] && [ -x "$D28_PREFIX/usr/sbin/dockerd" ] && [ -x "$D28_PREFIX/usr/bin/containerd" ]; then
    exit 0
fi

apt_opts=(
    -o "Dir::Etc::sourcelist=$APT/sources.list"
    -o "Dir::Etc::sourceparts=$APT/sources.list.d"
    -o "Dir::Etc::preferences=$APT/preferences"
    -o "Dir::Etc::preferencesparts=$APT/preferences.d"
    -o "Dir::State::Lists=$APT/lists"
    -o "Dir::Cache=$APT/cache"
    -o "Dir::Cache::Archives=$APT/archives"
    -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false"
    -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
    -o "APT::Sandbox::User=root"
)
mkdir -p "$APT/sources.list.d" "$APT/preferences.d" "$APT/lists/partial" "$APT/cache" \
    "$APT/archives/partial" "$DEBS"
echo 'deb http://deb.debian.org/debian sid main' >"$APT/sources.list"
: >"$APT/preferences"

have_all() {
    local p
    for p in "${PKGS[@]}"; do
        compgen -G "$DEBS/${p}_*_amd64.deb" >/dev/null || return 1
    done
}
if ! have_all; then
    log "fetching ${PKGS[*]} from Debian sid (private apt state in $APT)"
    apt-get "${apt_opts[@]}" -qq update >/dev/null
    rm -f "$DEBS"/*.deb
    (cd "$DEBS" && apt-get "${apt_opts[@]}" -qq download "${PKGS[@]/%//sid}" >/dev/null)
    have_all || die "apt-get download did not bring every one of ${PKGS[*]}"
fi

log "unpacking the sid packages into $D28_PREFIX"
rm -rf "$D28_PREFIX.tmp"
mkdir -p "$D28_PREFIX.tmp"
for deb in "$DEBS"/*.deb; do
    dpkg-deb -x "$deb" "$D28_PREFIX.tmp"
done
(cd "$DEBS" && ls -1 ./*.deb | sed 's|^\./||') >"$D28_PREFIX.tmp/.execgate-testbed-packages"
rm -rf "$D28_PREFIX"
mv "$D28_PREFIX.tmp" "$D28_PREFIX"
log "$(sed 's/_amd64.deb$//' "$STAMP" | tr '\n' ' ')"
