"""The student: a frozen HF causal LM whose trainable embedding rows live in a separate small parameter.

For ``--train new-rows`` the rows to train (``ids (K,)``) are copied into ``input (K, D)`` (and
``output (K, D)`` when the head is untied) and scattered into the frozen matrices at every forward
(``index_copy``, out of place). Why a separate parameter rather than a gradient mask on the full
matrix: the optimizer state (AdamW's two moments) and the gradient are ``K × D`` instead of
``V × D``, and the frozen rows are never touched by the optimizer, so they stay bit-exact by
construction (weight decay or a zero-gradient Adam update cannot move them). With
``embeddings`` every row is trainable (``ids = 0..V-1``; the parameter *is* the matrix),
``embeddings+norms`` also unfreezes every parameter whose name contains ``norm``, and ``all``
unfreezes every other parameter of the transformer too (``body``, trained at a smaller learning rate).

Tied models (SmolLM2: one matrix is both input and output) get one parameter that serves both.
Logits are ``h @ W_outᵀ`` computed here from the backbone's last hidden state (the HF head is not
called), with Gemma-style ``embed_scale`` and ``final_logit_softcapping`` when the config has them.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

__all__ = ["Student", "load_lm"]


def load_lm(folder: str | Path, device: torch.device):
    """An HF causal LM in float32, eval mode, every parameter frozen."""
    from tokkit.hf_models import load_causal_lm

    lm = load_causal_lm(folder, device=device)
    lm.requires_grad_(False)
    return lm


def is_tied(lm) -> bool:
    out = lm.get_output_embeddings()
    return out is None or out.weight.data_ptr() == lm.get_input_embeddings().weight.data_ptr()


class Student(nn.Module):
    """Wraps a frozen LM; ``forward(input, attention) -> logits (B, T, R)`` with the trainable rows in place.

    Args:
        lm: the loaded model (frozen).
        ids: ``(K,)`` long, the rows to train (sorted, unique); all rows when ``K`` equals the row count.
        norms: also train the norm weights.
        body: also train every other parameter of the transformer (implies ``norms``).
    """

    def __init__(self, lm, ids: torch.Tensor, *, norms: bool = False, body: bool = False) -> None:
        super().__init__()
        self.lm = lm
        self.tied = is_tied(lm)
        e_in = lm.get_input_embeddings().weight
        self.rows = int(e_in.shape[0])
        self.register_buffer("ids", ids.to(e_in.device, torch.long), persistent=False)
        self.all_rows = len(ids) == self.rows and bool((ids.cpu() == torch.arange(self.rows)).all())
        self.input = nn.Parameter(e_in.detach()[self.ids].clone())  # (K, D)
        self.output = None if self.tied else nn.Parameter(lm.get_output_embeddings().weight.detach()[self.ids].clone())
        rows = {lm.get_input_embeddings().weight.data_ptr()}
        if lm.get_output_embeddings() is not None:
            rows.add(lm.get_output_embeddings().weight.data_ptr())
        named = [(n, p) for n, p in lm.named_parameters() if p.data_ptr() not in rows]
        self.norm_names = sorted(n for n, _ in named if "norm" in n) if norms or body else []
        self.body_names = sorted(n for n, _ in named if "norm" not in n) if body else []
        for n, p in named:
            if n in self.norm_names or n in self.body_names:
                p.requires_grad_(True)
        self.scale = float(getattr(lm.get_input_embeddings(), "embed_scale", 1.0))
        self.softcap = getattr(lm.config, "final_logit_softcapping", None)

    def trainable(self) -> dict[str, nn.Parameter]:
        """Name -> parameter of everything the optimizer updates (fixed order: rows, norms, body)."""
        out = {"rows.input": self.input}
        if self.output is not None:
            out["rows.output"] = self.output
        named = dict(self.lm.named_parameters())
        out |= {f"norm.{n}": named[n] for n in self.norm_names}
        out |= {f"body.{n}": named[n] for n in self.body_names}
        return out

    def trained_lm_tensors(self) -> dict[str, torch.Tensor]:
        """The transformer's own trained tensors (norms, body) by their state-dict name, for writing."""
        named = dict(self.lm.named_parameters())
        return {n: named[n] for n in self.norm_names + self.body_names}

    def input_matrix(self) -> torch.Tensor:
        """``(R, D)``: the frozen input rows with the trainable ones in place."""
        if self.all_rows:
            return self.input
        return self.lm.get_input_embeddings().weight.index_copy(0, self.ids, self.input)

    def output_matrix(self, e_in: torch.Tensor | None = None) -> torch.Tensor:
        """``(R, D)``: the output rows (the input matrix when tied)."""
        if self.tied:
            return e_in if e_in is not None else self.input_matrix()
        if self.all_rows:
            return self.output  # type: ignore[return-value]
        return self.lm.get_output_embeddings().weight.index_copy(0, self.ids, self.output)

    def forward(self, input_ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
        """``input_ids, attention (B, T)`` -> logits ``(B, T, R)`` float32."""
        e_in = self.input_matrix()
        x = nn.functional.embedding(input_ids, e_in) * self.scale
        h = self.lm.base_model(inputs_embeds=x, attention_mask=attention).last_hidden_state
        logits = h @ self.output_matrix(e_in).T
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    @torch.no_grad()
    def merged(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The full input matrix and (untied) output matrix with the trained rows, detached on CPU."""
        e_in = self.input_matrix().detach().cpu().clone()
        return e_in, None if self.tied else self.output_matrix().detach().cpu().clone()


def teacher_logits(lm, input_ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """The plain HF forward: ``(B, T)`` -> logits ``(B, T, V)`` float32."""
    return lm(input_ids=input_ids, attention_mask=attention).logits.float()
