#!/usr/bin/env bash
# Deploy under load: a private Docker engine and loopback registry from the test harness, a backend
# container behind the edge, continuous HTTPS load on /api/ while the deploy CLI swaps the image.
# Reports failed requests and the switch overhead. Needs root (dockerd) like npm test.
# Environment: BENCH_DEPLOY_ADDRESS_POOL (10.231.0.0/16), BENCH_DEPLOY_REGISTRY_PORT (18050),
#   BENCH_PORT_BASE (18100 here), BENCH_DEPLOY_LOAD_S (load after the deploy ends, 3).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-env/services.sh

check_test_prerequisites
work=$(mktemp -d /tmp/ce-deploy-bench.XXXXXX)
chmod 755 "$work"
cleanup() {
  local status=$?
  if [ -n "${runner_pid:-}" ]; then kill -TERM "$runner_pid" 2>/dev/null && wait "$runner_pid"; fi
  if [ -f "$work/pids" ]; then
    local pid
    while read -r pid; do kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null; done <"$work/pids"
  fi
  stop_test_services
  rm -rf "$work" 2>/dev/null
  exit $status
}
trap cleanup EXIT INT TERM

# A pool of its own so a test run of another checkout on this host does not collide with it.
export EDGE_TEST_ADDRESS_POOL=${BENCH_DEPLOY_ADDRESS_POOL:-10.231.0.0/16}
echo "# starting a private Docker daemon and registry in $work"
start_test_dockerd "$work/dk"
start_test_registry "$work/registry" "${BENCH_DEPLOY_REGISTRY_PORT:-18050}"
build_test_base_images "$work/images"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null

node --import tsx bench/deploy-under-load.ts --work "$work" "$@" &
runner_pid=$!
wait "$runner_pid"
runner_pid=
