#!/usr/bin/env bash
# Builds the client-go peer elector into the cache (never into the checkout),
# keyed by the client-go version in go.mod. Rebuilds only when missing.
# Prints the path of the binary as its last line.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cache="${SINGLETON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/singleton-operator}"
v="$(cd "$here" && go list -m -f '{{.Version}}' k8s.io/client-go)"
out="$cache/bin/clientgo-elector-$v"
if [ ! -x "$out/clientgo-elector" ] || [ "$here/main.go" -nt "$out/clientgo-elector" ]; then
  echo "building clientgo-elector (client-go $v) into $out" >&2
  mkdir -p "$out"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$out/clientgo-elector.tmp.$$" .)
  mv "$out/clientgo-elector.tmp.$$" "$out/clientgo-elector"
fi
echo "$out/clientgo-elector"
