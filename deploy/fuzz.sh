#!/usr/bin/env bash
# Two libFuzzer targets, each for a bounded time, with ASan and UBSan, both
# built in the ASan build directory (deploy/asan.sh --build, so CI compiles
# the sources once for the suite and the fuzzers):
#  - filter_fuzz, the filter language (tests/query/filter_fuzz.cc), for
#    FUZZ_SECONDS (default 60), from the seed corpus
#    tests/query/filter_fuzz_corpus/ and the dictionary
#    tests/query/filter_fuzz.dict;
#  - rpc_fuzz, every RPC of an in-process server (tests/fuzz/rpc_fuzz.cc),
#    for RPC_FUZZ_SECONDS (default 90), from tests/fuzz/rpc_fuzz_corpus/.
# Fails on any crash, sanitizer report, leak, hang (an input running over
# the per-input timeout) or out-of-memory; the offending input is kept in
# build-asan/<target>-artifacts/ and can be replayed with
#   build-asan/filter_fuzz build-asan/filter_fuzz-artifacts/crash-...
#   build-asan/tests/fuzz/rpc_fuzz build-asan/tests/fuzz/rpc_fuzz-artifacts/crash-...
# CI runs it after the TSan suites, in the ASan build the README's test
# command (deploy/test.sh) left. Run deploy/install-deps.sh once first.
# Environment: FUZZ_TARGETS, FUZZ_SECONDS, RPC_FUZZ_SECONDS, JOBS (build parallelism,
# default 2), ASAN_BUILD_DIR (default build-asan).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
RPC_FUZZ_SECONDS=${RPC_FUZZ_SECONDS:-90}
# FUZZ_TARGETS picks which of the two run (default both).
FUZZ_TARGETS=${FUZZ_TARGETS:-filter_fuzz rpc_fuzz}
# shellcheck disable=SC2086
deploy/asan.sh --build $FUZZ_TARGETS

SYMBOLIZER=/usr/lib/llvm-14/bin/llvm-symbolizer
sym=""
if [ -x "$SYMBOLIZER" ]; then sym=":external_symbolizer_path=$SYMBOLIZER"; fi
# Caller's options last, so they win.
export ASAN_OPTIONS="detect_leaks=1:symbolize=1${sym}${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:symbolize=1${sym}${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

# run_fuzzer NAME BINARY SEEDS SECONDS TIMEOUT [libFuzzer options...]
run_fuzzer() {
  local name=$1 binary=$2 seeds=$3 seconds=$4 timeout=$5
  shift 5
  local dir
  dir=$(dirname "$binary")
  # Scratch state of this run: the working corpus (seeds plus whatever the
  # fuzzer adds), crash/timeout/leak/oom inputs, the fuzzer's log.
  local corpus_dir=$dir/$name-corpus artifacts=$dir/$name-artifacts log=$dir/$name.log
  rm -rf "$corpus_dir" "$artifacts"
  mkdir -p "$corpus_dir" "$artifacts"
  cp "$seeds"/* "$corpus_dir"/
  local nseeds
  nseeds=$(find "$corpus_dir" -type f | wc -l)

  echo "fuzz.sh: running $name for ${seconds}s from $nseeds seeds (log: $log)"
  local rc
  set +e
  "$binary" "$corpus_dir" -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb=2048 \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" >"$log" 2>&1
  rc=$?
  set -e

  final_stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n1; }
  local execs rate rss secs ncorpus found first
  execs=$(final_stat number_of_executed_units)
  rate=$(final_stat average_exec_per_sec)
  rss=$(final_stat peak_rss_mb)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -n1)
  ncorpus=$(find "$corpus_dir" -type f | wc -l)
  found=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'leak-*' \
    -o -name 'oom-*' -o -name 'slow-unit-*' \) | sort)

  if [ "$rc" -ne 0 ] || [ -n "$found" ]; then
    # The report: from the first sanitizer/libFuzzer error line to the end.
    first=$(grep -n -m1 -E '^==[0-9]+==|runtime error:|^ALARM:|deadly signal|out-of-memory|^INFO: a leak|^rpc_fuzz:' \
      "$log" | cut -d: -f1 || true)
    # (`|| true`: head closing the pipe early must not end the script here.)
    if [ -n "$first" ]; then
      tail -n +"$first" "$log" | head -n 200 || true
    else
      tail -n 80 "$log"
    fi
    echo "fuzz.sh: FAILED ($name exit status $rc) after ${execs:-?} executions"
    for f in $found; do
      echo "fuzz.sh: input $f ($(wc -c <"$f") bytes):"
      od -c "$f" | head -n 20 || true
    done
    echo "fuzz.sh: replay with: $binary <input>"
    [ "$rc" -ne 0 ] && exit "$rc"
    exit 1
  fi
  echo "fuzz.sh: $name OK: ${execs:-?} executions in ${secs:-$seconds} s (${rate:-?}/s)," \
    "corpus $nseeds -> $ncorpus inputs, peak RSS ${rss:-?} MB, no crash, leak or hang"
}

wants() { case " $FUZZ_TARGETS " in *" $1 "*) return 0 ;; esac; return 1; }

if wants filter_fuzz; then
run_fuzzer filter_fuzz "$BUILD_DIR/filter_fuzz" tests/query/filter_fuzz_corpus "$FUZZ_SECONDS" 10 \
  -dict=tests/query/filter_fuzz.dict -max_len=4096
fi
if wants rpc_fuzz; then
# A 20 s per-input timeout: one RPC has a 10 s deadline, and the server's
# background work (seals, builds) shares the machine.
# The server's data directory goes under TMPDIR, removed afterwards.
rpc_tmp=$(realpath -m "$BUILD_DIR")/rpc_fuzz-tmp
rm -rf "$rpc_tmp" && mkdir -p "$rpc_tmp"
TMPDIR=$rpc_tmp run_fuzzer rpc_fuzz "$BUILD_DIR/tests/fuzz/rpc_fuzz" tests/fuzz/rpc_fuzz_corpus \
  "$RPC_FUZZ_SECONDS" 20 -max_len=65536
rm -rf "$rpc_tmp"
fi
