#!/usr/bin/env bash
# Creates .venv and installs pktlstm with training and test extras; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
# torch is pinned to 2.13.0: that CPU build is what these machines carry (relax it elsewhere).
.venv/bin/python -m pip install --quiet "torch==2.13.0" -e ".[train,dev]" 2>&1 \
  | grep -v '^WARNING: Location' || true
.venv/bin/python -c "import pktlstm, torch, numba" \
  || { echo "install failed: see pip output above" >&2; exit 1; }
