#!/usr/bin/env bash
# One command on a fresh machine: install everything, then open the chat on the sample corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
exec "${PYTHON:-python3}" -m rag serve "$@"
