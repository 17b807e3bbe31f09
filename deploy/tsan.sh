#!/usr/bin/env bash
# Builds the unit and end-to-end tests (and quiverd) with ThreadSanitizer
# into ./build-tsan and runs them; any data race fails the run. CI runs it
# after the main suite. Run deploy/install-deps.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${TSAN_BUILD_DIR:-build-tsan}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DQUIVER_TSAN=ON \
  ${TSAN_CMAKE_ARGS:-}
# tsan_unit_tests and tsan_e2e_tests: the suites below, without the test
# files they do not need (tests/CMakeLists.txt).
cmake --build "$BUILD_DIR" -j"${JOBS:-2}" --target tsan_unit_tests tsan_e2e_tests quiverd
# detect_deadlocks=0: hnswlib's per-node std::mutexes live in memory that is
# freed and reused without TSan seeing it, which yields lock-order reports
# with no usable stacks; data races are still reported. Third-party
# suppressions are in tests/tsan.supp.
export TSAN_OPTIONS="suppressions=$PWD/tests/tsan.supp detect_deadlocks=0 halt_on_error=1 exitcode=66"
cd "$BUILD_DIR"
# The tests that run threads against each other; single-threaded suites
# (filter parsing, the index kinds' recall) gain nothing under TSan but time.
# (The deadline test times a search against 20 ms, which means nothing at
# TSan's speed; the filtered-recall suite is single-threaded searches.)
# Hybrid search runs its fields on the search pool; DISK segments swap
# their vectors for mapped tables under readers (SmallSegmentsTest, Crash).
# Concurrent index searches for a graph, a list and a compressed kind (L2;
# the other kinds share their search code, and a graph build under TSan
# takes minutes). The late-interaction and DISK recall suites are single-threaded searches
# with brute-force references, far too slow under TSan for what they add.
# Schema changes publish new field and attribute slots to readers and
# writers bound against the old ones (SchemaUpdateTest,
# VectorFieldUpdateTest).
# (WindowsOfEveryWidth counts segments, which a 1 s idle seal splits at
# TSan's speed.)
ctest --output-on-failure --timeout 900 -j2 -E "SearchDeadlineIsHonoured|FilteredSearchTest|WindowsOfEveryWidthAreAccurate" \
  -R "^(StoreTest|EngineTest|SchemaUpdateTest|VectorFieldUpdateTest|SmallSegmentsTest|Metrics/|Kinds/(SegmentedEngineTest|WindowFilterTest|HybridSearchTest)|ServerTest|CrashTest|SegmentsE2ETest|TaskPoolTest)"
# The concurrent index searches, from the conformance suite (which ctest
# runs as a whole, by metric).
./tests/tsan_unit_tests \
  "--gtest_filter=AllKinds/IndexConformanceTest.ConcurrentSearchesMatchSequential/HNSW_L2:AllKinds/IndexConformanceTest.ConcurrentSearchesMatchSequential/IVF_FLAT_L2:AllKinds/IndexConformanceTest.ConcurrentSearchesMatchSequential/IVF_SQ8_L2"
