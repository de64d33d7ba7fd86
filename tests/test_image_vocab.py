"""add-to-vocab: image codes as added tokens of a text LM, rows projected from the codebook."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from tokkit.image.vocab_bridge import project_codebook  # noqa: E402

ICONS = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"


def test_projection_matches_text_mean_and_leading_covariance():
    g = torch.Generator().manual_seed(0)
    E = torch.randn(500, 16, generator=g) @ torch.randn(16, 16, generator=g) + 3.0  # text rows (V, D)
    C = torch.randn(125, 3, generator=g) @ torch.randn(3, 3, generator=g)  # codebook (K, d)
    R = project_codebook(C, E)
    assert R.shape == (125, 16)
    torch.testing.assert_close(R.double().mean(0), E.double().mean(0), atol=1e-6, rtol=1e-6)
    # the new rows live in the text rows' top-3 principal subspace, with the same variances along it
    Ec = E.double() - E.double().mean(0)
    _, s, v = torch.linalg.svd(Ec, full_matrices=False)
    Rc = R.double() - R.double().mean(0)
    inside = Rc @ v[:3].T @ v[:3]
    torch.testing.assert_close(inside, Rc, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close((Rc @ v[:3].T).var(0, unbiased=False), (s[:3] ** 2) / E.shape[0], atol=1e-6, rtol=1e-5)
    # distinct codes stay distinct
    assert torch.unique(R.round(decimals=5), dim=0).shape[0] == 125


@pytest.mark.slow
def test_add_to_vocab_writes_a_loadable_model(smollm2_dir, tmp_path):
    from click.testing import CliRunner
    from tokenizers import Tokenizer

    from tokkit.embedding import load_model_embeddings
    from tokkit.image import ImageTokenizer
    from tokkit_cli.main import cli

    ck = tmp_path / "ck"
    assert CliRunner().invoke(cli, ["image", "train", "--recipe", "tiny", "--data", str(ICONS), "-o", str(ck)]).exit_code == 0
    out = tmp_path / "lm"
    r = CliRunner().invoke(cli, ["image", "add-to-vocab", "--model", str(ck), "--lm", str(smollm2_dir), "-o", str(out)])
    assert r.exit_code == 0, r.output
    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    base = Tokenizer.from_file(str(smollm2_dir / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    assert tok.encode("<img_start><img_7><img_124><img_end>", add_special_tokens=False).ids == [base + 125, base + 7,
                                                                                                  base + 124, base + 126]
    old = load_model_embeddings(smollm2_dir)
    new = load_model_embeddings(out)
    assert new.input.rows_count == base + 127
    assert torch.equal(new.input.weight[:base], old.input.weight[:base])
    img = ImageTokenizer.load(ck)
    expected = project_codebook(img.codebook_table().weight, old.input.weight[:base].float())
    torch.testing.assert_close(new.input.weight[base:base + 125].float(), expected.float(), atol=1e-2, rtol=1e-2)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.get_input_embeddings().weight.shape[0] == base + 127
    logits = model(torch.tensor([[base + 125, base + 7, base + 126]])).logits
    assert logits.shape == (1, 3, base + 127) and torch.isfinite(logits).all()
