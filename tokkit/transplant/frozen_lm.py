"""A frozen causal LM run as Token Distillation and the output-row fit need it: float32, no gradients to its
weights, stopped after its first ``L`` decoder layers (then its final norm), fed embeddings in which a
small trainable ``(K, D)`` block replaces some rows without copying the ``(R, D)`` matrix.

Shapes: ``B`` snippets per batch, ``T`` tokens, ``D`` the model width, ``R`` rows, ``K`` trained rows.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from tokkit.errors import TokkitError

__all__ = ["load_frozen_lm", "n_layers", "auto_layer", "resolve_layer", "first_layers", "config_layers",
           "embed_scale", "length_groups", "pad_batch", "run_states", "embed_with_rows"]


def load_frozen_lm(folder, device: torch.device):
    """The HF causal LM at ``folder`` in float32, eval mode, every parameter frozen."""
    from tokkit.hf_models import load_causal_lm

    lm = load_causal_lm(folder, device=device)
    lm.requires_grad_(False)
    return lm


def n_layers(lm) -> int:
    """Decoder layers of ``lm`` (its text config's, for a multimodal wrapper)."""
    return int(lm.config.get_text_config().num_hidden_layers)


def auto_layer(n: int) -> int:
    """The default layer: a quarter of ``n`` layers, rounded half up (SmolLM2's 30 -> 8), at least 1."""
    return max(1, int(n / 4 + 0.5))


def resolve_layer(lm, layer: int | None) -> int:
    """``layer`` as a count of layers run (``-1`` -> all, None -> :func:`auto_layer`); a clear error outside ``1..n``."""
    n = n_layers(lm)
    if layer is None:
        return auto_layer(n)
    if layer == -1:
        return n
    if not 1 <= layer <= n:
        raise TokkitError(f"--distill-layer {layer} is out of range: the model has {n} layers; give 1..{n} "
                          "(the states after that many layers are matched) or -1 for the last")
    return layer


@contextmanager
def first_layers(lm, count: int) -> Iterator[Any]:
    """The backbone (``lm.base_model``) running only its first ``count`` decoder layers, then its final norm."""
    base = lm.base_model
    layers = getattr(base, "layers", None)
    if count < n_layers(lm):
        if not isinstance(layers, nn.ModuleList) or not hasattr(base, "norm"):
            raise TokkitError(f"{type(base).__name__} has no `layers`/`norm` to stop early at; use --distill-layer -1")
        base.layers = layers[:count]
    try:
        yield base
    finally:
        if layers is not None:
            base.layers = layers


def config_layers(folder) -> int:
    """``num_hidden_layers`` from ``folder/config.json`` (text config of a multimodal wrapper), else 32."""
    from tokkit.formats.hf_json import read_side_bytes

    path = Path(folder) / "config.json"
    if not path.exists():
        return 32
    raw = read_side_bytes(path)  # a device or FIFO is a one-line error, not a hang
    try:
        cfg = json.loads(raw.decode("utf-8-sig"))
        assert isinstance(cfg, dict)
    except (TypeError, ValueError, AssertionError):
        return 32
    return int(cfg.get("num_hidden_layers") or cfg.get("text_config", {}).get("num_hidden_layers") or 32)


def embed_scale(lm) -> float:
    """The factor the model multiplies its input embeddings by (Gemma: sqrt(D); most: 1)."""
    return float(getattr(lm.get_input_embeddings(), "embed_scale", 1.0))


def length_groups(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Indices grouped by similar length, each group's ``count × longest`` ≤ ``budget`` (at least one)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    out: list[list[int]] = []
    for i in order:
        if out and (len(out[-1]) + 1) * lengths[i] <= budget:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def pad_batch(seqs: Sequence[Sequence[int]], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids ``(B, T)`` and the attention mask ``(B, T)`` (1 on real tokens)."""
    width = max(len(s) for s in seqs)
    x = torch.zeros(len(seqs), width, dtype=torch.long)
    m = torch.zeros(len(seqs), width, dtype=torch.long)
    for r, s in enumerate(seqs):
        x[r, :len(s)] = torch.tensor(s)
        m[r, :len(s)] = 1
    return x.to(device), m.to(device)


def run_states(base, emb: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, T, D)`` input embeddings -> ``(B, T, D)`` states after the kept layers and the final norm."""
    return base(inputs_embeds=emb, attention_mask=mask if bool((mask == 0).any()) else None).last_hidden_state


def embed_with_rows(x: torch.Tensor, frozen: torch.Tensor, rows: torch.Tensor, slot: torch.Tensor, scale: float) -> torch.Tensor:
    """Embeddings ``(B, T, D)`` of ids ``x`` from ``frozen (R, D)``, the trainable ``rows (K, D)`` at ids whose
    ``slot`` is ≥ 0 (only ``K × D`` gets a gradient; the full matrix is never copied)."""
    s = slot[x]  # (B, T)
    emb = nn.functional.embedding(x, frozen)
    emb = torch.where((s >= 0)[..., None], rows[s.clamp_min(0)], emb)
    return emb * scale
