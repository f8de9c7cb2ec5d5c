#!/usr/bin/env bash
# Demo: prepares the test bed, starts execgate in front of the real daemon,
# sends a few execs through it — one allowed, two denied by the default policy —
# then shows and verifies the audit trail they left.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/testbed.sh
cargo build --release --quiet

dir=$(mktemp -d)
sock="$dir/execgate.sock"
name="execgate-demo-$$"
./target/release/execgate serve --listen "$sock" --audit-dir "$dir/audit" >"$dir/execgate.log" 2>&1 &
gate=$!
cleanup() {
    docker -H unix:///var/run/docker.sock rm -f "$name" >/dev/null 2>&1 || true
    kill "$gate" 2>/dev/null || true
    wait "$gate" 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 1 100); do [ -S "$sock" ] && break; sleep 0.05; done

export DOCKER_HOST="unix://$sock"
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

step docker run -d --name "$name" --user app execgate-test/busybox sleep 300
docker run -d --name "$name" --user app execgate-test/busybox sleep 300 >/dev/null && echo "(started $name)"

step docker exec "$name" sh -c 'echo hello from $(id -un) in $(hostname)'
docker exec "$name" sh -c 'echo hello from $(id -un) in $(hostname)'

step docker exec -u root "$name" id
docker exec -u root "$name" id || true

step docker exec --privileged "$name" id
docker exec --privileged "$name" id || true

step execgate audit show "$dir/audit"
./target/release/execgate audit show "$dir/audit"

id=$(grep -o '"exec_id":"[0-9a-f]*"' "$dir/audit"/audit-*.jsonl | head -n 1 | cut -d'"' -f4)
step execgate audit show "$dir/audit" --exec "${id:0:12}"
./target/release/execgate audit show "$dir/audit" --exec "${id:0:12}"

step execgate audit verify "$dir/audit"
./target/release/execgate audit verify "$dir/audit"
