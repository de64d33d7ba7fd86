"""WordPiece and Unigram vocabularies (trained here on real licence texts) and format detection errors."""

from __future__ import annotations

import glob
import json

import pytest
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from tokkit import load_tokenizer, load_vocab
from tokkit.errors import FormatError, MissingFileError

LICENCES = sorted(glob.glob("/usr/share/common-licenses/*"))  # Debian base-files: real legal text on every machine


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    if not LICENCES:
        pytest.skip("no /usr/share/common-licenses on this machine")
    d = tmp_path_factory.mktemp("formats")
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.decoder = decoders.WordPiece(cleanup=False)
    wp.train(LICENCES, trainers.WordPieceTrainer(vocab_size=600, special_tokens=["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"], show_progress=False))
    wp.save(str(d / "wordpiece.json"))
    ug = Tokenizer(models.Unigram())
    ug.pre_tokenizer = pre_tokenizers.Metaspace()
    ug.decoder = decoders.Metaspace()
    ug.train(LICENCES, trainers.UnigramTrainer(vocab_size=600, special_tokens=["<unk>"], unk_token="<unk>", show_progress=False))
    ug.save(str(d / "unigram.json"))
    return d


def test_wordpiece_bytes_match_decoding_in_context(trained):
    tok = load_tokenizer(trained / "wordpiece.json")
    v = tok.vocab
    assert v.family == "wordpiece" and {s.role for s in v.specials} >= {"unk", "cls", "sep", "pad", "mask"}
    anchor = tok.encode("the")[0]
    for i in v.ordinary_ids():
        assert tok.native.decode([anchor, i]).encode() == tok.decode_bytes([anchor, i]), (i, v.tokens[i])
    text = "the licensee may copy and distribute the program"
    assert tok.decode_bytes(tok.encode(text)).decode() == text


def test_unigram_bytes_match_decoding(trained):
    tok = load_tokenizer(trained / "unigram.json")
    v = tok.vocab
    assert v.family == "sentencepiece" and v.strip_leading_space
    for i in v.ordinary_ids():
        assert tok.native.decode([i]).encode() == tok.decode_bytes([i]), (i, v.tokens[i])
    text = "You may convey verbatim copies of the Program's source code"
    assert tok.decode_bytes(tok.encode(text)).decode() == text


def test_detection_errors(tmp_path):
    with pytest.raises(MissingFileError):
        load_vocab(tmp_path / "nothing.json")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01 not a tokenizer")
    with pytest.raises(FormatError, match="cannot tell the format"):
        load_vocab(junk)
    j = tmp_path / "tokenizer.json"
    j.write_text(json.dumps({"version": "1.0"}))
    with pytest.raises(FormatError, match="no 'model' object"):
        load_vocab(j)
    ranks = tmp_path / "bad.tiktoken"
    ranks.write_text("IQ== 0\nnot base64!! x\n")
    with pytest.raises(FormatError, match=":2: expected"):
        load_vocab(ranks)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FormatError, match="folder without"):
        load_vocab(tmp_path / "empty")


def test_byte_fallback_outside_sentencepiece_spelling(tmp_path):
    """A char-level BPE with <0xNN> fallback and a ByteFallback+Fuse decoder (no ▁): bytes are exact."""
    vocab = {f"<0x{b:02X}>": b for b in range(256)}
    vocab.update({"<unk>": 256, "a": 257, "b": 258, "ab": 259})
    hf = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b")], unk_token="<unk>", byte_fallback=True))
    hf.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    hf.save(str(tmp_path / "tokenizer.json"))
    tok = load_tokenizer(tmp_path / "tokenizer.json")
    assert tok.vocab.family == "chars" and tok.vocab.byte_fallback_ids == tuple(range(256))
    ids = tok.encode("ab€")
    assert ids == [259, 0xE2, 0x82, 0xAC]
    assert tok.decode_bytes(ids) == "ab€".encode() and tok.decode(ids) == "ab€"
