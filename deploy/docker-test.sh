#!/usr/bin/env bash
# Builds the Docker image and checks it the way a user meets it (README,
# "Docker"), then the compose file (deploy/compose/) and the Kubernetes
# manifests (deploy/k8s/check.sh). Run by .ci/run; needs root (or sudo).
#
#  1. Installs docker.io, debootstrap and docker-compose if missing; starts
#     dockerd if none answers (and stops it at the end).
#  2. No registry is needed: if debian:bookworm is absent it is made with
#     debootstrap --variant=minbase from this machine's Debian mirror and
#     `docker import`ed (tagged debian:bookworm-slim too), so the
#     Dockerfile's FROM lines work unchanged.
#  3. Builds the image; prints the build time and the image size, total and
#     above the base (at most 170 MB: about 125 MB of libraries and binaries,
#     and ICU's 36 MB, most of it the Unicode data full-text search breaks
#     words with), and checks the binaries carry no debug information.
#  4. docker run -d -p 127.0.0.1:PORT:50051 -v VOLUME:/data with an API key:
#     the container becomes healthy; quiverctl from the host (the image's
#     binary, copied out) is refused without the key, and with it creates a
#     collection, imports a Fashion-MNIST slice and searches; quiverd runs as
#     uid 10001.
#  5. docker stop while the new segment's index is being built: ends well
#     inside docker stop's 10 s, exit code 0, graceful shutdown in the logs;
#     docker start: every point is there and the index is built again.
#     Then an idle stop and start: the index loads from the volume.
#  6. A bind-mounted directory the image's user cannot write: one clear line
#     and a non-zero exit; one it can write: healthy.
#  7. docker-compose up -d (quiverd + Prometheus): Prometheus's HTTP API
#     reports the quiverd target up; then down -v.
# Environment: QUIVERCTL (default: the image's own quiverctl, copied out),
# DOCKER_TEST_ROWS (points imported, default 12000), JOBS (compile jobs in
# the image build, default 2), FASHION_MNIST_DIR, DOCKER_TEST_IMAGE (check
# this image instead of building one).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# Debian's client: another `docker` earlier in PATH may speak a newer API
# than Debian's daemon (20.10) accepts.
DOCKER=/usr/bin/docker
IMAGE=quiver:docker-test
QUIVERCTL=${QUIVERCTL:-}
DATA=${FASHION_MNIST_DIR:-/usr/share/datasets/fashion-mnist}
ROWS=${DOCKER_TEST_ROWS:-12000}
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; DOCKER="sudo $DOCKER"; fi
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
T0=$(now)
log() { printf '[docker-test %6ss] %s\n' "$(since "$T0")" "$*" >&2; }
fail() { log "FAIL: $*"; exit 1; }
declare -a FIGURES=()
figure() { FIGURES+=("$(printf '%-42s %s' "$1" "$2")"); log "$1: $2"; }
# (Functions whose output is captured are called as `x=$(f)`, alone: set -e
# ignores a failure inside $(...) that is an argument of another command.)

WORK=$(mktemp -d)
NAME=quiver-test-$$
STARTED_DOCKERD=""
cleanup() {
  set +e
  if [ -n "${COMPOSE_UP:-}" ]; then
    docker_compose down -v --remove-orphans >/dev/null 2>&1
  fi
  for c in "$NAME" "$NAME-bind" "$NAME-debug" "$NAME-build"; do $DOCKER rm -f "$c" >/dev/null 2>&1; done
  $DOCKER volume rm -f "$NAME" >/dev/null 2>&1
  rm -rf "$WORK"
  if [ -n "$STARTED_DOCKERD" ]; then
    $SUDO kill -TERM "$STARTED_DOCKERD" 2>/dev/null
    for _ in $(seq 60); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || break; sleep 0.5; done
  fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- tools
# The Kubernetes manifests need no daemon: checked first, in seconds.
deploy/k8s/check.sh

need=()
[ -x /usr/sbin/dockerd ] && [ -x /usr/bin/docker ] || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v docker-compose >/dev/null || need+=(docker-compose)
command -v readelf >/dev/null || need+=(binutils)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi

if ! $DOCKER info >/dev/null 2>&1; then
  log "starting dockerd"
  $SUDO /usr/sbin/dockerd >"$WORK/dockerd.log" 2>&1 &
  STARTED_DOCKERD=$!
  for _ in $(seq 120); do $DOCKER info >/dev/null 2>&1 && break; sleep 0.5; done
  $DOCKER info >/dev/null 2>&1 || { tail -20 "$WORK/dockerd.log"; fail "dockerd did not start"; }
fi

# ---------------------------------------------------------------- base image
if ! $DOCKER image inspect debian:bookworm >/dev/null 2>&1; then
  mirror=$(awk '$1 == "URIs:" && $2 !~ /security/ { print $2; exit }' \
    /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  if [ -z "$mirror" ]; then
    mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
      /etc/apt/sources.list 2>/dev/null || true)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  log "making debian:bookworm with debootstrap --variant=minbase from $mirror"
  t=$(now)
  $SUDO debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
    { tail -20 "$WORK/debootstrap.log"; fail "debootstrap failed"; }
  # The official image's sources: the release, its updates and security.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    $SUDO cp /etc/apt/sources.list.d/debian.sources "$WORK/rootfs/etc/apt/sources.list.d/"
    $SUDO rm -f "$WORK/rootfs/etc/apt/sources.list"
  fi
  $SUDO sh -c "rm -rf '$WORK'/rootfs/var/cache/apt/archives/*.deb '$WORK'/rootfs/var/lib/apt/lists/*"
  $SUDO tar -C "$WORK/rootfs" -c . | $DOCKER import -c 'CMD ["bash"]' - debian:bookworm >/dev/null
  $DOCKER tag debian:bookworm debian:bookworm-slim
  $SUDO rm -rf "$WORK/rootfs"
  figure "base image made in" "$(since "$t") s"
fi
$DOCKER image inspect debian:bookworm-slim >/dev/null 2>&1 ||
  $DOCKER tag debian:bookworm debian:bookworm-slim

# ---------------------------------------------------------------- image
if [ -n "${DOCKER_TEST_IMAGE:-}" ]; then
  IMAGE=$DOCKER_TEST_IMAGE
  log "testing $IMAGE (DOCKER_TEST_IMAGE) instead of building one"
else
  log "building $IMAGE (docker build's output is shown if it fails)"
  t=$(now)
  if ! $DOCKER build -t "$IMAGE" --build-arg JOBS="${JOBS:-2}" . >"$WORK/build.log" 2>&1; then
    tail -40 "$WORK/build.log"
    fail "docker build failed"
  fi
  figure "image build" "$(since "$t") s"
fi
size=$($DOCKER image inspect -f '{{.Size}}' "$IMAGE")
base=$($DOCKER image inspect -f '{{.Size}}' debian:bookworm-slim)
above=$(( (size - base) / 1000000 ))
figure "image size" "$(( size / 1000000 )) MB ($above MB above the base)"
[ "$above" -le 170 ] || { $DOCKER history "$IMAGE"; fail "the layers above the base take $above MB (> 170)"; }
$DOCKER create --name "$NAME" "$IMAGE" >/dev/null
for b in quiverd quiverctl; do
  $DOCKER cp "$NAME:/usr/local/bin/$b" "$WORK/$b"
  if readelf -S "$WORK/$b" | grep -q '\.debug_info'; then fail "$b in the image has debug information"; fi
  readelf -S "$WORK/$b" | grep -q '\.gnu_debuglink' || fail "$b has no link to its debug file"
done
$DOCKER rm "$NAME" >/dev/null
# copy_from_stage STAGE SRC DEST [SRC DEST ...]: builds the Dockerfile's
# stage STAGE (from the image build's cache, so seconds) and copies files out
# of a container of it.
copy_from_stage() {
  local stage=$1
  shift
  if ! $DOCKER build --target "$stage" -t "$IMAGE-$stage" --build-arg JOBS="${JOBS:-2}" . \
    >"$WORK/build-$stage.log" 2>&1; then
    tail -20 "$WORK/build-$stage.log"
    fail "docker build --target $stage failed"
  fi
  $DOCKER create --name "$NAME-$stage" "$IMAGE-$stage" /none >/dev/null
  while [ $# -ge 2 ]; do
    $DOCKER cp "$NAME-$stage:$1" "$2"
    shift 2
  done
  $DOCKER rm "$NAME-$stage" >/dev/null
  $DOCKER rmi "$IMAGE-$stage" >/dev/null
}
if [ -z "${DOCKER_TEST_IMAGE:-}" ]; then
  # The README's way to the debug information: the `debug` stage. Each file
  # must carry the debug information of the image's binary (same build ID).
  copy_from_stage debug /quiverd.debug "$WORK/quiverd.debug" /quiverctl.debug "$WORK/quiverctl.debug"
  for b in quiverd quiverctl; do
    want=$(readelf -n "$WORK/$b" 2>/dev/null | awk '/Build ID/ { print $3 }')
    got=$(readelf -n "$WORK/$b.debug" 2>/dev/null | awk '/Build ID/ { print $3 }')
    [ -n "$want" ] && [ "$want" = "$got" ] || fail "$b.debug (build ID $got) is not $b's ($want)"
    readelf -S "$WORK/$b.debug" 2>/dev/null | grep -q '\.debug_info' || fail "$b.debug has no debug information"
  done
  # The shipped quiverd runs on any x86-64: no AVX instruction outside the
  # AVX2 kernels (tests/check_kernel_isa.py, ctest's KernelIsa in an
  # unsanitized build tree), checked on the build stage's binary before
  # stripping, which still has its symbols.
  copy_from_stage build /src/build/quiverd "$WORK/quiverd.unstripped"
  /usr/bin/python3 tests/check_kernel_isa.py "$WORK/quiverd.unstripped" \
    || fail "the image's quiverd has AVX instructions outside the AVX2 kernels"
  rm -f "$WORK/quiverd.unstripped"
fi

# ---------------------------------------------------------------- quiverctl
# The image's quiverctl runs on the host too (same Debian, and the host has
# the libraries: deploy/install-deps.sh), so no second build is needed here.
[ -n "$QUIVERCTL" ] || QUIVERCTL="$WORK/quiverctl"
[ -x "$QUIVERCTL" ] || fail "no quiverctl at $QUIVERCTL"
KEY=$("$QUIVERCTL" key hash 2>/dev/null | awk '$1 == "key" { print $2 }')
[ -n "$KEY" ] || fail "quiverctl key hash made no key"
export QUIVER_API_KEY=$KEY

# Waits until container $1 is healthy (HEALTHCHECK); prints the seconds.
wait_healthy() {
  local c=$1 t
  t=$(now)
  for _ in $(seq 240); do
    case "$($DOCKER inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$c")" in
      "running healthy") since "$t"; return 0 ;;
      running*) sleep 0.25 ;;
      *) $DOCKER logs "$c" 2>&1 | tail -20 >&2; fail "container $c stopped before it was healthy" ;;
    esac
  done
  $DOCKER logs "$c" 2>&1 | tail -20 >&2
  fail "container $c not healthy after 60 s"
}
Q() { "$QUIVERCTL" --addr "127.0.0.1:$PORT" "$@"; }
segments_line() { Q stats fmnist | grep -E '^[0-9]+ segments? \(' || true; }
# docker stop $1, timed; checks the exit was quiverd's own (code 0).
timed_stop() {
  local t s
  t=$(now)
  $DOCKER stop "$1" >/dev/null
  s=$(since "$t")
  local code
  code=$($DOCKER inspect -f '{{.State.ExitCode}}' "$1")
  [ "$code" = 0 ] || { $DOCKER logs "$1" 2>&1 | tail -20; fail "quiverd exited with $code on docker stop"; }
  awk -v s="$s" 'BEGIN { exit !(s < 8) }' || fail "docker stop took $s s"
  echo "$s"
}
log_lines() { $DOCKER logs "$NAME" 2>&1 | wc -l; }
logs_after() { $DOCKER logs "$NAME" 2>&1 | tail -n +"$(( $1 + 1 ))"; }

# ---------------------------------------------------------------- run
log "docker run with a named volume and an API key"
t=$(now)
$DOCKER run -d --name "$NAME" -p 127.0.0.1::50051 -v "$NAME:/data" -e QUIVER_API_KEY="$KEY" \
  "$IMAGE" >/dev/null
PORT=$($DOCKER port "$NAME" 50051/tcp | head -1 | sed 's/.*://')
s=$(wait_healthy "$NAME")
figure "time to healthy (first start)" "$s s"
uid=$($DOCKER exec "$NAME" awk '/^Uid:/ { print $2 }' /proc/1/status)
comm=$($DOCKER exec "$NAME" cat /proc/1/comm)
[ "$uid" = 10001 ] && [ "$comm" = quiverd ] || fail "PID 1 is $comm as uid $uid, not quiverd as 10001"
if out=$(env -u QUIVER_API_KEY "$QUIVERCTL" --addr "127.0.0.1:$PORT" collection list 2>&1); then
  fail "a request without the key succeeded"
fi
grep -q UNAUTHENTICATED <<<"$out" || fail "no key: $out"

log "create, import $ROWS Fashion-MNIST points, search"
# HNSW with a larger graph than the default: its build takes long enough to
# be stopped in the middle.
Q collection create fmnist --vector pixels:784:L2:HNSW,M=32,ef_construction=400 \
  --attr label:int64 >/dev/null
Q import fmnist "$DATA/train-images-idx3-ubyte.gz" --labels "$DATA/train-labels-idx1-ubyte.gz" \
  --id-prefix img- --limit "$ROWS" --no-progress >/dev/null
check_search() {
  local hits
  hits=$(Q search fmnist --vector-file "$DATA/t10k-images-idx3-ubyte.gz" --row 0 -k 5 \
    --output-attrs label | grep -c 'img-' || true)
  [ "$hits" = 5 ] || fail "search returned $hits hits, not 5"
}
check_count() {
  local n
  n=$(Q count fmnist | grep -oE '[0-9]+' | head -1)
  [ "$n" = "$ROWS" ] || fail "count is $n, not $ROWS"
}
# The segment is sealed a second after the last write, then indexed (HNSW,
# some seconds): searches scan it meanwhile.
for _ in $(seq 200); do
  segments_line | grep -qE '[1-9][0-9]* building' && break
  sleep 0.05
done
check_search
check_count

# ---------------------------------------------------------------- stop under a build
segments_line | grep -qE '[1-9][0-9]* building' || fail "no index build to stop: $(segments_line)"
mark=$(log_lines)
s=$(timed_stop "$NAME")
figure "docker stop during an index build" "$s s"
logs_after "$mark" | grep -q 'index build stopped' || fail "the build was not stopped: $(logs_after "$mark")"
logs_after "$mark" | grep -q 'shutdown complete' || fail "no graceful shutdown: $(logs_after "$mark")"

# docker start, then the figure $1 (time to healthy) and the count; the
# (random) host port may change.
start_again() {
  local s
  $DOCKER start "$NAME" >/dev/null
  PORT=$($DOCKER port "$NAME" 50051/tcp | head -1 | sed 's/.*://')
  s=$(wait_healthy "$NAME")
  figure "$1" "$s s"
  check_count
}
all_indexed() { segments_line | grep -qE '\(([1-9][0-9]*) indexed, 0 building, 0 sealed'; }

log "docker start: the points are there, the index is built again"
start_again "docker start to healthy (after the stop)"
for _ in $(seq 1500); do all_indexed && break; sleep 0.2; done
all_indexed || fail "the index was not rebuilt: $(segments_line)"
check_search

log "idle docker stop and start: the index loads from the volume"
s=$(timed_stop "$NAME")
figure "docker stop, idle" "$s s"
mark=$(log_lines)
start_again "docker start to healthy (idle restart)"
all_indexed || fail "the index did not load: $(segments_line)"
if logs_after "$mark" | grep -q 'built HNSW'; then fail "the index was rebuilt, not loaded"; fi
check_search
$DOCKER rm -f "$NAME" >/dev/null
$DOCKER volume rm "$NAME" >/dev/null

# ---------------------------------------------------------------- bind mounts
log "bind mounts: one the image's user cannot write, then one it can"
mkdir -p "$WORK/data"
chmod 755 "$WORK/data"
[ "$(stat -c %u "$WORK/data")" != 10001 ] || fail "the test directory is owned by 10001"
if out=$($DOCKER run --rm -v "$WORK/data:/data" -e QUIVER_API_KEY="$KEY" "$IMAGE" 2>&1); then
  fail "started on an unwritable data directory"
fi
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && grep -q 'not writable' <<<"$out" ||
  fail "unwritable data directory, expected one clear line: $out"
log "  $out"
$SUDO chown 10001:10001 "$WORK/data"
$DOCKER run -d --name "$NAME-bind" -v "$WORK/data:/data" -e QUIVER_API_KEY="$KEY" "$IMAGE" >/dev/null
wait_healthy "$NAME-bind" >/dev/null
$DOCKER rm -f "$NAME-bind" >/dev/null
[ -n "$(find "$WORK/data" -name CURRENT)" ] || fail "quiverd wrote no RocksDB files into the bind mount"
$SUDO rm -rf "$WORK/data"

# ---------------------------------------------------------------- compose
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
export QUIVER_IMAGE=$IMAGE QUIVER_ENV_FILE=$WORK/quiver.env
export QUIVER_PORT; QUIVER_PORT=$(free_port)
export PROMETHEUS_PORT; PROMETHEUS_PORT=$(free_port)
printf 'QUIVER_API_KEY=%s\n' "$KEY" >"$QUIVER_ENV_FILE"
docker_compose() {
  $SUDO env DOCKER_HOST=unix:///var/run/docker.sock QUIVER_IMAGE="$QUIVER_IMAGE" \
    QUIVER_ENV_FILE="$QUIVER_ENV_FILE" QUIVER_PORT="$QUIVER_PORT" PROMETHEUS_PORT="$PROMETHEUS_PORT" \
    docker-compose -p "quivertest$$" -f deploy/compose/docker-compose.yml "$@"
}
log "docker-compose up -d (quiverd + Prometheus)"
t=$(now)
docker_compose build prometheus >"$WORK/compose.log" 2>&1 ||
  { tail -30 "$WORK/compose.log"; fail "building the Prometheus image failed"; }
COMPOSE_UP=1
docker_compose up -d --no-build >>"$WORK/compose.log" 2>&1 ||
  { tail -30 "$WORK/compose.log"; fail "docker-compose up failed"; }
target_health() {
  python3 - "$PROMETHEUS_PORT" <<'EOF'
import json, sys, urllib.request
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/v1/targets", timeout=3) as r:
        targets = json.load(r)["data"]["activeTargets"]
except Exception as e:  # not up yet
    print(f"no answer ({e})")
    sys.exit(0)
print(" ".join(f"{t['labels'].get('job')}={t['health']}" for t in targets) or "no targets")
EOF
}
state=""
for _ in $(seq 180); do
  state=$(target_health)
  [ "$state" = "quiverd=up" ] && break
  sleep 0.5
done
[ "$state" = "quiverd=up" ] || { docker_compose logs --tail 20; fail "Prometheus: $state"; }
"$QUIVERCTL" --addr "127.0.0.1:$QUIVER_PORT" collection list >/dev/null || fail "compose: quiverd with the env file's key"
figure "compose up to the quiverd target up" "$(since "$t") s"
docker_compose down -v >>"$WORK/compose.log" 2>&1
COMPOSE_UP=""

log "passed"
printf '%s\n' "${FIGURES[@]}" "$(printf '%-42s %s' "docker-test.sh total" "$(since "$T0") s")"
