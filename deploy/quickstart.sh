#!/usr/bin/env bash
# The README's first command: installs the packages Quiver needs (Debian 12),
# builds it, and starts quiverd in the foreground on 127.0.0.1:50051 with
# its data in ./quiver-data. Extra arguments go to quiverd.
set -euo pipefail
cd "$(dirname "$0")/.."
deploy/install-deps.sh
deploy/build.sh
exec ./build/quiverd --listen 127.0.0.1:50051 --data-dir ./quiver-data "$@"
