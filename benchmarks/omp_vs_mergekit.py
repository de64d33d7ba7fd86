"""tokkit OMP vs mergekit-tokensurgeon OMP on the same model pair, anchors, targets and k, in one run.

Targets: a seeded sample of held-out shared tokens (removed from the dictionary; their true base rows
measure the error) plus a seeded sample of genuinely new tokens (timing only). Each solver gets the
same donor dictionary and targets; its coefficients are carried to the base anchors the same way
(``Σ c_l E_base[anchor_l]``). Prints seconds, the time ratio, the donor-space residual and, on the
held-out anchors, the cosine and relative error to the true base rows.

    pip install torch==2.13.0 && pip install mergekit   # mergekit after torch (else it pulls CUDA torch)
    python benchmarks/omp_vs_mergekit.py --src gemma3 --donor smollm2 --k 64 --heldout 256 --new 256
"""

from __future__ import annotations

import argparse
import random
import time

import torch


def _mergekit_omp():
    try:
        from mergekit.tokensurgeon.omp import batch_omp  # BUSL-1.1: imported, never copied
    except ImportError as e:  # pragma: no cover - optional peer
        raise SystemExit(f"mergekit is not installed ({e}); pip install mergekit after torch==2.13.0") from None
    return batch_omp


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--src", default="gemma3")
    ap.add_argument("--donor", default="smollm2")
    ap.add_argument("--k", type=int, default=64)
    ap.add_argument("--heldout", type=int, default=256)
    ap.add_argument("--new", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=512, help="rows per batch for both (mergekit's default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--variants", nargs="*", default=["4", "8", "16"],
                    help="tokkit settings to time: per_step or per_step:candidates (e.g. 8 16 8:2048)")
    ap.add_argument("--skip-mergekit", action="store_true", help="time only tokkit (ratios then against textbook OMP)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from tokkit import load_tokenizer, resolve_model
    from tokkit.embedding import load_model_embeddings
    from tokkit.embedding.sparse import OMPResult, omp
    from tokkit.transplant.align import align_vocabs

    src_dir, donor_dir = resolve_model(args.src), resolve_model(args.donor)
    src_tok, dst_tok = load_tokenizer(src_dir), load_tokenizer(donor_dir)
    al = align_vocabs(src_tok.vocab, dst_tok.vocab)
    a_dst, a_src = al.anchors()
    rng = random.Random(args.seed)
    held = sorted(rng.sample(range(len(a_dst)), args.heldout))
    held_set = set(held)
    keep = [i for i in range(len(a_dst)) if i not in held_set]
    new = sorted(rng.sample(al.new_ids, min(args.new, len(al.new_ids))))
    donor = load_model_embeddings(donor_dir, vocab=dst_tok.vocab).input.weight.float()
    base = load_model_embeddings(src_dir, vocab=src_tok.vocab).input.weight.float()
    dict_donor = donor[torch.tensor([a_dst[i] for i in keep])]
    dict_base = base[torch.tensor([a_src[i] for i in keep])]
    targets = torch.cat([donor[torch.tensor([a_dst[i] for i in held])], donor[torch.tensor(new)]])
    truth = base[torch.tensor([a_src[i] for i in held])]
    print(f"pair: base {args.src} (D={base.shape[1]}) <- donor {args.donor} (D={donor.shape[1]}); anchors {len(keep)} "
          f"(after holding out {len(held)}); targets {targets.shape[0]} ({len(held)} held-out + {len(new)} new); k={args.k}; "
          f"torch threads {torch.get_num_threads()}")

    def run_mergekit() -> OMPResult:
        batch_omp = _mergekit_omp()
        idx, co = [], []
        for s in range(0, targets.shape[0], args.batch_size):
            i, c = batch_omp(targets[s:s + args.batch_size], dict_donor, args.k)
            idx.append(i)
            co.append(c)
        i, c = torch.cat(idx), torch.cat(co)
        rec = torch.einsum("mk,mkd->md", c, dict_donor[i])
        resid = (rec - targets).norm(dim=1) / targets.norm(dim=1)
        return OMPResult(i, c, resid)

    solvers = {
        "mergekit batch_omp": run_mergekit,
        "tokkit omp (per_step=1, textbook)": lambda: omp(targets, dict_donor, args.k, per_step=1, batch_size=args.batch_size),
    }
    for spec in args.variants:  # "S" or "S:L": per_step S, candidates L
        s_, _, l_ = spec.partition(":")
        cand = int(l_) if l_ else None
        solvers[f"tokkit omp (per_step={s_}{', candidates=' + l_ if l_ else ''})"] = (
            lambda s_=int(s_), cand=cand: omp(targets, dict_donor, args.k, per_step=s_, candidates=cand,
                                               batch_size=args.batch_size))
    rows = []
    if args.skip_mergekit:
        del solvers["mergekit batch_omp"]
    for name, fn in solvers.items():
        t0 = time.perf_counter()
        res = fn()
        sec = time.perf_counter() - t0
        rec = res.apply(dict_base)[: len(held)]
        cos = torch.nn.functional.cosine_similarity(rec, truth, dim=1)
        rel = (rec - truth).norm(dim=1) / truth.norm(dim=1)
        rows.append((name, sec, float(res.residual.mean()), float(cos.mean()), float(rel.mean())))
    ref = rows[0][1]
    print(f"{'solver':<44} {'seconds':>8} {'speed-up':>11} {'donor resid':>11} {'held-out cos':>12} {'held-out rel.err':>16}")
    for name, sec, res, cos, rel in rows:
        print(f"{name:<44} {sec:>8.1f} {ref / sec:>10.2f}x {res:>11.4f} {cos:>12.4f} {rel:>16.4f}")


if __name__ == "__main__":
    main()
