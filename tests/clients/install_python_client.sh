#!/bin/sh
# Installs client/python as a user would (Debian's pip, --no-build-isolation)
# into a fresh virtualenv, for the Python client tests (a ctest fixture).
# The venv sees Debian's grpcio, protobuf, numpy, setuptools and wheel
# (--system-site-packages), so nothing is downloaded (--no-index). The
# package is built from a copy, leaving the source tree clean.
# Usage: install_python_client.sh VENV_DIR REPO_ROOT
set -eu
venv=$1
root=$2
rm -rf "$venv"
/usr/bin/python3 -m venv --system-site-packages "$venv"
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r "$root/client/python" "$src/python"
QUIVER_PROTO_DIR="$root/proto" "$venv/bin/python" -m pip install --quiet --no-index \
  --no-build-isolation "$src/python"
"$venv/bin/python" -c 'import quiver, quiver.v1.search_pb2_grpc; print("installed", quiver.__file__)'
