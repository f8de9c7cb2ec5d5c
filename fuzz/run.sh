#!/usr/bin/env bash
# Runs fuzz targets one after another, each for SECONDS (default 600), on
# one core at the lowest priority, growing its corpus in fuzz/corpus/<target>.
# Logs go to fuzz/target/logs/<target>.log; crashes to fuzz/artifacts/<target>/.
#
#   fuzz/run.sh                      # every target but user_oracle, 10 minutes each
#   fuzz/run.sh 60 route demux       # chosen targets, a minute each
#   fuzz/run.sh 600 user_oracle      # needs tests/oracle/build.sh first
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(route exec_create exec_start demux user audit_verify)
# audit_verify writes a scratch audit directory per input: keep that in memory.
[ -d /dev/shm ] && export TMPDIR=/dev/shm
mkdir -p target/logs
status=0
for target in "${targets[@]}"; do
    case $target in
        route) dict=dicts/route.dict ;;
        exec_create | exec_start) dict=dicts/json.dict ;;
        user | user_oracle) dict=dicts/user.dict ;;
        *) dict= ;;
    esac
    mkdir -p "corpus/$target"
    echo "== $target: ${seconds}s" >&2
    rm -f fuzz-0.log
    nice -n 19 cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -jobs=1 -workers=1 \
        ${dict:+-dict=$dict} >/dev/null 2>&1 || status=1
    mv -f fuzz-0.log "target/logs/$target.log"
    grep -E '^(Done|SUMMARY)|panicked' "target/logs/$target.log" >&2 || true
done
exit $status
