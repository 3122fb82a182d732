#!/usr/bin/env bash
# Installs the Debian packages the test suite and the benchmark use. Idempotent.
set -euo pipefail
packages=(docker.io pebble busybox-static docker-registry chromium openssl curl iptables
  iproute2 netcat-openbsd postgresql-client postgresql wrk nginx-light haproxy caddy docker-compose
  gcc g++ libc6-dev)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "all test packages are installed"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# policy-rc.d keeps apt from starting the system docker and registry services: the tests run
# their own private daemon and registry on loopback.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
[ $created_policy = 1 ] && rm -f "$policy"
echo "installed: ${missing[*]}"
