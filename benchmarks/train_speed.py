"""Training speed: tokkit vs bare HF ``tokenizers`` vs sentencepiece on the same corpus, same settings, one run.

Each trial runs in a fresh subprocess (so peak RSS is per trial); trainers are interleaved over
``--rounds`` rounds (the order rotates each round) and the median and best wall times and the
median CPU time (user + system of the trial process: the least sensitive to other jobs on a shared
machine) are reported with ratios to bare ``tokenizers``. Settings shared by all: BPE, ``--vocab-size`` (default 32,768), min frequency 2,
one special token, every document of the corpus (tokkit with ``held_out: 0`` so it trains on the
same text). HF: byte-level BPE, GPT-2 pattern, complete byte alphabet. sentencepiece: BPE with
byte fallback, ``character_coverage=1.0``, identity normalization, the document lines as sentences.

Usage (corpus: see data/README.md; any .jsonl with a "text" column or .txt works):
    nice -n 10 python benchmarks/train_speed.py /tmp/legal/licensedcode_train.jsonl --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TRIAL = r'''
import json, resource, sys, time
kind, corpus, vocab, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def docs():
    if corpus.endswith(".jsonl"):
        with open(corpus, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)["text"]
    else:
        with open(corpus, encoding="utf-8") as f:
            yield f.read()

def batches(n=256):
    b = []
    for d in docs():
        b.append(d)
        if len(b) >= n:
            yield b
            b = []
    if b:
        yield b

t0 = time.perf_counter()
if kind == "tokkit":
    from tokkit.train import load_recipe, train_tokenizer
    rec = load_recipe(overrides={"vocab_size": vocab, "special_tokens": ["<|endoftext|>"], "held_out": 0.0, "min_frequency": 2})
    train_tokenizer([corpus], out_dir=out, recipe=rec, progress=False, force=True)
elif kind == "tokenizers":
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=vocab, min_frequency=2, special_tokens=["<|endoftext|>"],
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(batches(), trainer=tr)
    tok.save(out + ".json")
elif kind == "sentencepiece":
    import sentencepiece as spm
    lines = (line for d in docs() for line in d.split("\n") if line)
    spm.SentencePieceTrainer.train(sentence_iterator=lines, model_prefix=out, model_type="bpe", vocab_size=vocab,
        byte_fallback=True, character_coverage=1.0, normalization_rule_name="identity", remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True, split_digits=False, num_threads=2, input_sentence_size=0,
        max_sentence_length=1 << 20, user_defined_symbols=[], control_symbols=["<|endoftext|>"], minloglevel=2)
sec = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"seconds": sec, "cpu": ru.ru_utime + ru.ru_stime, "peak_rss_mb": ru.ru_maxrss / 1024}))
'''

TRAINERS = ("tokkit", "tokenizers", "sentencepiece")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("corpus", type=Path)
    ap.add_argument("--vocab-size", type=int, default=32768)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--trainers", nargs="+", default=list(TRAINERS), choices=TRAINERS)
    a = ap.parse_args()
    size = a.corpus.stat().st_size
    results: dict[str, list[dict]] = {k: [] for k in a.trainers}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(a.rounds):
            order = a.trainers[r % len(a.trainers):] + a.trainers[:r % len(a.trainers)]  # rotate: no trainer always first
            for k in order:
                out = str(Path(tmp) / f"{k}-{r}")
                t0 = time.perf_counter()
                p = subprocess.run([sys.executable, "-c", TRIAL, k, str(a.corpus), str(a.vocab_size), out],
                                   capture_output=True, text=True)
                if p.returncode != 0:
                    sys.exit(f"{k} failed:\n{p.stderr[-2000:]}")
                res = json.loads(p.stdout.strip().splitlines()[-1])
                res["wall"] = time.perf_counter() - t0
                results[k].append(res)
                print(f"round {r + 1} {k:<14} {res['seconds']:7.2f} s  cpu {res['cpu']:7.2f} s  (process {res['wall']:.2f} s, "
                      f"peak {res['peak_rss_mb']:.0f} MB)", flush=True)
    print(f"\ncorpus {a.corpus} ({size / 1e6:.2f} MB), vocab {a.vocab_size}, {a.rounds} rounds; wall = training time inside "
          "the process (imports included), cpu = user+system time of the whole process (less sensitive to other load)")
    ref = "tokenizers" if "tokenizers" in results else a.trainers[0]
    base = statistics.median(x["seconds"] for x in results[ref])
    base_best = min(x["seconds"] for x in results[ref])
    base_cpu = statistics.median(x["cpu"] for x in results[ref])
    print(f"{'trainer':<14} {'median s':>9} {'best s':>8} {'cpu s':>7} {'MB/s':>6} {'peak MB':>8} "
          f"{'median vs ' + ref:>20} {'best vs ' + ref:>18} {'cpu vs ' + ref:>17}")
    for k, rs in results.items():
        med = statistics.median(x["seconds"] for x in rs)
        best = min(x["seconds"] for x in rs)
        cpu = statistics.median(x["cpu"] for x in rs)
        peak = max(x["peak_rss_mb"] for x in rs)
        print(f"{k:<14} {med:9.2f} {best:8.2f} {cpu:7.2f} {size / 1e6 / med:6.2f} {peak:8.0f} "
              f"{med / base:19.3f}x {best / base_best:17.3f}x {cpu / base_cpu:16.3f}x")

if __name__ == "__main__":
    main()
