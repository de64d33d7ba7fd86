"""`tokkit image ...` end to end with CliRunner on the committed real icons (tiny recipe)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from click.testing import CliRunner  # noqa: E402

from tokkit_cli.main import cli  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "data" / "image"
ICONS = DATA / "icons"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "ckpt"
    r = CliRunner().invoke(cli, ["image", "train", "--recipe", "tiny", "--data", str(ICONS), "-o", str(out),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "trained 20 steps" in r.output and "codes used" in r.output
    assert "20 steps of this recipe are a smoke test" in r.output  # tiny says what it is (issue 31)
    return out


def test_train_refuses_existing_output(ckpt):
    r = CliRunner().invoke(cli, ["image", "train", "--recipe", "tiny", "--data", str(ICONS), "-o", str(ckpt)])
    assert r.exit_code == 2 and "already exists" in r.output


def test_encode_decode_round_trip_exact_ids(ckpt, tmp_path):
    from tokkit.image import ImageTokenizer, load_images, unpack

    imgs = sorted(ICONS.glob("*.png"))[:3]
    tok_file = tmp_path / "x.tok"
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), *map(str, imgs), "-k", "5", "-o", str(tok_file)])
    assert r.exit_code == 0, r.output
    assert "bits per pixel" in r.output
    tok = ImageTokenizer.load(ckpt)
    parsed = unpack(tok_file.read_bytes(), expect_model_id=tok.model_id)
    expected = tok.tokenize(load_images(imgs, size=16), max_tokens=5)
    assert all(torch.equal(a, b) for a, b in zip(parsed.ids, expected))
    r = CliRunner().invoke(cli, ["image", "decode", "--model", str(ckpt), str(tok_file), "-o", str(tmp_path / "dec")])
    assert r.exit_code == 0, r.output
    from PIL import Image

    decoded = sorted((tmp_path / "dec").glob("*.png"))
    assert len(decoded) == 3 and Image.open(decoded[0]).size == (16, 16)
    # re-encoding the same image file gives the same bytes (determinism)
    r2 = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), *map(str, imgs), "-k", "5", "-o", str(tmp_path / "y.tok")])
    assert r2.exit_code == 0 and (tmp_path / "y.tok").read_bytes() == tok_file.read_bytes()


def test_bad_input_exit_2_and_nothing_written(ckpt, tmp_path):
    img = str(sorted(ICONS.glob("*.png"))[0])
    good = tmp_path / "g.tok"
    assert CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), img, "-o", str(good)]).exit_code == 0
    bad = tmp_path / "bad.tok"
    bad.write_bytes(good.read_bytes()[:-3])
    r = CliRunner().invoke(cli, ["image", "decode", "--model", str(ckpt), str(bad), "-o", str(tmp_path / "o.png")])
    assert r.exit_code == 2 and "corrupt" in r.output and not (tmp_path / "o.png").exists()
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), img, "-k", "99", "-o", str(tmp_path / "k.tok")])
    assert r.exit_code == 2 and "1..8" in r.output and not (tmp_path / "k.tok").exists()
    (tmp_path / "not_a_model").mkdir()
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(tmp_path / "not_a_model"), img, "-o",
                                 str(tmp_path / "m.tok")])
    assert r.exit_code == 2 and "not an image tokenizer checkpoint" in r.output
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), img, "-o", str(ckpt / "m.tok")])
    assert r.exit_code == 2 and "lies inside the input" in r.output and not (ckpt / "m.tok").exists()


def test_decode_refuses_a_header_that_is_degenerate_or_disagrees_with_the_model(ckpt, tmp_path):
    """K = 0 was a ZeroDivisionError; K = 1, N = 300 and S = 0 decoded images from a header the model never wrote."""
    import struct
    import zlib

    from tokkit.image import ImageTokenizer

    good = tmp_path / "g.tok"
    img = str(sorted(ICONS.glob("*.png"))[0])
    assert CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), img, "-o", str(good)]).exit_code == 0
    data, head = good.read_bytes(), struct.Struct(">4sB8sIHHI")
    magic, version, mid, K, N, S, M = head.unpack_from(data)
    cfg = ImageTokenizer.load(ckpt).config
    assert (K, N, S) == (cfg.codebook_size, cfg.max_tokens, cfg.image_size) and N <= 256

    def write(name, body=data[head.size:-4], **f):
        v = {"K": K, "N": N, "S": S, "M": M, **f}
        out = head.pack(magic, version, mid, v["K"], v["N"], v["S"], v["M"]) + body
        (tmp_path / name).write_bytes(out + struct.pack(">I", zlib.crc32(out)))
        return tmp_path / name

    cases = [(write("k0.tok", K=0, body=b"\x00\x00"), "is corrupt: its header declares codebook size K = 0"),
             (write("k1.tok", K=1, body=b"\x07"), "is corrupt: its header declares codebook size K = 1"),
             (write("s0.tok", S=0), "is corrupt: its header declares image size S = 0"),
             (write("m0.tok", M=0, body=b""), "is corrupt: its header declares image count = 0"),
             (write("nbig.tok", N=300, body=b"\x00" + data[head.size:-4]),
              f"declares max tokens N = 300, but the model {mid.hex()} has max tokens N = {N}"),
             (write("kbig.tok", K=K + 1), f"declares codebook size K = {K + 1}, but the model {mid.hex()} has "
                                          f"codebook size K = {K}"),
             (write("sbig.tok", S=2 * S), f"declares image size S = {2 * S}, but the model {mid.hex()} has "
                                          f"image size S = {S}")]
    for path, message in cases:
        for out in (tmp_path / f"{path.stem}.png", tmp_path / f"{path.stem}.d"):
            r = CliRunner().invoke(cli, ["image", "decode", "--model", str(ckpt), str(path), "-o", str(out),
                                         "--device", "cpu"])
            assert r.exit_code == 2 and message in r.output, (path.name, r.output)
            assert r.output.startswith("error: ") and "Traceback" not in r.output
            assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["g.tok", *(p.name for p, _ in cases)])  # no temporaries
    r = CliRunner().invoke(cli, ["image", "decode", "--model", str(ckpt), str(good), "-o", str(tmp_path / "ok.png")])
    assert r.exit_code == 0 and (tmp_path / "ok.png").is_file(), r.output


def test_eval_json_has_per_k_and_codecs(ckpt, tmp_path):
    out, plot = tmp_path / "e.json", tmp_path / "e.png"
    r = CliRunner().invoke(cli, ["image", "eval", str(ckpt), "--images", str(ICONS), "--limit", "4", "--json", str(out),
                                 "--plot", str(plot), "--contrast", str(ckpt)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    assert [p["k"] for p in res["per_k"]] == [1, 2, 3, 4, 6, 7, 8]
    assert {"k", "psnr", "ssim", "bytes", "file_bytes", "bpp"} <= set(res["per_k"][0])
    assert res["jpeg"][0]["file_bytes"] > res["jpeg"][0]["payload_bytes"] > 0
    assert [b["name"] for b in res["baselines"]][:2] == ["mean colour", "2x2 thumbnail"]
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_prepare_splits_by_content_and_encodes_rgba_with_a_note(ckpt, tmp_path, caplog):
    out = tmp_path / "prep"
    r = CliRunner().invoke(cli, ["image", "prepare", "--folder", str(DATA / "originals"), "--size", "32",
                                 "--heldout-percent", "50", "-o", str(out)])
    assert r.exit_code == 0, r.output
    train, held = sorted((out / "train").glob("*.png")), sorted((out / "heldout").glob("*.png"))
    assert len(train) + len(held) == 2 and not {p.name for p in train} & {p.name for p in held}
    from PIL import Image

    assert all(Image.open(p).size == (36, 36) for p in train) and all(Image.open(p).size == (32, 32) for p in held)
    import logging

    with caplog.at_level(logging.WARNING):
        r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt),
                                     str(DATA / "originals" / "coke_upper_left_corner_j_.png"), "-o", str(tmp_path / "a.tok")])
    assert r.exit_code == 0, r.output
    assert "transparency composited onto white" in caplog.text
    r = CliRunner().invoke(cli, ["image", "prepare", "-o", str(tmp_path / "none")])
    assert r.exit_code == 2 and "nothing to prepare" in r.output


def test_entropy_coded_tok_round_trip_and_refusals(ckpt, tmp_path):
    import shutil

    from tokkit.image import ImageTokenizer, unpack
    from tokkit.image.entropy import TokenPrior
    from tokkit.image.errors import ModelMismatchError

    model = tmp_path / "m"
    shutil.copytree(ckpt, model)
    imgs = [str(p) for p in sorted(ICONS.glob("*.png"))]
    run = CliRunner().invoke
    r = run(cli, ["image", "encode", "--model", str(model), *imgs, "--entropy", "-o", str(tmp_path / "e.tok")])
    assert r.exit_code == 2 and "fit-prior" in r.output and not (tmp_path / "e.tok").exists()
    r = run(cli, ["image", "fit-prior", str(model), "--data", str(ICONS)])
    assert r.exit_code == 0 and "bit/position" in r.output, r.output
    assert run(cli, ["image", "fit-prior", str(model), "--data", str(ICONS)]).exit_code == 2  # exists, no --force
    for name, extra in (("p.tok", []), ("e.tok", ["--entropy"]), ("e5.tok", ["--entropy", "-k", "5"])):
        r = run(cli, ["image", "encode", "--model", str(model), *imgs, *extra, "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    tok, prior = ImageTokenizer.load(model), TokenPrior.load(model)
    plain = unpack((tmp_path / "p.tok").read_bytes(), expect_model_id=tok.model_id)
    coded = unpack((tmp_path / "e.tok").read_bytes(), expect_model_id=tok.model_id, prior=prior)
    short = unpack((tmp_path / "e5.tok").read_bytes(), expect_model_id=tok.model_id, prior=prior)
    assert plain.prior_id is None and coded.prior_id == prior.prior_id and len(coded.ids) == len(imgs)
    assert all(torch.equal(a, b) for a, b in zip(plain.ids, coded.ids))
    assert all(torch.equal(a[:5], b) for a, b in zip(plain.ids, short.ids))
    for name in ("p.tok", "e.tok"):
        r = run(cli, ["image", "decode", "--model", str(model), str(tmp_path / name), "-o", str(tmp_path / f"{name}.d")])
        assert r.exit_code == 0, r.output
    pa, pb = (sorted((tmp_path / f"{n}.d").glob("*.png")) for n in ("p.tok", "e.tok"))
    assert [a.read_bytes() for a in pa] == [b.read_bytes() for b in pb]
    # the same weights without the prior cannot decode it; another prior is refused
    r = run(cli, ["image", "decode", "--model", str(ckpt), str(tmp_path / "e.tok"), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "entropy-coded" in r.output and not (tmp_path / "x").exists()
    other = TokenPrior(prior.counts + 1)
    with pytest.raises(ModelMismatchError):
        unpack((tmp_path / "e.tok").read_bytes(), prior=other)


ICONS = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"


def test_prepare_a_small_folder_holds_out_one_image_or_says_why(tmp_path):
    """22 committed icons at 5% draw no held-out image by hash; one is still held out (chosen by content)."""
    import shutil

    small = tmp_path / "small"
    small.mkdir()
    for p in sorted(ICONS.glob("*.png"))[:3]:
        shutil.copy(p, small / p.name)
    r = CliRunner().invoke(cli, ["image", "prepare", "--folder", str(small), "-o", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    held = sorted(p.name for p in (tmp_path / "a" / "heldout").iterdir())
    train = sorted(p.name for p in (tmp_path / "a" / "train").iterdir())
    assert len(held) == 1 and len(train) == 2 and not set(held) & set(train)
    r2 = CliRunner().invoke(cli, ["image", "prepare", "--folder", str(small), "-o", str(tmp_path / "b")])
    assert sorted(p.name for p in (tmp_path / "b" / "heldout").iterdir()) == held  # reproducible
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(sorted(ICONS.glob("*.png"))[0], one)
    r = CliRunner().invoke(cli, ["image", "prepare", "--folder", str(one), "-o", str(tmp_path / "c")])
    assert r.exit_code == 0 and "no held-out image (only 1 usable image(s)" in r.output


def test_image_train_defaults_to_the_committed_icons(tmp_path):
    """`tokkit image train -o ckpt --recipe tiny` with no --data trains on data/image/icons."""
    r = CliRunner().invoke(cli, ["image", "train", "-o", str(tmp_path / "ck"), "--recipe", "tiny", "--steps", "2"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "ck" / "model.safetensors").is_file() and "trained 2 steps" in r.output
    assert json.loads((tmp_path / "ck" / "train_state.json").read_text())["data"] == str(ICONS)


def test_decode_k_decodes_a_shorter_prefix_of_a_tok_file(ckpt, tmp_path):
    from tokkit.image import ImageTokenizer, load_images
    from tokkit.image.data import to_png_bytes

    imgs = sorted(ICONS.glob("*.png"))[:2]
    tok_file = tmp_path / "x.tok"
    assert CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), *map(str, imgs), "-o", str(tok_file)]).exit_code == 0
    r = CliRunner().invoke(cli, ["image", "decode", "--model", str(ckpt), str(tok_file), "-k", "3", "-o", str(tmp_path / "d")])
    assert r.exit_code == 0 and "tokens [3, 3] of [8, 8] stored" in r.output, r.output
    tok = ImageTokenizer.load(ckpt)
    want = tok.detokenize([t[:3] for t in tok.tokenize(load_images(imgs, size=16))])
    assert [p.read_bytes() for p in sorted((tmp_path / "d").glob("*.png"))] == [to_png_bytes(w) for w in want]
    r = CliRunner().invoke(cli, ["image", "decode", "--model", str(ckpt), str(tok_file), "-k", "9", "-o", str(tmp_path / "e")])
    assert r.exit_code == 2 and "pass -k at most 8" in r.output and not (tmp_path / "e").exists()


def test_encode_reports_reductions_and_bits_per_pixel_at_the_inputs_size(ckpt, tmp_path):
    from PIL import Image

    imgs = sorted(ICONS.glob("*.png"))[:3]  # 36 x 36; the tiny model takes 16 x 16
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), *map(str, imgs), "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 0, r.output
    n = (tmp_path / "x.tok").stat().st_size
    assert f"note: reduced 3 image(s) to the model's 16x16 input (crop, then box filter): {imgs[0].name} 36x36" in r.output
    assert (f"{n} bytes, {8 * n / (3 * 36 * 36):.4f} bits per pixel of the inputs as given (3,888 pixels; "
            f"{8 * n / (3 * 16 * 16):.4f} at the model's 16x16 input)") in r.output
    exact = tmp_path / "exact.png"
    Image.open(imgs[0]).convert("RGB").resize((16, 16)).save(exact)
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), str(exact), "-o", str(tmp_path / "y.tok")])
    n = (tmp_path / "y.tok").stat().st_size
    assert r.exit_code == 0 and "note:" not in r.output and f"{8 * n / 256:.4f} bits per pixel (model" in r.output
    small = tmp_path / "small.png"
    Image.open(imgs[0]).convert("RGB").resize((8, 8)).save(small)
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), str(small), "-o", str(tmp_path / "z.tok")])
    assert r.exit_code == 2 and "smaller than the model's 16x16 input" in r.output and "--upscale" in r.output
    assert not (tmp_path / "z.tok").exists()
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpt), str(small), "--upscale", "-o", str(tmp_path / "z.tok")])
    assert r.exit_code == 0 and "upscaled (bicubic) 1 image(s)" in r.output, r.output


def test_fit_pad_keeps_the_whole_image(tmp_path):
    from PIL import Image

    from tokkit.image.data import read_images

    wide = tmp_path / "wide.png"
    Image.new("RGB", (40, 20), (255, 0, 0)).save(wide)
    crop = read_images([wide], size=16).pixels[0]
    pad = read_images([wide], size=16, fit="pad").pixels[0]
    assert torch.equal(crop, torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 16, 16))  # the centred square: all red
    assert torch.equal(pad[:, 0, 0], torch.ones(3)) and torch.equal(pad[:, 8, 8], torch.tensor([1.0, 0, 0]))  # white bands
