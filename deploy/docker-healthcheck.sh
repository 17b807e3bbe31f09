#!/bin/sh
# The Docker image's health check: `quiverctl health` against the local
# quiverd, over TLS when the container serves TLS (see
# deploy/docker-entrypoint.sh). The health service needs no API key. With
# TLS it trusts $QUIVER_TLS_DIR/ca.crt (else tls.crt itself, for a
# self-signed certificate) and checks the name in QUIVER_TLS_SERVER_NAME
# (default localhost); with mutual TLS it presents client.crt/client.key
# from the same directory.
set -eu
tls_dir="${QUIVER_TLS_DIR:-/etc/quiver/tls}"
addr="127.0.0.1:${QUIVER_PORT:-50051}"
if [ -f "$tls_dir/tls.crt" ]; then
  ca="$tls_dir/ca.crt"
  [ -f "$ca" ] || ca="$tls_dir/tls.crt"
  export QUIVER_TLS_SERVER_NAME="${QUIVER_TLS_SERVER_NAME:-localhost}"
  if [ -f "$tls_dir/client-ca.crt" ]; then
    exec quiverctl --addr "$addr" --timeout 3 --tls-ca "$ca" \
      --tls-cert "$tls_dir/client.crt" --tls-key "$tls_dir/client.key" health
  fi
  exec quiverctl --addr "$addr" --timeout 3 --tls-ca "$ca" health
fi
exec quiverctl --addr "$addr" --timeout 3 health
