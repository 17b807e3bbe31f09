#!/usr/bin/env bash
# Configures and builds Quiver into ./build (Release-with-debug-info, Ninja).
# Extra arguments are passed to the CMake configure step, e.g.
#   deploy/build.sh -DQUIVER_X86_64_V3=ON       # everything for AVX2 CPUs only
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@"
cmake --build "$BUILD_DIR" -j"${JOBS:-2}"
