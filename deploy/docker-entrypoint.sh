#!/bin/sh
# The Docker image's entrypoint: runs quiverd on 0.0.0.0:50051 with its data
# in /data, protected by what the container was given (see README.md,
# "Operations > API keys and TLS"):
#   - an API keys file mounted at $QUIVER_API_KEYS_FILE (default
#     /etc/quiver/api-keys), reloaded on SIGHUP (docker kill -s HUP); or
#   - one admin key in the environment variable QUIVER_API_KEY (its SHA-256
#     is written to a private file and the variable is unset before quiverd
#     starts, so quiverd never sees it in clear);
#   - TLS files mounted in $QUIVER_TLS_DIR (default /etc/quiver/tls):
#     tls.crt and tls.key, and client-ca.crt for mutual TLS.
# With none of these quiverd refuses to start (it would serve everyone);
# QUIVER_ALLOW_INSECURE=1 starts it anyway. Arguments are passed on to
# quiverd, after the ones made here.
# QUIVER_SHUTDOWN_GRACE_SECONDS (the image sets 5) becomes
# --shutdown-grace-seconds unless the arguments give it: the grace must end
# before `docker stop` (10 s) or Kubernetes' terminationGracePeriodSeconds
# sends SIGKILL.
set -eu

data_dir="${QUIVER_DATA_DIR:-/data}"
# A bind-mounted host directory keeps its owner, usually not this uid:
# say so in one line instead of RocksDB's error about a LOCK file.
if [ -d "$data_dir" ] && [ ! -w "$data_dir" ]; then
  echo "quiver-entrypoint: the data directory $data_dir is not writable by uid $(id -u):" \
    "make the mounted directory writable for it (on the host: chown $(id -u):$(id -g) DIR)" \
    "or run the container as the directory's owner (docker run --user UID:GID)" >&2
  exit 1
fi

keys_file="${QUIVER_API_KEYS_FILE:-/etc/quiver/api-keys}"
tls_dir="${QUIVER_TLS_DIR:-/etc/quiver/tls}"
case " $* " in
  *" --shutdown-grace-seconds"*) grace="" ;;
  *) grace="${QUIVER_SHUTDOWN_GRACE_SECONDS:-}" ;;
esac
set -- --listen "${QUIVER_LISTEN:-0.0.0.0:50051}" --data-dir "$data_dir" "$@"
if [ -n "$grace" ]; then
  set -- "$@" --shutdown-grace-seconds "$grace"
fi

if [ -f "$keys_file" ]; then
  set -- "$@" --api-keys-file "$keys_file"
elif [ -n "${QUIVER_API_KEY:-}" ]; then
  umask 077
  generated="$(mktemp -d)/api-keys"
  printf '%s\n' "$QUIVER_API_KEY" | quiverctl key hash --stdin --role admin >"$generated"
  set -- "$@" --api-keys-file "$generated"
fi
if [ -f "$tls_dir/tls.crt" ] && [ -f "$tls_dir/tls.key" ]; then
  set -- "$@" --tls-cert "$tls_dir/tls.crt" --tls-key "$tls_dir/tls.key"
  if [ -f "$tls_dir/client-ca.crt" ]; then
    set -- "$@" --tls-client-ca "$tls_dir/client-ca.crt"
  fi
fi
if [ "${QUIVER_ALLOW_INSECURE:-0}" = "1" ]; then
  set -- "$@" --allow-insecure
fi
# The key in clear is not passed on: quiverd's environment is readable in
# /proc/<pid>/environ and inherited by anything it starts.
unset QUIVER_API_KEY
exec quiverd "$@"
