#!/usr/bin/env bash
# The README's second command: builds Quiver and runs the whole test suite
# with ctest (unit tests, end-to-end tests against the real quiverd, the
# Python client test). Run deploy/install-deps.sh once first on a new machine.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/build.sh
cd "${BUILD_DIR:-build}"
ctest --output-on-failure --timeout 600 -j"${JOBS:-2}"
