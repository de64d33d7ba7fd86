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

__all__ = ["Student", "load_lm", "teacher_token_logprobs"]


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
        if self.all_rows:  # every row trains: the model's own matrices are the parameters (a copy would be V x D more)
            self.input = e_in.requires_grad_(True)
            self.output = None if self.tied else lm.get_output_embeddings().weight.requires_grad_(True)
        else:
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

    def forward(self, input_ids: torch.Tensor, attention: torch.Tensor, select: torch.Tensor | None = None) -> torch.Tensor:
        """``input_ids, attention (B, T)`` -> logits ``(B, T, R)`` float32; with ``select (B, T)`` bool, only the
        logits of the selected positions, ``(N, R)`` in row-major order (the others are never computed: a
        ``(B, T, R)`` tensor and its masked copy, both kept for the backward, were two thirds of a step's logits)."""
        e_in = self.input_matrix()
        x = nn.functional.embedding(input_ids, e_in) * self.scale
        h = self.lm.base_model(inputs_embeds=x, attention_mask=attention).last_hidden_state
        if select is not None:
            h = h[select]  # (N, D)
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


#: float32 logits built at once by :func:`teacher_token_logprobs` (64 MB).
TEACHER_CHUNK = 1 << 24


@torch.no_grad()
def teacher_token_logprobs(lm, input_ids: torch.Tensor, attention: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log p(targets[b, t] | input_ids[b, :t+1])`` for every ``targets >= 0``: ``(B, T)``, ``(B, T-1)`` -> ``(N,)``.

    The body runs once; the head runs over the scored positions a chunk at a time (at most
    ``TEACHER_CHUNK`` logits), so no ``(B, T, V)`` tensor, its masked copy and its exponentials are held at
    once (1.2 GB for 4 x 512 tokens of a 49k vocabulary). Models whose logits are not ``lm_head(h)``
    (with Gemma's soft-capping) take the plain forward (:func:`_plain_head`).
    """
    from tokkit.transplant.heal.alm import token_logprobs

    mask = targets >= 0
    if not _plain_head(lm):
        return token_logprobs(teacher_logits(lm, input_ids, attention)[:, :-1][mask], targets[mask])
    h = lm.base_model(input_ids=input_ids, attention_mask=attention).last_hidden_state[:, :-1][mask]  # (N, D)
    y = targets[mask]
    head, cap = lm.get_output_embeddings(), getattr(lm.config, "final_logit_softcapping", None)
    step = max(1, TEACHER_CHUNK // head.weight.shape[0])
    out = []
    for i in range(0, h.shape[0], step):
        logits = head(h[i:i + step]).float()
        if cap:
            logits = torch.tanh(logits / cap) * cap
        out.append(token_logprobs(logits, y[i:i + step]))
    return torch.cat(out) if out else h.new_zeros(0)


def _plain_head(lm) -> bool:
    """Whether ``lm``'s logits are ``lm_head(base_model(x))`` (soft-capped where configured): checked once per
    model on four tokens against its own forward (models with extra logit scaling fail it)."""
    cached = getattr(lm, "_tokkit_plain_head", None)
    if cached is None:
        x = torch.tensor([[0, 1, 2, 3]], device=lm.get_input_embeddings().weight.device) % lm.config.vocab_size
        with torch.no_grad():
            want = teacher_logits(lm, x, torch.ones_like(x))
            got = lm.get_output_embeddings()(lm.base_model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state).float()
            cap = getattr(lm.config, "final_logit_softcapping", None)
            if cap:
                got = torch.tanh(got / cap) * cap
        cached = bool(torch.allclose(want, got, rtol=1e-4, atol=1e-4))
        lm._tokkit_plain_head = cached
    return cached
