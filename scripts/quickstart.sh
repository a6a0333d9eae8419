#!/usr/bin/env bash
# One command on a fresh machine: install everything, then open the chat on the sample corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
. scripts/python_env.sh
exec "$PY" -m rag serve "$@"
