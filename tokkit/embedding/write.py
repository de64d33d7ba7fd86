"""Write an HF model folder with new embeddings and a new tokenizer, atomically.

Every shard that holds no embedding is linked (or copied) unchanged; the shard(s) holding the
input embedding / lm_head are rewritten with the new rows (cast to the checkpoint's dtype). The
config's ``vocab_size``, ``tie_word_embeddings`` and bos/eos/pad ids, the generation config, and
the tokenizer files follow the new tokenizer. The folder appears only when complete.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from tokkit.atomic import atomic_dir, check_output
from tokkit.embedding.io import checkpoint_layout
from tokkit.embedding.table import ModelEmbeddings
from tokkit.hf_folder import TOKENIZER_FILES, write_tokenizer_files
from tokkit.errors import VocabMismatchError
from tokkit.formats.hf_json import SIDE_FILE_MAX_BYTES, read_json, read_side_text
from tokkit.vocab import TextVocab

__all__ = ["write_model_folder", "special_token_ids", "check_side_files"]

log = logging.getLogger(__name__)

_SKIP = set(TOKENIZER_FILES) | {"model.safetensors.index.json", "config.json", "generation_config.json", "chat_template.jinja"}


def special_token_ids(vocab: TextVocab) -> dict[str, Any]:
    """bos/eos/pad ids for config.json from the vocab's roles (eos lists every end token, Llama-3 style)."""
    eos = list(vocab.roles.get("eos", ()))
    if not eos:
        eos = list(vocab.roles.get("eot", ()))
    out: dict[str, Any] = {
        "bos_token_id": vocab.role_id("bos"),
        "eos_token_id": (eos[0] if len(eos) == 1 else eos) if eos else None,
        "pad_token_id": vocab.role_id("pad"),
    }
    return out


def check_side_files(src: str | Path) -> None:
    """Read the side files :func:`write_model_folder` will carry over from the model folder ``src``
    (``config.json``, ``generation_config.json``, ``chat_template.jinja``) as it reads them -- regular files,
    capped -- so a device, FIFO or damaged file is refused before the embedding work, not after it."""
    d = Path(src)
    read_json(d / "config.json", max_bytes=SIDE_FILE_MAX_BYTES)
    for name in ("generation_config.json", "chat_template.jinja"):
        p = d / name
        if p.exists() or p.is_symlink():
            read_json(p, max_bytes=SIDE_FILE_MAX_BYTES) if name.endswith(".json") else read_side_text(p)


def _link_or_copy(src: Path, dst: Path) -> None:
    """``dst`` as a regular file with ``src``'s content (a symlink is followed: never a symlink in an output)."""
    try:
        os.link(src, dst, follow_symlinks=True)
    except OSError:
        shutil.copyfile(src, dst, follow_symlinks=True)
        shutil.copystat(src, dst, follow_symlinks=True)


def _inside_roots(src: Path) -> list[Path]:
    """Where a source folder's files may really lie: the folder itself and, for a snapshot of the HF cache
    (``…/snapshots/<rev>``, whose files are links into the repo's ``blobs``), that ``blobs`` folder."""
    real = src.resolve()
    roots = [real]
    if real.parent.name == "snapshots" and (real.parent.parent / "blobs").is_dir():
        roots.append((real.parent.parent / "blobs").resolve())
    return roots


def _copy_extra(f: Path, dst: Path, roots: list[Path]) -> None:
    """Copy the source folder's extra file ``f`` (README, license, …) into the output as a regular file, but
    only when its real path lies inside the folder: a symlink to a file elsewhere (``README.md ->
    ~/.ssh/id_rsa``) would be uploaded with the output, so it is skipped with a note."""
    real = f.resolve()
    if real.is_dir():
        return
    if not any(real.is_relative_to(r) for r in roots):
        log.warning("not copying %s into the output: it is a symlink to %s, outside the model folder", f, real)
        return
    if not real.is_file():  # a device or FIFO: never read
        log.warning("not copying %s into the output: it is not a regular file", f)
        return
    _link_or_copy(real, dst)


def _set_config(cfg: dict[str, Any], rows: int, tied: bool, ids: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(cfg)
    cfg["vocab_size"] = rows
    cfg["tie_word_embeddings"] = tied
    cfg.update(ids)
    if isinstance(cfg.get("text_config"), dict):  # multimodal wrappers (Gemma-3 VLM) keep the LM config nested
        cfg["text_config"] = {**cfg["text_config"], "vocab_size": rows, "tie_word_embeddings": tied}
    return cfg


def write_model_folder(
    src_folder: str | Path,
    out_dir: str | Path,
    embeddings: ModelEmbeddings,
    *,
    hf_tokenizer: Any,
    vocab: TextVocab,
    force: bool = False,
    chat_template: str | None = None,
    extra_files: dict[str, str] | None = None,
    tensors: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Copy the model at ``src_folder`` to ``out_dir`` with new embeddings and tokenizer.

    Args:
        src_folder: HF model folder whose transformer weights are kept.
        out_dir: output folder (must not exist unless ``force``).
        embeddings: new input rows ``(R, D)`` and output rows (None: tied); ``D`` must equal the source's.
        hf_tokenizer: the new ``tokenizers.Tokenizer`` (``Tokenizer.to_hf()``).
        vocab: its vocab (roles give bos/eos/pad ids).
        force: replace an existing ``out_dir``.
        chat_template: written into tokenizer_config.json when given.
        extra_files: more text files (name -> UTF-8 content) written into the folder before it is
            renamed into place, e.g. a provenance report; they replace same-named files of the source.
        tensors: other checkpoint tensors to replace, by their name in the checkpoint (e.g. trained norm
            weights); each is cast to the stored dtype and must keep its shape.

    Returns:
        ``out_dir``, which ``transformers.AutoModelForCausalLM.from_pretrained`` loads.
    """
    check_output(out_dir, force=force)
    layout = checkpoint_layout(src_folder)
    src = layout.folder
    new_in = embeddings.input.weight.detach().cpu()
    new_out = embeddings.output.weight.detach().cpu() if embeddings.output is not None else None
    rows = int(new_in.shape[0])
    emb_shards = {layout.weight_map[layout.input_name]}
    if layout.output_name:
        emb_shards.add(layout.weight_map[layout.output_name])
    tensors = {k: v.detach().cpu() for k, v in (tensors or {}).items()}
    unknown = sorted(set(tensors) - set(layout.weight_map))
    if unknown:
        raise VocabMismatchError(f"{src} has no tensors named {unknown[:5]}; pass names as stored in its safetensors")
    emb_shards |= {layout.weight_map[k] for k in tensors}
    out_name = layout.output_name or "lm_head.weight"
    weight_map = dict(layout.weight_map)
    if new_out is None:
        weight_map.pop(out_name, None)
    else:
        weight_map[out_name] = weight_map.get(out_name, layout.weight_map[layout.input_name])
        emb_shards.add(weight_map[out_name])

    with atomic_dir(out_dir, force=force) as tmp:
        from safetensors.torch import load_file, save_file

        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text, encoding="utf-8")

        for shard in sorted(set(layout.weight_map.values())):
            if shard not in emb_shards:
                _link_or_copy(src / shard, tmp / shard)
                continue
            stored = load_file(src / shard)
            for k, v in tensors.items():
                if k in stored:
                    if stored[k].shape != v.shape:
                        raise VocabMismatchError(f"{k}: new shape {tuple(v.shape)}, stored {tuple(stored[k].shape)}")
                    stored[k] = v.to(stored[k].dtype).contiguous()
            old_in_dtype = stored.get(layout.input_name, new_in).dtype
            if layout.input_name in stored:
                old = stored[layout.input_name]
                if old.shape[1] != new_in.shape[1]:
                    raise VocabMismatchError(
                        f"new embeddings have dim {new_in.shape[1]} but {src} has dim {old.shape[1]}; "
                        "reconstruct them in the model's own embedding space")
                stored[layout.input_name] = new_in.to(old.dtype).contiguous()
            stored.pop(out_name, None)
            if new_out is not None and weight_map[out_name] == shard:
                stored[out_name] = new_out.to(old_in_dtype).contiguous()
            save_file(stored, str(tmp / shard), metadata={"format": "pt"})
        if (src / "model.safetensors.index.json").exists():
            index = read_json(src / "model.safetensors.index.json")  # checked by checkpoint_layout
            total = 0
            for shard in set(weight_map.values()):
                from safetensors import safe_open

                with safe_open(tmp / shard, framework="pt") as f:
                    for k in f.keys():
                        t = f.get_slice(k)
                        total += int(torch.tensor(t.get_shape()).prod()) * _itemsize(t.get_dtype())
            index["weight_map"] = weight_map
            index.setdefault("metadata", {})["total_size"] = total
            (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
        roots = _inside_roots(src)
        for f in src.iterdir():
            if f.name in _SKIP or f.name in layout.weight_map.values() or (tmp / f.name).exists():
                continue
            if f.is_symlink() or f.is_file():
                _copy_extra(f, tmp / f.name, roots)
        ids = special_token_ids(vocab)
        cfg = read_json(src / "config.json", max_bytes=SIDE_FILE_MAX_BYTES)
        (tmp / "config.json").write_text(json.dumps(_set_config(cfg, rows, new_out is None, ids), indent=2) + "\n")
        gen_path = src / "generation_config.json"
        gen = read_json(gen_path, max_bytes=SIDE_FILE_MAX_BYTES) if gen_path.exists() or gen_path.is_symlink() else {}
        gen.update({k: v for k, v in ids.items()})
        (tmp / "generation_config.json").write_text(json.dumps(gen, indent=2) + "\n")
        write_tokenizer_files(hf_tokenizer, vocab, tmp, chat_template=chat_template)
    return Path(out_dir)


def _itemsize(dtype: str) -> int:
    return {"F64": 8, "I64": 8, "F32": 4, "I32": 4, "F16": 2, "BF16": 2, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}.get(dtype, 4)
