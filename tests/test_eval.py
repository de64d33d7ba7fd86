"""Bits per byte: exact segment partition, agreement with a token-by-token oracle, the eval-lm CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from tokkit import load_tokenizer
from tokkit.hf_folder import write_tokenizer_files
from tokkit.transplant.evaluate import bits_per_byte, segments
from tokkit_cli.main import cli

transformers = pytest.importorskip("transformers")
HELDOUT = Path(__file__).resolve().parents[1] / "data" / "heldout"


def test_segments_partition_the_text_exactly():
    text = (HELDOUT / "moby_dick_ch1.txt").read_text(encoding="utf-8")
    for size in (64, 500, 2048):
        segs = segments(text, segment_bytes=size)
        assert "".join(segs) == text
        assert all(len(s.encode()) <= size for s in segs if " " in s)
    assert segments("", segment_bytes=10) == []


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, smollm2_dir):
    tok = load_tokenizer(smollm2_dir)
    cfg = transformers.LlamaConfig(vocab_size=len(tok.vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2,
                                   num_key_value_heads=1, num_hidden_layers=1, bos_token_id=1, eos_token_id=2)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny")
    transformers.LlamaForCausalLM(cfg).save_pretrained(path)
    write_tokenizer_files(tok.to_hf(), tok.vocab, path)
    return path, tok


def test_bits_per_byte_equals_token_by_token_oracle(tiny_lm):
    path, tok = tiny_lm
    text = "Call me Ishmael. Some years ago—never mind how long\nprecisely—having little or no money"
    got = bits_per_byte(path, {"t": text}, segment_bytes=40)[0]
    model = transformers.AutoModelForCausalLM.from_pretrained(path).eval()
    nll, ntok = 0.0, 0
    for seg in segments(text, segment_bytes=40):
        ids = [1] + tok.encode(seg)  # SmolLM2 prepends nothing: its bos <|im_start|> starts each segment
        for i in range(1, len(ids)):
            with torch.no_grad():
                logits = model(torch.tensor([ids[:i]])).logits[0, -1]
            nll -= float(logits.log_softmax(-1)[ids[i]])
            ntok += 1
    assert got.tokens == ntok and got.bytes == len(text.encode())
    assert got.bits_per_byte == pytest.approx(nll / (math.log(2) * len(text.encode())), rel=1e-4)


def test_eval_lm_cli_json_one_object_per_model_and_domain(tiny_lm, tmp_path):
    path, _ = tiny_lm
    a = tmp_path / "a.txt"
    a.write_text("It is a way I have of driving off the spleen.\n", encoding="utf-8")
    b = tmp_path / "b.txt"
    b.write_text("Madam Speaker, Madam Vice President.\n", encoding="utf-8")
    r = CliRunner().invoke(cli, ["eval-lm", str(path), "--text", str(a), "--text", str(b), "--json", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["domain"] for x in rows] == ["a", "b", "all"]
    assert {"model", "bits_per_byte", "bytes", "tokens"} <= set(rows[0])
    assert rows[2]["bytes"] == rows[0]["bytes"] + rows[1]["bytes"] == len(a.read_bytes()) + len(b.read_bytes())
    r = CliRunner().invoke(cli, ["eval-lm", str(tmp_path / "missing"), "--text", str(a)])
    assert r.exit_code == 2 and "error:" in r.output


def test_transplanted_model_splits_nll_into_new_targets_and_leak(tiny_lm, tmp_path):
    """A folder with a transplant report: new-target count/NLL and the leak agree with a per-position oracle."""
    import shutil

    path, tok = tiny_lm
    text = "Call me Ishmael. Some years ago—never mind how long\nprecisely"
    folder = tmp_path / "transplanted"
    shutil.copytree(path, folder)
    ids = [i for seg in segments(text, segment_bytes=40) for i in tok.encode(seg)]
    new = sorted(set(ids[1::3]) | set(range(5000, 9000)))  # some ids of the text and many that never occur
    rows = len(tok.vocab)
    (folder / "transplant_report.json").write_text(json.dumps(
        {"tokens": [{"id": i, "kind": "new" if i in set(new) else "byte_matched"} for i in range(rows)]}))
    got = bits_per_byte(folder, {"t": text}, segment_bytes=40)[0]
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    is_new = torch.zeros(rows, dtype=torch.bool)
    is_new[new] = True
    n_new, nll_new, leak = 0, 0.0, 0.0
    for seg in segments(text, segment_bytes=40):
        seq = [1] + tok.encode(seg)
        for i in range(1, len(seq)):
            with torch.no_grad():
                logits = model(torch.tensor([seq[:i]])).logits[0, -1].double()
            if is_new[seq[i]]:
                n_new += 1
                nll_new -= float(logits.log_softmax(-1)[seq[i]])
            else:
                leak += float(logits.exp().sum().log() - logits[~is_new].exp().sum().log())
    assert got.new_targets == n_new > 0
    assert got.nll_new_targets == pytest.approx(nll_new, rel=1e-4)
    assert got.leak_nats == pytest.approx(leak, rel=1e-3) and leak > 0
    plain = bits_per_byte(path, {"t": text}, segment_bytes=40)[0]  # no report: no split, same score
    assert plain.new_targets is None and plain.bits_per_byte == pytest.approx(got.bits_per_byte, rel=1e-6)
    r = CliRunner().invoke(cli, ["eval-lm", str(folder), str(path), "--text", str(_write(tmp_path, text)),
                                 "--segment-bytes", "40", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    table = [line for line in r.stdout.splitlines() if line.startswith(("model", str(folder)[-40:], str(path)[-40:]))]
    assert "leak nats" in table[0] and table[1].split()[-3] == str(n_new) and table[2].split()[-3:] == ["-", "-", "-"]


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "t.txt"
    p.write_text(text, encoding="utf-8")
    return p


def test_batched_scoring_equals_one_segment_at_a_time(tiny_lm):
    """Ragged batches (right-padded, masked; ``batch_tokens``) give the bits per byte of scoring each segment alone
    (the default) to 1e-6 on this tiny model."""
    path, _ = tiny_lm
    text = (HELDOUT / "moby_dick_ch1.txt").read_text(encoding="utf-8")[:6000]
    one = bits_per_byte(path, {"t": text}, segment_bytes=300)[0]
    batched = bits_per_byte(path, {"t": text}, segment_bytes=300, batch_tokens=1 << 20)[0]
    small = bits_per_byte(path, {"t": text}, segment_bytes=300, batch_tokens=300)[0]
    assert len(segments(text, segment_bytes=300)) > 15
    assert batched.tokens == one.tokens == small.tokens
    assert abs(batched.bits_per_byte - one.bits_per_byte) < 1e-6
    assert abs(small.bits_per_byte - one.bits_per_byte) < 1e-6


def test_max_bytes_scores_a_deterministic_prefix_cut_at_a_character(tiny_lm, tmp_path):
    from tokkit.transplant.evaluate import prefix_bytes

    path, _ = tiny_lm
    text = "Größe über alles — ça va? 日本の首都は東京です。\n" * 20
    raw = text.encode()
    for n in range(0, 60):
        p = prefix_bytes(text, n)
        assert raw.startswith(p.encode()) and n - 3 <= len(p.encode()) <= n  # never more, never a broken character
    assert prefix_bytes(text, 10**9) == text and prefix_bytes(text, None) == text
    assert prefix_bytes("ab日", 4) == "ab"  # 日 takes 3 bytes: bytes 3-5
    f = _write(tmp_path, text)
    args = ["eval-lm", str(path), "--text", str(f), "--json", "--device", "cpu", "--max-bytes", "101"]
    r1, r2 = CliRunner().invoke(cli, args), CliRunner().invoke(cli, args)
    assert r1.exit_code == 0, r1.output
    row = json.loads(r1.stdout.splitlines()[0])
    want = prefix_bytes(text, 101)
    assert row["bytes"] == len(want.encode()) <= 101 and r1.stdout == r2.stdout
    assert row["bits_per_byte"] == bits_per_byte(path, {"t": want})[0].bits_per_byte.__round__(5)


def test_rows_come_as_texts_finish_and_ctrl_c_keeps_them_and_exits_130(tiny_lm, tmp_path, monkeypatch):
    import tokkit.transplant.evaluate as ev

    path, _ = tiny_lm
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("It is a way I have of driving off the spleen.\n", encoding="utf-8")
    b.write_text("Madam Speaker, Madam Vice President.\n", encoding="utf-8")
    real, calls = ev._batches, []

    def interrupted(*args, **kw):  # the second text's scoring is where the user presses Ctrl-C
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(ev, "_batches", interrupted)
    for as_json in (True, False):
        calls.clear()
        r = CliRunner().invoke(cli, ["eval-lm", str(path), "--text", str(a), "--text", str(b), "--device", "cpu"]
                               + (["--json"] if as_json else []))
        assert r.exit_code == 130, r.output
        out = r.stdout.splitlines()
        if as_json:
            assert [json.loads(line)["domain"] for line in out] == ["a"]
        else:
            assert out[0].startswith("model") and len(out) == 2 and out[1].split()[1] == "a"
        assert r.stderr.strip().splitlines()[-1] == "error: interrupted by SIGINT: 1 of 2 texts scored; the rows above are complete"


def test_an_estimate_from_the_first_forwards_goes_to_stderr(tiny_lm, tmp_path, monkeypatch):
    """(Announced from 30 s of estimated work on; the threshold is lowered so this tiny model announces it.)"""
    import tokkit.optim.loop as loop

    monkeypatch.setattr(loop, "ESTIMATE_MIN_SECONDS", 0.0)
    path, _ = tiny_lm
    f = _write(tmp_path, (HELDOUT / "moby_dick_ch1.txt").read_text(encoding="utf-8")[:3000])
    r = CliRunner().invoke(cli, ["eval-lm", str(path), "--text", str(f), "--segment-bytes", "200", "--json",
                                 "--device", "cpu", "--threads", "1"])
    assert r.exit_code == 0, r.output
    import re

    tokens = json.loads(r.stdout.splitlines()[0])["tokens"]
    line = next(x for x in r.stderr.splitlines() if "on this machine" in x)
    n_seg = len(segments((HELDOUT / "moby_dick_ch1.txt").read_text(encoding="utf-8")[:3000], segment_bytes=200))
    assert re.fullmatch(rf"{path.name}: {tokens:,} tokens in {n_seg} segments x ~[\d.e-]+ ms/token ≈ .+ on this "
                        r"machine \(1 thread\)", line), line
    assert "{" not in r.stderr.split("cost:")[0].replace(line, "")  # nothing but the estimate and the cost on stderr


def test_the_os_refusing_a_thread_is_one_line_and_batch_encoding_falls_back(monkeypatch):
    import concurrent.futures

    import tokkit.formats.batching as batching
    from tokkit_cli.main import user_error

    err = user_error(RuntimeError("can't start new thread"))
    assert err is not None and err.exit_code == 2 and "--threads 1" in err.format_message()

    class NoThreads(concurrent.futures.ThreadPoolExecutor):
        def submit(self, *a, **k):
            raise RuntimeError("can't start new thread")

    monkeypatch.setattr(batching, "ThreadPoolExecutor", NoThreads)
    texts = ["x" * 40000, "y" * 40000, "z" * 500]
    assert batching.map_chunked(len, texts, num_threads=4) == [40000, 40000, 500]
