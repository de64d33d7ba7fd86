"""Reading image files (tokkit.image.files / data): real Pillow-made files in tmp_path, equivalent files compared.

Each fix of the loading audit has its test here: alpha composited at the image's own size and then the one RGB
path (an opaque RGBA / LA / P file gives exactly the pixels, hence the tokens, of its RGB conversion); 16-bit,
32-bit and float grayscale scaled by their depth; the EXIF orientation; animations noted; large PNG text read
past; every Pillow failure one FormatError (also under ``image train --data``); ``image decode -o FILE``;
``image prepare``'s skipped counts; the API's type checks.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
np = pytest.importorskip("numpy")
pytest.importorskip("PIL")

from click.testing import CliRunner  # noqa: E402
from PIL import Image, ImageFile, ImageOps, PngImagePlugin  # noqa: E402

from tokkit.errors import EmptyInputError, FormatError, InputTypeError, NonFiniteError  # noqa: E402
from tokkit.image import ImageTokenizer, Tokenizer1D, load_images, load_recipe  # noqa: E402
from tokkit.image.data import read_images  # noqa: E402
from tokkit.image.errors import ImageSizeError  # noqa: E402
from tokkit_cli.main import cli  # noqa: E402

ICONS = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"
LOGGER = "tokkit.image.data"


def _gradient(w: int = 64, h: int = 48) -> np.ndarray:
    """A smooth (h, w, 3) uint8 picture: every pixel differs from its neighbours, no two channels equal."""
    yy, xx = np.mgrid[0:h, 0:w]
    return np.stack([xx * 4, yy * 5, (xx + yy) * 2], -1).clip(0, 255).astype(np.uint8)


def _px(path: Path, size: int = 16, **kw) -> torch.Tensor:
    return read_images([path], size=size, **kw).pixels[0]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return float("inf") if mse == 0 else 10 * float(np.log10(1 / mse))


@pytest.fixture(scope="module")
def tok(tmp_path_factory) -> ImageTokenizer:
    """The tiny recipe's model with seeded random weights, saved as a checkpoint (16 px, N = 8): ids, not quality."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("files") / "ckpt"
    folder.mkdir()
    ImageTokenizer.save_model(Tokenizer1D(load_recipe("tiny").model), folder)
    return ImageTokenizer.load(folder)


def test_opaque_rgba_la_and_palette_load_exactly_like_their_rgb_conversion(tmp_path, tok, caplog):
    rgb = Image.fromarray(_gradient())
    rgb.save(tmp_path / "rgb.png")
    rgb.convert("RGBA").save(tmp_path / "rgba.png")
    gray = rgb.convert("L")
    gray.convert("RGB").save(tmp_path / "gray_rgb.png")
    Image.merge("LA", [gray, Image.new("L", gray.size, 255)]).save(tmp_path / "la.png")
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.save(tmp_path / "pal.png")
    pal.convert("RGB").save(tmp_path / "pal_rgb.png")
    pal.save(tmp_path / "pal_trns_unused.png", transparency=255)  # a tRNS index no pixel uses: still opaque
    for a, b in [("rgb", "rgba"), ("gray_rgb", "la"), ("pal_rgb", "pal"), ("pal_rgb", "pal_trns_unused")]:
        for fit in ("crop", "pad"):
            for size in (16, 32):
                with caplog.at_level(logging.WARNING, logger=LOGGER):
                    caplog.clear()
                    x, y = _px(tmp_path / f"{a}.png", size, fit=fit), _px(tmp_path / f"{b}.png", size, fit=fit)
                assert torch.equal(x, y), (a, b, fit, size)
                assert "composited" not in caplog.text  # nothing was transparent
        x, y = _px(tmp_path / f"{a}.png"), _px(tmp_path / f"{b}.png")
        assert all(torch.equal(s, t) for s, t in zip(tok.tokenize(x[None]), tok.tokenize(y[None])))


def test_alpha_is_composited_at_the_images_own_size_then_cropped_like_rgb(tmp_path, caplog):
    """An RGBA file was composited onto a white square canvas first: padded instead of cropped, and a 1x5000
    RGBA image slipped past the size check that refuses the same RGB image."""
    arr = _gradient()
    alpha = np.full(arr.shape[:2], 255, np.uint8)
    alpha[:, 20:30] = 0  # a transparent band inside the centred square
    alpha[:, 30:40] = 128
    Image.fromarray(np.dstack([arr, alpha])).save(tmp_path / "rgba.png")
    white = Image.new("RGBA", (64, 48), (255, 255, 255, 255))
    white.alpha_composite(Image.open(tmp_path / "rgba.png"))
    white.convert("RGB").save(tmp_path / "flat.png")  # what the file looks like on white, as RGB
    for fit in ("crop", "pad"):
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            caplog.clear()
            got = _px(tmp_path / "rgba.png", 32, fit=fit)
        assert "rgba.png: transparency composited onto white" in caplog.text
        assert torch.equal(got, _px(tmp_path / "flat.png", 32, fit=fit))
    Image.new("RGB", (1, 5000), (10, 200, 10)).save(tmp_path / "tall.png")
    Image.new("RGBA", (1, 5000), (10, 200, 10, 255)).save(tmp_path / "tall_rgba.png")
    Image.new("LA", (1, 5000), (10, 100)).save(tmp_path / "tall_la.png")
    for name in ("tall.png", "tall_rgba.png", "tall_la.png"):
        with pytest.raises(ImageSizeError, match="is 1x5000, smaller than the model's 16x16 input.*--upscale"):
            _px(tmp_path / name)
    assert torch.equal(_px(tmp_path / "tall.png", upscale=True), _px(tmp_path / "tall_rgba.png", upscale=True))
    assert torch.equal(_px(tmp_path / "tall.png", upscale=True)[:, 8, 8], torch.tensor([10, 200, 10]) / 255)


def test_a_trns_key_colour_is_composited_too_and_noted_only_when_present(tmp_path, caplog):
    arr = _gradient()
    key = tuple(int(v) for v in arr[24, 32])  # a colour that occurs inside the centred square
    Image.fromarray(arr).save(tmp_path / "rgb.png")
    Image.fromarray(arr).save(tmp_path / "keyed.png", transparency=key)
    Image.fromarray(arr).save(tmp_path / "keyed_absent.png", transparency=(1, 2, 3))
    flat = arr.copy()
    flat[(arr == key).all(-1)] = 255
    Image.fromarray(flat).save(tmp_path / "flat.png")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert torch.equal(_px(tmp_path / "keyed.png", 32), _px(tmp_path / "flat.png", 32))
    assert "keyed.png: transparency composited onto white" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert torch.equal(_px(tmp_path / "keyed_absent.png", 32), _px(tmp_path / "rgb.png", 32))
    assert "composited" not in caplog.text
    g = np.asarray(Image.fromarray(arr).convert("L"))  # grayscale tRNS, at 8 and at 16 bits
    Image.fromarray(g).save(tmp_path / "l_keyed.png", transparency=int(g[24, 32]))
    Image.fromarray(g.astype(np.uint16) * 257).save(tmp_path / "g16_keyed.png", transparency=int(g[24, 32]) * 257)
    g_flat = g.copy()
    g_flat[g == g[24, 32]] = 255
    Image.fromarray(g_flat).save(tmp_path / "l_flat.png")
    for name in ("l_keyed.png", "g16_keyed.png"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            assert torch.equal(_px(tmp_path / name, 32), _px(tmp_path / "l_flat.png", 32)), name
        assert f"{name}: transparency composited onto white" in caplog.text


def test_16_bit_32_bit_and_float_grayscale_are_scaled_by_their_depth(tmp_path, tok, caplog):
    """img.convert("RGB") clipped these to all white (I;16, I) or all black (F)."""
    g8 = np.asarray(Image.fromarray(_gradient()).convert("L"))
    Image.fromarray(g8).save(tmp_path / "g8.png")
    Image.fromarray(g8.astype(np.uint16) * 257).save(tmp_path / "g16.png")  # the same picture at 16 bits
    Image.fromarray(g8.astype(np.int32) * 257).save(tmp_path / "i32.tif")
    Image.fromarray(g8.astype(np.float32) / 255).save(tmp_path / "f01.tif")
    Image.fromarray(g8.astype(np.float32)).save(tmp_path / "f255.tif")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16") and Image.open(tmp_path / "i32.tif").mode == "I"
    want = _px(tmp_path / "g8.png")
    for name in ("g16.png", "i32.tif", "f01.tif", "f255.tif"):
        with caplog.at_level(logging.WARNING, logger=LOGGER):
            got = _px(tmp_path / name)
        assert torch.equal(got, want), name
        assert all(torch.equal(a, b) for a, b in zip(tok.tokenize(got[None]), tok.tokenize(want[None])))
    assert "scaled to 8 bits" in caplog.text
    rng = np.random.default_rng(0)  # full 16-bit detail: within rounding of the 8-bit picture
    g16 = (g8.astype(np.uint16) * 257 + rng.integers(0, 257, g8.shape)).astype(np.uint16)
    Image.fromarray(g16).save(tmp_path / "g16_fine.png")
    Image.fromarray((g16 >> 8).astype(np.uint8)).save(tmp_path / "g16_fine_as8.png")
    assert _psnr(_px(tmp_path / "g16_fine.png", 32), _px(tmp_path / "g16_fine_as8.png", 32)) > 45
    Image.fromarray(g8.astype(np.int32) - 300).save(tmp_path / "negative.tif")
    with pytest.raises(FormatError, match=r"negative\.tif holds 32-bit integer \(I\) pixels in -300\.\..*rescale"):
        _px(tmp_path / "negative.tif")
    Image.fromarray(g8.astype(np.float32) * 4).save(tmp_path / "f_wide.tif")
    with pytest.raises(FormatError, match=r"f_wide\.tif holds float \(F\) pixels in 0\.\.952.*0\.\.1 or 0\.\.255"):
        _px(tmp_path / "f_wide.tif")
    nan = g8.astype(np.float32) / 255
    nan[0, 0] = np.nan
    Image.fromarray(nan).save(tmp_path / "f_nan.tif")
    with pytest.raises(FormatError, match="NaN or infinite"):
        _px(tmp_path / "f_nan.tif")


def test_exif_orientation_is_applied(tmp_path):
    arr = _gradient()
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated 90 degrees clockwise
    Image.fromarray(arr).save(tmp_path / "o6.jpg", exif=exif.tobytes(), quality=95)
    Image.fromarray(arr).save(tmp_path / "o1.jpg", quality=95)
    ImageOps.exif_transpose(Image.open(tmp_path / "o6.jpg")).save(tmp_path / "upright.png")
    assert Image.open(tmp_path / "upright.png").size == (48, 64)
    loaded = read_images([tmp_path / "o6.jpg"], size=32)
    assert loaded.sizes == ((48, 64),)  # the upright width and height
    assert torch.equal(loaded.pixels[0], _px(tmp_path / "upright.png", 32))
    assert not torch.equal(loaded.pixels[0], _px(tmp_path / "o1.jpg", 32))


@pytest.mark.parametrize("ext", ["gif", "webp", "png"])
def test_an_animation_gives_frame_0_with_a_note(tmp_path, ext, caplog):
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    opts = {"lossless": True} if ext == "webp" else {}
    frames[0].save(tmp_path / f"anim.{ext}", save_all=True, append_images=frames[1:], duration=100, loop=0, **opts)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        x = _px(tmp_path / f"anim.{ext}")
    assert f"anim.{ext}: animated (3 frames): frame 0 used" in caplog.text
    assert torch.equal(x, torch.tensor([1.0, 0, 0])[:, None, None].expand(3, 16, 16))
    frames[0].save(tmp_path / f"still.{ext}", **opts)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        _px(tmp_path / f"still.{ext}")
    assert "animated" not in caplog.text


def test_a_png_with_metadata_text_over_1_mb_is_read(tmp_path):
    """Pillow refuses zTXt / iTXt chunks that decompress past 1 MB (ValueError); the pixels do not depend on them."""
    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "plain.png")
    limits = PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY
    for chunk in ("ztxt", "itxt"):
        info = PngImagePlugin.PngInfo()
        xmp = "<x:xmpmeta>" + "a" * (3 << 20) + "</x:xmpmeta>"
        if chunk == "ztxt":
            info.add_text("Comment", xmp, zip=True)
        else:
            info.add_itxt("XML:com.adobe.xmp", xmp, zip=True)
        Image.fromarray(arr).save(tmp_path / f"{chunk}.png", pnginfo=info)
        assert (tmp_path / f"{chunk}.png").stat().st_size < 100_000
        assert torch.equal(_px(tmp_path / f"{chunk}.png"), _px(tmp_path / "plain.png"))
        with pytest.raises(ValueError, match="MAX_TEXT"):  # what Pillow alone does with it
            Image.open(tmp_path / f"{chunk}.png").load()
    assert (PngImagePlugin.MAX_TEXT_CHUNK, PngImagePlugin.MAX_TEXT_MEMORY) == limits  # raised for that read only


def test_every_pillow_failure_is_one_format_error_naming_the_file(tmp_path, monkeypatch):
    from tokkit.image.data import open_image

    arr = _gradient()
    Image.fromarray(arr).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.png").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "img.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"/>')
    for name in ("truncated.png", "text.png", "empty.png", "img.svg"):
        with pytest.raises(FormatError, match=rf"{name} is not a readable image .*; pass PNG/JPEG/WebP files"):
            _px(tmp_path / name)
        with pytest.raises(FormatError, match=name):
            with open_image(tmp_path / name):
                pass
    for err in (SyntaxError("broken PNG file"), ValueError("bad data"), OSError("decoder error -2"),
                EOFError("no more data")):
        def fail(*a, err=err, **k):
            raise err
        monkeypatch.setattr(ImageFile.ImageFile, "load", fail)
        with pytest.raises(FormatError, match=rf"ok\.png is not a readable image \({type(err).__name__}"):
            _px(tmp_path / "ok.png")
        monkeypatch.undo()
    with open_image(tmp_path / "ok.png") as im:  # an error of the caller's block passes through unchanged
        with pytest.raises(ImageSizeError):
            from tokkit.image.data import _to_square_rgb

            _to_square_rgb(im, 100, name="ok.png")


def test_train_with_an_unreadable_file_under_data_is_one_line_exit_2(tmp_path):
    """CropSampler called open_image without read_images' mapping: a PIL.UnidentifiedImageError traceback."""
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    for p in sorted(ICONS.glob("*.png"))[:2]:
        shutil.copy(p, data / p.name)
    (data / "broken.png").write_text("not a png")
    r = CliRunner().invoke(cli, ["image", "train", "--recipe", "tiny", "--steps", "1", "--data", str(data),
                                 "-o", str(tmp_path / "ck"), "--device", "cpu"])
    assert r.exit_code == 2, r.output
    assert "broken.png is not a readable image" in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_prepare_counts_unreadable_and_duplicate_files(tmp_path):
    import shutil

    src = tmp_path / "src"
    src.mkdir()
    icons = sorted(ICONS.glob("*.png"))[:3]
    for p in icons:
        shutil.copy(p, src / p.name)
    shutil.copy(icons[0], src / "zz_copy_of_first.png")
    (src / "broken.png").write_text("not a png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(src / "tiny.png")
    r = CliRunner().invoke(cli, ["image", "prepare", "--folder", str(src), "--size", "32", "-o", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "(skipped: 1 smaller than 32px, 1 unreadable, 1 duplicates)" in r.output, r.output
    written = list((tmp_path / "o" / "train").iterdir()) + list((tmp_path / "o" / "heldout").iterdir())
    assert len(written) == 3


def test_decode_o_with_an_image_extension_writes_that_file(tmp_path, tok):
    from tokkit.image.data import EXTS, SAVE_FORMATS, to_png_bytes

    assert set(SAVE_FORMATS) == EXTS  # every extension tokkit reads, decode can write

    model = Path(tmp_path / "m")
    model.mkdir()
    ImageTokenizer.save_model(tok.model, model)
    icons = [str(p) for p in sorted(ICONS.glob("*.png"))[:2]]
    run = CliRunner().invoke
    assert run(cli, ["image", "encode", "--model", str(model), icons[0], "-o", str(tmp_path / "one.tok")]).exit_code == 0
    assert run(cli, ["image", "encode", "--model", str(model), *icons, "-o", str(tmp_path / "two.tok")]).exit_code == 0
    want = tok.detokenize(tok.tokenize(load_images(icons[:1], size=16)))[0]
    for name, fmt in [("out.png", "PNG"), ("out.jpg", "JPEG"), ("out.JPEG", "JPEG"), ("out.webp", "WEBP")]:
        r = run(cli, ["image", "decode", "--model", str(model), str(tmp_path / "one.tok"), "-o", str(tmp_path / name)])
        assert r.exit_code == 0 and (tmp_path / name).is_file(), r.output
        im = Image.open(tmp_path / name)
        assert im.format == fmt and im.size == (16, 16)
        if fmt != "JPEG":  # PNG and lossless WebP keep every pixel
            assert np.array_equal(np.asarray(im.convert("RGB")), np.asarray(Image.open(tmp_path / "out.png")))
    assert (tmp_path / "out.png").read_bytes() == to_png_bytes(want)
    r = run(cli, ["image", "decode", "--model", str(model), str(tmp_path / "one.tok"), "-o", str(tmp_path / "noext")])
    assert r.exit_code == 0 and [p.name for p in (tmp_path / "noext").glob("*.png")] == ["00000.png"]
    r = run(cli, ["image", "decode", "--model", str(model), str(tmp_path / "two.tok"), "-o", str(tmp_path / "two.jpg")])
    assert r.exit_code == 2 and "holds 2 images" in r.output and "folder" in r.output
    assert not (tmp_path / "two.jpg").exists()
    r = run(cli, ["image", "decode", "--model", str(model), str(tmp_path / "two.tok"), "-o", str(tmp_path / "two")])
    assert r.exit_code == 0 and sorted(p.name for p in (tmp_path / "two").glob("*.png")) == ["00000.png", "00001.png"]


def test_library_refusals_and_copies(tmp_path, tok):
    Image.fromarray(_gradient()).save(tmp_path / "a.png")
    with pytest.raises(InputTypeError, match="pass a list of paths"):
        load_images(str(tmp_path / "a.png"), size=16)
    with pytest.raises(InputTypeError, match="pass a list of paths"):
        load_images(tmp_path / "a.png", size=16)
    with pytest.raises(EmptyInputError, match="no image paths"):
        load_images([], size=16)
    for bad in (0, -5):
        with pytest.raises(ImageSizeError, match=f"size must be a positive number of pixels, found {bad}"):
            load_images([tmp_path / "a.png"], size=bad)
    for bad in (16.0, True, "16"):
        with pytest.raises(InputTypeError, match="size must be an int"):
            load_images([tmp_path / "a.png"], size=bad)
    x = load_images((p for p in [tmp_path / "a.png"] * 2), size=16)  # any iterable of paths
    want = tok.tokenize(x)
    flipped = (x.numpy() * 255).round().astype(np.uint8)[:, :, ::-1]  # negative strides: taken as a copy
    assert all(torch.equal(a, b) for a, b in zip(tok.tokenize(flipped), tok.tokenize(x.flip(2))))
    for bad in (3.5, True):
        with pytest.raises(InputTypeError, match="max_tokens.*must be an int"):
            tok.tokenize(x, max_tokens=bad)
    assert all(torch.equal(a, b[:3]) for a, b in zip(tok.tokenize(x, max_tokens=np.int64(3)), want))
    for bad in (float("nan"), float("inf")):
        with pytest.raises(NonFiniteError, match="min_psnr must be a finite"):
            tok.encode_adaptive(x, min_psnr=bad)
