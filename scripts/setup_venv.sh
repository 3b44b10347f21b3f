#!/usr/bin/env bash
# Create (or reuse) .venv in the repository and install VMIMO into it, editable, with the dev extra.
# Idempotent: a second run with nothing changed only checks the install.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.vmimo-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
    .venv/bin/python -m pip install --quiet --upgrade pip
    .venv/bin/python -m pip install --quiet -c constraints.txt -e ".[dev,contrib]"
    touch "$stamp"
fi
