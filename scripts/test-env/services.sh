# Private services for the test suite, sourced by scripts/test.sh and scripts/test-env.sh.
# Everything starts as a child of the calling shell and is stopped by PID at teardown.
# Nothing here reaches beyond loopback and the networks of the private Docker daemon.

TEST_DOCKER=/usr/bin/docker # Debian's 20.10 client: BuildKit works without buildx.
TEST_PIDS=()

# Prints what is missing for the full suite; returns 1 when anything is.
check_test_prerequisites() {
  local missing=()
  local command
  for command in /usr/sbin/dockerd /usr/bin/docker pebble pebble-challtestsrv docker-registry \
    /usr/bin/chromium busybox openssl iptables curl; do
    command -v "$command" >/dev/null 2>&1 || missing+=("$command")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "missing for the test suite: ${missing[*]}" >&2
    echo "install them with: sudo bash scripts/install-test-deps.sh" >&2
    return 1
  fi
}

# Waits until "$@" succeeds, up to $1 seconds.
wait_for() {
  local seconds=$1
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "timed out after ${seconds}s waiting for: $*" >&2
      return 1
    fi
    sleep 0.1
  done
}

start_test_dockerd() {
  local dir=$1
  mkdir -p "$dir/data" "$dir/exec"
  /usr/sbin/dockerd \
    --data-root="$dir/data" --exec-root="$dir/exec" --pidfile="$dir/dockerd.pid" \
    -H "unix://$dir/docker.sock" --storage-driver=vfs \
    --bridge=none --iptables=false --ip-masq=false --ip6tables=false \
    --default-address-pool "base=${EDGE_TEST_ADDRESS_POOL:-10.213.0.0/16},size=24" \
    --log-level=warn >"$dir/dockerd.log" 2>&1 &
  TEST_PIDS+=($!)
  export DOCKER_HOST="unix://$dir/docker.sock"
  export EDGE_TEST_DOCKER_SOCKET="$dir/docker.sock"
  wait_for 30 "$TEST_DOCKER" version || {
    cat "$dir/dockerd.log" >&2
    return 1
  }
  # Another rootful daemon on the host may have set the FORWARD policy to DROP with
  # br_netfilter loaded, which drops traffic between containers of our bridges. Test
  # networks use bridge names starting with dkt-, so one rule covers them all.
  if ! iptables -C FORWARD -i dkt+ -o dkt+ -j ACCEPT 2>/dev/null; then
    iptables -I FORWARD -i dkt+ -o dkt+ -j ACCEPT 2>/dev/null && TEST_FORWARD_RULE=1
  fi
  return 0
}

start_test_registry() {
  local dir=$1 port=$2
  mkdir -p "$dir/data"
  cat >"$dir/config.yml" <<YAML
version: 0.1
log: {level: warn, accesslog: {disabled: true}}
storage: {filesystem: {rootdirectory: $dir/data}, delete: {enabled: true}}
http: {addr: 127.0.0.1:$port, secret: test-$RANDOM$RANDOM}
YAML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  TEST_PIDS+=($!)
  export EDGE_TEST_REGISTRY="127.0.0.1:$port"
  wait_for 20 curl -fsS "http://127.0.0.1:$port/v2/"
}

# Builds edge-test/busybox:1 and edge-test/node-base:20 from host files: no registry needed.
build_test_base_images() {
  local dir=$1
  local rootfs="$dir/busybox" applet
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc"
  cp "$(command -v busybox)" "$rootfs/bin/busybox"
  for applet in sh nc cat ls sleep echo env printf kill; do ln -sf busybox "$rootfs/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$rootfs/etc/passwd"
  tar -C "$rootfs" -c . | "$TEST_DOCKER" import -c 'ENV PATH=/bin' - edge-test/busybox:1 >/dev/null

  rootfs="$dir/node"
  mkdir -p "$rootfs/usr/bin" "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/app"
  chmod 1777 "$rootfs/tmp"
  local node_bin
  node_bin=$(readlink -f "$(command -v node)")
  cp "$node_bin" "$rootfs/usr/bin/node"
  ldd "$node_bin" | awk '$2=="=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u |
    while read -r lib; do cp --parents -L "$lib" "$rootfs"; done
  cp "$(command -v busybox)" "$rootfs/bin/busybox"
  for applet in sh nc cat ls sleep echo env printf kill; do ln -sf busybox "$rootfs/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/app:/bin/sh\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnode:x:1000:\n' >"$rootfs/etc/group"
  printf 'hosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  tar -C "$rootfs" -c . | "$TEST_DOCKER" import -c 'ENV PATH=/usr/bin:/bin' -c 'WORKDIR /app' \
    -c 'CMD ["node"]' - edge-test/node-base:20 >/dev/null
  rm -rf "$dir/busybox" "$dir/node"
}

stop_test_services() {
  set +e
  if [ -n "${EDGE_TEST_DOCKER_SOCKET:-}" ] && [ -S "$EDGE_TEST_DOCKER_SOCKET" ]; then
    local ids networks
    ids=$("$TEST_DOCKER" ps -aq 2>/dev/null)
    [ -n "$ids" ] && "$TEST_DOCKER" rm -f $ids >/dev/null 2>&1
    networks=$("$TEST_DOCKER" network ls -q --filter type=custom 2>/dev/null)
    [ -n "$networks" ] && "$TEST_DOCKER" network rm $networks >/dev/null 2>&1
  fi
  local pid
  for pid in "${TEST_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${TEST_PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  [ "${TEST_FORWARD_RULE:-0}" = 1 ] && iptables -D FORWARD -i dkt+ -o dkt+ -j ACCEPT 2>/dev/null
  TEST_PIDS=()
}
