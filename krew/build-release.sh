#!/usr/bin/env bash
# Builds the krew release archive for the platform this runs on and writes its sha256 into
# krew/metakube.yaml. Run it once per platform (linux/darwin × amd64/arm64) on a machine of
# that platform; each run updates only its own entry.
#
#   krew/build-release.sh            # -> dist/metakube_v<version>_<os>_<arch>.tar.gz
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/metakube/target-release}"
version="v$(grep -m1 '^version' Cargo.toml | sed 's/.*"\(.*\)".*/\1/')"
case "$(uname -s)" in Linux) os=linux ;; Darwin) os=darwin ;; *) echo "unsupported OS" >&2; exit 1 ;; esac
case "$(uname -m)" in x86_64|amd64) arch=amd64 ;; aarch64|arm64) arch=arm64 ;; *) echo "unsupported arch" >&2; exit 1 ;; esac
# Portable CPU baseline for release binaries (the dev build uses target-cpu=native).
if [[ "$arch" == amd64 ]]; then export RUSTFLAGS="-C target-cpu=x86-64-v3"; else export RUSTFLAGS=""; fi
cargo build --release --locked -p kubectl-metakube -p metakubed
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp "$CARGO_TARGET_DIR/release/kubectl-metakube" "$CARGO_TARGET_DIR/release/metakubed" LICENSE "$stage/"
if [[ "$os" == linux ]]; then
  mkdir -p "$stage/systemd"
  cp kubectl-metakube/systemd/metakubed.service kubectl-metakube/systemd/metakubed.socket "$stage/systemd/"
fi
mkdir -p dist
archive="dist/metakube_${version}_${os}_${arch}.tar.gz"
tar -C "$stage" -czf "$archive" .
sum="$(sha256sum "$archive" | cut -d' ' -f1)"
python3 - "$os" "$arch" "$sum" "$version" <<'PY'
import re, sys
os_, arch, sha, version = sys.argv[1:]
path = "krew/metakube.yaml"
text = open(path).read()
text = re.sub(r"(?m)^  version: v\S+$", f"  version: {version}", text)
text = re.sub(r"/download/v[^/]+/metakube_v[^_]+_", f"/download/{version}/metakube_{version}_", text)
# Quoted: an all-digit sha256 unquoted is a YAML integer, which krew rejects.
pat = re.compile(rf"(os: {os_}\n\s+arch: {arch}\n\s+uri: \S+\n\s+sha256: )\"?[0-9a-f]{{64}}\"?")
text, n = pat.subn(rf'\g<1>"{sha}"', text)
assert n == 1, f"no platform entry for {os_}/{arch}"
open(path, "w").write(text)
PY
echo "built $archive (sha256 $sum); krew/metakube.yaml updated for $os/$arch"
