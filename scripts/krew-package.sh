#!/usr/bin/env bash
# Packages bin/kubectl-singleton for krew: OUTDIR/kubectl-singleton.tar.gz (a
# reproducible archive: fixed order, owner and mtime) and OUTDIR/singleton.yaml,
# the manifest plugins/singleton.yaml with the release's version, download URL
# and the archive's sha256 filled in. Run by the release workflow; the URL
# points at that release's assets.
#   bash scripts/krew-package.sh VERSION OUTDIR [REPOSITORY]
# VERSION without the leading v (0.1.0); REPOSITORY owner/name, default the
# chart's home (singleton-dev/singleton-operator).
set -euo pipefail
version="${1:?usage: krew-package.sh VERSION OUTDIR [REPOSITORY]}"
out="${2:?usage: krew-package.sh VERSION OUTDIR [REPOSITORY]}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
repo="${3:-$(sed -n 's#^home: https://github.com/##p' "$root/charts/singleton-operator/Chart.yaml")}"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+([-+].*)?$ ]] || { echo "krew-package.sh: version must be x.y.z, not $version" >&2; exit 2; }
[[ "$repo" =~ ^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$ ]] || { echo "krew-package.sh: repository must be owner/name, not $repo" >&2; exit 2; }

mkdir -p "$out"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
install -m 0755 "$root/bin/kubectl-singleton" "$stage/kubectl-singleton"
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - kubectl-singleton | gzip -n -9 > "$out/kubectl-singleton.tar.gz"
sha="$(sha256sum "$out/kubectl-singleton.tar.gz" | cut -d' ' -f1)"
url="https://github.com/$repo/releases/download/v$version/kubectl-singleton.tar.gz"
sed -e "s#^  version: v0\.0\.0\$#  version: v$version#" \
  -e "s#^      uri: .*\$#      uri: $url#" \
  -e "s#^      sha256: .*\$#      sha256: \"$sha\"#" \
  -e "s#^  homepage: .*\$#  homepage: https://github.com/$repo#" \
  -e "/^#/d" "$root/plugins/singleton.yaml" > "$out/singleton.yaml"
if ! grep -q "sha256: \"$sha\"" "$out/singleton.yaml" || ! grep -q "version: v$version" "$out/singleton.yaml"; then
  echo "krew-package.sh: could not fill in plugins/singleton.yaml" >&2
  exit 1
fi
echo "$out/kubectl-singleton.tar.gz sha256 $sha"
echo "$out/singleton.yaml"
