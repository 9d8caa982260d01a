#!/usr/bin/env bash
# Builds the local control-plane binaries (etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, kwok, helm, actionlint, promtool, kstatus, kueue) from the Go module proxy
# and caches them outside the checkout, keyed by version. Rebuilds only what is
# missing. Prints the cache folder holding the binaries as its last line.
#
#   bash test/tools/build.sh            # everything but the real node
#   bash test/tools/build.sh k8s etcd   # a subset
#   bash test/tools/build.sh kueue      # Kueue's controller manager and its config/
#                                       # (CRDs, webhooks) for test/integration/kueue*
#   bash test/tools/build.sh node       # the opt-in real node: kubelet (same k8s
#                                       # tools module) and the sandbox image's
#                                       # static binaries (test/tools/nodeimage)
#
# Versions come from the go.mod files beside this script (one tools module per
# upstream project, because they pin different grpc/otel/cel-go versions).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod
cache="${SINGLETON_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/singleton-operator}"
bin="$cache/bin"
mkdir -p "$bin"

version_of() { # module path, tools dir
  (cd "$here/$2" && go list -m -f '{{.Version}}' "$1")
}

# Shows progress of a long `go build -v`: one line per 100 packages compiled.
progress() {
  awk -v what="$1" '{ n++; if (n % 100 == 0) { printf "  %s: %d packages compiled\n", what, n; fflush() } }'
}

build() { # name, tools dir, output dir, ldflags, packages...
  local name="$1" dir="$2" out="$3" ldflags="$4"; shift 4
  local tmp="$out.tmp.$$"
  echo "building $name into $out (first build takes a while)"
  local start=$SECONDS
  mkdir -p "$tmp"
  (cd "$here/$dir" && go build -v -trimpath -tags=selinux,notest -ldflags "$ldflags" -o "$tmp/" "$@" 2>&1) \
    | tee "$tmp.log" | progress "$name"
  if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "build of $name failed; last lines of the log:" >&2
    tail -30 "$tmp.log" >&2
    exit 1
  fi
  rm -rf "$out" && mv "$tmp" "$out" && rm -f "$tmp.log"
  echo "built $name in $((SECONDS - start)) s"
}

want="${*:-k8s etcd kwok helm actionlint promtool kstatus kueue}"
for what in $want; do
  case "$what" in
    k8s)
      v="$(version_of k8s.io/kubernetes k8s)"
      out="$bin/kubernetes-$v"
      if [ ! -x "$out/kube-apiserver" ] || [ ! -x "$out/kube-controller-manager" ] || [ ! -x "$out/kube-scheduler" ]; then
        minor="${v#v1.}"; minor="${minor%%.*}"
        ld="-s -w"
        for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
          ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=2026-01-01T00:00:00Z"
        done
        build kubernetes k8s "$out" "$ld" k8s.io/kubernetes/cmd/kube-apiserver \
          k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler
      fi ;;
    etcd)
      v="$(version_of go.etcd.io/etcd/server/v3 etcd)"
      out="$bin/etcd-$v"
      if [ ! -x "$out/etcd" ]; then
        build etcd etcd "$out.raw" "-s -w" go.etcd.io/etcd/server/v3
        mkdir -p "$out" && mv "$out.raw"/* "$out/etcd" && rm -rf "$out.raw"
      fi ;;
    kwok)
      v="$(version_of sigs.k8s.io/kwok kwok)"
      out="$bin/kwok-$v"
      if [ ! -x "$out/kwok" ]; then
        build kwok kwok "$out" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$v" sigs.k8s.io/kwok/cmd/kwok
      fi
      # The bare kwok binary has no default stages; they ship in the module.
      stages="$(cd "$here/kwok" && go mod download -json sigs.k8s.io/kwok | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/kustomize/stage"
      [ -d "$stages" ] || { echo "kwok stage files not found at $stages" >&2; exit 1; }
      rm -f "$out/stages" && ln -s "$stages" "$out/stages" ;;
    helm)
      v="$(version_of helm.sh/helm/v4 helm)"
      out="$bin/helm-$v"
      if [ ! -x "$out/helm" ]; then
        build helm helm "$out" "-s -w -X helm.sh/helm/v4/internal/version.version=$v" helm.sh/helm/v4/cmd/helm
      fi ;;
    node)
      v="$(version_of k8s.io/kubernetes k8s)"
      out="$bin/kubelet-$v"
      if [ ! -x "$out/kubelet" ]; then
        minor="${v#v1.}"; minor="${minor%%.*}"
        ld="-s -w"
        for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
          ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=2026-01-01T00:00:00Z"
        done
        build kubelet k8s "$out" "$ld" k8s.io/kubernetes/cmd/kubelet
      fi
      # The sandbox ("pause") image's binaries: tiny static Go programs, keyed by
      # the hash of their sources (no dependencies, a few seconds to build).
      h="$(cd "$here/nodeimage" && cat go.mod $(find . -name '*.go' | sort) | sha256sum | cut -c1-16)"
      out="$bin/nodeimage-$h"
      if [ ! -x "$out/pause" ] || [ ! -x "$out/incluster" ]; then
        build nodeimage nodeimage "$out" "-s -w" ./cmd/pause ./cmd/incluster
      fi ;;
    actionlint) # checks .github/workflows in the unit tests
      v="$(version_of github.com/rhysd/actionlint actionlint)"
      out="$bin/actionlint-$v"
      if [ ! -x "$out/actionlint" ]; then
        build actionlint actionlint "$out" "-s -w -X github.com/rhysd/actionlint.version=$v" github.com/rhysd/actionlint/cmd/actionlint
      fi ;;
    promtool) # checks the chart's PrometheusRule in the unit tests (promtool test rules)
      v="$(version_of github.com/prometheus/prometheus promtool)"
      out="$bin/promtool-$v"
      if [ ! -x "$out/promtool" ]; then
        build promtool promtool "$out" "-s -w -X github.com/prometheus/common/version.Version=$v" github.com/prometheus/prometheus/cmd/promtool
      fi ;;
    kstatus) # the kstatus library's verdict on recorded SingletonJobs (test/integration/gitops-health.test.ts)
      # Our own small program over sigs.k8s.io/cli-utils: keyed by the library's version and the sources' hash.
      v="$(version_of sigs.k8s.io/cli-utils kstatus)"
      h="$(cd "$here/kstatus" && cat go.mod go.sum main.go | sha256sum | cut -c1-12)"
      out="$bin/kstatus-$v-$h"
      if [ ! -x "$out/kstatus" ]; then
        build kstatus kstatus "$out" "-s -w" .
      fi ;;
    kueue) # sigs.k8s.io/kueue's controller manager (test/integration/kueue*.test.ts), its own tools module
      v="$(version_of sigs.k8s.io/kueue kueue)"
      out="$bin/kueue-$v"
      if [ ! -x "$out/kueue" ]; then
        build kueue kueue "$out" "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$v -X sigs.k8s.io/kueue/pkg/version.BuildDate=2026-01-01" \
          sigs.k8s.io/kueue/cmd/kueue
      fi
      # Its CRDs and webhook configurations ship in the module (config/components).
      config="$(cd "$here/kueue" && go mod download -json sigs.k8s.io/kueue | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')/config"
      [ -d "$config/components/crd" ] || { echo "kueue config not found at $config" >&2; exit 1; }
      rm -f "$out/config" && ln -s "$config" "$out/config" ;;
    *) echo "unknown component '$what' (expected k8s, etcd, kwok, helm, node, actionlint, promtool, kstatus or kueue)" >&2; exit 2 ;;
  esac
done
echo "$bin"
