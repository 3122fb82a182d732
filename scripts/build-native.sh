#!/usr/bin/env bash
# Compiles the three addons in native/. malloc-trim.node (Node-API, C) calls glibc's malloc_trim
# after the idle garbage collection. low-memory.node (V8's C++ API) calls V8's
# LowMemoryNotification after start. session-tickets.node (V8's C++ API) sets the number of TLS
# 1.3 session tickets on the HTTPS listener. Needs a C and a C++ compiler (cc, c++) and
# Node's headers, which the official node images and Node's release tarballs have in
# include/node next to bin/node. The C++ addons load only in the Node major version whose
# headers built them.
# Usage: scripts/build-native.sh [OUT_DIR]   (default: native/build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-native/build}
c_compiler=${CC:-cc}
cxx_compiler=${CXX:-c++}
for compiler in "$c_compiler" "$cxx_compiler"; do
  if ! command -v "$compiler" >/dev/null; then
    echo "build-native: compiler '$compiler' not found; install gcc and g++ (Debian: apt-get install gcc g++ libc6-dev) or set CC and CXX" >&2
    exit 1
  fi
done
headers=$(node -p "require('node:path').resolve(process.execPath, '../../include/node')")
for header in node_api.h node.h openssl/ssl.h; do
  if [ ! -f "$headers/$header" ]; then
    echo "build-native: $header not found in $headers; use a Node installation that ships its headers" >&2
    exit 1
  fi
done
mkdir -p "$out"
# Built in a temporary directory, so an interrupted build leaves no partial file in OUT_DIR. The
# edge loads an addon only when it matches the SHA-256 written next to it, so a file damaged by
# an interrupted copy is skipped instead of crashing dlopen.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$c_compiler" -O2 -Wall -Wextra -Werror -shared -fPIC -isystem "$headers" \
  -o "$work/malloc-trim.node" native/malloc-trim.c
# Node's and V8's headers are -isystem, so their own warnings do not fail the build.
for addon in session-tickets low-memory; do
  "$cxx_compiler" -O2 -std=c++17 -Wall -Wextra -Werror -shared -fPIC -isystem "$headers" \
    -o "$work/$addon.node" "native/$addon.cc"
done
for addon in malloc-trim session-tickets low-memory; do
  sha256sum "$work/$addon.node" | cut -d ' ' -f 1 >"$work/$addon.node.sha256"
  mv -f "$work/$addon.node.sha256" "$out/$addon.node.sha256"
  mv -f "$work/$addon.node" "$out/$addon.node"
done
