#!/usr/bin/env bash
# Builds the libFuzzer target of the filter language (tests/query/filter_fuzz.cc)
# with clang-14, ASan and UBSan into ./build-fuzz and fuzzes it for
# FUZZ_SECONDS (default 60), starting from the seed corpus
# tests/query/filter_fuzz_corpus/ and the dictionary tests/query/filter_fuzz.dict.
# Fails on any crash, sanitizer report, leak, hang (an input running over
# 10 s) or out-of-memory; the offending input is kept in
# build-fuzz/fuzz-artifacts/ and can be replayed with
#   build-fuzz/filter_fuzz build-fuzz/fuzz-artifacts/crash-...
# CI runs it after the main suite. Run deploy/install-deps.sh once first.
# Environment: FUZZ_SECONDS, JOBS (build parallelism, default 2),
# FUZZ_BUILD_DIR (default build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
SEEDS=tests/query/filter_fuzz_corpus
DICT=tests/query/filter_fuzz.dict

# Only the fuzzer's own sources are built (the filter language,
# storage/schema.cc, types.proto); the tests are not even configured.
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUIVER_FUZZ=ON -DQUIVER_BUILD_TESTS=OFF
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target filter_fuzz

# Scratch state of this run: the working corpus (seeds plus whatever the
# fuzzer adds), crash/timeout/leak/oom inputs, the fuzzer's log.
CORPUS=$BUILD_DIR/fuzz-corpus
ARTIFACTS=$BUILD_DIR/fuzz-artifacts
LOG=$BUILD_DIR/fuzz.log
rm -rf "$CORPUS" "$ARTIFACTS"
mkdir -p "$CORPUS" "$ARTIFACTS"
cp "$SEEDS"/* "$CORPUS"/
seeds=$(find "$CORPUS" -type f | wc -l)

SYMBOLIZER=/usr/lib/llvm-14/bin/llvm-symbolizer
sym=""
if [ -x "$SYMBOLIZER" ]; then sym=":external_symbolizer_path=$SYMBOLIZER"; fi
# Caller's options last, so they win.
export ASAN_OPTIONS="detect_leaks=1:symbolize=1${sym}${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=1${sym}${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"

echo "fuzz.sh: running filter_fuzz for ${FUZZ_SECONDS}s from $seeds seeds (log: $LOG)"
set +e
"$BUILD_DIR/filter_fuzz" "$CORPUS" \
  -dict="$DICT" -max_total_time="$FUZZ_SECONDS" \
  -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix="$ARTIFACTS/" -print_final_stats=1 >"$LOG" 2>&1
rc=$?
set -e

final_stat() { sed -n "s/^stat::$1: *//p" "$LOG" | tail -n1; }
execs=$(final_stat number_of_executed_units)
rate=$(final_stat average_exec_per_sec)
rss=$(final_stat peak_rss_mb)
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$LOG" | tail -n1)
corpus=$(find "$CORPUS" -type f | wc -l)
found=$(find "$ARTIFACTS" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' \
  -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)

if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
  # The report: from the first sanitizer/libFuzzer error line to the end.
  first=$(grep -n -m1 -E '^==[0-9]+==|runtime error:|^ALARM:|deadly signal|out-of-memory|^INFO: a leak' \
    "$LOG" | cut -d: -f1 || true)
  # (`|| true`: head closing the pipe early must not end the script here.)
  if [ -n "$first" ]; then
    tail -n +"$first" "$LOG" | head -n 200 || true
  else
    tail -n 80 "$LOG"
  fi
  echo "fuzz.sh: FAILED (filter_fuzz exit status $rc) after ${execs:-?} executions"
  for f in $found; do
    echo "fuzz.sh: input $f ($(wc -c <"$f") bytes):"
    od -c "$f" | head -n 20 || true
  done
  echo "fuzz.sh: replay with: $BUILD_DIR/filter_fuzz <input>"
  [ "$rc" -ne 0 ] && exit "$rc"
  exit 1
fi
echo "fuzz.sh: OK: ${execs:-?} executions in ${secs:-$FUZZ_SECONDS} s (${rate:-?}/s)," \
  "corpus $seeds -> $corpus inputs, peak RSS ${rss:-?} MB, no crash, leak or hang"
