#!/usr/bin/env bash
# Compiles the product code (base, storage, index, query, server, client:
# quiverd and quiverctl) with clang-14 and -Wthread-safety -Werror=thread-safety
# into ./build-tsa: a field annotated ABSL_GUARDED_BY(mu) touched without mu
# held, or a function annotated ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) called
# without it, fails the build. Tests and benchmarks are not compiled (they are
# not the product and gain nothing from the analysis); no optimisation and no
# debug information, since only the compiler front end matters. The README's
# test command applies the same analysis to everything it compiles (it is
# what CI runs); this script is the quick check by hand. Run
# deploy/install-deps.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${TSA_BUILD_DIR:-build-tsa}
CC=clang-14 CXX=clang++-14 cmake -S . -B "$BUILD_DIR" -G Ninja \
  -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG=-O0 -DQUIVER_THREAD_SAFETY=ON -DQUIVER_BUILD_TESTS=OFF
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target quiverd quiverctl
echo "thread-safety analysis: no findings"
