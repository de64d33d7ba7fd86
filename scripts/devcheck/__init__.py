"""The device check behind ``scripts/gpu_check.py``: every CUDA path of tokkit against its CPU path.

Each check runs one library path twice, on the CPU (the reference) and on the device under test,
compares the two results within a stated tolerance and times both (seconds, tokens or rows per
second, peak device memory). The models have the real shapes of SmolLM2-135M and Llama-3.2-1B
(``configs/``) with seeded random weights, paired with the real tokenizer files; nothing is
downloaded. ``--tiny`` shrinks the models (same vocabularies) so the CPU twin runs in CI.

Modules: ``common`` (context, timing, comparisons, the check runner), ``env`` (preflight and the
carry folder), ``models`` (random-weight model folders), ``embed_checks`` (reconstruction,
transplant, extend, distill), ``train_checks`` (heal, hypernet, image), ``infer_checks`` (bytes,
eval-lm), ``report`` (JSON and text).
"""
