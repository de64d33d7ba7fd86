"""Exact conversions to HF ``tokenizers``: sentencepiece BPE/Unigram models and tiktoken encodings.

* sentencepiece BPE -> ``models.BPE`` with byte fallback; merges recovered from the piece scores
  (for every piece, each split into two known pieces is a merge, ranked by the piece's id), the
  same construction as transformers' ``SentencePieceExtractor``.
* sentencepiece Unigram -> ``models.Unigram`` with the scores.
* tiktoken -> byte-level ``models.BPE`` with ``ignore_merges`` (tiktoken takes a whole pre-token
  when it is in the ranks) and merges recovered by replaying BPE on each token's bytes with lower
  ranks only.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tokkit.formats.hf_json import bytes_to_unicode
from tokkit.vocab import TextVocab

__all__ = ["spm_to_hf", "tiktoken_to_hf", "recover_merges", "onig_pattern"]


def _sp_decoder_json(strip: bool) -> dict[str, Any]:
    decs = [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}]
    if strip:
        decs.append({"type": "Strip", "content": " ", "start": 1, "stop": 0})
    return {"type": "Sequence", "decoders": decs}


def spm_to_hf(sp: Any, vocab: TextVocab) -> Any:
    """A ``tokenizers.Tokenizer`` that encodes exactly like the sentencepiece model ``sp``."""
    from sentencepiece import sentencepiece_model_pb2 as pb  # type: ignore[attr-defined]
    from tokenizers import Tokenizer

    proto = pb.ModelProto()
    proto.ParseFromString(sp.serialized_model_proto())
    pieces = [p.piece for p in proto.pieces]
    unk = sp.unk_id()
    normalizer: dict[str, Any] = {"type": "Sequence", "normalizers": (
        ([{"type": "Prepend", "prepend": "▁"}] if proto.normalizer_spec.add_dummy_prefix else [])
        + [{"type": "Replace", "pattern": {"String": " "}, "content": "▁"}])}
    if proto.trainer_spec.model_type == pb.TrainerSpec.UNIGRAM:
        model: dict[str, Any] = {"type": "Unigram", "unk_id": unk, "byte_fallback": proto.trainer_spec.byte_fallback,
                                 "vocab": [[p.piece, p.score] for p in proto.pieces]}
    else:
        index = {p: i for i, p in enumerate(pieces)}
        ordinary = {i for i, p in enumerate(proto.pieces) if p.type == pb.ModelProto.SentencePiece.NORMAL}
        merges = []
        for i in sorted(ordinary):
            piece = pieces[i]
            for k in range(1, len(piece)):
                left, right = piece[:k], piece[k:]
                li, ri = index.get(left), index.get(right)
                if li in ordinary and ri in ordinary:
                    merges.append((-proto.pieces[i].score, i, li, ri, left, right))
        # sentencepiece applies the merge whose result scores highest; ties by the result id, then the parts
        merges.sort()
        model = {"type": "BPE", "dropout": None, "unk_token": pieces[unk] if unk >= 0 else None,
                 "continuing_subword_prefix": None, "end_of_word_suffix": None, "fuse_unk": True,
                 "byte_fallback": proto.trainer_spec.byte_fallback, "ignore_merges": False,
                 "vocab": index, "merges": [[m[4], m[5]] for m in merges]}
    added = [{"id": s.id, "content": s.text, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for s in vocab.specials]
    post = None
    bos = sp.bos_id()
    if bos >= 0:  # sentencepiece LMs (Llama 2, Mistral) start every sequence with <s>: AutoTokenizer should too
        b = pieces[bos]
        post = {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": b, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": b, "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
                "special_tokens": {b: {"id": b, "ids": [bos], "tokens": [b]}}}
    data = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": normalizer, "pre_tokenizer": None, "post_processor": post,
            "decoder": _sp_decoder_json(vocab.strip_leading_space), "model": model}
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))


def recover_merges(ranks: dict[bytes, int]) -> list[tuple[bytes, bytes]]:
    """BPE merges implied by tiktoken ranks, in rank order.

    For each multi-byte token, replay BPE on its bytes using only lower-ranked merges until two
    parts remain; those two parts are the merge that created the token.
    """
    merges: list[tuple[int, bytes, bytes]] = []
    for token, rank in ranks.items():
        if len(token) == 1:
            continue
        parts = [token[i:i + 1] for i in range(len(token))]
        while len(parts) > 2:
            best, best_i = None, -1
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and r < rank and (best is None or r < best):
                    best, best_i = r, i
            if best is None:
                break
            parts[best_i:best_i + 2] = [parts[best_i] + parts[best_i + 1]]
        if len(parts) == 2:
            merges.append((rank, parts[0], parts[1]))
    merges.sort()
    return [(a, b) for _, a, b in merges]


def onig_pattern(pat: str) -> str:
    """Rewrite a tiktoken (fancy-regex) pattern for HF's Oniguruma with the same matches.

    Oniguruma reads ``X{1,3}+`` as "``X{1,3}`` repeated", not as possessive: write it as the atomic
    group ``(?>X{1,3})``. Its ``$`` also matches before a newline: tiktoken's means end of text, ``\\z``.
    """
    atom = r"(\\[pP]\{[^}]*\}|\[(?:\\.|[^\]])*\]|\\.|[^\\()\[\]])"
    pat = re.sub(atom + r"\{(\d+)(,\d*)?\}\+", lambda m: f"(?>{m.group(1)}{{{m.group(2)}{m.group(3) or ''}}})", pat)
    return re.sub(r"(?<!\\)\$", r"\\z", pat)


def tiktoken_to_hf(enc: Any) -> Any:
    """A byte-level ``tokenizers.Tokenizer`` with the same ids and segmentation as a tiktoken ``Encoding``."""
    from tokenizers import Tokenizer

    ranks: dict[bytes, int] = enc._mergeable_ranks
    b2u = bytes_to_unicode()

    def spell(b: bytes) -> str:
        return "".join(b2u[x] for x in b)

    vocab = {spell(t): r for t, r in ranks.items()}
    # HF re-derives added-token ids on load (max added id + 1, or the model's size): with holes in the id
    # space (cl100k: 100256, 100261-100275) specials would be renumbered. Listed in the model vocab too,
    # they keep tiktoken's ids.
    vocab.update(enc._special_tokens)
    merges = [[spell(a), spell(b)] for a, b in recover_merges(ranks)]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for t, i in sorted(enc._special_tokens.items(), key=lambda x: x[1])]
    data = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": onig_pattern(enc._pat_str)}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": vocab, "merges": merges},
    }
    return Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
