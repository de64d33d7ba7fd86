"""tokkit.embedding against transformers: real SmolLM2 rows, tiny models written and reloaded."""

from __future__ import annotations

import json

import pytest
import torch

from tokkit import load_tokenizer
from tokkit.embedding import (
    EmbeddingTable,
    ModelEmbeddings,
    load_embeddings,
    load_model_embeddings,
    read_gguf_embeddings,
    save_embeddings,
    write_model_folder,
)
from tokkit.errors import OutputExistsError, VocabMismatchError
from tokkit.vocab import CodebookVocab

transformers = pytest.importorskip("transformers")


def test_smollm2_embedding_equals_transformers(smollm2_dir):
    emb = load_model_embeddings(smollm2_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir)
    assert emb.tied and model.config.tie_word_embeddings
    assert emb.input.weight.shape == (49152, 576)
    assert torch.equal(emb.input.weight, model.get_input_embeddings().weight.detach())
    assert torch.equal(emb.output_or_input().weight, model.get_output_embeddings().weight.detach())
    assert len(emb.input.vocab) == 49152


def test_gguf_embedding_equals_converted_folder(smollm2_dir):
    from tokkit.config import tokkit_home

    g = read_gguf_embeddings(tokkit_home() / "gguf/SmolLM2-135M-Instruct.Q4_1.gguf")
    h = load_model_embeddings(smollm2_dir)
    assert torch.equal(g.input.weight, h.input.weight)
    assert g.input.vocab.tokens == h.input.vocab.tokens


def test_fewer_rows_than_ids_is_refused_at_construction():
    vocab = load_tokenizer("llama2").vocab
    with pytest.raises(VocabMismatchError, match="32000 ids but the embedding has only 100 rows"):
        EmbeddingTable(vocab, torch.zeros(100, 8))
    t = EmbeddingTable(CodebookVocab(16), torch.randn(16, 4)).padded_to(64)
    assert t.weight.shape == (64, 4) and torch.equal(t.weight[16:], torch.zeros(48, 4))
    with pytest.raises(VocabMismatchError, match="0..15"):
        t.rows(torch.tensor([3, 16]))


def _tiny_llama(path, vocab_size: int, tied: bool):
    cfg = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=48, num_attention_heads=4,
                                   num_key_value_heads=2, num_hidden_layers=2, tie_word_embeddings=tied,
                                   bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)
    return model


@pytest.mark.parametrize("tied", [True, False])
def test_write_model_folder_roundtrip_loads_in_transformers(tmp_path, tied):
    src = tmp_path / "src"
    _tiny_llama(src, vocab_size=500, tied=tied)
    tok = load_tokenizer("llama2")  # the new tokenizer: 32000 ids, bos=1, eos=2
    g = torch.Generator().manual_seed(1)
    rows = 32064  # padded to a multiple of 64
    new_in = EmbeddingTable(tok.vocab, torch.randn(rows, 32, generator=g))
    new_out = None if tied else EmbeddingTable(tok.vocab, torch.randn(rows, 32, generator=g))
    out = write_model_folder(src, tmp_path / "out", ModelEmbeddings(new_in, new_out), hf_tokenizer=tok.to_hf(), vocab=tok.vocab)
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(model.get_input_embeddings().weight.detach(), new_in.weight)
    expect_out = new_in.weight if tied else new_out.weight
    assert torch.equal(model.get_output_embeddings().weight.detach(), expect_out)
    cfg = json.loads((out / "config.json").read_text())
    assert (cfg["vocab_size"], cfg["tie_word_embeddings"], cfg["bos_token_id"], cfg["eos_token_id"]) == (rows, tied, 1, 2)
    hf_tok = transformers.AutoTokenizer.from_pretrained(out)
    ids = hf_tok("Hello world", add_special_tokens=False).input_ids
    assert ids == [15043, 3186]
    gen = model.generate(torch.tensor([[1, 15043]]), max_new_tokens=3, do_sample=False)
    assert gen.shape == (1, 5)
    # the reader sees what the writer wrote
    back = load_model_embeddings(out)
    assert back.tied == tied and torch.equal(back.input.weight, new_in.weight)


def test_write_refuses_existing_output_and_leaves_it_untouched(tmp_path):
    src = tmp_path / "src"
    _tiny_llama(src, vocab_size=32000, tied=True)
    tok = load_tokenizer("llama2")
    emb = load_model_embeddings(src, vocab=tok.vocab)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match="--force"):
        write_model_folder(src, out, emb, hf_tokenizer=tok.to_hf(), vocab=tok.vocab)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(OutputExistsError, match="did not write"):  # force never replaces a folder that is not ours
        write_model_folder(src, out, emb, hf_tokenizer=tok.to_hf(), vocab=tok.vocab, force=True)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    (out / "keep.txt").unlink()
    out.rmdir()
    write_model_folder(src, out, emb, hf_tokenizer=tok.to_hf(), vocab=tok.vocab)
    (out / "keep.txt").write_text("mine")
    write_model_folder(src, out, emb, hf_tokenizer=tok.to_hf(), vocab=tok.vocab, force=True)  # ours: replaced
    assert not (out / "keep.txt").exists() and (out / "config.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary folders left behind"


def test_write_rejects_other_dim(tmp_path):
    src = tmp_path / "src"
    _tiny_llama(src, vocab_size=32000, tied=True)
    tok = load_tokenizer("llama2")
    emb = ModelEmbeddings(EmbeddingTable(tok.vocab, torch.zeros(32000, 16)))
    with pytest.raises(VocabMismatchError, match="dim 16"):
        write_model_folder(src, tmp_path / "out", emb, hf_tokenizer=tok.to_hf(), vocab=tok.vocab)
    assert not (tmp_path / "out").exists()


def test_save_load_embeddings_roundtrip(tmp_path):
    vocab = load_tokenizer("mistral").vocab
    emb = ModelEmbeddings(EmbeddingTable(vocab, torch.randn(32000, 8)), EmbeddingTable(vocab, torch.randn(32000, 8)))
    p = save_embeddings(emb, tmp_path / "e.safetensors")
    back = load_embeddings(p, vocab=vocab)
    assert torch.equal(back.input.weight, emb.input.weight) and torch.equal(back.output.weight, emb.output.weight)
    with pytest.raises(OutputExistsError):
        save_embeddings(emb, p)


def _tiny(arch: str, vocab_size: int):
    """Tiny models of the common architectures, built from a config (no download)."""
    T = transformers
    common = dict(vocab_size=vocab_size, hidden_size=32, intermediate_size=48, num_attention_heads=4,
                  num_key_value_heads=2, num_hidden_layers=2)
    if arch == "gpt2":
        return T.GPT2LMHeadModel(T.GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4))
    if arch == "mistral":
        return T.MistralForCausalLM(T.MistralConfig(**common, tie_word_embeddings=False))
    if arch == "qwen2":
        return T.Qwen2ForCausalLM(T.Qwen2Config(**common, tie_word_embeddings=True))
    if arch == "gemma3":
        return T.Gemma3ForCausalLM(T.Gemma3TextConfig(**common, head_dim=8, tie_word_embeddings=True))
    raise AssertionError(arch)


@pytest.mark.parametrize("arch", ["gpt2", "mistral", "qwen2", "gemma3"])
def test_architectures_sharded_read_write(tmp_path, arch):
    """Sharded checkpoints (index file) of each naming scheme: read rows, write new ones, reload in transformers."""
    torch.manual_seed(0)
    model = _tiny(arch, vocab_size=32000)
    model.save_pretrained(tmp_path / "src", safe_serialization=True, max_shard_size="300KB")
    assert (tmp_path / "src" / "model.safetensors.index.json").exists()
    tok = load_tokenizer("mistral")
    emb = load_model_embeddings(tmp_path / "src", vocab=tok.vocab)
    assert torch.equal(emb.input.weight, model.get_input_embeddings().weight.detach())
    assert emb.tied == (arch in ("gpt2", "qwen2", "gemma3"))
    new = ModelEmbeddings(EmbeddingTable(tok.vocab, emb.input.weight * 2),
                          None if emb.tied else EmbeddingTable(tok.vocab, emb.output.weight * 3))
    out = write_model_folder(tmp_path / "src", tmp_path / "out", new, hf_tokenizer=tok.to_hf(), vocab=tok.vocab)
    back = transformers.AutoModelForCausalLM.from_pretrained(out)
    assert torch.equal(back.get_input_embeddings().weight.detach(), emb.input.weight * 2)
    expect = emb.input.weight * 2 if emb.tied else emb.output.weight * 3
    assert torch.equal(back.get_output_embeddings().weight.detach(), expect)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) <= {p.name for p in out.iterdir()}


@pytest.mark.slow
@pytest.mark.network
def test_gemma3_embedding_equals_transformers(gemma3_dir):
    emb = load_model_embeddings(gemma3_dir)
    model = transformers.AutoModelForCausalLM.from_pretrained(gemma3_dir)
    assert emb.input.weight.shape == (262144, 640) and emb.tied
    assert torch.equal(emb.input.weight, model.get_input_embeddings().weight.detach())


@pytest.mark.parametrize("shard", ["../x.safetensors", "/tmp/x.safetensors", "sub/x.safetensors", ".x.safetensors", 7])
def test_an_index_naming_shards_outside_the_folder_is_refused(tmp_path, shard):
    """A hostile index.json must not make a write land beside the output (``tmp / "../x.safetensors"``)."""
    from tokkit.embedding.io import checkpoint_layout
    from tokkit.errors import FormatError

    torch.manual_seed(0)
    _tiny("mistral", vocab_size=64).save_pretrained(tmp_path / "src", safe_serialization=True, max_shard_size="30KB")
    path = tmp_path / "src" / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    assert checkpoint_layout(tmp_path / "src").input_name in index["weight_map"]
    index["weight_map"]["lm_head.weight"] = shard
    path.write_text(json.dumps(index))
    with pytest.raises(FormatError, match="not plain file names"):
        checkpoint_layout(tmp_path / "src")
    path.write_text("{not json")
    with pytest.raises(FormatError, match="not a safetensors index"):
        checkpoint_layout(tmp_path / "src")
