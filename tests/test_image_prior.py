"""The AR token prior and context-coded ``.tok`` v3: exact round trips, determinism, refusals, resume, old files."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("PIL")

from click.testing import CliRunner  # noqa: E402

from tokkit.errors import MissingFileError  # noqa: E402
from tokkit.image.ar_coding import ARCoder  # noqa: E402
from tokkit.image.bitstream import pack, unpack  # noqa: E402
from tokkit.image.errors import CorruptTokFileError, ModelMismatchError, TokenCountError  # noqa: E402
from tokkit.image.prior import ARPrior, PriorConfig, load_prior_recipe  # noqa: E402

ICONS = Path(__file__).resolve().parents[1] / "data" / "image" / "icons"
MID = "0123456789abcdef"
# a prior small enough for tests: 6 steps on the 22 committed icons (one crop pass)
TEST_PRIOR = {"width": 16, "depth": 1, "heads": 2, "steps": 6, "batch_size": 8, "warmup": 2, "augment_passes": 1,
              "val_every": 4, "log_every": 3, "checkpoint_every": 3}


def _coder(K: int, N: int, seed: int, freq_bits: int = 20) -> ARCoder:
    torch.manual_seed(seed)
    model = ARPrior(PriorConfig(width=32, depth=2, heads=4, freq_bits=freq_bits), codebook_size=K, max_tokens=N)
    with torch.no_grad():  # a trained-looking, peaked distribution instead of the near-uniform init
        model.head.weight.mul_(200)
    return ARCoder(model, prior_id=f"{seed:016x}", tokenizer_id=MID)


def _lists(K: int, N: int, seed: int = 0) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    out = [torch.randint(0, K, (k,), generator=g).tolist() for k in (1, N, 2, max(1, N - 1), N // 2 + 1)]
    return out + [[K - 1] * N, [0] * N, [0]]


@pytest.mark.parametrize("K,N", [(1000, 32), (125, 8), (2, 40), (64000, 4)])
def test_ar_coded_ids_round_trip_exactly_for_every_length(K, N):
    coder = _coder(K, N, seed=1)
    for ids in _lists(K, N):
        code = coder.encode_ids(ids)
        assert coder.decode_ids(code, len(ids)) == ids
        assert len(code) <= math.ceil((coder.bits(ids) + 2) / 8)  # the exact coder's length bound
    lists = [torch.tensor(t) for t in _lists(K, N, seed=2)]
    data = pack(lists, model_id=MID, codebook_size=K, max_tokens=N, image_size=32, ar_prior=coder)
    f = unpack(data, expect_model_id=MID, ar_prior=coder)
    assert f.version == 3 and f.prior_id == coder.prior_id
    assert all(torch.equal(a, b) for a, b in zip(f.ids, lists))


def test_every_prefix_decodes_and_sizes_never_shrink():
    coder = _coder(1000, 32, seed=3)
    ids = _lists(1000, 32)[1]
    sizes = coder.prefix_bytes(ids)
    assert sizes == sorted(sizes) and len(sizes) == 32
    for k in (1, 2, 17, 31, 32):
        code = coder.encode_ids(ids[:k])
        assert len(code) == sizes[k - 1] and coder.decode_ids(code, k) == ids[:k]


def test_conditionals_of_the_full_pass_equal_the_decoders_prefix_passes_bit_for_bit():
    coder = _coder(1000, 32, seed=4)
    ids = _lists(1000, 32)[1]
    full = coder.logits64(ids)
    for j in (0, 1, 5, 31):
        assert torch.equal(coder.logits64([*ids[:j], 0])[j], full[j])  # float64, exact
        assert torch.equal(coder.logits64([*ids[:j], 999, 999][: j + 1])[j], full[j])  # whatever follows position j
    cums = coder.cums(ids)
    assert (cums[:, 1:] - cums[:, :-1]).min() >= 1 and cums[:, -1].max() <= 2**20


def test_quantised_frequencies_follow_the_softmax():
    coder = _coder(50, 4, seed=5, freq_bits=16)
    logits = torch.randn(3, 50, dtype=torch.float64)
    cums = coder.quantise(logits)
    f = cums[:, 1:] - cums[:, :-1]
    p = torch.softmax(logits, -1).numpy()
    assert ((f - 1) == (p * (2**16 - 50)).astype("int64")).all()


def test_foreign_prior_missing_prior_and_corruption_are_refused():
    a, b = _coder(125, 8, seed=6), _coder(125, 8, seed=7)
    lists = [torch.tensor(t) for t in _lists(125, 8)]
    data = pack(lists, model_id=MID, codebook_size=125, max_tokens=8, image_size=16, ar_prior=a)
    with pytest.raises(ModelMismatchError, match=a.prior_id):
        unpack(data, ar_prior=b)
    with pytest.raises(MissingFileError, match="--prior"):
        unpack(data)
    b.prior_id = a.prior_id  # a prior that claims the id but computes other conditionals: the ids crc catches it
    with pytest.raises(CorruptTokFileError):
        unpack(data, ar_prior=b)
    with pytest.raises(ModelMismatchError, match="tokens of model"):
        pack(lists, model_id="f" * 16, codebook_size=125, max_tokens=8, image_size=16, ar_prior=a)
    with pytest.raises(TokenCountError):
        pack(lists, model_id=MID, codebook_size=1000, max_tokens=8, image_size=16, ar_prior=a)
    for i in range(25, len(data), 5):
        bad = bytearray(data)
        bad[i] ^= 0x10
        with pytest.raises(CorruptTokFileError):
            unpack(bytes(bad), ar_prior=a)


def test_version_1_and_2_files_written_before_version_3_still_decode():
    from tokkit.image.entropy import TokenPrior

    ids = [[3, 1, 4, 1, 5], [9], [2, 6, 5, 3, 5, 8, 9, 7]]
    # bytes written by the .tok code of commit 515917e (before version 3 existed)
    v1 = bytes.fromhex("544b4931010123456789abcdef0000000a000800100000000304d5c800000907fa77c204fadeb1ea")
    v2 = bytes.fromhex("544b4931020123456789abcdef0000000a0008001000000003d4c50de7ac9dac9e04031dc6920001d20703160088"
                       "931b42ea")
    prior = TokenPrior(torch.arange(1, 81, dtype=torch.int64).view(8, 10))
    for data, kw in ((v1, {}), (v2, {"prior": prior})):
        f = unpack(data, expect_model_id=MID, **kw)
        assert [t.tolist() for t in f.ids] == ids
        assert pack(list(map(torch.tensor, ids)), model_id=MID, codebook_size=10, max_tokens=8, image_size=16,
                    **kw) == data


def test_recipes_are_pydantic_with_one_source_of_defaults():
    assert load_prior_recipe("tiny") == PriorConfig()
    assert load_prior_recipe("base").width == 512 and load_prior_recipe("tiny", {"steps": 7, "lr": None}).steps == 7
    from tokkit.errors import FormatError

    with pytest.raises(FormatError):
        load_prior_recipe("tiny", {"stepz": 3})
    with pytest.raises(FormatError, match="multiple of heads"):
        load_prior_recipe("tiny", {"width": 30, "heads": 4})


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    from tokkit.image import load_recipe, train

    out = tmp_path_factory.mktemp("prior") / "tok"
    train(load_recipe("tiny"), data=ICONS, out=out, device="cpu", progress=False)
    return out


def test_prior_training_is_seeded_and_resume_is_bit_identical(tokenizer, tmp_path):
    from tokkit.image.prior_train import train_prior

    cfg = PriorConfig(**TEST_PRIOR)
    a = train_prior(cfg, tokenizer=tokenizer, data=ICONS, out=tmp_path / "a", device="cpu", progress=False)
    train_prior(cfg, tokenizer=tokenizer, data=ICONS, out=tmp_path / "b", device="cpu", progress=False, stop_after=3)
    b = train_prior(cfg, tokenizer=tokenizer, data=ICONS, out=tmp_path / "b", device="cpu", progress=False, resume=True)
    assert a.steps == b.steps == 6 and a.prior_id == b.prior_id
    assert (tmp_path / "a" / "prior.safetensors").read_bytes() == (tmp_path / "b" / "prior.safetensors").read_bytes()
    assert a.train_sequences == 22 - 6 + 16  # 22 plain minus 6 readout images (every 4th), + one crop pass of 16
    assert math.isfinite(a.val_bits) and a.val_bits < 1.2 * math.log2(125)


def test_cli_prior_train_encode_decode_sample_eval(tokenizer, tmp_path):
    import json

    from tokkit.image import ImageTokenizer, load_images
    from tokkit_cli.main import cli

    run = CliRunner().invoke
    prior = tmp_path / "prior"
    recipe = tmp_path / "p.yaml"
    recipe.write_text("".join(f"{k}: {v}\n" for k, v in TEST_PRIOR.items()))
    r = run(cli, ["image", "prior", "train", str(tokenizer), "--data", str(ICONS), "--recipe", str(recipe), "-o", str(prior),
                  "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "trained 6 steps" in r.output and "bits per token" in r.output
    imgs = [str(p) for p in sorted(ICONS.glob("*.png"))[:4]]
    for name, extra in (("a.tok", []), ("a1.tok", ["-k", "1"]), ("b.tok", ["--max-bytes", "3"])):
        r = run(cli, ["image", "encode", "--model", str(tokenizer), *imgs, "--prior", str(prior), *extra,
                      "-o", str(tmp_path / name)])
        assert r.exit_code == 0, r.output
    tok, coder = ImageTokenizer.load(tokenizer), ARCoder.load(prior)
    full = tok.tokenize(load_images(imgs, size=16))
    for name, ks in (("a.tok", [8] * 4), ("a1.tok", [1] * 4)):
        f = unpack((tmp_path / name).read_bytes(), expect_model_id=tok.model_id, ar_prior=coder)
        assert [t.tolist() for t in f.ids] == [t[:k].tolist() for t, k in zip(full, ks)]
    f = unpack((tmp_path / "b.tok").read_bytes(), ar_prior=coder)
    for t, got in zip(full, f.ids):  # the largest k whose real code fits in 3 bytes
        sizes = coder.prefix_bytes(t.tolist())
        assert sizes[len(got) - 1] <= 3 and (len(got) == 8 or sizes[len(got)] > 3)
    r = run(cli, ["image", "decode", "--model", str(tokenizer), str(tmp_path / "a.tok"), "-o", str(tmp_path / "d")])
    assert r.exit_code == 2 and "--prior" in r.output and not (tmp_path / "d").exists()
    r = run(cli, ["image", "decode", "--model", str(tokenizer), str(tmp_path / "a.tok"), "--prior", str(prior),
                  "-o", str(tmp_path / "d")])
    assert r.exit_code == 0 and len(list((tmp_path / "d").glob("*.png"))) == 4, r.output
    r = run(cli, ["image", "sample", str(prior), "-n", "5", "-k", "3", "--cols", "4", "-o", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    from PIL import Image

    assert Image.open(tmp_path / "g.png").size == (2 + 4 * 34, 2 + 2 * 34)  # 16 px x2 + 2 px gaps, 2 rows of 4
    r = run(cli, ["image", "eval", str(tokenizer), "--images", str(ICONS), "--limit", "3", "--no-codecs", "--prior",
                  str(prior), "--json", str(tmp_path / "e.json")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "e.json").read_text())
    assert set(res["held_out_bits_per_token"]) == {"uniform", "ar"} and "ar_bytes" in res["per_k"][0]
    assert res["held_out_bits_per_token"]["uniform"] == round(math.log2(125), 4)
    # a prior of another tokenizer is refused before anything is written
    other = tmp_path / "tok2"
    import shutil

    shutil.copytree(tokenizer, other)
    (other / "model.safetensors").write_bytes((other / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0")
    r = run(cli, ["image", "encode", "--model", str(other), imgs[0], "--prior", str(prior), "-o", str(tmp_path / "x.tok")])
    assert r.exit_code == 2 and "trained on the tokens of model" in r.output and not (tmp_path / "x.tok").exists()
