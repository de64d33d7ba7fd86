"""Checks of the inference paths: `tokkit bytes` next-byte distributions and `tokkit eval-lm` bits per byte.

Tolerances: the next-byte distribution of each prefix within total variation 1e-4 and, on bytes
with probability ≥ 1e-4, log-probabilities within 1e-3 (float32 logits, a softmax over 49k tokens,
then sums over each byte's tokens); bits per byte within 1e-5 relative (the README's eval-lm is off
by 4e-8 from a float64 reference on the CPU), the device's padded batches (``batch_tokens``) within
1e-4 of its one-segment forwards, and the leak split of a transplanted folder within 1e-4.
"""

from __future__ import annotations

import numpy as np
import torch

from .common import Ctx, Run, Verdict, rel, timed

__all__ = ["check_bytes", "check_eval_lm", "check_eval_lm_big"]


def check_bytes(ctx: Ctx) -> dict:
    from tokkit.bytelevel import ByteLM

    prefixes = ctx.sizes.bytes_prefixes
    v = Verdict("bytes_next_byte", f"next-byte distributions of {len(prefixes)} prefixes, CPU vs device: total variation "
                "<= 1e-4, |log p| difference <= 1e-3 where p >= 1e-4; sums to 1")
    lms = {side: ByteLM.from_pretrained(str(ctx.models["smol"]), device=str(dev)) for side, dev in
           (("cpu", ctx.cpu), ("device", ctx.dev))}
    runs, dists = {}, {}
    for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev)):
        runs[side] = timed(dev, lambda: [np.asarray(lms[side].next_byte_logprobs(p), dtype=np.float64) for p in prefixes])
        dists[side] = runs[side].value
    tv, dlog, mass = 0.0, 0.0, 0.0
    for a, b in zip(dists["cpu"], dists["device"]):
        pa, pb = np.exp(a), np.exp(b)
        tv = max(tv, 0.5 * float(np.abs(pa - pb).sum()))
        keep = pa >= 1e-4
        dlog = max(dlog, float(np.abs(a[keep] - b[keep]).max()))
        mass = max(mass, abs(float(pa.sum()) - 1), abs(float(pb.sum()) - 1))
    v.within("max_total_variation", tv, 1e-4).within("max_logprob_diff", dlog, 1e-3).within("max_mass_off_one", mass, 1e-6)
    n = ctx.sizes.generate_bytes
    gen = {side: timed(dev, lambda: lms[side].generate(b"The ", max_bytes=n, seed=0))
           for side, dev in (("cpu", ctx.cpu), ("device", ctx.dev))}
    v.info("generate_same_bytes", gen["cpu"].value == gen["device"].value)
    v.info("generate_bytes_per_s_cpu", round(n / gen["cpu"].seconds, 2)).info(
        "generate_bytes_per_s_device", round(n / gen["device"].seconds, 2))
    return v.speed(runs["cpu"], runs["device"], unit="prefixes", count=len(prefixes)).note(
        f"generate: {n} bytes at T=1, seed 0 (same bytes expected, not required: sampling near-equal distributions)").done()


def _scores(folder, texts: dict[str, str], dev: torch.device, **kw) -> Run:
    from tokkit.transplant.evaluate import bits_per_byte

    return timed(dev, lambda: bits_per_byte(folder, texts, device=dev, **kw))


def _eval(ctx: Ctx, name: str, folder, texts: dict[str, str], *, batched: bool, leak: bool = False) -> dict:
    v = Verdict(name, "bits/byte per text, CPU vs device, within 1e-5 relative"
                + ("; device batch_tokens=4096 vs one segment per forward within 1e-4" if batched else "")
                + ("; transplanted folder: same new-token count, leak nats within 1e-4 relative" if leak else ""))
    a, b = _scores(folder, texts, ctx.cpu), _scores(folder, texts, ctx.dev)
    for sa, sb in zip(a.value, b.value):
        v.within(f"{sa.domain}_bpb_rel_diff", rel(sa.bits_per_byte, sb.bits_per_byte), 1e-5)
        v.info(f"{sa.domain}_bpb_cpu", sa.bits_per_byte)
        if leak:
            v.require(f"{sa.domain}_new_targets_equal", sa.new_targets == sb.new_targets,
                      f"{sa.domain}: {sa.new_targets} new targets on CPU, {sb.new_targets} on device")
            v.within(f"{sa.domain}_leak_rel_diff", rel(sa.leak_nats or 0.0, sb.leak_nats or 0.0), 1e-4)
    tokens = sum(s.tokens for s in b.value)
    if batched:
        c = _scores(folder, texts, ctx.dev, batch_tokens=4096)
        for sb, sc in zip(b.value, c.value):
            v.within(f"{sb.domain}_batched_rel_diff", rel(sb.bits_per_byte, sc.bits_per_byte), 1e-4)
        v.info("device_batched_tokens_per_s", round(tokens / _scoring(c).seconds, 1))
    return v.speed(_scoring(a), _scoring(b), unit="tokens", count=tokens).note(
        "speed: scoring only (LMScore.seconds), loading the model and tokenizer excluded").done()


def _scoring(run: Run) -> Run:
    """The scores' own seconds (tokenizing and forwards), as ``tokkit eval-lm`` times them."""
    return Run(run.value, sum(s.seconds for s in run.value), run.peak_gib)


def check_eval_lm(ctx: Ctx) -> list[dict]:
    n = ctx.sizes.eval_bytes
    texts = {"moby_dick_ch1": ctx.text("data/heldout/moby_dick_ch1.txt", n),
             "gnome_help_de": ctx.text("data/heldout/gnome_help_de_net.txt", n)}
    out = [_eval(ctx, "eval_lm", ctx.models["smol"], texts, batched=True)]
    if "transplanted" in ctx.shared:
        out.append(_eval(ctx, "eval_lm_transplanted", ctx.shared["transplanted"], texts, batched=False, leak=True))
    return out


def check_eval_lm_big(ctx: Ctx) -> dict:
    texts = {"moby_dick_ch1": ctx.text("data/heldout/moby_dick_ch1.txt", ctx.sizes.big_eval_bytes)}
    return _eval(ctx, "eval_lm_1b", ctx.models["big"], texts, batched=True)
