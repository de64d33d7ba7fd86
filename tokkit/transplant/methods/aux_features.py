"""Similarity features from an auxiliary text-embedding model (TokenAdapt's setting, arXiv:2505.09738).

``φ(s)`` is the mean-pooled last hidden state of an HF model (``AutoModel`` + ``AutoTokenizer``
from a local folder through :mod:`tokkit.hf_models`: no remote code, safetensors only) over the string ``s``. Strings are token
bytes decoded as UTF-8 with replacement. Cost: one forward pass per source token plus one per new
token, in batches: heavy for large vocabularies, so the default heuristic uses the base model's own
rows instead.
"""

from __future__ import annotations

from typing import Sequence

import torch

from tokkit.errors import MissingFileError
from tokkit.transplant.base import InitContext

__all__ = ["aux_features", "embed_texts"]


@torch.no_grad()
def embed_texts(folder: str, texts: Sequence[str], *, device: torch.device, batch_size: int = 256,
                progress: bool = False) -> torch.Tensor:
    """Unit-norm mean-pooled last hidden states ``(len(texts), H)`` of the model in ``folder``."""
    from pathlib import Path

    from tqdm.auto import tqdm

    from tokkit.hf_models import load_base_model, load_hf_tokenizer

    if not Path(folder).is_dir():
        raise MissingFileError(f"auxiliary embedding model folder {folder} does not exist; pass a local HF model folder")
    tok = load_hf_tokenizer(folder)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    model = load_base_model(folder, device=device)
    out = []
    for s in tqdm(range(0, len(texts), batch_size), desc="aux embeddings", disable=not progress):
        enc = tok(list(texts[s:s + batch_size]), return_tensors="pt", padding=True, truncation=True, max_length=64,
                  add_special_tokens=False).to(device)
        h = model(**enc).last_hidden_state.float()  # (b, T, H)
        m = enc["attention_mask"][:, :, None].float()
        v = (h * m).sum(1) / m.sum(1).clamp_min(1)
        out.append(v / v.norm(dim=1, keepdim=True).clamp_min(1e-12))
    return torch.cat(out).to(device)


def aux_features(folder: str, ctx: InitContext, dst_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(φ of the new tokens (M, H), φ of every source id (R_src, H)); specials/unused get zero features."""
    def text(b: bytes) -> str:
        return b.decode("utf-8", errors="replace") or " "

    dst, src = ctx.alignment.dst, ctx.alignment.src
    phi_new = embed_texts(folder, [text(dst.tokens[i]) for i in dst_ids], device=ctx.device, progress=ctx.progress)
    ords = src.ordinary_ids()
    phi_ord = embed_texts(folder, [text(src.tokens[i]) for i in ords], device=ctx.device, progress=ctx.progress)
    rows = ctx.base.input.weight.shape[0]
    phi_src = torch.zeros(rows, phi_ord.shape[1], device=ctx.device)
    phi_src[torch.tensor(ords, device=ctx.device)] = phi_ord
    return phi_new, phi_src
