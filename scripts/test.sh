#!/usr/bin/env bash
# Runs the whole test suite: starts a private Docker daemon, a loopback registry and the base
# images, runs every test file with node's test runner, and stops what it started.
# Usage: scripts/test.sh [test files...]   (default: every test/**/*.test.ts)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/test-env/services.sh

check_test_prerequisites
work=$(mktemp -d /tmp/ce-test.XXXXXX)
cleanup() {
  local status=$?
  stop_test_services
  rm -rf "$work" 2>/dev/null
  exit $status
}
trap cleanup EXIT INT TERM

echo "# starting private Docker daemon, registry and base images in $work"
start_test_dockerd "$work/dk"
start_test_registry "$work/registry" "${EDGE_TEST_REGISTRY_PORT:-5055}"
build_test_base_images "$work/images"
# Builds the addons into native/build, where the edges started by the tests find them.
bash scripts/build-native.sh
mkdir -p test-artifacts

if [ $# -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(find test -name '*.test.ts' | sort)
fi
node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
