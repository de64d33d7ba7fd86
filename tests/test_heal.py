"""``tokkit heal`` on tiny models built in the test (real tokenizers, random weights, real text).

Covers: the chunking against a brute-force oracle, the binarised loss and its minimum, teacher vs
itself (single-token chunks, zero gradient), new-rows training that leaves every copied row
bit-exact (tied fp32 and untied bf16), embeddings+norms, bitwise resume after a crash, the bad-input
errors, and two gloo processes under torchrun.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tokkit import load_tokenizer
from tokkit.output_checks import temp_name
from tokkit.transplant.heal.alm import alm_loss, binarised_bce, chunk_logprobs, log1mexp
from tokkit.transplant.heal.chunks import common_chunks, token_ends
from tokkit_cli.main import cli

transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = str(ROOT / "data" / "legal" / "train.jsonl")
TINY = ["--steps", "6", "--seq-bytes", "96", "--batch-size", "2", "--lr", "0.01", "--checkpoint-every", "2",
        "--device", "cpu"]


def _tiny(path, tok, **kw):
    from conftest import tiny_llama

    return tiny_llama(path, tok, **kw)


def _oracle(s_lens: list[int], t_lens: list[int]) -> list[tuple[int, int, int, int]]:
    """tokenkit's two-pointer walk: advance the side that is behind; equal lengths close a chunk."""
    out, i, j, si, sj, ci, cj = [], 0, 0, 0, 0, 0, 0
    while i < len(s_lens) or j < len(t_lens):
        if ci <= cj and i < len(s_lens):
            ci += s_lens[i]
            i += 1
        else:
            cj += t_lens[j]
            j += 1
        if ci == cj and (i == len(s_lens) or s_lens[i] > 0) and (j == len(t_lens) or t_lens[j] > 0):
            out.append((si, i, sj, j))
            si, sj = i, j
    return out


def _segment(rng: random.Random, n: int) -> list[int]:
    lens, left = [], n
    while left:
        k = min(left, rng.choice([1, 1, 2, 3, 4, 7]))
        lens.append(k)
        left -= k
    return lens


def test_chunks_match_a_two_pointer_oracle_on_random_segmentations():
    rng = random.Random(0)
    for _ in range(500):
        n = rng.randint(1, 40)
        s, t = _segment(rng, n), _segment(rng, n)
        ch = common_chunks(list(_cum(s)), list(_cum(t)))
        want = _oracle(s, t)
        assert ch.n == len(want)
        for k, (a, b, c, d) in enumerate(want):
            assert [i for i, x in enumerate(ch.student) if x == k] == list(range(a, b))
            assert [j for j, x in enumerate(ch.teacher) if x == k] == list(range(c, d))
            assert sum(s[a:b]) == sum(t[c:d])  # same bytes on both sides
        # minimal: no byte offset strictly inside a chunk is a boundary of both sides
        ends_s, ends_t = set(_cum(s)), set(_cum(t))
        bounds = sorted(ends_s & ends_t)
        assert len(bounds) == ch.n


def _cum(lens):
    tot = 0
    for x in lens:
        tot += x
        yield tot


def test_token_ends_handles_the_sentencepiece_dummy_prefix_and_refuses_other_text():
    assert token_ends([b"Hello", b" world"], b"Hello world") == [5, 11]
    assert token_ends([b" Hello", b" world"], b"Hello world") == [5, 11]
    assert token_ends([b" ", b" Hi"], b" Hi") == [0, 3]
    assert token_ends([b"hello"], b"Hello") is None
    ch = common_chunks([0, 3], [3])
    assert ch.student == (0, 0) and ch.teacher == (0,) and ch.n == 1


def test_binarised_bce_is_smallest_at_the_teacher_and_log1mexp_is_stable():
    g = torch.Generator().manual_seed(0)
    a = -torch.rand(200, generator=g, dtype=torch.float64) * 30
    for delta in (-3.0, -0.5, 0.5, 3.0):
        b = (a + delta).clamp(max=0)
        assert (binarised_bce(a, b, tau=100) >= binarised_bce(a, a, tau=100) - 1e-12).all()
    b = a.clone().requires_grad_(True)
    binarised_bce(a, b, tau=100).sum().backward()
    assert b.grad.abs().max() < 1e-9  # stationary at b = a
    x = torch.tensor([-1e-9, -1e-4, -0.3, -0.9, -5.0, -60.0], dtype=torch.float64)
    naive = torch.log(1 - torch.exp(x))
    got = log1mexp(x)
    assert torch.isfinite(got).all()
    assert torch.allclose(got[1:5], naive[1:5], rtol=1e-12)
    assert abs(float(got[0]) - float(torch.log(torch.tensor(1e-9, dtype=torch.float64)))) < 1e-6
    assert abs(float(got[-1]) + float(torch.exp(torch.tensor(-60.0, dtype=torch.float64)))) < 1e-30
    cl = chunk_logprobs(torch.tensor([-1.0, -2.0, -0.5, 1e-7]), torch.tensor([0, 0, 1, 2]), 3)
    assert cl.tolist() == [-3.0, -0.5, 0.0]  # summed per chunk, clipped at 0


@pytest.fixture(scope="module")
def toks(smollm2_dir):
    from conftest import need_fixture

    need_fixture("mistral")
    return load_tokenizer(smollm2_dir), load_tokenizer("mistral")


def test_teacher_against_itself_gives_single_token_chunks_and_zero_gradient(tmp_path, toks):
    from tokkit.transplant.heal.data import Side, draw_windows, make_batch
    from tokkit.transplant.heal.rows import Student, load_lm, teacher_logits
    from tokkit.transplant.heal.trainer import _step_loss
    from tokkit.transplant.heal.config import HealConfig

    sm, mi = toks
    src = _tiny(tmp_path / "src", sm)
    side = Side.of(sm)
    texts = draw_windows(Path(CORPUS).read_text(encoding="utf-8"), random.Random(1), 3, seq_bytes=200)
    b = make_batch(texts, side, side)
    assert b.dropped == 0 and b.n_chunks == b.tokens == int((b.t_targets >= 0).sum())
    assert torch.equal(b.s_chunk, torch.arange(b.n_chunks)) and torch.equal(b.t_chunk, b.s_chunk)
    lm = load_lm(src, torch.device("cpu"))
    student = Student(lm, torch.arange(lm.get_input_embeddings().weight.shape[0]))
    assert torch.equal(student(b.input, b.attention), teacher_logits(lm, b.input, b.attention))
    cfg = HealConfig(model=str(src), sources=(CORPUS,), loss="alm")
    loss, stats = _step_loss(student, lm, b, cfg, torch.device("cpu"))
    loss.backward()
    assert student.input.grad.abs().max() < 1e-7
    # the minimum is the entropy of Bernoulli(p^(1/tau)) per chunk: the loss cannot go lower
    with torch.no_grad():
        t = teacher_logits(lm, b.input, b.attention)[:, :-1][b.targets >= 0]
        from tokkit.transplant.heal.alm import token_logprobs

        a = token_logprobs(t, b.targets[b.targets >= 0])
        assert abs(float(alm_loss(a, a, tau=100)) - stats["alm"]) < 1e-6
        assert float(alm_loss(a, a - 0.1, tau=100)) > stats["alm"]
    # a different tokenizer on the student side: multi-token chunks, every text byte in exactly one chunk
    b2 = make_batch(texts, Side.of(mi), side)
    assert b2.dropped == 0 and b2.n_chunks < b2.tokens
    assert int(b2.s_chunk.max()) + 1 == int(b2.t_chunk.max()) + 1 == b2.n_chunks


@pytest.fixture(scope="module")
def transplanted(tmp_path_factory, toks):
    """Tiny SmolLM2-vocab models moved onto Mistral with FVT: tied fp32 and untied bf16."""
    sm, mi = toks
    d = tmp_path_factory.mktemp("heal")
    out = {}
    for name, tied, dtype in (("tied", True, torch.float32), ("untied", False, torch.bfloat16)):
        src = _tiny(d / f"src-{name}", sm, tied=tied)
        if dtype != torch.float32:
            m = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=dtype)
            m.save_pretrained(src)
        r = CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--method", "fvt", "-o",
                                     str(d / name), "--heldout", "0", "--device", "cpu"])
        assert r.exit_code == 0, r.output
        out[name] = (src, d / name)
    return out


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(folder / "model.safetensors")


@pytest.mark.parametrize("kind,loss", [("tied", "alm+lm"), ("untied", "lm"), ("tied", "alm")])
def test_heal_new_rows_keeps_copied_rows_bit_exact(tmp_path, transplanted, toks, kind, loss):
    from tokkit.transplant.report import built_ids

    sm, mi = toks
    src, model = transplanted[kind]
    out = tmp_path / "healed"
    r = CliRunner().invoke(cli, ["heal", str(model), CORPUS, "-o", str(out), "--loss", loss, *TINY])
    assert r.exit_code == 0, r.output
    assert "wrote" in r.output and "heldout:" in r.output and "10124 built rows" in r.output
    before, after = _weights(model), _weights(out)
    assert before.keys() == after.keys()
    built = torch.tensor(sorted(built_ids(model)))
    keep = torch.ones(before["model.embed_tokens.weight"].shape[0], dtype=torch.bool)
    keep[built] = False
    names = ["model.embed_tokens.weight"] + ([] if kind == "tied" else ["lm_head.weight"])
    for k in before:
        assert after[k].dtype == before[k].dtype
        if k in names:
            assert torch.equal(after[k][keep], before[k][keep]), f"{k}: a copied row moved"
            changed = (after[k][built] != before[k][built]).any(1)
            # every built output row gets a gradient through the softmax; an untied input row only if it was read
            share = 0.5 if kind == "tied" or k == "lm_head.weight" else 1e-4
            assert changed.float().mean() > share, f"{k}: the built rows did not train"
        else:
            assert torch.equal(after[k], before[k]), f"{k} changed"
    assert kind == "tied" or after["model.embed_tokens.weight"].dtype == torch.bfloat16
    rep = json.loads((out / "transplant_report.json").read_text())
    h = rep["heals"][-1]
    assert h["steps"] == 6 and h["config"]["loss"] == loss and h["trained_rows"] == 10124
    assert set(h["heldout_bits_per_byte"]["heldout"]) == {"before", "after"}
    assert built_ids(out) == built_ids(model) and rep["tokens"] == json.loads((model / "transplant_report.json").read_text())["tokens"]
    assert (h["chunks"] > 0) == ("alm" in loss)
    assert not (tmp_path / "healed.heal-checkpoint").exists()
    # transformers loads and generates; the tokenizer is unchanged
    tok = transformers.AutoTokenizer.from_pretrained(out)
    assert tok("Call me Ishmael")["input_ids"] == transformers.AutoTokenizer.from_pretrained(model)("Call me Ishmael")["input_ids"]
    lm = transformers.AutoModelForCausalLM.from_pretrained(out)
    gen = lm.generate(torch.tensor([tok("Call me")["input_ids"]]), max_new_tokens=4, do_sample=False)
    assert gen.shape[1] > 2


def test_lm_heal_lowers_held_out_bits_per_byte_on_repetitive_text(tmp_path, transplanted):
    """A random tiny model learns nothing general; on one paragraph repeated, the held-out copy must get cheaper."""
    _, model = transplanted["tied"]
    para = (ROOT / "data" / "moby_dick_excerpt.txt").read_text(encoding="utf-8").split("\n\n")[0]
    (tmp_path / "rep.txt").write_text((para + "\n") * 40, encoding="utf-8")
    r = CliRunner().invoke(cli, ["heal", str(model), str(tmp_path / "rep.txt"), "-o", str(tmp_path / "h"), "--loss", "lm", "--steps", "30",
                                 "--seq-bytes", "96", "--batch-size", "2", "--lr", "0.02", "--eval-every", "10",
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    h = json.loads((tmp_path / "h" / "transplant_report.json").read_text())["heals"][-1]
    assert [e["step"] for e in h["evals"]] == [0, 10, 20, 30]
    ev = h["heldout_bits_per_byte"]["heldout"]
    assert ev["after"] < ev["before"], ev


def test_embeddings_and_norms_train_every_row_and_the_norms(tmp_path, transplanted):
    _, model = transplanted["tied"]
    out = tmp_path / "h"
    r = CliRunner().invoke(cli, ["heal", str(model), CORPUS, "-o", str(out), "--train", "embeddings+norms",
                                 "--loss", "lm", *TINY])
    assert r.exit_code == 0, r.output
    before, after = _weights(model), _weights(out)
    norms = [k for k in before if "norm" in k]
    assert norms and all(not torch.equal(before[k], after[k]) for k in norms)
    assert all(torch.equal(before[k], after[k]) for k in before if "norm" not in k and "embed" not in k)
    e0, e1 = before["model.embed_tokens.weight"], after["model.embed_tokens.weight"]
    the = load_tokenizer(model).vocab.id_of(b" the")
    assert not torch.equal(e0[the], e1[the])  # a copied row trains too




def test_train_all_moves_every_weight_and_the_body_at_its_smaller_rate(tmp_path, transplanted):
    """``--train all``: every tensor changes; the body's step is bounded by its own rate (lr x body_lr_scale x steps)."""
    _, model = transplanted["tied"]
    out = tmp_path / "h"
    r = CliRunner().invoke(cli, ["heal", str(model), CORPUS, "-o", str(out), "--train", "all", "--loss", "lm", *TINY])
    assert r.exit_code == 0, r.output
    before, after = _weights(model), _weights(out)
    assert before.keys() == after.keys()
    assert all(not torch.equal(before[k], after[k]) for k in before), [k for k in before if torch.equal(before[k], after[k])]
    from tokkit.transplant.heal.config import HealConfig

    cfg = HealConfig(model=str(model), sources=(CORPUS,))
    steps, lr = int(TINY[TINY.index("--steps") + 1]), float(TINY[TINY.index("--lr") + 1])
    bound = steps * lr * cfg.body_lr_scale * 1.01  # AdamW moves an element by at most ~lr per step
    body = [k for k in before if "norm" not in k and "embed" not in k]
    assert body and max(float((after[k] - before[k]).abs().max()) for k in body) <= bound
    assert max(float((after[k] - before[k]).abs().max()) for k in before if "embed" in k) > bound
def test_resume_after_crash_equals_uninterrupted_run(tmp_path, transplanted, monkeypatch):
    """A run that dies inside step 5 (last checkpoint: step 4) and is resumed writes the same bytes as one run."""
    import tokkit.transplant.heal.trainer as tr

    _, model = transplanted["tied"]
    args = ["heal", str(model), CORPUS, "--loss", "alm+lm", *TINY]
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "full")])
    assert r.exit_code == 0, r.output
    real, calls = tr.make_batch, []

    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(tr, "make_batch", dying)
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut")])
    assert r.exit_code != 0 and not (tmp_path / "cut").exists()
    ck = tmp_path / "cut.heal-checkpoint"
    assert json.loads((ck / "state.json").read_text())["step"] == 4
    monkeypatch.setattr(tr, "make_batch", real)
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut")])  # without --resume: refused
    assert r.exit_code == 2 and "--resume" in r.output and not (tmp_path / "cut").exists()
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut"), "--resume", "--lr", "0.02"])
    assert r.exit_code == 2 and "another run" in r.output and "lr" in r.output
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    # as if killed between the two renames of a checkpoint swap (tokkit.atomic's names): the complete new one is kept
    ck.rename(temp_name(ck, "new", pid=int(dead.stdout)))
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut"), "--resume"])
    assert r.exit_code == 0, r.output
    assert "resumed from step 4" in r.output
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == (tmp_path / "cut" / "model.safetensors").read_bytes()
    ha = json.loads((tmp_path / "full" / "transplant_report.json").read_text())["heals"][-1]
    hb = json.loads((tmp_path / "cut" / "transplant_report.json").read_text())["heals"][-1]
    assert ha["evals"] == hb["evals"] and ha["last_step"] == hb["last_step"] and hb["resumed_from"] == 4
    assert not [p for p in tmp_path.iterdir() if "heal-checkpoint" in p.name]


def test_max_minutes_stops_at_a_checkpoint_writes_the_rows_so_far_and_resume_finishes(tmp_path, transplanted):
    """A budget smaller than loading stops after the first step: OUT holds step 1, the checkpoint stays, and
    ``--resume`` ends byte-identical to an uninterrupted run."""
    _, model = transplanted["tied"]
    args = ["heal", str(model), CORPUS, "--loss", "lm", *TINY]
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut"), "--max-minutes", "0.0001"])
    assert r.exit_code == 0, r.output
    assert "stopped by --max-minutes at step 1 of 6" in r.output and "--resume" in r.output
    h = json.loads((tmp_path / "cut" / "transplant_report.json").read_text())["heals"][-1]
    assert h["steps"] == 1 and h["stopped_by_budget"] and len(h["history"]) == 1
    assert json.loads((tmp_path / "cut.heal-checkpoint" / "state.json").read_text())["step"] == 1
    assert transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "cut") is not None  # a usable model already
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut"), "--resume"])
    assert r.exit_code == 0, r.output
    assert "resumed from step 1" in r.output and "stopped" not in r.output
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "full")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == (tmp_path / "cut" / "model.safetensors").read_bytes()
    hb = json.loads((tmp_path / "cut" / "transplant_report.json").read_text())["heals"]
    assert len(hb) == 1 and hb[0]["steps"] == 6 and not hb[0]["stopped_by_budget"]
    assert not (tmp_path / "cut.heal-checkpoint").exists()


def test_a_nan_loss_stops_with_one_line_and_keeps_the_last_checkpoint(tmp_path, transplanted, monkeypatch):
    import tokkit.transplant.heal.trainer as tr

    _, model = transplanted["tied"]
    real, calls = tr._step_loss, []

    def poisoned(*a, **k):
        loss, stats = real(*a, **k)
        calls.append(1)
        return (loss * float("nan") if len(calls) == 3 else loss), stats

    monkeypatch.setattr(tr, "_step_loss", poisoned)
    r = CliRunner().invoke(cli, ["heal", str(model), CORPUS, "--loss", "lm", *TINY, "-o", str(tmp_path / "h")])
    assert r.exit_code == 2, r.output
    last = r.output.strip().splitlines()[-1]
    assert last.startswith("error: heal: the training loss became nan at step 3") and "(step 2) is kept" in last
    assert "lower --lr" in last and not (tmp_path / "h").exists()
    assert json.loads((tmp_path / "h.heal-checkpoint" / "state.json").read_text())["step"] == 2


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, transplanted, toks):
    src, model = transplanted["tied"]
    run = CliRunner().invoke
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("Too short to fill one sequence.\n")
    no_tok = tmp_path / "teacher-no-tok"
    shutil.copytree(src, no_tok)
    for f in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (no_tok / f).unlink(missing_ok=True)
    nothing = tmp_path / "nothing-built"
    shutil.copytree(model, nothing)
    rep = json.loads((nothing / "transplant_report.json").read_text())
    for t in rep["tokens"]:
        t["kind"] = "copied" if t["kind"] == "new" else t["kind"]
    (nothing / "transplant_report.json").write_text(json.dumps(rep))
    plain = tmp_path / "plain"
    shutil.copytree(model, plain)
    (plain / "transplant_report.json").unlink()
    (tmp_path / "taken").mkdir()
    (tmp_path / "not-a-model").mkdir()  # (tmp_path itself would hold OUT: an output inside an input is refused first)
    cases = [
        ([str(tmp_path / "not-a-model"), CORPUS], "not a model folder"),
        ([str(model), str(tmp_path / "empty.txt")], "holds no text"),
        ([str(model), str(tmp_path / "short.txt")], "one sequence needs --seq-bytes"),
        ([str(model), str(tmp_path / "missing.txt")], "does not exist"),
        ([str(model), CORPUS, "--teacher", str(no_tok)], "teacher"),
        ([str(nothing), CORPUS], "nothing was built"),
        ([str(plain), CORPUS], "--train embeddings"),
        ([str(plain), CORPUS, "--train", "embeddings"], "needs a teacher"),
    ]
    for args, msg in cases:
        out = tmp_path / "out"
        r = run(cli, ["heal", *args, "-o", str(out), "--device", "cpu", "--steps", "1"])
        assert r.exit_code == 2, (args, r.output)
        lines = r.output.strip().splitlines()
        assert lines[-1].startswith("error: ") and msg in lines[-1], (args, r.output)
        assert not out.exists() and not (tmp_path / "out.heal-checkpoint").exists()
    r = run(cli, ["heal", str(model), CORPUS, "-o", str(tmp_path / "taken"), "--steps", "1"])
    assert r.exit_code == 2 and "already exists" in r.output and not any((tmp_path / "taken").iterdir())


@pytest.mark.slow
def test_torchrun_two_processes_heal_one_model(tmp_path, transplanted):
    """Data parallelism through torch's own launcher (gloo on CPU here; NCCL on GPUs)."""
    import os
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    _, model = transplanted["tied"]
    cmd = [torchrun, "--nproc-per-node", "2", "-m", "tokkit_cli.main", "heal", str(model), CORPUS, "-o",
           str(tmp_path / "h"), "--steps", "3", "--seq-bytes", "64", "--batch-size", "1", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("wrote ") == 1 and "2 processes" in r.stdout  # only rank 0 reports and writes
    h = json.loads((tmp_path / "h" / "transplant_report.json").read_text())["heals"][-1]
    assert h["processes"] == 2 and h["steps"] == 3
    assert transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "h") is not None


@pytest.mark.slow
def test_sigkill_then_resume_writes_the_same_bytes(tmp_path, transplanted):
    """A real SIGKILL at an arbitrary moment (maybe mid-checkpoint) and ``--resume`` end as one uninterrupted run."""
    from conftest import killed_after_checkpoint

    _, model = transplanted["tied"]
    args = ["heal", str(model), CORPUS, "--loss", "alm+lm", "--steps", "120", "--seq-bytes", "64", "--batch-size", "1",
            "--checkpoint-every", "3", "--device", "cpu"]
    killed_after_checkpoint(args, tmp_path / "cut", tmp_path / "cut.heal-checkpoint" / "state.json")
    assert not (tmp_path / "cut").exists()
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut"), "--resume"])
    assert r.exit_code == 0, r.output
    assert "resumed from step" in r.output
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "full")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "full" / "model.safetensors").read_bytes() == (tmp_path / "cut" / "model.safetensors").read_bytes()


def test_a_tampered_checkpoint_step_or_moment_is_refused_on_resume(tmp_path, transplanted):
    """step "abc" / -5 / past --steps, or an AdamW moment of another shape: "damaged or was changed", exit 2
    (they were a ValueError traceback, 100005 steps of training, "healed 0 steps", a RuntimeError inside Adam)."""
    from safetensors.torch import save_file

    _, model = transplanted["tied"]
    args = ["heal", str(model), CORPUS, "--loss", "lm", *TINY]
    r = CliRunner().invoke(cli, args + ["-o", str(tmp_path / "cut"), "--max-minutes", "0.0001"])
    assert r.exit_code == 0 and "stopped by --max-minutes" in r.output, r.output
    good = tmp_path / "cut.heal-checkpoint"
    state = json.loads((good / "state.json").read_text())
    opt = load_file(str(good / "optimizer.safetensors"))
    moment = sorted(k for k in opt if k.startswith("exp_avg"))[0]
    cases = [({"step": "abc"}, None, "step is 'abc'"), ({"step": -5}, None, "step is -5"),
             ({"step": 10**12}, None, "past --steps 6"), ({}, {moment: torch.zeros(2)}, f"{moment} is")]
    for n, (meta, tensors, msg) in enumerate(cases):
        out = tmp_path / f"t{n}"
        shutil.copytree(tmp_path / "cut", out)
        ck = shutil.copytree(good, tmp_path / f"t{n}.heal-checkpoint")
        (ck / "state.json").write_text(json.dumps(state | meta))
        if tensors:
            save_file(opt | tensors, str(ck / "optimizer.safetensors"))
        r = CliRunner().invoke(cli, args + ["-o", str(out), "--resume"])
        assert r.exit_code == 2 and "damaged or was changed" in r.output and msg in r.output, r.output
        assert "Traceback" not in r.output


def test_a_batch_that_cannot_fit_is_refused_up_front(tmp_path, transplanted):
    _, model = transplanted["tied"]
    r = CliRunner().invoke(cli, ["heal", str(model), CORPUS, "--loss", "lm", "--steps", "2", "--seq-bytes", "64",
                                 "--batch-size", "100000000", "--device", "cpu", "-o", str(tmp_path / "o")])
    assert r.exit_code == 2 and "needs about" in r.output and "GiB" in r.output and "--batch-size" in r.output, r.output
    assert not (tmp_path / "o").exists()
