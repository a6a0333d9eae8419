#!/usr/bin/env bash
# Time the step that dominates a fresh install: compiling llama-cpp-python, once with its own
# defaults (what install.sh did before 2026-12-02) and once with the project's flags
# (scripts/llama_cmake_args.sh). Both builds start from an empty pip cache on the same machine,
# one after the other; nothing else should run meanwhile. Writes benchmarks/<name>.md.
# Usage: scripts/bench_llama_build.sh [name]   (about 20 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
NAME=${1:-install-llama-build}
VERSION=$($PY -c 'from importlib.metadata import version; print(version("llama-cpp-python"))')
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

build() {  # $1: label, $2: CMAKE_ARGS ("" = llama-cpp-python's defaults)
  local start end load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  start=$(date +%s)
  env CMAKE_ARGS="$2" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" $PY -m pip wheel -q --no-cache-dir --no-deps \
    --no-binary llama-cpp-python "llama-cpp-python==$VERSION" -w "$WORK/$1" >"$WORK/$1.log" 2>&1
  end=$(date +%s)
  printf '| %s | %s | %d s (%dm%02ds) | %s MiB | %s |\n' "$1" "${2:-(none)}" $((end - start)) $(((end - start) / 60)) \
    $(((end - start) % 60)) "$(du -m "$WORK/$1"/*.whl | cut -f1)" "$load"
}

{
  echo "# Fresh install: compiling llama-cpp-python $VERSION, its defaults vs the project's flags"
  echo
  echo "\`scripts/bench_llama_build.sh $NAME\` on $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
  echo "\`pip wheel --no-cache-dir\`, CMAKE_BUILD_PARALLEL_LEVEL=$(nproc), one build after the other."
  echo
  echo "| build | CMAKE_ARGS | wall time | wheel | load average at start |"
  echo "|---|---|---|---|---|"
  build defaults ""
  build project "$(scripts/llama_cmake_args.sh)"
} | tee "benchmarks/$NAME.md"
