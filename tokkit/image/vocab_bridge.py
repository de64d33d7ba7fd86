"""Append image tokens to a text LM: tokenizer entries plus embedding rows from the codebook.

The path to a unified token space (as in Chameleon, arXiv:2405.09818, or Emu3, arXiv:2409.18869, where
image codes are ordinary vocabulary entries): each code ``i`` of an image tokenizer's
:class:`~tokkit.vocab.CodebookVocab` becomes an added token ``<img_i>`` (plus ``<img_start>`` /
``<img_end>``), and its embedding row is initialised from the code vector through a closed-form
linear projection into the LM's embedding space, so that the new rows start with the text rows'
statistics instead of random noise:

    rows = mu_E + C_w @ (V_d * s_d)      C_w: whitened, centred codebook (K, d)
                                         V_d, s_d: top-d principal directions / std of the text rows

i.e. the least-squares fit of the codebook's second moments to the text embedding's leading principal
subspace (moment matching: the image rows get the text rows' mean and, along d directions, their
covariance; distinct codes stay distinct, and close codes stay close). A *learned* projection needs
paired image/text data and fine-tuning, which is the next step; this initialisation is where it starts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from tokkit.embedding import EmbeddingTable, ModelEmbeddings, load_model_embeddings, write_model_folder
from tokkit.formats.hf_json import vocab_from_json
from tokkit.image.api import ImageTokenizer
from tokkit.tokenizer import load_tokenizer

__all__ = ["project_codebook", "add_image_tokens", "image_token_texts"]

log = logging.getLogger(__name__)


def image_token_texts(size: int) -> list[str]:
    """Token strings for a K-code codebook: ``<img_0>`` .. ``<img_{K-1}>``, ``<img_start>``, ``<img_end>``."""
    return [f"<img_{i}>" for i in range(size)] + ["<img_start>", "<img_end>"]


def project_codebook(codebook: torch.Tensor, text_rows: torch.Tensor) -> torch.Tensor:
    """``codebook (K, d)``, ``text_rows (V, D)`` -> ``(K, D)`` rows with the text rows' mean and top-d covariance."""
    C = codebook.double()
    E = text_rows.double()
    d = min(C.shape[1], E.shape[1])
    mu = E.mean(0)
    # whiten the codebook (PCA): each of its d directions gets unit variance
    Cc = C - C.mean(0)
    _, sc, vc = torch.linalg.svd(Cc, full_matrices=False)
    Cw = Cc @ vc[:d].T / (sc[:d] / (C.shape[0] ** 0.5)).clamp_min(1e-8)  # (K, d)
    _, se, ve = torch.linalg.svd(E - mu, full_matrices=False)
    basis = ve[:d] * (se[:d] / (E.shape[0] ** 0.5))[:, None]  # (d, D)
    return (mu + Cw @ basis).to(text_rows.dtype)


def add_image_tokens(image_tok: ImageTokenizer, lm_folder: str | Path, out: str | Path, *, force: bool = False) -> dict:
    """Write an HF model folder = ``lm_folder`` + K+2 image tokens with projected rows; returns a summary."""
    from tokenizers import AddedToken

    lm = Path(lm_folder)
    text = load_tokenizer(lm)
    emb = load_model_embeddings(lm, vocab=text.vocab)
    hf = text.to_hf()
    texts = image_token_texts(image_tok.vocab.size)
    existing = hf.get_vocab(with_added_tokens=True)
    clash = [t for t in texts if t in existing]
    if clash:
        from tokkit.errors import VocabMismatchError

        raise VocabMismatchError(f"{lm} already has tokens {clash[:3]}...; image tokens were added to it before — "
                                 "start from the original model folder")
    base = hf.get_vocab_size(with_added_tokens=True)
    hf.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in texts])
    vocab = vocab_from_json(json.loads(hf.to_str()), name=f"{text.vocab.name}+image")
    K = image_tok.vocab.size

    def extend(table: EmbeddingTable) -> EmbeddingTable:
        w = table.weight.float()
        new = project_codebook(image_tok.codebook_table().weight, w[: len(text.vocab)])  # (K, D)
        markers = w[: len(text.vocab)].mean(0, keepdim=True).expand(2, -1)  # <img_start>/<img_end>: mean text row
        pad = w.new_zeros(max(0, base - w.shape[0]), w.shape[1])  # padding rows past `base` are dropped: new ids start there
        full = torch.cat([w[:base], pad, new, markers]).to(table.weight.dtype)
        return EmbeddingTable(vocab, full)

    new_emb = ModelEmbeddings(extend(emb.input), None if emb.output is None else extend(emb.output))
    write_model_folder(lm, out, new_emb, hf_tokenizer=hf, vocab=vocab, force=force)
    return {"image_token_ids": [base, base + K - 1], "marker_ids": [base + K, base + K + 1],
            "rows": new_emb.input.rows_count, "dim": new_emb.dim, "image_model_id": image_tok.model_id}
