#!/usr/bin/env bash
# Refresh the screenshots in docs/ by running the browser tests (real models for the chat and
# knowledge-base pages, the fast fakes for the retrieval test page and the full-text view).
set -euo pipefail
cd "$(dirname "$0")/.."
RAG_SCREENSHOT_DIR=docs python3 -m pytest -p no:randomly tests/test_browser.py tests/test_browser_features.py "$@"
