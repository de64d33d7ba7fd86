"""tokkit.image: quantizer, model, length samplers, API (prefix decoding, adaptive k, codebook), training."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from tokkit.image import ImageTokenizer, LengthSampler, Tokenizer1D, load_images, load_recipe, payload_bytes, train  # noqa: E402
from tokkit.image.errors import ImageSizeError, TokenCountError  # noqa: E402
from tokkit.image.quantizers import FSQ  # noqa: E402
from tokkit.image.samplers import sample_lengths, sampler_at  # noqa: E402
from tokkit.errors import FormatError, OutputExistsError  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "image"
ICONS = DATA / "icons"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> ImageTokenizer:
    out = tmp_path_factory.mktemp("img") / "tiny"
    torch.set_num_threads(2)
    train(load_recipe("tiny"), data=ICONS, out=out, device="cpu", progress=False)
    return ImageTokenizer.load(out)


def test_fsq_ids_are_the_mixed_radix_number_of_the_rounded_digits():
    q = FSQ((8, 5, 5, 5))
    z = torch.randn(3, 7, 4) * 3
    codes, ids, aux = q(z)
    assert codes.shape == (3, 7, 4) and ids.shape == (3, 7) and float(aux) == 0.0
    # brute-force oracle: nearest code among all 1000, index = position in codebook()
    book = q.codebook()
    assert book.shape == (1000, 4) and torch.unique(book, dim=0).shape[0] == 1000
    nearest = torch.cdist(codes.reshape(-1, 4), book).argmin(-1).reshape(3, 7)
    assert torch.equal(nearest, ids)
    assert torch.equal(q.codes_from_ids(ids), codes.detach())
    assert int(ids.min()) >= 0 and int(ids.max()) < 1000


def test_length_samplers():
    g = torch.Generator().manual_seed(0)
    assert sample_lengths(LengthSampler.NONE, batch=4, n=32, p_full=0.5, generator=g) == (32, None)
    k, lens = sample_lengths(LengthSampler.TAIL_BATCH, batch=4, n=32, p_full=0.5, generator=g)
    assert 1 <= k <= 32 and lens is None
    _, lens = sample_lengths(LengthSampler.NESTED_POW2, batch=4000, n=32, p_full=0.5, generator=g)
    assert set(lens.tolist()) == {1, 2, 4, 8, 16, 32}
    k, lens = sample_lengths(LengthSampler.NESTED_MIX, batch=4000, n=32, p_full=0.5, generator=g)
    full = float((lens == 32).float().mean())
    assert 0.5 < full < 0.56 and k == 32 and int(lens.min()) == 1  # p_full + (1 - p_full) / N = 0.516
    k, lens = sample_lengths(LengthSampler.NESTED_DUAL, batch=4000, n=32, p_full=0.5, generator=g)
    assert k == 32 and lens.shape == (8000,) and bool((lens[:4000] == 32).all())
    assert set(lens[4000:].tolist()) == set(range(1, 32))  # every prefix 1..N-1, never N
    _, lens = sample_lengths(LengthSampler.NESTED_DUAL, batch=3, n=1, p_full=0.5, generator=g)
    assert lens.tolist() == [1] * 6


def test_final_full_length_phase():
    kinds = [sampler_at(s, kind=LengthSampler.NESTED_MIX, steps=10, full_final=0.3) for s in range(10)]
    assert kinds == [LengthSampler.NESTED_MIX] * 7 + [LengthSampler.NONE] * 3
    assert {sampler_at(s, kind=LengthSampler.TAIL_BATCH, steps=10, full_final=0.0) for s in range(10)} == {
        LengthSampler.TAIL_BATCH}


def test_key_mask_decoding_equals_slicing():
    torch.manual_seed(0)
    m = Tokenizer1D(load_recipe("tiny").model).eval()
    x = torch.rand(3, 3, 16, 16)
    codes, _, _ = m.encode(x)
    lengths = torch.tensor([1, 5, 8])
    masked = m.decode_codes(codes, lengths)
    for b, k in enumerate(lengths.tolist()):
        torch.testing.assert_close(masked[b:b + 1], m.decode_codes(codes[b:b + 1, :k]), atol=1e-5, rtol=1e-4)


def test_tokenize_shapes_and_every_prefix_decodes(tiny):
    x = load_images(sorted(ICONS.glob("*.png"))[:4], size=16)
    lists = tiny.tokenize(x)
    N = tiny.config.max_tokens
    assert [t.shape for t in lists] == [(N,)] * 4 and all(t.dtype == torch.long for t in lists)
    assert torch.equal(torch.stack(tiny.tokenize(x, max_tokens=3)), torch.stack(lists)[:, :3])
    for k in range(1, N + 1):
        rec = tiny.detokenize([t[:k] for t in lists])
        assert rec.shape == (4, 3, 16, 16) and float(rec.min()) >= 0 and float(rec.max()) <= 1
    mixed = tiny.detokenize([lists[0][:1], lists[1][:N], lists[2][:3], lists[3][:1]])
    torch.testing.assert_close(mixed[2], tiny.detokenize([lists[2][:3]])[0])
    assert torch.equal(torch.stack(tiny.tokenize(x)), torch.stack(lists))  # deterministic


def test_bad_inputs(tiny):
    x = load_images(sorted(ICONS.glob("*.png"))[:1], size=16)
    with pytest.raises(TokenCountError, match=r"1\.\.8"):
        tiny.tokenize(x, max_tokens=9)
    with pytest.raises(TokenCountError):
        tiny.detokenize([torch.zeros(9, dtype=torch.long)])
    with pytest.raises(TokenCountError, match="0..124"):
        tiny.detokenize([torch.tensor([125])])
    with pytest.raises(ImageSizeError, match="16x16"):
        tiny.tokenize(torch.rand(1, 3, 20, 20))


def test_pixels_are_floats_in_unit_range_or_uint8(tiny):
    """uint8 pixels (and numpy arrays) mean what they mean; 0..255 floats, normalised tensors, NaN and
    integer dtypes other than uint8 would give wrong ids without a sign, so they are refused."""
    import numpy as np

    from tokkit.errors import InputTypeError, NonFiniteError

    x = load_images(sorted(ICONS.glob("*.png"))[:2], size=16)  # floats, exactly k/255
    as_u8 = (x * 255).round().to(torch.uint8)
    want = tiny.tokenize(x)
    for same in (as_u8, as_u8.numpy(), x.numpy()):
        assert all(torch.equal(a, b) for a, b in zip(tiny.tokenize(same), want))
    with pytest.raises(ImageSizeError, match=r"found 0\.\.255; divide by 255"):
        tiny.tokenize(x * 255)
    with pytest.raises(ImageSizeError, match="undo the mean/std normalisation"):
        tiny.tokenize((x - 0.5) / 0.25)
    with pytest.raises(NonFiniteError, match="NaN"):
        tiny.tokenize(torch.where(x > 0.5, float("nan"), x))
    with pytest.raises(InputTypeError, match="dtype torch.int64"):
        tiny.tokenize(as_u8.long())
    with pytest.raises(InputTypeError, match="found list"):
        tiny.tokenize(x.tolist())
    with pytest.raises(TokenCountError, match="1-d list of ints"):
        tiny.detokenize([want[0].float()])
    assert len(tiny.tokenize(x * 1.01 - 0.005)) == 2  # a resampling filter's overshoot is fine


def test_encode_adaptive_picks_the_smallest_k(tiny):
    from tokkit.image.api import psnr_per_image

    x = load_images(sorted(ICONS.glob("*.png"))[:6], size=16)
    full = tiny.tokenize(x)
    psnrs = torch.stack([psnr_per_image(tiny.detokenize([t[:k] for t in full]), x) for k in range(1, 9)], 1)  # (6, 8)
    target = float(psnrs.median())
    for i, t in enumerate(tiny.encode_adaptive(x, min_psnr=target)):
        ok = (psnrs[i] >= target).nonzero().flatten()
        assert len(t) == (int(ok[0]) + 1 if len(ok) else 8)
        assert torch.equal(t, full[i][: len(t)])
    K = tiny.config.codebook_size
    out = tiny.encode_adaptive(x, max_bytes=5)
    assert all(payload_bytes(len(t), K) <= 5 < payload_bytes(len(t) + 1, K) for t in out)
    with pytest.raises(TokenCountError):
        tiny.encode_adaptive(x, max_bytes=0)
    with pytest.raises(TokenCountError):
        tiny.encode_adaptive(x)


def test_codebook_is_a_codebook_vocab_embedding_table(tiny):
    table = tiny.codebook_table()
    assert len(table.vocab) == 125 and table.weight.shape == (125, 3)
    ids = torch.tensor([0, 7, 124])
    torch.testing.assert_close(table.rows(ids), tiny.model.quantizer.codes_from_ids(ids))


@pytest.mark.parametrize("over", [{}, {"sampler": "nested_dual", "full_final": 0.34}])
def test_same_seed_same_model_and_resume_is_exact(tmp_path, over):
    cfg = load_recipe("tiny", {"steps": 6, "checkpoint_every": 3, "log_every": 3, **over})
    a = train(cfg, data=ICONS, out=tmp_path / "a", device="cpu", progress=False)
    train(cfg, data=ICONS, out=tmp_path / "b", device="cpu", progress=False, stop_after=3)
    b = train(cfg, data=ICONS, out=tmp_path / "b", device="cpu", progress=False, resume=True)
    assert a.steps == b.steps == 6
    wa = ImageTokenizer.load(tmp_path / "a").model.state_dict()
    wb = ImageTokenizer.load(tmp_path / "b").model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ImageTokenizer.load(tmp_path / "a").model_id == ImageTokenizer.load(tmp_path / "b").model_id
    # another recipe is another run: refused before anything is written (more steps are allowed)
    train(cfg, data=ICONS, out=tmp_path / "c", device="cpu", progress=False, stop_after=3)
    before = {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir() if p.is_file()}
    other = load_recipe("tiny", {"steps": 6, "checkpoint_every": 3, "log_every": 3, **over, "lr": 0.02, "seed": 1})
    with pytest.raises(OutputExistsError, match="another recipe .lr, seed differ"):
        train(other, data=ICONS, out=tmp_path / "c", device="cpu", progress=False, resume=True)
    assert {p.name: p.read_bytes() for p in (tmp_path / "c").iterdir() if p.is_file()} == before


def test_training_reports_diagnostics_and_lowers_the_loss(tmp_path):
    r = train(load_recipe("tiny", {"steps": 20}), data=ICONS, out=tmp_path / "t", device="cpu", progress=False)
    h = r.history
    assert {"loss", "psnr_full", "codes_used", "position_entropy_bits", "encoder_grad_norm"} <= set(h[0])
    assert h[-1]["loss"] < h[0]["loss"] and r.codebook_size == 125 and 1 <= r.codes_used <= 125


def test_image_conversion_notes_and_refusals(tmp_path, caplog):
    from PIL import Image

    orig = DATA / "originals" / "coke_upper_left_corner_j_.png"  # palette image with transparency (tRNS)
    with caplog.at_level(logging.WARNING, logger="tokkit.image.data"):
        x = load_images([orig], size=32)
    assert x.shape == (1, 3, 32, 32) and "composited onto white" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tokkit.image.data"):  # a palette image without alpha: no note
        load_images([DATA / "originals" / "arrow2-3-1.png"], size=32)
    assert "composited" not in caplog.text
    Image.open(ICONS / "people__a_happy_boy_01.png").convert("L").save(tmp_path / "gray.png")
    with caplog.at_level(logging.WARNING, logger="tokkit.image.data"):
        g = load_images([tmp_path / "gray.png"], size=32)
    assert "grayscale" in caplog.text and torch.equal(g[0, 0], g[0, 1])
    with pytest.raises(ImageSizeError, match="smaller than the model's 64x64"):
        load_images([ICONS / "people__a_happy_boy_01.png"], size=64)
    (tmp_path / "fake.png").write_bytes(b"not a png")
    with pytest.raises(FormatError):
        load_images([tmp_path / "fake.png"], size=32)


def test_cosine_vq_trains_saves_and_reloads(tmp_path):
    pytest.importorskip("vector_quantize_pytorch")
    cfg = load_recipe("tiny", {"steps": 4, "model": {"quantizer": "vq", "vq_size": 64, "vq_dim": 4}})
    train(cfg, data=ICONS, out=tmp_path / "vq", device="cpu", progress=False)
    tok = ImageTokenizer.load(tmp_path / "vq")
    x = load_images(sorted(ICONS.glob("*.png"))[:3], size=16)
    ids = tok.tokenize(x)
    assert all(int(t.max()) < 64 for t in ids) and tok.codebook_table().weight.shape == (64, 4)
    again = ImageTokenizer.load(tmp_path / "vq").tokenize(x)
    assert all(torch.equal(a, b) for a, b in zip(ids, again))
    assert tok.detokenize([t[:2] for t in ids]).shape == (3, 3, 16, 16)
