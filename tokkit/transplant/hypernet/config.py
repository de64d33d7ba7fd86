"""User-facing settings of ``tokkit hypernet train`` (one source of defaults; CLI flags overlay them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tokkit.config import SEED_MAX

__all__ = ["HypernetConfig", "ARCH_KEYS", "ARCH_BOUNDS", "arch_problem", "default_warmup"]

#: Fields that define the network and its inputs: a checkpoint is only resumable / usable when they match.
ARCH_KEYS = ("hidden", "layers", "heads", "max_pieces")
#: Inclusive bounds of the network shape: the flags' limits and the check of a checkpoint's ``arch``
#: (a tampered ``hidden`` of 10**6 would ask for terabytes, ``layers`` of 10**6 would build for hours).
ARCH_BOUNDS = {"hidden": (8, 8192), "layers": (1, 64), "heads": (1, 256), "max_pieces": (1, 1024)}
_DEFAULT_WARMUP, _DEFAULT_STEPS = 300, 700


def default_warmup(steps: int) -> int:
    """The warm-up when ``--warmup-steps`` is not given: 300, or 3/7 of ``steps`` when that is fewer
    (the default ratio), so a short run (``--steps 2``) still trains on LM tokens."""
    return min(_DEFAULT_WARMUP, steps * _DEFAULT_WARMUP // _DEFAULT_STEPS)


def arch_problem(arch: Any) -> str | None:
    """What is wrong with a network shape ``{hidden, layers, heads, max_pieces}`` (None: nothing).

    Used by the config (flags) and by every checkpoint load, so a hand-edited checkpoint fails the
    same check as a bad flag: each value an integer (not a bool, float or string) within
    :data:`ARCH_BOUNDS`, and ``heads`` dividing ``hidden`` (the attention splits the width).
    """
    if not isinstance(arch, dict):
        return f"arch is {type(arch).__name__}, expected an object with keys {', '.join(ARCH_KEYS)}"
    for k in ARCH_KEYS:
        v = arch.get(k)
        lo, hi = ARCH_BOUNDS[k]
        if type(v) is not int:
            return f"arch.{k} is {v!r} ({type(v).__name__}), expected an integer in {lo}..{hi}"
        if not lo <= v <= hi:
            return f"arch.{k} is {v}, expected an integer in {lo}..{hi}"
    extra = sorted(set(arch) - set(ARCH_KEYS))
    if extra:
        return f"arch has unknown keys {extra}, expected only {', '.join(ARCH_KEYS)}"
    if arch["hidden"] % arch["heads"]:
        return f"--heads {arch['heads']} must divide --hidden {arch['hidden']}"
    return None


class HypernetConfig(BaseModel):
    """Everything a hypernetwork training run needs (ZeTT, Minixhofer et al., arXiv:2405.07883, scaled down).

    The sampled-tokenizer settings follow ZeTT's ``sample_tokenizer`` (frequency x length scores of
    substrings, log-normal noise, UnigramLM); sizes are small so a 135M base trains on a CPU.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(description="base model: alias (smollm2), HF folder")
    corpus: tuple[str, ...] = Field(description="text files or folders of .txt/.jsonl files (training text)")
    steps: int = Field(700, ge=1, description="optimizer steps in total (warm-up steps included)")
    warmup_steps: int = Field(_DEFAULT_WARMUP, ge=0, description="first steps: reconstruct base tokens from their sub-pieces "
                              "only (no LM); must be fewer than steps. Not given: 300, or 3/7 of steps when fewer "
                              "(:func:`default_warmup`)")
    batch_size: int = Field(4, ge=1, description="text sequences per step")
    seq_len: int = Field(128, ge=8, description="tokens per sequence (sampled tokenizer), start token excluded")
    vocab_size: int = Field(3000, ge=300, description="pieces of a sampled tokenizer besides its 256 bytes")
    noise_log_sigma: float = Field(1.0, ge=0, description="sampled tokenizers: log-normal noise scale of the piece scores")
    max_words: int = Field(3, ge=1, le=8, description="longest sampled piece in words (>1: multi-word pieces)")
    multiword_prob: float = Field(0.5, ge=0, le=1, description="share of sampled tokenizers whose pieces may cross words")
    negatives: int = Field(512, ge=0, description="extra sampled-vocab rows in each step's softmax besides the batch's")
    softmax_rows: int = Field(32000, ge=0, description="vocabulary size the step's softmax stands for: each negative "
                              "counts as (softmax_rows - batch rows) / negatives rows (sampled-softmax correction); "
                              "0 = every row counts once")
    aux_tokens: int = Field(256, ge=0, description="base tokens per step rebuilt from sub-pieces for the auxiliary loss")
    aux_weight: float = Field(0.5, ge=0, description="weight of the auxiliary MSE (ZeTT: 0.5)")
    hidden: int = Field(256, ge=8, le=8192, description="hypernetwork width")
    layers: int = Field(2, ge=1, le=64, description="transformer encoder layers")
    heads: int = Field(4, ge=1, le=256, description="attention heads")
    max_pieces: int = Field(8, ge=1, le=1024, description="base pieces per token seen by the network (ZeTT: 7)")
    lr: float = Field(1e-3, gt=0, description="AdamW peak learning rate")
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints")
    seed: int = Field(0, ge=0, le=SEED_MAX)
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda ...")

    @model_validator(mode="before")
    @classmethod
    def _scale_default_warmup(cls, data: Any) -> Any:
        """A warm-up left at its default shrinks with a short run (``--steps 2`` would otherwise be all warm-up)."""
        if isinstance(data, dict) and data.get("warmup_steps") is None and type(data.get("steps")) is int \
                and data["steps"] >= 1:
            data = {**data, "warmup_steps": default_warmup(data["steps"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> "HypernetConfig":
        if self.warmup_steps >= self.steps:
            raise ValueError(f"warmup_steps: {self.warmup_steps} must be fewer than --steps {self.steps}, or the run "
                             f"trains on no LM tokens (warm-up steps reconstruct sub-pieces only); pass --warmup-steps "
                             f"{default_warmup(self.steps)} or raise --steps")
        problem = arch_problem(self.arch())
        if problem:
            divisors = [h for h in range(1, min(self.hidden, 256) + 1) if self.hidden % h == 0]
            raise ValueError(f"heads: {problem}; pass --heads {', '.join(map(str, divisors[:6]))}, "
                             f"or a --hidden that --heads {self.heads} divides")
        return self

    def arch(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ARCH_KEYS}
