"""User-facing settings of ``tokkit hypernet train`` (one source of defaults; CLI flags overlay them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from tokkit.config import SEED_MAX

__all__ = ["HypernetConfig", "ARCH_KEYS"]

#: Fields that define the network and its inputs: a checkpoint is only resumable / usable when they match.
ARCH_KEYS = ("hidden", "layers", "heads", "max_pieces")


class HypernetConfig(BaseModel):
    """Everything a hypernetwork training run needs (ZeTT, Minixhofer et al., arXiv:2405.07883, scaled down).

    The sampled-tokenizer settings follow ZeTT's ``sample_tokenizer`` (frequency x length scores of
    substrings, log-normal noise, UnigramLM); sizes are small so a 135M base trains on a CPU.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: str = Field(description="base model: alias (smollm2), HF folder")
    corpus: tuple[str, ...] = Field(description="text files or folders of .txt/.jsonl files (training text)")
    steps: int = Field(700, ge=1, description="optimizer steps in total (warm-up steps included)")
    warmup_steps: int = Field(300, ge=0, description="first steps: reconstruct base tokens from their sub-pieces only (no LM)")
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
    hidden: int = Field(256, ge=8, description="hypernetwork width")
    layers: int = Field(2, ge=1, description="transformer encoder layers")
    heads: int = Field(4, ge=1, description="attention heads")
    max_pieces: int = Field(8, ge=1, description="base pieces per token seen by the network (ZeTT: 7)")
    lr: float = Field(1e-3, gt=0, description="AdamW peak learning rate")
    weight_decay: float = Field(0.01, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(50, ge=1, description="steps between checkpoints")
    seed: int = Field(0, ge=0, le=SEED_MAX)
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda ...")

    def arch(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in ARCH_KEYS}
