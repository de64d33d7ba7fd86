"""Hypernetwork checkpoints: one folder, written atomically, resumable, tied to one base model.

Layout of ``OUT_DIR``::

    config.json            format tag, training config, network shape, base fingerprint, step, loss history
    model.safetensors      the network's parameters and buffers
    optimizer.safetensors  AdamW moments per parameter index (:mod:`tokkit.optim.state`)

Every save rebuilds the whole folder beside it and renames it into place (:func:`tokkit.atomic.atomic_dir`),
so a run killed at any moment leaves the previous checkpoint intact. All randomness of a step is
derived from ``(seed, step)``, so the model, the optimizer state and the step number are the whole
state of a run: resuming reproduces the uninterrupted run exactly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tokkit.atomic import atomic_dir
from tokkit.errors import FormatError, MissingFileError, VocabMismatchError
from tokkit.optim.state import save_optimizer
from tokkit.vocab import TextVocab

__all__ = ["FORMAT", "Checkpoint", "base_fingerprint", "save_checkpoint", "load_checkpoint", "check_base"]

FORMAT = "tokkit-hypernet"
VERSION = 1


def base_fingerprint(vocab: TextVocab, table: torch.Tensor) -> dict[str, Any]:
    """Identifies a base model: vocab size, hash of its token bytes, row shape, hash of a row sample.

    ``table`` is the base's ``(R, W)`` float32 feature table (``E_in`` or ``[E_in ; E_out]``).
    """
    h = hashlib.sha256()
    for t in vocab.tokens:
        h.update(len(t).to_bytes(4, "little") + t)
    rows = table[:: max(1, table.shape[0] // 1024)].detach().float().cpu().contiguous()
    return {"vocab_size": len(vocab), "vocab_sha256": h.hexdigest(), "rows": list(table.shape),
            "rows_sha256": hashlib.sha256(rows.numpy().tobytes()).hexdigest()}


@dataclass
class Checkpoint:
    """A loaded checkpoint (tensors on CPU)."""

    path: Path
    meta: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, torch.Tensor] | None

    @property
    def step(self) -> int:
        return int(self.meta["step"])


def save_checkpoint(out_dir: Path, *, model: torch.nn.Module, opt: torch.optim.Optimizer | None,
                    meta: dict[str, Any]) -> Path:
    """Write ``out_dir`` atomically (replacing the previous checkpoint)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_dir(out_dir, force=True) as tmp:
        save_file(state, str(tmp / "model.safetensors"))
        if opt is not None:
            save_optimizer(opt, tmp)
        body = {"format": FORMAT, "version": VERSION, **meta}
        (tmp / "config.json").write_text(json.dumps(body, indent=1) + "\n", encoding="utf-8")
    return out_dir


def load_checkpoint(path: str | Path, *, with_optimizer: bool = False) -> Checkpoint:
    """Read a checkpoint folder; a missing folder or a foreign one is a clear error."""
    from safetensors.torch import load_file

    from tokkit.formats.weights import check_weights_folder

    p = Path(path)
    cfg = p / "config.json"
    if not p.is_dir() or not cfg.is_file():
        raise MissingFileError(f"no hypernetwork checkpoint at {p}: expected a folder with config.json and "
                               f"model.safetensors written by `tokkit hypernet train -o {p}`")
    try:
        meta = json.loads(cfg.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise FormatError(f"{cfg} is not JSON ({e}); expected a tokkit hypernetwork config") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(f"{p} is not a tokkit hypernetwork checkpoint (config.json format "
                          f"{meta.get('format') if isinstance(meta, dict) else None!r}, expected {FORMAT!r}); "
                          f"train one with `tokkit hypernet train`")
    if meta.get("version") != VERSION:
        raise FormatError(f"{p}: checkpoint version {meta.get('version')}, this tokkit reads version {VERSION}")
    if not (p / "model.safetensors").is_file():
        raise MissingFileError(f"{p} has config.json but no model.safetensors; the checkpoint is incomplete")
    opt = None
    if with_optimizer and (p / "optimizer.safetensors").is_file():
        check_weights_folder(p)
        opt = load_file(str(p / "optimizer.safetensors"))
    check_weights_folder(p)  # truncated or foreign weights: one clear error before the native reader
    return Checkpoint(p, meta, load_file(str(p / "model.safetensors")), opt)


def check_base(ckpt: Checkpoint, fingerprint: dict[str, Any], *, base_name: str) -> None:
    """Refuse a checkpoint trained for another base model (other vocabulary or other embedding rows)."""
    want = ckpt.meta.get("base_fingerprint", {})
    if want != fingerprint:
        diff = [k for k in fingerprint if want.get(k) != fingerprint[k]]
        raise VocabMismatchError(
            f"the hypernetwork at {ckpt.path} was trained for base {ckpt.meta.get('base')!r} "
            f"({want.get('vocab_size')} tokens, rows {want.get('rows')}), not for {base_name} "
            f"({fingerprint['vocab_size']} tokens, rows {fingerprint['rows']}; differs in {diff}); "
            f"train one for this base with `tokkit hypernet train --base {base_name}`")
