"""Published TiTok / One-D-Piece: official names and shapes, config parsing, loading and refusing checkpoints,
hub-id resolution without downloads, and the whole toolchain on a small config of each family (random weights)."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from click.testing import CliRunner  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402

from tokkit.errors import FormatError, MissingFileError  # noqa: E402
from tokkit.image import ImageTokenizer, load_images, unpack  # noqa: E402
from tokkit.image.config import TiTokConfig  # noqa: E402
from tokkit.image.checkpoint import config_for, resolve_checkpoint  # noqa: E402
from tokkit.image.published import (PRESETS, check_names, compact_names, config_from_official,  # noqa: E402
                                    expected_shapes, infer_config, names_digest, official_config)
from tokkit.image.titok import TiTok  # noqa: E402
from tokkit_cli.main import cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ICONS = ROOT / "data" / "image" / "icons"
OFFICIAL = json.loads((ROOT / "data" / "image" / "official_state_dicts.json").read_text())["presets"]

_T = dict(image_size=16, patch=4, enc_width=32, enc_depth=1, enc_heads=2, dec_width=32, dec_depth=2, dec_heads=2,
          max_tokens=8)
_PIX = dict(proxy_codes=64, pixel_z_channels=16, pixel_hidden=32, pixel_channel_mult=(1, 1, 2), pixel_res_blocks=1)
SMALL = {  # one small config per family / decoding path
    "titok_two_stage": TiTokConfig(**_T, vq_size=64, token_size=4, **_PIX),
    "titok_single_vq": TiTokConfig(**_T, vq_size=64, token_size=8, use_l2_norm=False, legacy=False, two_stage=False),
    "one_d_piece": TiTokConfig(**_T, family="one_d_piece", vq_size=64, token_size=4, **_PIX),
    "titok_vae": TiTokConfig(**_T, quantizer="vae", token_size=4, legacy=False, two_stage=False),
}


def make_checkpoint(folder: Path, cfg: TiTokConfig, seed: int = 0) -> Path:
    """A tokkit folder with random weights: the reference init, then every tensor perturbed (non-trivial norms)."""
    torch.manual_seed(seed)
    model = TiTok(cfg)
    with torch.no_grad():
        for t in model.state_dict().values():
            t.add_(0.02 * torch.randn(t.shape))
    folder.mkdir(parents=True)
    ImageTokenizer.save_model(model, folder)
    return folder


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("published")
    return {name: make_checkpoint(root / name, cfg) for name, cfg in SMALL.items()}


# ---- names, shapes, configs ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(PRESETS))
def test_port_names_and_shapes_are_the_official_ones(name):
    """The port's state dict (built on the meta device) against the official code's, recorded as data."""
    rec = OFFICIAL[name]
    shapes = expected_shapes(PRESETS[name].config)
    assert rec["hub_id"] == PRESETS[name].hub_id
    if "names" in rec:  # the readable form first: a failure names the first differing tensor
        ours = compact_names(shapes)
        diff = [k for k in sorted(set(ours) | set(rec["names"])) if ours.get(k) != rec["names"].get(k)]
        assert not diff, f"{diff[0]}: port {ours.get(diff[0])}, official {rec['names'].get(diff[0])}"
    assert len(shapes) == rec["tensors"]
    assert names_digest(shapes) == rec["sha256"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_configs_round_trip_through_the_official_format_and_the_shapes(name):
    cfg = PRESETS[name].config
    assert config_from_official(official_config(cfg)) == cfg
    inferred = infer_config(expected_shapes(cfg), family=cfg.family)  # shapes alone determine the architecture
    assert inferred == cfg


def test_a_hub_config_json_with_training_keys_parses():
    """A hub config.json is the whole OmegaConf dump (experiment, losses, ...); defaults follow the official code."""
    data = {"experiment": {"tokenizer_checkpoint": "x.bin"}, "losses": {"quantizer_weight": 1.0},
            "model": {"vq_model": {"codebook_size": 4096, "token_size": 12, "use_l2_norm": True, "commitment_cost": 0.25,
                                   "vit_enc_model_size": "large", "vit_dec_model_size": "large", "vit_enc_patch_size": 16,
                                   "vit_dec_patch_size": 16, "num_latent_tokens": 32}},
            "dataset": {"preprocessing": {"crop_size": 256}}}
    assert config_from_official(data) == PRESETS["titok-l-32"].config  # finetune_decoder / is_legacy default to True
    data["model"]["type"] = "one_d_piece"
    assert config_from_official(data).family == "one_d_piece"
    del data["model"]["vq_model"]["vit_enc_model_size"]
    with pytest.raises(FormatError, match="vit_enc_model_size"):
        config_from_official(data)


def test_check_names_names_the_first_mismatch():
    exp = {"a.weight": (2, 3), "b.bias": (4,)}
    check_names(exp, dict(exp), source="x")
    with pytest.raises(FormatError, match=r"tensor a.weight has shape \[3, 2\], expected \[2, 3\]"):
        check_names(exp, {"a.weight": (3, 2), "b.bias": (4,)}, source="x")
    with pytest.raises(FormatError, match=r"tensor b.bias \[4\] is missing"):
        check_names(exp, {"a.weight": (2, 3)}, source="x")
    with pytest.raises(FormatError, match=r"unexpected tensor c \[1\]"):
        check_names(exp, {**exp, "c": (1,)}, source="x")


# ---- loading and refusing ------------------------------------------------------------------------------
def _edited(src: Path, dst: Path, edit) -> Path:
    dst.mkdir()
    state = load_file(str(src / "model.safetensors"))
    edit(state)
    save_file(state, str(dst / "model.safetensors"))
    (dst / "model_config.json").write_text((src / "model_config.json").read_text())
    return dst


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("decoder.mask_token"), "tensor decoder.mask_token [1, 1, 32] is missing"),
    (lambda s: s.__setitem__("latent_tokens", torch.zeros(9, 32)), "tensor latent_tokens has shape [9, 32], expected [8, 32]"),
    (lambda s: s.__setitem__("quantize.embed_prob", torch.zeros(64)), "unexpected tensor quantize.embed_prob [64]"),
    (lambda s: s["decoder.ln_post.weight"].__setitem__(3, float("nan")), "tensor decoder.ln_post.weight holds 1 NaN"),
])
def test_mismatched_checkpoints_are_refused_naming_the_first_mismatch(ckpts, tmp_path, edit, message):
    bad = _edited(ckpts["titok_two_stage"], tmp_path / "bad", edit)
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(bad), str(sorted(ICONS.glob("*.png"))[0]),
                                 "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 2 and message in r.output, r.output
    assert not (tmp_path / "x.tok").exists()


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty HF hub cache for this test (huggingface_hub reads its constants at import: patch both)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    return tmp_path / "hub"


def test_hub_ids_resolve_from_the_local_cache_only(tmp_path, monkeypatch, hub_cache):
    """Offline and not cached: one line saying what to download; cached: the snapshot's files, checked."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    img = str(sorted(ICONS.glob("*.png"))[0])
    r = CliRunner().invoke(cli, ["image", "encode", "--model", "titok-l-32", img, "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 2, r.output
    assert ("huggingface-cli download yucornetto/tokenizer_titok_l32_imagenet config.json model.safetensors"
            in r.output) and len(r.output.strip().splitlines()) == 1
    with pytest.raises(MissingFileError, match=r"turing-motors/One-D-Piece-S-256 pytorch_model.bin` then `tokkit image import"):
        resolve_checkpoint("one-d-piece-s-256")
    # a snapshot in the HF cache layout (what huggingface-cli download leaves): config.json + model.safetensors
    repo = "yucornetto/tokenizer_titok_s128_imagenet"
    snap = hub_cache / "models--yucornetto--tokenizer_titok_s128_imagenet" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    (snap.parents[1] / "refs").mkdir()
    (snap.parents[1] / "refs" / "main").write_text("0" * 40)
    (snap / "config.json").write_text(json.dumps({**official_config(PRESETS["titok-s-128"].config), "experiment": {}}))
    save_file({"latent_tokens": torch.zeros(128, 512)}, str(snap / "model.safetensors"))
    ck = resolve_checkpoint(repo)
    assert ck.weights == snap / "model.safetensors" and ck.config_file == snap / "config.json"
    assert config_for(ck, {}) == PRESETS["titok-s-128"].config
    r = CliRunner().invoke(cli, ["image", "encode", "--model", repo, img, "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 2 and "does not match the model: tensor" in r.output and "is missing" in r.output, r.output
    r = CliRunner().invoke(cli, ["image", "encode", "--model", "nobody-knows", img, "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 2 and "titok-l-32" in r.output  # the known names are listed


def test_import_reads_pickles_tensors_only_and_never_runs_their_code(ckpts, tmp_path):
    src = ckpts["one_d_piece"]
    state = load_file(str(src / "model.safetensors"))
    d = tmp_path / "dl"
    d.mkdir()
    torch.save(state, d / "pytorch_model.bin")
    (d / "model_config.json").write_text((src / "model_config.json").read_text())
    img = str(sorted(ICONS.glob("*.png"))[0])
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(d), img, "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 2 and "tokkit image import" in r.output  # pickles are never loaded implicitly
    r = CliRunner().invoke(cli, ["image", "import", str(d / "pytorch_model.bin"), "-o", str(tmp_path / "imp")])
    assert r.exit_code == 0 and "one_d_piece, 16 px, N=8, K=64" in r.output, r.output
    a, b = ImageTokenizer.load(src), ImageTokenizer.load(tmp_path / "imp")
    x = load_images([img], size=16)
    assert torch.equal(a.tokenize(x)[0], b.tokenize(x)[0]) and a.model_id == b.model_id  # same bytes, same id
    sentinel = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    (tmp_path / "evil.bin").write_bytes(pickle.dumps({"latent_tokens": Evil()}))
    r = CliRunner().invoke(cli, ["image", "import", str(tmp_path / "evil.bin"), "-o", str(tmp_path / "e")])
    assert r.exit_code == 2 and "not a loadable tensor-only checkpoint" in r.output, r.output
    assert not sentinel.exists() and not (tmp_path / "e").exists()


# ---- the toolchain on each family ----------------------------------------------------------------------
def test_per_sample_prefix_masks_equal_slicing(ckpts):
    model = ImageTokenizer.load(ckpts["one_d_piece"]).model
    x = load_images(sorted(ICONS.glob("*.png"))[:3], size=16)
    with torch.no_grad():
        codes, _, _ = model.encode(x)
        masked = model.decode_codes(codes, torch.tensor([1, 5, 8]))
        for b, k in enumerate([1, 5, 8]):
            torch.testing.assert_close(masked[b:b + 1], model.decode_codes(codes[b:b + 1, :k]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("family", ["titok_two_stage", "titok_single_vq", "one_d_piece"])
def test_encode_tok_decode_every_k_rd_and_vocab(ckpts, family, tmp_path, caplog):
    """encode -> .tok -> decode at several k (CLI, -k) -> RD table -> add-to-vocab, on each family."""
    from conftest import cached_tokenizer, tiny_llama

    from tokkit.image.data import read_images
    from tokkit.image.rd import rd_table

    ck = ckpts[family]
    imgs = sorted(ICONS.glob("*.png"))[:3]
    run = CliRunner().invoke
    r = run(cli, ["image", "encode", "--model", str(ck), *map(str, imgs), "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 0, r.output
    tok = ImageTokenizer.load(ck)
    x = load_images(imgs, size=16)
    full = tok.tokenize(x)
    stored = unpack((tmp_path / "x.tok").read_bytes(), expect_model_id=tok.model_id)
    assert all(torch.equal(a, b) for a, b in zip(stored.ids, full))
    from PIL import Image

    for k in (1, 3, 8):
        r = run(cli, ["image", "decode", "--model", str(ck), str(tmp_path / "x.tok"), "-k", str(k), "-o",
                      str(tmp_path / f"d{k}")])
        assert r.exit_code == 0 and f"tokens {[k] * 3} of {[8] * 3} stored" in r.output, r.output
        want = tok.detokenize([t[:k] for t in full])
        got = [torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1).float() / 255
               for p in sorted((tmp_path / f"d{k}").glob("*.png"))]
        assert torch.equal(torch.stack(got), (want * 255).round() / 255)
    if family.startswith("titok"):
        assert "trained at its full length N = 8 only" in caplog.text  # TiTok's prefixes are flagged, not hidden
    rows = rd_table(tok, read_images(imgs, size=16).pixels, budgets=(2, 8))
    assert [r["budget"] for r in rows] == [2, 8] and rows[1]["tokens_packed"] >= 0
    r = run(cli, ["image", "eval", str(ck), "--images", str(ICONS), "--limit", "3", "--rd", "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0 and "PSNR at equal payload budget" in r.output, r.output
    res = json.loads((tmp_path / "e.json").read_text())
    assert [p["k"] for p in res["per_k"]] == [1, 2, 3, 4, 6, 7, 8] and res["codebook_size"] == 64
    lm = tiny_llama(tmp_path / "lm", cached_tokenizer("gpt2"))
    r = run(cli, ["image", "add-to-vocab", "--model", str(ck), "--lm", str(lm), "-o", str(tmp_path / "lm_img")])
    assert r.exit_code == 0 and "image tokens ids 50257..50320" in r.output, r.output


def test_vae_tokens_are_continuous(ckpts, tmp_path):
    tok = ImageTokenizer.load(ckpts["titok_vae"])
    x = load_images(sorted(ICONS.glob("*.png"))[:2], size=16)
    z = tok.encode_latents(x)
    assert z.shape == (2, 8, 4) and torch.equal(z, tok.encode_latents(x))  # the posterior mean: deterministic
    assert tok.decode_latents(z[:, :3]).shape == (2, 3, 16, 16)
    r = CliRunner().invoke(cli, ["image", "encode", "--model", str(ckpts["titok_vae"]), str(sorted(ICONS.glob("*.png"))[0]),
                                 "-o", str(tmp_path / "v.tok")])
    assert r.exit_code == 2 and "continuous (VAE) tokens" in r.output and not (tmp_path / "v.tok").exists()


def test_fine_tune_decoder_only_keeps_the_encoder_and_the_ids(ckpts, tmp_path):
    from tokkit.image import load_recipe, train

    for trainable in ("decoder", "all"):
        cfg = load_recipe("tiny", {"init": str(ckpts["one_d_piece"]), "trainable": trainable, "steps": 3,
                                   "sampler": "tail_batch"})
        train(cfg, data=ICONS, out=tmp_path / trainable, device="cpu", progress=False)
    before = load_file(str(ckpts["one_d_piece"] / "model.safetensors"))
    dec, full = (load_file(str(tmp_path / t / "model.safetensors")) for t in ("decoder", "all"))
    enc_side = [k for k in before if k.startswith(("encoder.", "latent_tokens", "quantize."))]
    assert enc_side and all(torch.equal(before[k], dec[k]) for k in enc_side)
    assert not torch.equal(before["decoder.decoder_embed.weight"], dec["decoder.decoder_embed.weight"])
    assert not torch.equal(before["encoder.patch_embed.weight"], full["encoder.patch_embed.weight"])
    assert json.loads((tmp_path / "decoder" / "model_config.json").read_text())["family"] == "one_d_piece"


def test_online_a_hub_id_is_fetched_by_the_shared_fetcher_and_pickle_repos_never(tmp_path, monkeypatch, hub_cache):
    """When the hub may be used, tokkit.hub.fetch_model (config + top-level safetensors, announced) is asked for the
    repository; a repository published as a pickle is never fetched: one line says how to import it."""
    import tokkit.hub
    import tokkit.names

    monkeypatch.setattr(tokkit.names, "hub_reachable", lambda: True)
    asked = []

    def fake_fetch(repo):
        asked.append(repo)
        (tmp_path / "snap").mkdir()
        (tmp_path / "snap" / "model.safetensors").write_bytes(b"")
        (tmp_path / "snap" / "config.json").write_text("{}")
        return tmp_path / "snap"

    monkeypatch.setattr(tokkit.hub, "fetch_model", fake_fetch)
    ck = resolve_checkpoint("titok-s-128")
    assert asked == ["yucornetto/tokenizer_titok_s128_imagenet"]
    assert ck.weights == tmp_path / "snap" / "model.safetensors" and ck.config_file == tmp_path / "snap" / "config.json"
    with pytest.raises(MissingFileError, match="published as pickled pytorch_model.bin, which tokkit neither downloads"):
        resolve_checkpoint("one-d-piece-s-256")
    assert asked == ["yucornetto/tokenizer_titok_s128_imagenet"]
