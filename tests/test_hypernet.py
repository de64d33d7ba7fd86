"""Hypernetwork transplantation on tiny models built in the test (real tokenizers, random weights, real text).

Covers: the sampled tokenizers, the FVT starting point, bitwise resume after a crash, the transplant
path (specials by role, shared rows copied, new rows = the network's prediction, a destination far
larger than any training tokenizer), byte-fallback decompositions, and the bad-input errors.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tokkit import load_tokenizer
from tokkit.output_checks import temp_name
from tokkit.embedding import load_model_embeddings
from tokkit.transplant import InitContext, align_vocabs
from tokkit.transplant.hypernet import HypernetConfig
from tokkit.transplant.hypernet.checkpoint import load_checkpoint
from tokkit.transplant.hypernet.model import HyperNet, pad_pieces
from tokkit.transplant.hypernet.sampler import sample_tokenizer
from tokkit.transplant.methods.hypernet import HypernetInit
from tokkit.transplant.methods.simple import piece_mean
from tokkit_cli.main import cli

transformers = pytest.importorskip("transformers")
from safetensors.torch import load_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPUS = str(ROOT / "data" / "legal" / "train.jsonl")
TINY = dict(steps=4, warmup_steps=1, batch_size=2, seq_len=32, vocab_size=300, negatives=16, aux_tokens=8,
            hidden=16, layers=1, heads=2, max_pieces=4, checkpoint_every=2, device="cpu")


def _tiny(path, tok, **kw):
    from conftest import tiny_llama

    return tiny_llama(path, tok, **kw)


@pytest.fixture(scope="module")
def sm(smollm2_dir):
    return load_tokenizer(smollm2_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sm):
    """A tiny SmolLM2-vocab base and a hypernetwork trained for it through the CLI."""
    d = tmp_path_factory.mktemp("hn")
    src = _tiny(d / "src", sm)
    args = ["hypernet", "train", "--base", str(src), "--corpus", CORPUS, "-o", str(d / "ckpt")]
    for k, v in TINY.items():
        if k != "aux_tokens":
            args += [f"--{k.replace('_', '-')}", str(v)]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert "to step 4/4" in r.output
    return src, d / "ckpt"


def test_sampled_tokenizers_cover_bytes_round_trip_and_are_seeded():
    text = Path(CORPUS).read_text(encoding="utf-8")[:20000]
    chunks = [text[i:i + 2000] for i in range(0, 20000, 2000)]
    multi = False
    for seed in range(6):
        tk = sample_tokenizer(chunks, rng=random.Random(seed), vocab_size=500, noise_log_sigma=1.0, max_words=3,
                              multiword_prob=0.5)
        again = sample_tokenizer(chunks, rng=random.Random(seed), vocab_size=500, noise_log_sigma=1.0, max_words=3,
                                 multiword_prob=0.5)
        assert tk.tokens == again.tokens
        assert tk.tokens[:256] == tuple(bytes([b]) for b in range(256)) and 250 + 256 <= len(tk) <= 500 + 256
        assert len(set(tk.tokens)) == len(tk.tokens)
        for s in (chunks[3], "naïve café – 東京 \x00\t\n"):
            ids = tk.encode(s)
            assert b"".join(tk.tokens[i] for i in ids) == s.encode("utf-8")
        multi |= tk.multiword and any(t.count(b" ") >= 2 and not t.isspace() for t in tk.tokens)
    assert multi, "no sampled tokenizer had multi-word pieces"


@pytest.mark.parametrize("tied", [True, False])
def test_untrained_network_is_fvt(tied):
    torch.manual_seed(0)
    D = 8
    table = torch.randn(50, D if tied else 2 * D)
    net = HyperNet(dim=D, tied=tied, hidden=16, layers=1, heads=2, max_pieces=2, table=table)
    pieces = [[3], [4, 7, 9], [11, 11]]  # longer than max_pieces: the residual base still averages all pieces
    ids, mask = pad_pieces(pieces, device=torch.device("cpu"))
    got = net(table, ids, mask)
    torch.testing.assert_close(got, piece_mean(table, pieces, table[0]), rtol=0, atol=1e-6)


def test_sampled_softmax_equals_a_softmax_with_each_negative_repeated():
    """softmax_rows weights each negative like w copies of it (oracle: the columns repeated w times)."""
    from tokkit.transplant.hypernet.train import sampled_softmax_nll

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 10, generator=g, dtype=torch.float64)  # 4 batch columns, 6 negatives
    labels = torch.tensor([0, 3, 1, -100, 2, 2, 0])
    for rows, w in ((4 + 6 * 5, 5), (4 + 6 * 37, 37)):
        repeated = torch.cat([logits[:, :4]] + [logits[:, 4:]] * w, dim=1)
        want = torch.nn.functional.cross_entropy(repeated, labels, ignore_index=-100, reduction="sum")
        got = sampled_softmax_nll(logits, labels, n_batch=4, softmax_rows=rows)
        assert torch.allclose(got, want, rtol=1e-12)
    plain = torch.nn.functional.cross_entropy(logits, labels, ignore_index=-100, reduction="sum")
    assert torch.equal(sampled_softmax_nll(logits, labels, n_batch=4, softmax_rows=0), plain)
    assert torch.equal(sampled_softmax_nll(logits, labels, n_batch=4, softmax_rows=8), plain)  # fewer rows: w = 1
    assert torch.equal(sampled_softmax_nll(logits[:, :4], labels, n_batch=4, softmax_rows=32000),
                       torch.nn.functional.cross_entropy(logits[:, :4], labels, ignore_index=-100, reduction="sum"))


def test_resume_after_crash_equals_uninterrupted_run(tmp_path, sm, monkeypatch):
    """A run that dies inside step 5 (last checkpoint: step 4) and is resumed ends bitwise equal to one run."""
    import tokkit.transplant.hypernet.train as tr

    src = _tiny(tmp_path / "src", sm)
    cfg = HypernetConfig(base=str(src), corpus=(CORPUS,), **(TINY | {"steps": 6}))
    full = tr.train_hypernet(cfg, tmp_path / "full", progress=False)
    assert full.steps == 6 and full.resumed_from == 0

    real, calls = tr.sample_tokenizer, []

    def dying(*a, **k):
        calls.append(1)
        if len(calls) == 4:  # the 4th LM step = step 5 (step 1 is warm-up)
            raise KeyboardInterrupt("killed")
        return real(*a, **k)

    monkeypatch.setattr(tr, "sample_tokenizer", dying)
    with pytest.raises(KeyboardInterrupt):
        tr.train_hypernet(cfg, tmp_path / "cut", progress=False)
    assert load_checkpoint(tmp_path / "cut").step == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".cut")], "a temporary checkpoint was left behind"
    monkeypatch.setattr(tr, "sample_tokenizer", real)
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    # as if killed between the renames of a checkpoint swap: only the complete new copy (.cut.tk<pid>.new) is left
    (tmp_path / "cut").rename(temp_name(tmp_path / "cut", "new", pid=int(dead.stdout)))
    resumed = tr.train_hypernet(cfg, tmp_path / "cut", progress=False)
    assert resumed.resumed_from == 4 and resumed.steps == 6
    for name in ("model.safetensors", "optimizer.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "cut" / name)
        assert a.keys() == b.keys() and len(a) > 4
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name}:{k} differs after resume"
    ha = json.loads((tmp_path / "full" / "config.json").read_text())["history"]
    hb = json.loads((tmp_path / "cut" / "config.json").read_text())["history"]
    assert ha == hb and [h["step"] for h in ha] == [1, 2, 3, 4, 5, 6] and "lm" in ha[-1]
    # the trained network moved away from FVT (its last layer starts at zero)
    assert load_file(tmp_path / "full" / "model.safetensors")["head.weight"].abs().sum() > 0
    # a different seed is a different run
    other = tr.train_hypernet(cfg.model_copy(update={"seed": 1, "steps": 2}), tmp_path / "seed1", progress=False)
    assert other.steps == 2
    assert not torch.equal(load_file(tmp_path / "seed1" / "model.safetensors")["query"],
                           load_file(tmp_path / "full" / "model.safetensors")["query"])


def test_max_minutes_stops_at_a_checkpoint_and_the_next_call_continues(tmp_path, sm):
    import tokkit.transplant.hypernet.train as tr

    src = _tiny(tmp_path / "src", sm)
    cfg = HypernetConfig(base=str(src), corpus=(CORPUS,), **TINY)
    full = tr.train_hypernet(cfg, tmp_path / "full", progress=False)
    cut = tr.train_hypernet(cfg, tmp_path / "cut", progress=False, max_minutes=1e-7)  # spent before the first step ends
    assert cut.stopped and cut.steps == 1 and load_checkpoint(tmp_path / "cut").step == 1 and not full.stopped
    rest = tr.train_hypernet(cfg, tmp_path / "cut", progress=False)
    assert rest.resumed_from == 1 and rest.steps == 4
    a, b = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_transplant_to_mistral_copies_specials_and_shared_rows_and_predicts_new_ones(tmp_path, sm, trained):
    from conftest import need_fixture

    need_fixture("mistral")
    src, ckpt = trained
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--hypernet", str(ckpt),
                                 "-o", str(out), "--heldout", "20", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "with hypernet" in r.output and "new (hypernet) 10124" in r.output
    mi = load_tokenizer("mistral")
    # a destination far larger than any tokenizer the network was trained on (<= vocab_size + 256 ids)
    assert len(mi.vocab) > 10 * (TINY["vocab_size"] + 256)
    base, new = load_model_embeddings(src), load_model_embeddings(out)
    report = json.loads((out / "transplant_report.json").read_text())
    for role, text in (("bos", "<|im_start|>"), ("eos", "<|im_end|>"), ("unk", "<|endoftext|>")):  # specials by role
        row = report["tokens"][mi.vocab.role_id(role)]
        assert row["kind"] == "special_role" and row["source_text"] == text
        sid = next(t.id for t in sm.vocab.specials if t.text == text)
        assert row["source_id"] == sid and torch.equal(new.input.weight[row["id"]], base.input.weight[sid])
    the = mi.vocab.id_of(b" the")
    assert torch.equal(new.input.weight[the], base.input.weight[sm.vocab.id_of(b" the")])
    al = align_vocabs(sm.vocab, mi.vocab)
    news = [t for t in report["tokens"] if t["kind"] == "new"]
    assert len(news) == 10124 and all(t["method"] == "hypernet" for t in news)
    multi = [t for t in news if len(t["pieces"]) > 2][:50]
    ck = load_checkpoint(ckpt)
    net = HyperNet(dim=16, tied=True, table=base.input.weight.float(), **ck.meta["arch"])
    net.load_state_dict(ck.model)
    ids, mask = pad_pieces([t["pieces"] for t in multi], device=torch.device("cpu"))
    with torch.no_grad():
        want = net.eval()(base.input.weight.float(), ids, mask)
    got = new.input.weight[[t["id"] for t in multi]].float()
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    fvt = piece_mean(base.input.weight.float(), [t["pieces"] for t in multi], base.input.weight[0])
    assert not torch.allclose(got, fvt), "trained hypernetwork still returns FVT"
    for t in multi[:10]:
        assert b"".join(sm.vocab.tokens[i] for i in t["pieces"]) == mi.vocab.tokens[t["id"]]
        assert t["id"] in al.new_ids
    model = transformers.AutoModelForCausalLM.from_pretrained(out)
    x = torch.tensor([[1] + mi.encode("Call me Ishmael")])
    assert torch.isfinite(model(x).logits).all()


def test_byte_fallback_base_decomposes_unknown_characters_into_byte_pieces(tmp_path, sm):
    """Base = a SentencePiece vocab with byte fallback (Mistral): a CJK/Cyrillic token it lacks becomes <0xNN> pieces."""
    from conftest import need_fixture
    from tokkit.transplant.hypernet.train import train_hypernet

    need_fixture("mistral")
    mi = load_tokenizer("mistral")
    src = _tiny(tmp_path / "mi", mi, tied=False)
    cfg = HypernetConfig(base=str(src), corpus=(CORPUS,), **(TINY | {"steps": 2}))
    train_hypernet(cfg, tmp_path / "ck", progress=False)
    al = align_vocabs(mi.vocab, sm.vocab)
    fallback = set(mi.vocab.byte_fallback_ids)
    picks = [i for i in al.new_ids if any(b >= 0x80 for b in sm.vocab.tokens[i])][:40]
    base = load_model_embeddings(src)
    ctx = InitContext(base=base, alignment=al, src_hf=mi.to_hf())
    res = HypernetInit(checkpoint=str(tmp_path / "ck")).initialize(ctx, picks)
    pieces = res.details["pieces"]
    assert any(fallback.intersection(p) for p in pieces), "no byte-fallback piece used"
    for i, p in zip(picks, pieces):
        assert b"".join(mi.vocab.tokens[j] for j in p) == sm.vocab.tokens[i]
    assert res.input.shape == (40, 16) and res.output is not None and res.output.shape == (40, 16)
    assert torch.isfinite(res.input).all() and torch.isfinite(res.output).all()


def test_bad_checkpoints_exit_2_without_output(tmp_path, sm, trained):
    from conftest import need_fixture

    need_fixture("mistral")
    src, ckpt = trained
    other = _tiny(tmp_path / "other", sm, seed=1)  # same vocab, other weights: another base model
    run = CliRunner().invoke
    cases = [
        (["--src", str(src), "--hypernet", str(tmp_path / "nope")], "no hypernetwork checkpoint"),
        (["--src", str(src), "--hypernet", str(src)], "not a tokkit hypernetwork checkpoint"),
        (["--src", str(other), "--hypernet", str(ckpt)], "was trained for base"),
        (["--src", str(src), "--method", "hypernet"], "needs --hypernet"),
    ]
    for args, msg in cases:
        out = tmp_path / "out"
        r = run(cli, ["transplant", "--dst", "mistral", "-o", str(out), "--device", "cpu", *args])
        assert r.exit_code == 2, r.output
        assert msg in r.output and not out.exists()
    # training refuses to overwrite a folder that is not its checkpoint, and a checkpoint of another run
    (tmp_path / "taken").mkdir()
    r = run(cli, ["hypernet", "train", "--base", str(src), "--corpus", CORPUS, "-o", str(tmp_path / "taken"), "--steps", "1"])
    assert r.exit_code == 2 and "not a hypernetwork checkpoint" in r.output
    r = run(cli, ["hypernet", "train", "--base", str(src), "--corpus", CORPUS, "-o", str(ckpt), "--hidden", "8"])
    assert r.exit_code == 2 and "another run" in r.output
    r = run(cli, ["hypernet", "train", "--base", str(src), "--corpus", str(tmp_path / "missing.txt"), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and not (tmp_path / "x").exists()
    # a checkpoint written before --softmax-rows existed (no such key) was trained without the correction
    import shutil

    legacy = tmp_path / "legacy"
    shutil.copytree(ckpt, legacy)
    meta = json.loads((legacy / "config.json").read_text())
    del meta["config"]["softmax_rows"]
    (legacy / "config.json").write_text(json.dumps(meta))
    again = ["hypernet", "train", "--base", str(src), "--corpus", CORPUS, "-o", str(legacy)]
    again += [a for k, v in TINY.items() if k != "aux_tokens" for a in (f"--{k.replace('_', '-')}", str(v))]
    r = run(cli, again)
    assert r.exit_code == 2 and "softmax_rows" in r.output
    r = run(cli, again + ["--softmax-rows", "0"])
    assert r.exit_code == 0 and "resumed from step 4" in r.output, r.output


@pytest.mark.slow
def test_torchrun_two_processes_train_one_checkpoint(tmp_path, sm):
    """Multi-process data parallelism through torch's own launcher (gloo on CPU here; NCCL on GPUs)."""
    import os
    import shutil
    import subprocess
    import sys

    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable)) or shutil.which("torchrun")
    if torchrun is None:
        pytest.skip("torchrun not installed")
    src = _tiny(tmp_path / "src", sm)
    cmd = [torchrun, "--nproc-per-node", "2", "-m", "tokkit_cli.main", "hypernet", "train", "--base", str(src),
           "--corpus", CORPUS, "-o", str(tmp_path / "ck"), "--steps", "3", "--warmup-steps", "1", "--batch-size", "1",
           "--seq-len", "16", "--vocab-size", "300", "--hidden", "16", "--layers", "1", "--heads", "2", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("to step 3/3") == 1  # only rank 0 reports
    assert load_checkpoint(tmp_path / "ck").step == 3


def _tamper(ckpt: Path, dest: Path, *, meta=None, weights=None) -> Path:
    import shutil

    from safetensors.torch import save_file

    shutil.copytree(ckpt, dest)
    if meta is not None:
        m = json.loads((dest / "config.json").read_text())
        meta(m)
        (dest / "config.json").write_text(json.dumps(m))
    if weights is not None:
        w = load_file(str(dest / "model.safetensors"))
        weights(w)
        save_file(w, str(dest / "model.safetensors"))
    return dest


def test_tampered_checkpoints_are_one_damaged_error_on_apply_and_on_resume(tmp_path, sm, trained):
    """A hand-edited arch/dim/tied/step or weights of another shape: one FormatError naming the field, before
    any network is built (arch.hidden 10**6 asked for terabytes, arch.layers 10**6 never finished)."""
    from conftest import need_fixture

    from tokkit.errors import FormatError

    need_fixture("mistral")
    src, ckpt = trained
    first, last = sorted(load_file(str(ckpt / "model.safetensors")))[::len(load_file(str(ckpt / "model.safetensors"))) - 1]
    cases = {
        "heads3": (dict(meta=lambda m: m["arch"].update(heads=3)), "must divide --hidden"),
        "hidden": (dict(meta=lambda m: m["arch"].update(hidden=10**6)), "arch.hidden is 1000000"),
        "layers": (dict(meta=lambda m: m["arch"].update(layers=10**6)), "arch.layers is 1000000"),
        "missing": (dict(meta=lambda m: m.pop("arch")), "no 'arch'"),
        "str": (dict(meta=lambda m: m["arch"].update(hidden="16")), "arch.hidden is '16'"),
        "pieces0": (dict(meta=lambda m: m["arch"].update(max_pieces=0)), "arch.max_pieces is 0"),
        "dim": (dict(meta=lambda m: m.update(dim=32)), "do not match the base rows"),
        "tied": (dict(meta=lambda m: m.update(tied=not m["tied"])), "do not match the base rows"),
        "step": (dict(meta=lambda m: m.update(step="two")), "step is 'two'"),
        "shape": (dict(weights=lambda w: w.update({first: torch.zeros(3)})), "expected a float tensor of shape"),
        "key": (dict(weights=lambda w: w.pop(last)), "lacks"),
    }
    for name, (how, msg) in cases.items():
        bad = _tamper(ckpt, tmp_path / name, **how)
        with pytest.raises(FormatError, match="damaged or was changed") as e:
            load_checkpoint(bad)
        assert msg in str(e.value), (name, str(e.value))
    run = CliRunner().invoke
    out = tmp_path / "out"
    r = run(cli, ["transplant", "--src", str(src), "--dst", "mistral", "--hypernet", str(tmp_path / "hidden"),
                  "-o", str(out), "--device", "cpu"])
    assert r.exit_code == 2 and "damaged or was changed" in r.output and not out.exists(), r.output
    # training resumes through the same check (its config still matches the run's flags)
    args = ["hypernet", "train", "--base", str(src), "--corpus", CORPUS, "-o", str(tmp_path / "shape")]
    for k, v in TINY.items():
        if k != "aux_tokens":
            args += [f"--{k.replace('_', '-')}", str(v)]
    r = run(cli, args)
    assert r.exit_code == 2 and "damaged or was changed" in r.output, r.output


def test_config_refuses_heads_not_dividing_hidden_and_warmup_not_below_steps(tmp_path):
    from pydantic import ValidationError

    from tokkit.transplant.hypernet.config import default_warmup

    with pytest.raises(ValidationError, match="--heads 3 must divide --hidden 256"):
        HypernetConfig(base="x", corpus=("c",), steps=2, heads=3)
    with pytest.raises(ValidationError, match="fewer than --steps 2"):
        HypernetConfig(base="x", corpus=("c",), steps=2, warmup_steps=5)
    with pytest.raises(ValidationError):
        HypernetConfig(base="x", corpus=("c",), layers=10**6)
    # a warm-up left at its default shrinks with a short run (3/7 of the steps), so some steps train the LM
    assert HypernetConfig(base="x", corpus=("c",), steps=2).warmup_steps == 0 == default_warmup(2)
    assert HypernetConfig(base="x", corpus=("c",), steps=70).warmup_steps == 30
    assert HypernetConfig(base="x", corpus=("c",)).warmup_steps == 300
    r = CliRunner().invoke(cli, ["hypernet", "train", "--base", "x", "--corpus", CORPUS, "-o", str(tmp_path / "h"),
                                 "--steps", "2", "--heads", "3"])
    assert r.exit_code == 2 and "--heads 3 must divide --hidden 256" in r.output and not (tmp_path / "h").exists()
    r = CliRunner().invoke(cli, ["hypernet", "train", "--base", "x", "--corpus", CORPUS, "-o", str(tmp_path / "h"),
                                 "--steps", "2", "--warmup-steps", "5"])
    assert r.exit_code == 2 and "--warmup-steps 5" in r.output and not (tmp_path / "h").exists()
