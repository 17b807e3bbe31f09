#!/usr/bin/env bash
# Checks deploy/k8s without a cluster: kubectl renders the kustomization
# (every manifest parses as Kubernetes objects), then check.py compares the
# manifests with the Dockerfile (EXPOSE, VOLUME, USER, HEALTHCHECK), the
# entrypoint's variables and quiverd's flags (quiverd --help).
# `kubectl apply --dry-run=client` is run too when a cluster answers: even a
# client-side dry run asks the API server which resources exist.
# Installs kubectl (Debian's kubernetes-client) and python3-yaml if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
need=()
command -v kubectl >/dev/null || need+=(kubernetes-client)
/usr/bin/python3 -c 'import yaml' 2>/dev/null || need+=(python3-yaml)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${need[@]}" >/dev/null
fi
# Any quiverd of this tree answers --help the same: the optimised build's,
# else the test command's (ASan) build, else one built now.
if [ -z "${QUIVERD:-}" ]; then
  for q in build/quiverd build-asan/quiverd; do
    if [ -x "$q" ]; then QUIVERD=$q; break; fi
  done
fi
QUIVERD=${QUIVERD:-build/quiverd}
if [ ! -x "$QUIVERD" ]; then
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build -j"${JOBS:-2}" --target quiverd >/dev/null
fi
rendered=$(mktemp)
trap 'rm -f "$rendered"' EXIT
kubectl kustomize deploy/k8s >"$rendered"
if kubectl version --request-timeout=5s >/dev/null 2>&1; then
  kubectl apply --dry-run=client -k deploy/k8s
fi
"$QUIVERD" --help >"$rendered.help"
trap 'rm -f "$rendered" "$rendered.help"' EXIT
/usr/bin/python3 deploy/k8s/check.py "$rendered" "$rendered.help"
