"""``eval-lm`` scoring against a minimal transformers loop, same model, same segments, same threads.

    python benchmarks/eval_speed.py [--model smollm2] [--threads 1] [--repeat 3] [--segment-bytes 2048]

The peer: one forward per segment (``[bos] + ids``) under ``torch.inference_mode`` and a
``cross_entropy`` sum, nothing else. tokkit: :func:`tokkit.transplant.evaluate.bits_per_byte`
(batched segments). Text: the held-out files in ``data/heldout`` (English and German). Prints
tokens/s, the ratio tokkit time / loop time (best of ``--repeat``, model and tokenizer loading excluded for both)
and each side's bits per byte against a float64 log-softmax reference on the same segments (untimed):
the loop's float32 ``cross_entropy`` sum drifts by ~3e-6 bits/byte, eval-lm's logsumexp-gather by ~4e-8.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--segment-bytes", type=int, default=2048)
    ap.add_argument("--max-bytes", type=int, default=None, help="cut each held-out text to this many characters")
    ap.add_argument("--batch-tokens", type=int, default=None, help="also time eval-lm with ragged batches of N tokens")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from transformers import AutoModelForCausalLM

    from tokkit import load_tokenizer
    from tokkit.names import resolve_model
    from tokkit.transplant import evaluate as ev

    folder = resolve_model(args.model)
    texts = {p.stem: p.read_text(encoding="utf-8")[:args.max_bytes] for p in sorted((ROOT / "data" / "heldout").glob("*.txt"))}
    tok = load_tokenizer(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    prefix = ev.start_tokens(tok)
    nbytes = sum(len(t.encode()) for t in texts.values())

    def loop() -> tuple[float, int]:
        nll, ntok = 0.0, 0
        with torch.inference_mode():
            for text in texts.values():
                for seg in ev.segments(text, segment_bytes=args.segment_bytes):
                    ids = tok.encode(seg)
                    x = torch.tensor([prefix + ids])
                    logits = model(x).logits[0, len(prefix) - 1:-1]
                    nll += float(torch.nn.functional.cross_entropy(logits, x[0, len(prefix):], reduction="sum"))
                    ntok += len(ids)
        return nll, ntok

    # the library call loads the model and the tokenizer itself: time the same work with both loads
    # taken out (the loop's were done above), as a long scoring run amortises them
    import transformers

    import tokkit.tokenizer as tokmod

    real_from_pretrained = transformers.AutoModelForCausalLM.from_pretrained
    transformers.AutoModelForCausalLM.from_pretrained = staticmethod(lambda *a, **k: model)  # type: ignore[assignment]
    real_load, tokmod.load_tokenizer = tokmod.load_tokenizer, (lambda *a, **k: tok)  # type: ignore[assignment]
    try:
        def ours(batch_tokens=None) -> tuple[float, int]:
            sc = ev.bits_per_byte(folder, texts, segment_bytes=args.segment_bytes, batch_tokens=batch_tokens)
            return sum(s.nll_nats for s in sc), sum(s.tokens for s in sc)

        ours()  # warm-up (tokenizer load and its fast-path check)
        t_loop = t_ours = t_bat = float("inf")
        nll_bat = None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            nll_loop, ntok = loop()
            t_loop = min(t_loop, time.perf_counter() - t0)
            t0 = time.perf_counter()
            nll_ours, ntok_ours = ours()
            t_ours = min(t_ours, time.perf_counter() - t0)
            if args.batch_tokens:
                t0 = time.perf_counter()
                nll_bat, _ = ours(args.batch_tokens)
                t_bat = min(t_bat, time.perf_counter() - t0)
    finally:
        transformers.AutoModelForCausalLM.from_pretrained = real_from_pretrained
        tokmod.load_tokenizer = real_load  # type: ignore[assignment]
    assert ntok == ntok_ours

    def reference() -> float:
        """The same segments scored with float64 log-softmax (untimed): the yardstick for both sums."""
        nll = 0.0
        with torch.inference_mode():
            for text in texts.values():
                for seg in ev.segments(text, segment_bytes=args.segment_bytes):
                    x = torch.tensor([prefix + tok.encode(seg)])
                    lp = torch.log_softmax(model(x).logits[0, len(prefix) - 1:-1].double(), -1)
                    nll -= float(lp.gather(1, x[0, len(prefix):, None]).sum())
        return nll / (math.log(2) * nbytes)

    bpb_ref = reference()
    bpb_loop, bpb_ours = (n / (math.log(2) * nbytes) for n in (nll_loop, nll_ours))
    print(f"{args.model}: {nbytes} bytes, {ntok} tokens, {args.threads} thread(s), best of {args.repeat}")
    print(f"{'':<22}{'tok/s':>8}{'bits/byte':>12}{'|vs float64|':>14}")
    print(f"{'minimal loop':<22}{ntok / t_loop:>8.0f}{bpb_loop:>12.6f}{abs(bpb_loop - bpb_ref):>14.1e}")
    print(f"{'tokkit eval-lm':<22}{ntok / t_ours:>8.0f}{bpb_ours:>12.6f}{abs(bpb_ours - bpb_ref):>14.1e}")
    if nll_bat is not None:
        bpb_bat = nll_bat / (math.log(2) * nbytes)
        print(f"{'eval-lm batch ' + str(args.batch_tokens):<22}{ntok / t_bat:>8.0f}{bpb_bat:>12.6f}"
              f"   (ratio to loop {t_bat / t_loop:.3f}, |delta bits/byte| {abs(bpb_bat - bpb_loop):.2e})")
    print(f"ratio tokkit/loop time {t_ours / t_loop:.3f}; |delta bits/byte| {abs(bpb_ours - bpb_loop):.2e}")


if __name__ == "__main__":
    main()
