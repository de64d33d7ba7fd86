"""The training objective on held-out text: a trained hypernetwork vs its untrained start (= FVT), same batches.

    python benchmarks/hypernet_objective.py --hypernet out/smollm2-hypernet \\
        --text data/heldout/moby_dick_ch1.txt --text data/heldout/sotu_2021_head.txt --batches 20

Draws ``--batches`` batches of the held-out text with a fresh sampled tokenizer each (seeded, the
same for both networks), runs the frozen base on the predicted rows and prints the mean causal-LM
loss (nats/token, bits/byte over the step's rows) and the auxiliary sub-piece reconstruction error.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hypernet", required=True)
    ap.add_argument("--text", action="append", required=True, type=Path)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--seed", type=int, default=12345)
    a = ap.parse_args()
    torch.set_num_threads(1)

    from tokkit.names import resolve_model
    from tokkit.transplant.hypernet.checkpoint import load_checkpoint
    from tokkit.transplant.hypernet.config import HypernetConfig
    from tokkit.transplant.hypernet.data import PieceCache, TextSampler
    from tokkit.transplant.hypernet.model import HyperNet
    from tokkit.transplant.hypernet.sampler import sample_tokenizer
    from tokkit.transplant.hypernet.train import _aux_loss, _Base, _lm_step

    ck = load_checkpoint(a.hypernet)
    cfg = HypernetConfig.model_validate(ck.meta["config"])
    base = _Base(resolve_model(cfg.base), torch.device("cpu"))
    trained = HyperNet(dim=base.dim, tied=base.tied, table=base.table, **ck.meta["arch"])
    trained.load_state_dict(ck.model)
    fvt = HyperNet(dim=base.dim, tied=base.tied, table=base.table, **ck.meta["arch"])  # head = 0: exactly FVT
    cache = PieceCache(base.tok.vocab, base.tok.to_hf())
    texts = TextSampler([p.read_text(encoding="utf-8") for p in a.text], chunk_chars=cfg.seq_len * 6)
    sums = {"fvt": [0.0, 0.0, 0.0], "hypernet": [0.0, 0.0, 0.0]}
    with torch.no_grad():
        for b in range(a.batches):
            for name, net in (("fvt", fvt.eval()), ("hypernet", trained.eval())):
                rng = random.Random(f"{a.seed}:{b}")
                batch = texts.draw(rng, cfg.batch_size)
                tk = sample_tokenizer(batch + texts.draw(rng, 16), rng=rng, vocab_size=cfg.vocab_size,
                                      noise_log_sigma=cfg.noise_log_sigma, max_words=cfg.max_words,
                                      multiword_prob=cfg.multiword_prob)
                _, aux_ids, st = _lm_step(net, base, cache, batch, tk, cfg, rng)
                aux = _aux_loss(net, base, cache, aux_ids[:256])
                for i, v in enumerate((st["lm"], st["bpb"], float(aux))):
                    sums[name][i] += v / a.batches
    print("| network | LM loss (nats/token) | bits/byte (step softmax) | aux MSE / var |")
    print("|---|---|---|---|")
    for name, (lm, bpb, aux) in sums.items():
        print(f"| {name} | {lm:.4f} | {bpb:.4f} | {aux:.4f} |")


if __name__ == "__main__":
    main()
