#!/usr/bin/env bash
# Builds everything (quiverd, quiverctl, every test binary, and both
# fuzzers) with clang-14, AddressSanitizer and UndefinedBehaviorSanitizer into
# ./build-asan and runs the whole test suite there: any out-of-bounds access,
# use after free, leak (at a process's exit, quiverd's included: the tests
# start the instrumented quiverd) or undefined behaviour fails the run. The
# same compile applies clang's lock analysis (-Wthread-safety as errors, as
# deploy/thread-safety.sh does alone). This is the README's test command
# (deploy/test.sh runs it). Run deploy/install-deps.sh once first.
#
#   deploy/asan.sh                 configure, build, run the suite
#   deploy/asan.sh --build TARGET  configure and build TARGET only (fuzz.sh
#                                  builds rpc_fuzz this way, in the same
#                                  directory, so CI compiles the sources once)
#
# -O1: ASan's recommended level; about as fast to run as -O2 under the
# sanitizers and quicker to compile. Exceptions (third-party findings only,
# one reason per entry) are in tests/asan_ignorelist.txt (compile time),
# tests/lsan.supp and tests/ubsan.supp.
# Environment: ASAN_BUILD_DIR (default build-asan), JOBS (default 2),
# ASAN_CMAKE_ARGS (extra configure arguments), ASAN_CTEST_ARGS (extra ctest
# arguments, e.g. "-R ServerTest").
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
# shellcheck disable=SC2086
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only -DNDEBUG" \
  -DQUIVER_ASAN=ON -DQUIVER_FUZZ=ON -DQUIVER_THREAD_SAFETY=ON ${ASAN_CMAKE_ARGS:-} >/dev/null

if [ "${1:-}" = "--build" ]; then
  shift
  cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target "$@"
  exit 0
fi
cmake --build "$BUILD_DIR" -j"${JOBS:-2}"

SYMBOLIZER=/usr/lib/llvm-14/bin/llvm-symbolizer
sym=""
if [ -x "$SYMBOLIZER" ]; then sym=":external_symbolizer_path=$SYMBOLIZER"; fi
# Inherited by every process the tests start (quiverd, quiverctl, python's
# children are not instrumented and ignore it). exitcode 66 for ASan and
# LSan so a sanitizer failure is told apart from an ordinary one in logs.
export ASAN_OPTIONS="detect_leaks=1:exitcode=66:strict_string_checks=1:check_initialization_order=1${sym}"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="suppressions=$PWD/tests/ubsan.supp:print_stacktrace=1:halt_on_error=1${sym}"
cd "$BUILD_DIR"
start=$(date +%s)
# shellcheck disable=SC2086
ctest --output-on-failure --timeout 900 -j"${JOBS:-2}" ${ASAN_CTEST_ARGS:-}
echo "asan.sh: the suite passed under ASan+UBSan in $(( $(date +%s) - start )) s"
