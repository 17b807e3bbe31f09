#!/usr/bin/env bash
# Kills quiverd with SIGKILL at random moments under mixed load, N times,
# and checks every acknowledged operation after each restart (the driver is
# tests/crash/crash_loop.cc; it prints a line per cycle and a summary table,
# and exits non-zero if anything acknowledged was lost, resurrected or
# corrupt, or a restart failed).
#
#   deploy/crash-loop.sh N [crash_loop options]
#     e.g. deploy/crash-loop.sh 100 --durability async --seed 7
#
# Options (tests/crash/crash_loop --help): --seed, --durability sync|async,
# --writers, --ids-per-writer, --min-acks/--max-acks (acknowledged writes
# before each kill), --segment-max-rows, --seal-idle-ms, --data-dir,
# --quiverd. Builds quiverd and the driver first in BUILD_DIR (default
# build; JOBS, default 2). The test suite runs 5 cycles per durability mode
# (ctest -L crash-loop).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 1 ] || ! [[ $1 =~ ^[0-9]+$ ]]; then
  echo "usage: $0 N [crash_loop options]   (N: number of kill/restart cycles)" >&2
  exit 2
fi
cycles=$1
shift
BUILD_DIR=${BUILD_DIR:-build}
if [ ! -f "$BUILD_DIR/build.ninja" ] && [ ! -f "$BUILD_DIR/Makefile" ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target quiverd crash_loop
exec "$BUILD_DIR/tests/crash/crash_loop" --cycles "$cycles" \
  --quiverd "$BUILD_DIR/quiverd" "$@"
