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
from tokkit.errors import FormatError, MissingFileError, VocabMismatchError, checkpoint_errors
from tokkit.optim.state import save_optimizer
from tokkit.vocab import TextVocab

__all__ = ["FORMAT", "Checkpoint", "base_fingerprint", "save_checkpoint", "load_checkpoint", "check_base",
           "is_checkpoint", "check_meta", "expected_shapes"]

FORMAT = "tokkit-hypernet"
VERSION = 1
MAX_DIM = 1 << 16  # widest base embedding a checkpoint may name


def _fix(p: Path) -> str:
    return (f"restore an intact copy, or train it again with `tokkit hypernet train -o {p} --force` "
            "(resuming a run: pass --force to start over)")


def _damaged(p: Path, what: str) -> FormatError:
    return FormatError(f"the checkpoint in {p} is damaged or was changed ({what}); {_fix(p)}")


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


def is_checkpoint(path: str | Path) -> bool:
    """``path`` is a folder whose config.json carries this format's tag (intact or not otherwise)."""
    cfg = Path(path) / "config.json"
    try:
        meta = json.loads(cfg.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == FORMAT


def check_meta(meta: dict[str, Any], path: Path) -> None:
    """Refuse a config.json whose network description cannot be built as written (one :class:`FormatError`).

    ``arch`` must pass :func:`~tokkit.transplant.hypernet.config.arch_problem` (the same check as the
    training flags), ``dim`` be an integer in 1..65536, ``tied`` a bool, their row width match the base
    fingerprint, and ``step`` a non-negative integer.
    """
    from tokkit.transplant.hypernet.config import arch_problem

    if "arch" not in meta:
        raise _damaged(path, "config.json has no 'arch'")
    problem = arch_problem(meta["arch"])
    if problem:
        raise _damaged(path, f"config.json: {problem}")
    dim, tied = meta.get("dim"), meta.get("tied")
    if type(dim) is not int or not 1 <= dim <= MAX_DIM:
        raise _damaged(path, f"config.json: dim is {dim!r}, expected an integer in 1..{MAX_DIM}")
    if type(tied) is not bool:
        raise _damaged(path, f"config.json: tied is {tied!r}, expected true or false")
    rows = (meta.get("base_fingerprint") or {}).get("rows") if isinstance(meta.get("base_fingerprint"), dict) else None
    if not (isinstance(rows, list) and len(rows) == 2 and rows[1] == (dim if tied else 2 * dim)):
        raise _damaged(path, f"config.json: dim {dim} and tied {tied} do not match the base rows {rows!r} "
                             f"(expected [R, {dim if tied else 2 * dim}])")
    step = meta.get("step")
    if type(step) is not int or step < 0:
        raise _damaged(path, f"config.json: step is {step!r}, expected a non-negative integer")
    if not isinstance(meta.get("config", {}), dict) or not isinstance(meta.get("history", []), list):
        raise _damaged(path, "config.json: 'config' must be an object and 'history' a list")


def expected_shapes(meta: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The parameter and buffer shapes of the network ``meta`` describes (built on the meta device: no memory)."""
    from tokkit.transplant.hypernet.model import HyperNet

    width = meta["dim"] if meta["tied"] else 2 * meta["dim"]
    with torch.device("meta"):
        net = HyperNet(dim=meta["dim"], tied=meta["tied"], table=torch.empty(2, width), **meta["arch"])
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _check_weights(model: dict[str, torch.Tensor], meta: dict[str, Any], path: Path) -> None:
    want = expected_shapes(meta)
    missing, extra = sorted(set(want) - set(model)), sorted(set(model) - set(want))
    if missing or extra:
        raise _damaged(path, f"model.safetensors lacks {missing[:3]} / has unexpected {extra[:3]} tensors")
    for k, shape in want.items():
        if tuple(model[k].shape) != shape or not model[k].is_floating_point():
            raise _damaged(path, f"model.safetensors: {k} is {model[k].dtype} {tuple(model[k].shape)}, "
                                 f"expected a float tensor of shape {shape}")


def load_checkpoint(path: str | Path, *, with_optimizer: bool = False) -> Checkpoint:
    """Read a checkpoint folder; a missing folder or a foreign one is a clear error, and so is a damaged or
    hand-edited one (:func:`check_meta`, weights of other names or shapes than ``arch`` builds): one
    :class:`FormatError` saying "damaged or was changed", for training's resume and for ``--hypernet`` alike."""
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
    check_meta(meta, p)
    opt = None
    check_weights_folder(p)  # truncated or foreign weights: one clear error before the native reader
    with checkpoint_errors(p, fix=_fix(p)):
        if with_optimizer and (p / "optimizer.safetensors").is_file():
            opt = load_file(str(p / "optimizer.safetensors"))
        model = load_file(str(p / "model.safetensors"))
    _check_weights(model, meta, p)
    return Checkpoint(p, meta, model, opt)


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
