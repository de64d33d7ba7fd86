"""CUDA-specific tests (``pytest -m cuda``): each path runs on the device, keeps its tensors there and agrees with the CPU.

Skipped without a CUDA device (tests/conftest.py); ``scripts/gpu_check.sh`` runs them on the device
machine before the timed check. ``TOKKIT_CUDA_TEST_DEVICE=cpu`` runs them on the CPU instead, to
check the tests themselves where no GPU is lent. Tiny models with the real SmolLM2 / Mistral
tokenizers and seeded random weights; tolerances as in scripts/devcheck (float32 kernels differ
only in summation order; greedy choices such as OMP atoms may flip on a near-tie).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tokkit import load_tokenizer
from tokkit_cli.main import cli

pytestmark = pytest.mark.cuda

ROOT = Path(__file__).resolve().parents[1]
CORPUS = str(ROOT / "data" / "legal" / "train.jsonl")


@pytest.fixture(scope="module")
def dev() -> torch.device:
    return torch.device(os.environ.get("TOKKIT_CUDA_TEST_DEVICE", "cuda"))


@pytest.fixture(scope="module")
def models(tmp_path_factory, smollm2_dir):
    """A tiny SmolLM2-vocab model and its FVT transplant onto the Mistral v1 tokenizer (written on the CPU)."""
    from conftest import need_fixture, tiny_llama

    need_fixture("mistral")
    d = tmp_path_factory.mktemp("cuda")
    src = tiny_llama(d / "src", load_tokenizer(smollm2_dir), hidden=32)
    r = CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "fvt", "-o",
                                 str(d / "moved"), "--heldout", "0", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    return src, d / "moved"


def _rel_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.double().cpu(), b.double().cpu()
    return (a - b).norm(dim=1) / a.norm(dim=1).clamp_min(1e-30)


def test_omp_runs_on_the_device_and_picks_the_cpu_atoms(dev):
    from tokkit.embedding.sparse import omp

    g = torch.Generator().manual_seed(0)
    atoms, x = torch.randn(2000, 48, generator=g), torch.randn(300, 48, generator=g)
    ref = omp(x, atoms, 16, per_step=4)
    got = omp(x.to(dev), atoms.to(dev), 16, per_step=4)
    assert got.coeffs.device.type == dev.type and got.coeffs.dtype == torch.float32
    same = (got.indices.cpu().sort(1).values == ref.indices.sort(1).values).all(1)
    assert float(same.double().mean()) >= 0.99
    err = _rel_rows(ref.apply(atoms), got.apply(atoms.to(dev)))
    assert float(err[same].max()) < 1e-4
    assert torch.isfinite(got.residual).all()


@pytest.mark.parametrize("method", ["fvt", "heuristic", "mean"])
def test_reconstruction_rows_are_built_on_the_device(models, dev, method):
    from tokkit.transplant import TransplantConfig, plan_transplant

    src, _ = models
    rows = []
    for d in (torch.device("cpu"), dev):
        plan = plan_transplant(TransplantConfig(src=str(src), dst="mistral", method=method, device=str(d), heldout=0))
        plan.ctx = replace(plan.ctx, progress=False)
        ids = plan.alignment.new_ids[:300]
        res = plan.method.initialize(plan.ctx, ids)
        assert res.input.device.type == d.type and res.input.dtype == torch.float32
        rows.append(res.input)
    err = _rel_rows(rows[0], rows[1])
    assert float((err <= 1e-4).double().mean()) >= 0.99 and bool(torch.isfinite(err).all())


def test_transplant_and_eval_lm_on_the_device_match_the_cpu(tmp_path, models, dev):
    from tokkit.embedding import load_model_embeddings
    from tokkit.transplant.evaluate import bits_per_byte

    src, moved = models
    r = CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "fvt", "-o",
                                 str(tmp_path / "dev"), "--heldout", "20", "--device", str(dev)])
    assert r.exit_code == 0, r.output
    a, b = load_model_embeddings(moved).input.weight, load_model_embeddings(tmp_path / "dev").input.weight
    assert float(_rel_rows(a, b).max()) < 1e-5
    text = {"moby": (ROOT / "data" / "moby_dick_excerpt.txt").read_text(encoding="utf-8")}
    cpu = bits_per_byte(moved, text, device="cpu")[0]
    for kw in ({}, {"batch_tokens": 512}):
        got = bits_per_byte(moved, text, device=dev, **kw)[0]
        assert abs(got.bits_per_byte - cpu.bits_per_byte) <= 1e-4 * cpu.bits_per_byte
        assert got.new_targets == cpu.new_targets
        assert abs(got.leak_nats - cpu.leak_nats) <= 1e-4 * max(abs(cpu.leak_nats), 1.0)


def test_heal_on_the_device_keeps_copied_rows_bit_exact(tmp_path, models, dev):
    """Rows go to the device and back: the copied ones must come back bit for bit, the losses match the CPU's."""
    import json

    from safetensors.torch import load_file

    from tokkit.transplant.report import built_ids

    _, moved = models
    args = ["--steps", "3", "--seq-bytes", "96", "--batch-size", "2", "--lr", "0.01", "--heldout", "0.01"]
    hist = {}
    for side, d in (("ref", torch.device("cpu")), ("dev", dev)):
        out = tmp_path / side
        r = CliRunner().invoke(cli, ["heal", str(moved), CORPUS, "-o", str(out), "--device", str(d), *args])
        assert r.exit_code == 0, r.output
        hist[side] = json.loads((out / "transplant_report.json").read_text())["heals"][-1]["history"]
    before, after = load_file(moved / "model.safetensors"), load_file(tmp_path / "dev" / "model.safetensors")
    keep = torch.ones(before["model.embed_tokens.weight"].shape[0], dtype=torch.bool)
    keep[torch.tensor(sorted(built_ids(moved)))] = False
    assert torch.equal(after["model.embed_tokens.weight"][keep], before["model.embed_tokens.weight"][keep])
    for k in ("lm", "alm", "bpb"):
        a, b = [h[k] for h in hist["ref"]], [h[k] for h in hist["dev"]]
        assert max(abs(x - y) / abs(x) for x, y in zip(a, b)) < 1e-3, (k, a, b)


def test_heal_under_bf16_autocast_stays_finite(tmp_path, models, dev):
    from tokkit.transplant.heal import HealConfig, plan_heal, run_heal

    _, moved = models
    cfg = HealConfig(model=str(moved), sources=(CORPUS,), steps=2, seq_bytes=96, batch_size=2, device=str(dev))
    with torch.autocast(dev.type, dtype=torch.bfloat16):
        res = run_heal(plan_heal(cfg, tmp_path / "bf16"), progress=False)
    assert all(torch.isfinite(torch.tensor([h["lm"], h["alm"]])).all() for h in res.history)


def test_next_byte_distribution_on_the_device_matches_the_cpu(models, dev):
    import numpy as np

    from tokkit.bytelevel import ByteLM

    src, _ = models
    lp = [np.asarray(ByteLM.from_pretrained(str(src), device=str(d)).next_byte_logprobs(b"caf\xc3"), dtype=np.float64)
          for d in ("cpu", str(dev))]
    p, q = np.exp(lp[0]), np.exp(lp[1])
    assert abs(q.sum() - 1) < 1e-6 and 0.5 * np.abs(p - q).sum() < 1e-4


def test_image_tokenizer_on_the_device_gives_cpu_ids_and_cpu_tensors(dev):
    from tokkit.image import ImageTokenizer, Tokenizer1D, load_images, load_recipe
    from tokkit.image.data import image_files

    cfg = load_recipe("tiny").model
    torch.manual_seed(0)
    model = Tokenizer1D(cfg).eval()
    cpu = ImageTokenizer(model, model_id="test")
    x = load_images(image_files(ROOT / "data" / "image" / "icons"), size=cfg.image_size)
    ids_cpu = torch.stack(cpu.tokenize(x))
    on_dev = ImageTokenizer(Tokenizer1D(cfg).eval(), model_id="test")
    on_dev.model.load_state_dict(model.state_dict())
    on_dev.model.to(dev)
    lists = on_dev.tokenize(x)
    assert all(t.device.type == "cpu" for t in lists)  # the API returns CPU tensors wherever the model runs
    assert float((torch.stack(lists) == ids_cpu).double().mean()) >= 0.99
    img = on_dev.detokenize(list(ids_cpu))
    assert img.device.type == "cpu" and float((img - cpu.detokenize(list(ids_cpu))).abs().max()) < 4 / 255
