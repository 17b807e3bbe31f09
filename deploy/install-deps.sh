#!/usr/bin/env bash
# Installs everything Quiver needs to build, run, test, fuzz and benchmark on Debian 12.
# Used by the README's first command, .ci/run and the Dockerfile's build stage,
# so all three see the same toolchain. Must run as root (or via sudo).
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake ninja-build pkg-config git ca-certificates \
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libgrpc++-dev \
  librocksdb-dev libfaiss-dev libopenblas0-openmp libopenblas-openmp-dev \
  libspdlog-dev libfmt-dev libabsl-dev \
  libgtest-dev libgmock-dev libbenchmark-dev \
  libcli11-dev nlohmann-json3-dev libroaring-dev liburing-dev libhnswlib-dev zlib1g-dev \
  libssl-dev openssl \
  python3 python3-grpcio python3-protobuf python3-numpy \
  python3-pip python3-setuptools python3-wheel python3-venv libcpp-httplib-dev \
  dataset-fashion-mnist gnuplot-nox \
  clang-14 libclang-rt-14-dev libomp-14-dev llvm-14 \
  prometheus-cpp-dev prometheus libicu-dev libstemmer-dev libxxhash-dev
# libicu-dev libstemmer-dev libxxhash-dev: the full-text analyzer (words, stems, term ids).
# prometheus-cpp-dev: quiverd's /metrics (--metrics-listen); prometheus: the
# Prometheus server and promtool, which the metrics test starts and runs.
# clang-14 etc.: deploy/fuzz.sh (libFuzzer and the ASan/UBSan runtimes are in
# libclang-rt-14-dev, llvm-symbolizer in llvm-14; libomp-14-dev because the
# configure step finds OpenMP, for faiss, with the compiler in use).
# libssl-dev: API key digests and TLS file checks; openssl: the TLS tests
# make their certificates with it.
# python3-pip/-setuptools/-wheel/-venv: the Python client package
# (client/python) is pip-installed into a venv by its tests, as the README
# shows; libcpp-httplib-dev: quiverd's HTTP/JSON endpoint (--http-listen).
# Node.js and npm for the Node client (client/node) and its tests: Debian's,
# unless a node is installed already (another distribution's nodejs package
# bundles npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  $SUDO apt-get install -y --no-install-recommends nodejs npm
fi
