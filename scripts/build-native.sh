#!/usr/bin/env bash
# Compiles the Node-API addon in native/ that calls glibc's malloc_trim, which the edge runs after
# its idle garbage collection. Needs a C compiler (cc) and Node's headers, which the official node
# images and Node's release tarballs have in include/node next to bin/node.
# Usage: scripts/build-native.sh [OUT_DIR]   (default: native/build)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-native/build}
compiler=${CC:-cc}
if ! command -v "$compiler" >/dev/null; then
  echo "build-native: C compiler '$compiler' not found; install gcc (Debian: apt-get install gcc libc6-dev) or set CC" >&2
  exit 1
fi
headers=$(node -p "require('node:path').resolve(process.execPath, '../../include/node')")
if [ ! -f "$headers/node_api.h" ]; then
  echo "build-native: node_api.h not found in $headers; use a Node installation that ships its headers" >&2
  exit 1
fi
mkdir -p "$out"
# Built in a temporary directory, so an interrupted build leaves no partial file in OUT_DIR. The
# edge loads the addon only when it matches the SHA-256 written next to it, so a file damaged by
# an interrupted copy is skipped instead of crashing dlopen.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$compiler" -O2 -Wall -Wextra -Werror -shared -fPIC -I"$headers" \
  -o "$work/malloc-trim.node" native/malloc-trim.c
sha256sum "$work/malloc-trim.node" | cut -d ' ' -f 1 >"$work/malloc-trim.node.sha256"
mv -f "$work/malloc-trim.node.sha256" "$out/malloc-trim.node.sha256"
mv -f "$work/malloc-trim.node" "$out/malloc-trim.node"
