#!/usr/bin/env bash
# The README's second command: builds Quiver and every test with clang-14,
# AddressSanitizer and UndefinedBehaviorSanitizer, and with clang's lock
# analysis as errors (-Wthread-safety), into ./build-asan, and runs the whole
# test suite there with ctest (unit tests, end-to-end tests against the real
# quiverd, the Python and Node client tests, a short crash loop). So every run
# of the suite also fails on an out-of-bounds access, a use after free, a
# leak, undefined behaviour or an unguarded field (deploy/asan.sh has the
# details). Run deploy/install-deps.sh once first on a new machine.
#
# The optimised build that ships (deploy/build.sh, the Dockerfile) is
# checked by deploy/docker-test.sh, which runs the image as a user would.
#   deploy/test.sh           the suite under ASan+UBSan (what CI runs)
#   deploy/test.sh --plain   the suite on the optimised build in ./build,
#                            without sanitizers: faster, checks less
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--plain" ]; then
  deploy/build.sh
  cd "${BUILD_DIR:-build}"
  exec ctest --output-on-failure --timeout 600 -j"${JOBS:-2}"
fi
exec deploy/asan.sh
