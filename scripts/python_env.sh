# Sourced by install.sh, quickstart.sh and .ci/run: sets PY to the Python the project installs into.
# Inside an active virtual environment (or with PYTHON=...) that one; otherwise ./.venv, created on
# first use, so pip never writes into a system interpreter (Debian's refuses: externally-managed-environment).
in_venv() { "$1" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; }

if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif in_venv python3; then
  PY=python3
else
  if [ ! -x .venv/bin/python ]; then
    echo "==> creating the virtual environment .venv (python3 -m venv)"
    if ! python3 -m venv .venv; then
      rm -rf .venv
      echo "python3 -m venv failed: on Debian/Ubuntu install it with 'sudo apt-get install python3-venv'," >&2
      echo "or activate a virtual environment of your own and run this again" >&2
      exit 1
    fi
  fi
  PY=.venv/bin/python
fi
