#!/usr/bin/env bash
# Benchmarks caliente-edge side by side with nginx (1 worker), Caddy and HAProxy on loopback.
# Usage: npm run bench [-- --quick | --profile]
#   --quick     one short round of every scenario (a smoke run of about a minute)
#   --profile   only the edge: CPU profile during the small keep-alive scenario
# Environment: BENCH_DURATION_S (10), BENCH_ROUNDS (3), BENCH_WARMUP_S (3), BENCH_CONNECTIONS (64),
#   BENCH_PORT_BASE (18000), BENCH_SCENARIOS and BENCH_TARGETS (comma lists; all by default),
#   BENCH_KEEP_WORK=1 keeps the work directory (configs, logs) for inspection.
# Installs nothing: it lists what is missing and the command that installs it.
set -euo pipefail
cd "$(dirname "$0")/.."

check_prerequisites() {
  local missing=() command
  for command in nginx caddy haproxy openssl; do
    command -v "$command" >/dev/null 2>&1 || missing+=("$command")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing ${missing[*]}" >&2
    echo "install with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  if ! command -v wrk >/dev/null 2>&1; then
    echo "bench: wrk not found; install it with: sudo apt-get install -y wrk" >&2
    echo "bench: the load generator falls back to autocannon from node_modules" >&2
    [ -x node_modules/.bin/autocannon ] || {
      echo "bench: autocannon missing too; run: npm ci" >&2
      exit 1
    }
  fi
  [ -d node_modules/tsx ] || {
    echo "bench: node_modules missing; run: npm ci" >&2
    exit 1
  }
}

# Stops by PID whatever the runner recorded and did not stop itself (it crashed or was killed).
cleanup() {
  local status=$?
  if [ -n "${runner_pid:-}" ]; then kill -TERM "$runner_pid" 2>/dev/null && wait "$runner_pid"; fi
  if [ -f "$work/pids" ]; then
    local pid
    while read -r pid; do
      kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null
    done <"$work/pids"
    sleep 0.5
    while read -r pid; do
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done <"$work/pids"
  fi
  if [ "${BENCH_KEEP_WORK:-0}" = 1 ]; then
    echo "bench: work dir kept at $work"
  else
    rm -rf "$work"
  fi
  exit $status
}

# One ECDSA P-256 certificate per run, shared by every proxy.
make_certificate() {
  mkdir -p "$work/tls"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$work/tls/key.pem" -out "$work/tls/cert.pem" -days 2 -subj "/CN=localhost" \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
  cat "$work/tls/cert.pem" "$work/tls/key.pem" >"$work/tls/combined.pem"
}

check_prerequisites
work=$(mktemp -d /tmp/ce-bench.XXXXXX)
chmod 755 "$work"
trap cleanup EXIT INT TERM

make_certificate
mkdir -p "$work/www"
head -c 102400 /dev/urandom >"$work/www/100k.bin"
chmod -R a+rX "$work/www"

node --import tsx bench/runner.ts --work "$work" "$@" &
runner_pid=$!
wait "$runner_pid"
runner_status=$?
runner_pid=
exit $runner_status
