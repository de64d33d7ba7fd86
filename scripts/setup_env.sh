# Sourced by quickstart.sh and test.sh: create .venv and install torch (CPU wheel) + tokkit into it.
# Usage: source scripts/setup_env.sh [EXTRAS]   e.g. EXTRAS="[dev]"
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0          # served from a local file on these machines; a bare `torch` pulls CUDA
python -m pip install -q -e ".${1:-}"
export HF_HUB_OFFLINE=1                          # tokkit never needs a model hub: fixtures come from PyPI/npm
