#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) seconds, one after another, at the lowest CPU
# priority, on stable Rust (no sanitizer, see docs/fuzzing.md). Logs go to fuzz/logs/<target>.log;
# the final libFuzzer stats are printed at the end.
#
#   fuzz/run_all.sh                 # all four targets, 10 minutes each
#   SECONDS_PER_TARGET=60 fuzz/run_all.sh config_toml
set -u
cd "$(dirname "$0")"
secs=${SECONDS_PER_TARGET:-600}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(ndjson_decoder chat_stream personality_toml config_toml)
mkdir -p logs
dict_of() {
    case "$1" in
        ndjson_decoder | chat_stream) echo dicts/ndjson.dict ;;
        *) echo "dicts/$1.dict" ;;
    esac
}
# Build first so compile time is not counted in the fuzzing time.
nice -n 19 cargo fuzz build -s none || exit 1
for t in "${targets[@]}"; do
    rm -f fuzz-0.log
    start=$(date +%s)
    nice -n 19 cargo fuzz run -s none "$t" -- \
        -jobs=1 -workers=1 -max_total_time="$secs" -print_final_stats=1 \
        -dict="$(dict_of "$t")" >"logs/$t.driver.log" 2>&1
    rc=$?
    end=$(date +%s)
    mv -f fuzz-0.log "logs/$t.log" 2>/dev/null
    echo "== $t: exit $rc, $((end - start)) s wall"
    grep -E '^stat::|^Done|panicked|SUMMARY|Test unit written' "logs/$t.log" "logs/$t.driver.log" 2>/dev/null
done
