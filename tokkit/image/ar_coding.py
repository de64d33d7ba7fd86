"""Context coding of image token ids with the autoregressive prior (``.tok`` version 3).

Position j of an image is arithmetic-coded (the exact integer coder of :mod:`tokkit.image.entropy`) with the
prior's conditional ``p(id_j | id_<j)``, quantised to integer frequencies that the encoder and the decoder
compute identically:

1. **One fixed computation.** The conditionals always come from the same forward pass: the prior in
   float64, on the CPU, in eval mode (no dropout), on one thread, on a batch of exactly one sequence
   padded to N positions (the pad id is 0). Causal attention is explicit ``masked_fill(-inf)`` +
   ``softmax``, so a future position gets a weight of exactly 0.0 and adds exactly 0.0 to every sum: row j
   of the output is bit-for-bit a function of ``ids[:j]`` alone, whatever the padding. The encoder reads
   all rows from one pass over the real ids; the decoder runs one pass per position over the ids decoded
   so far — same shapes, same kernels, same bits (``tests/test_image_prior.py`` checks this equality
   exactly, on float64 logits).
2. **Integer frequencies.** ``f_j(s) = 1 + floor(p_j(s) * (2**freq_bits - K))``: every code keeps a
   frequency of at least 1 (any id stays codable, however unlikely the prior thinks it), the total is at
   most ``2**freq_bits``, and the integers feed the exact coder, which does no rounding of its own.
3. **Identity.** The file stores the prior id: sha256 of the prior's weights file and of the settings
   that change the frequencies (``freq_bits``, K, N). A file coded with another prior is refused. The file
   also stores a crc32 of the decoded ids, so if another machine's float64 kernels ever rounded one
   conditional across a quantisation step (possible in principle across CPU instruction sets or torch
   builds — the probability is of order ``1e-16 * 2**freq_bits`` per symbol), decoding fails loudly instead
   of returning other ids.
"""

from __future__ import annotations

import hashlib
import json
import math
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from safetensors.torch import load_file

from tokkit.errors import FormatError, MissingFileError
from tokkit.image.entropy import decode_with_cums, encode_with_cums
from tokkit.image.errors import CorruptTokFileError, TokenCountError
from tokkit.image.prior import ARPrior, PriorConfig

__all__ = ["ARCoder", "PRIOR_WEIGHTS", "PRIOR_CONFIG"]

PRIOR_WEIGHTS, PRIOR_CONFIG = "prior.safetensors", "prior_config.json"


@contextmanager
def _one_thread() -> Iterator[None]:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


class ARCoder:
    """A trained AR prior ready to code, decode and sample (CPU; coding in float64)."""

    def __init__(self, model: ARPrior, *, prior_id: str, tokenizer_id: str, tokenizer_path: str | None = None) -> None:
        self.model = model.eval()
        self.model64 = ARPrior(model.cfg, codebook_size=model.codebook_size, max_tokens=model.max_tokens).double().eval()
        self.model64.load_state_dict({k: v.detach().cpu().double() for k, v in model.state_dict().items()})
        self.cfg: PriorConfig = model.cfg
        self.codebook_size, self.max_tokens = model.codebook_size, model.max_tokens
        self.prior_id, self.tokenizer_id, self.tokenizer_path = prior_id, tokenizer_id, tokenizer_path

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, folder: str | Path) -> "ARCoder":
        """Load ``prior_config.json`` + ``prior.safetensors`` (what ``tokkit image prior train`` writes)."""
        d = Path(folder)
        if not (d / PRIOR_WEIGHTS).is_file() or not (d / PRIOR_CONFIG).is_file():
            raise MissingFileError(f"{d} is not an AR token prior: expected {PRIOR_WEIGHTS} and {PRIOR_CONFIG} in it; "
                                   "train one with `tokkit image prior train CKPT --data TRAIN_IMAGES -o DIR`")
        try:
            meta = json.loads((d / PRIOR_CONFIG).read_text())
            cfg = PriorConfig.model_validate(meta["recipe"])
            model = ARPrior(cfg, codebook_size=int(meta["codebook_size"]), max_tokens=int(meta["max_tokens"]))
            model.load_state_dict(load_file(str(d / PRIOR_WEIGHTS)))
        except Exception as e:  # json, pydantic, safetensors and shape errors alike mean the folder is damaged
            raise FormatError(f"{d} does not hold a readable AR token prior ({e}); retrain it with --force") from None
        return cls(model, prior_id=prior_id_of(d), tokenizer_id=meta["tokenizer_id"], tokenizer_path=meta.get("tokenizer"))

    # ---- conditionals ------------------------------------------------------------------------
    @torch.no_grad()
    def logits64(self, ids: list[int]) -> torch.Tensor:
        """``(len(ids), K)`` float64 logits: row j = ``log p(id_j | ids[:j])`` up to a constant (the fixed pass)."""
        N = self.max_tokens
        row = torch.zeros(1, N, dtype=torch.long)
        row[0, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        with _one_thread():
            return self.model64(row)[0, : len(ids)]

    def quantise(self, logits: torch.Tensor) -> np.ndarray:
        """``(L, K)`` float64 logits -> ``(L, K + 1)`` int64 cumulative frequencies (each symbol >= 1)."""
        p = torch.softmax(logits, -1).numpy()
        f = 1 + np.floor(p * float((1 << self.cfg.freq_bits) - self.codebook_size)).astype(np.int64)
        return np.concatenate([np.zeros((f.shape[0], 1), dtype=np.int64), np.cumsum(f, 1)], 1)

    def cums(self, ids: list[int]) -> np.ndarray:
        """Cumulative frequencies of positions ``0..len(ids)-1`` given the ids (encoder side)."""
        self._check(ids)
        return self.quantise(self.logits64(ids))

    def _check(self, ids: list[int]) -> None:
        if not 1 <= len(ids) <= self.max_tokens:
            raise TokenCountError(f"each image needs 1..{self.max_tokens} tokens, found {len(ids)}")
        if min(ids) < 0 or max(ids) >= self.codebook_size:
            raise TokenCountError(f"ids must lie in 0..{self.codebook_size - 1}, found {min(ids)}..{max(ids)}")

    # ---- coding ------------------------------------------------------------------------------
    def encode_ids(self, ids: list[int]) -> bytes:
        """Arithmetic code of one image's ids (any 1 <= k <= N)."""
        return encode_with_cums(ids, list(self.cums(ids)))

    def decode_ids(self, data: bytes, k: int) -> list[int]:
        """Inverse of :meth:`encode_ids`: one forward pass per position over the ids decoded so far."""
        if not 1 <= k <= self.max_tokens:
            raise CorruptTokFileError(f"an AR-coded image declares {k} tokens; the prior has N = {self.max_tokens}")
        return decode_with_cums(data, k, lambda j, prefix: self.quantise(self.logits64([*prefix, 0])[j:j + 1])[0])

    def prefix_bytes(self, ids: list[int]) -> list[int]:
        """Coded bytes of every prefix ``ids[:k]``, k = 1..len(ids) (one pass; nondecreasing in k)."""
        cums = list(self.cums(ids))
        return [len(encode_with_cums(ids[:k], cums[:k])) for k in range(1, len(ids) + 1)]

    def bits(self, ids: list[int]) -> float:
        """``-sum_j log2(f_j(id_j) / T_j)`` with the quantised frequencies: the coder gets within 2 bits of it."""
        cums = self.cums(ids)
        return -sum(math.log2(int(c[s + 1] - c[s]) / int(c[-1])) for s, c in zip(ids, cums))

    def sample(self, n: int, k: int, *, temperature: float = 1.0, seed: int = 0) -> torch.Tensor:
        """``(n, k)`` sampled ids (float32 forward; sampling needs no bit-exactness)."""
        if not 1 <= k <= self.max_tokens:
            raise TokenCountError(f"k must lie in 1..{self.max_tokens} (the prior's N), found {k}")
        return self.model.sample(n, k, temperature=temperature, generator=torch.Generator().manual_seed(seed)).cpu()


def prior_id_of(folder: Path) -> str:
    """16 hex digits: sha256 of the weights file plus the settings that change the quantised frequencies."""
    meta = json.loads((Path(folder) / PRIOR_CONFIG).read_text())
    h = hashlib.sha256((Path(folder) / PRIOR_WEIGHTS).read_bytes())
    h.update(json.dumps({"freq_bits": meta["recipe"]["freq_bits"], "K": meta["codebook_size"], "N": meta["max_tokens"],
                         "coder": "ar-v3"}, sort_keys=True).encode())
    return h.hexdigest()[:16]
