#!/usr/bin/env bash
# KubeLLM's speed against llama.cpp in one run: the candle bench (cargo bench --bench llm) on the
# default GGUF, then llama.cpp (llama-cpp-python from PyPI, built once into a venv under
# ~/.cache/metakube/; a reference, not a dependency) on the same prompt text, tokens and threads.
# Usage: benches/llm_vs_llamacpp.sh   (after models/fetch.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${METAKUBE_CACHE:-$HOME/.cache/metakube}
venv=$cache/llamacpp-venv
version=0.3.36
if ! "$venv/bin/python" -c "import llama_cpp; assert llama_cpp.__version__ == '$version'" 2>/dev/null; then
    echo "installing llama-cpp-python $version into $venv (compiles llama.cpp: several minutes)" >&2
    python3 -m venv "$venv"
    CMAKE_ARGS="-DGGML_NATIVE=ON" "$venv/bin/pip" install --no-cache-dir "llama-cpp-python==$version" >&2
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$root"
METAKUBE_LLM_BENCH_OUT=$out cargo bench -p metakube-benches --bench llm -- --test >&2
"$venv/bin/python" benches/llamacpp_ref.py "$out" --threads "${THREADS:-$(nproc)}"
