"""Read a model's embeddings from an HF folder's safetensors shards or from a GGUF file.

Only the two tensors are read (``safe_open`` maps the shard; nothing else is loaded), using the
shard index when the checkpoint is split. Tensor names per architecture family:

=============  ==========================================  ==================
family         input                                       output
=============  ==========================================  ==================
Llama/Mistral  ``model.embed_tokens.weight``               ``lm_head.weight``
Qwen2/Gemma    ``model.embed_tokens.weight``               ``lm_head.weight``
Gemma-3 (VLM)  ``model.language_model.embed_tokens.weight`` ``lm_head.weight``
GPT-2          ``transformer.wte.weight``                  (tied)
GPT-NeoX       ``gpt_neox.embed_in.weight``                ``embed_out.weight``
=============  ==========================================  ==================

Gemma multiplies input embeddings by ``sqrt(hidden_size)`` at run time; the stored rows are
returned as stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tokkit.embedding.table import EmbeddingTable, ModelEmbeddings
from tokkit.errors import FormatError, MissingFileError
from tokkit.formats.weights import read_index
from tokkit.vocab import TextVocab

__all__ = ["save_embeddings", "load_embeddings", "INPUT_NAMES", "OUTPUT_NAMES", "CheckpointLayout", "checkpoint_layout", "load_model_embeddings", "read_gguf_embeddings"]

INPUT_NAMES = ("model.embed_tokens.weight", "model.language_model.embed_tokens.weight", "transformer.wte.weight",
               "gpt_neox.embed_in.weight", "language_model.model.embed_tokens.weight", "embed_tokens.weight")
OUTPUT_NAMES = ("lm_head.weight", "embed_out.weight", "language_model.lm_head.weight")


@dataclass(frozen=True)
class CheckpointLayout:
    """Where a folder's embedding tensors live: tensor name -> shard file, and the names used."""

    folder: Path
    weight_map: dict[str, str]
    input_name: str
    output_name: str | None  # None: tied


def checkpoint_layout(folder: str | Path) -> CheckpointLayout:
    """Find the shards and the embedding tensor names of an HF model folder."""
    d = Path(folder)
    if not d.is_dir():
        raise MissingFileError(f"model folder {d} does not exist; pass an HF model folder or a model alias (smollm2, gemma3)")
    weight_map = read_index(d)  # validated: plain shard names of files in the folder
    if weight_map is None and (d / "model.safetensors").exists():
        from safetensors import safe_open

        with safe_open(d / "model.safetensors", framework="pt") as f:
            weight_map = {k: "model.safetensors" for k in f.keys()}
    elif weight_map is None:
        raise FormatError(f"{d} has no model.safetensors or model.safetensors.index.json; expected an HF folder saved with safetensors")
    inp = next((n for n in INPUT_NAMES if n in weight_map), None)
    if inp is None:
        raise FormatError(f"{d}: no input embedding among {INPUT_NAMES}; this architecture is not supported yet")
    out = next((n for n in OUTPUT_NAMES if n in weight_map), None)
    return CheckpointLayout(d, weight_map, inp, out)


def _read_tensor(layout: CheckpointLayout, name: str) -> torch.Tensor:
    from safetensors import safe_open

    with safe_open(layout.folder / layout.weight_map[name], framework="pt") as f:
        return f.get_tensor(name)


def load_model_embeddings(folder: str | Path, *, vocab: TextVocab | None = None, device: str | torch.device = "cpu") -> ModelEmbeddings:
    """Read input (and untied output) embeddings of an HF model folder.

    Args:
        folder: HF model folder (safetensors, single or sharded).
        vocab: the vocab to pair with the rows; defaults to the folder's own tokenizer.
        device: where the tensors go.

    Returns:
        ModelEmbeddings with ``input.weight`` of shape ``(R, D)`` and ``output`` None when tied.

    Raises:
        VocabMismatchError: the tokenizer has more ids than the embedding has rows.
    """
    from tokkit.tokenizer import load_tokenizer

    layout = checkpoint_layout(folder)
    if vocab is None:
        vocab = load_tokenizer(layout.folder).vocab
    inp = _read_tensor(layout, layout.input_name).to(device)
    out = _read_tensor(layout, layout.output_name).to(device) if layout.output_name else None
    for name, t in ((layout.input_name, inp), (layout.output_name, out)):
        if t is not None and not t.is_floating_point():
            raise FormatError(f"{layout.folder}: the embedding {name} is stored as {t.dtype}; expected a float tensor "
                              "(F32, F16, BF16): the file is damaged or was changed: fetch or save the model again")
    return ModelEmbeddings(EmbeddingTable(vocab, inp), EmbeddingTable(vocab, out) if out is not None else None)


def read_gguf_embeddings(path: str | Path, *, device: str | torch.device = "cpu") -> ModelEmbeddings:
    """Dequantize ``token_embd`` (and ``output`` when untied) of a GGUF file to float32 ``(R, D)``."""
    import gguf

    from tokkit.formats.gguf_vocab import open_gguf, vocab_from_gguf_file

    p = Path(path)
    reader = open_gguf(p)
    vocab = vocab_from_gguf_file(p, reader=reader)
    tensors = {t.name: t for t in reader.tensors}
    if "token_embd.weight" not in tensors:
        raise FormatError(f"{p} has no token_embd.weight tensor; expected a GGUF language model")

    def deq(name: str) -> torch.Tensor:
        t = tensors[name]
        return torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).copy()).float().to(device)

    inp = deq("token_embd.weight")
    out = deq("output.weight") if "output.weight" in tensors else None
    return ModelEmbeddings(EmbeddingTable(vocab, inp), EmbeddingTable(vocab, out) if out is not None else None)


def save_embeddings(embeddings: ModelEmbeddings, path: str | Path, *, force: bool = False) -> Path:
    """Write ``input`` (and ``output`` when untied) rows to a safetensors file, atomically.

    The file's metadata records the vocab name and size; :func:`load_embeddings` checks them.
    """
    from safetensors.torch import save_file

    from tokkit.atomic import atomic_file

    tensors = {"input": embeddings.input.weight.detach().cpu().contiguous()}
    if embeddings.output is not None:
        tensors["output"] = embeddings.output.weight.detach().cpu().contiguous()
    vocab = embeddings.input.vocab
    meta = {"format": "tokkit-embeddings", "vocab_size": str(len(vocab)), "vocab_name": getattr(vocab, "name", "")}
    with atomic_file(path, force=force) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return Path(path)


def load_embeddings(path: str | Path, *, vocab: TextVocab, device: str | torch.device = "cpu") -> ModelEmbeddings:
    """Read a file written by :func:`save_embeddings` and pair it with ``vocab``."""
    from safetensors import safe_open

    p = Path(path)
    if not p.exists():
        raise MissingFileError(f"embedding file {p} does not exist")
    with safe_open(p, framework="pt", device=str(device)) as f:
        meta = f.metadata() or {}
        if meta.get("format") != "tokkit-embeddings":
            raise FormatError(f"{p} is not a tokkit embedding file (metadata format={meta.get('format')!r}); write it with save_embeddings")
        inp = f.get_tensor("input")
        out = f.get_tensor("output") if "output" in f.keys() else None
    return ModelEmbeddings(EmbeddingTable(vocab, inp), EmbeddingTable(vocab, out) if out is not None else None)
