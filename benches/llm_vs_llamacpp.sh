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
# Built for this CPU (-march=native), except on one with AMX: ggml's AMX kernels crashed
# (SIGSEGV in ggml_backend_amx_mul_mat) in a VM that reports amx_int8 without granting the
# tile state, so there the build names this CPU's other features instead (metakube uses no AMX).
cmake_args="-DGGML_NATIVE=ON"
if grep -qw amx_int8 /proc/cpuinfo 2>/dev/null; then
    cmake_args="-DGGML_NATIVE=OFF"
    for f in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx512f:AVX512 avx512vbmi:AVX512_VBMI \
             avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx_vnni:AVX_VNNI; do
        grep -qw "${f%%:*}" /proc/cpuinfo && cmake_args+=" -DGGML_${f##*:}=ON"
    done
fi
built_with="$venv/metakube-cmake-args"
if ! "$venv/bin/python" -c "import llama_cpp; assert llama_cpp.__version__ == '$version'" 2>/dev/null \
    || [ "$(cat "$built_with" 2>/dev/null)" != "$cmake_args" ]; then
    echo "installing llama-cpp-python $version into $venv ($cmake_args; compiles llama.cpp: several minutes)" >&2
    python3 -m venv "$venv"
    CMAKE_ARGS="$cmake_args" "$venv/bin/pip" install --force-reinstall --no-deps --no-cache-dir "llama-cpp-python==$version" >&2
    "$venv/bin/pip" install --no-cache-dir "llama-cpp-python==$version" >&2
    echo "$cmake_args" >"$built_with"
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$cache/target}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
cd "$root"
METAKUBE_LLM_BENCH_OUT=$out cargo bench -p metakube-benches --bench llm -- --test >&2
"$venv/bin/python" benches/llamacpp_ref.py "$out" --threads "${THREADS:-$(nproc)}"
