"""``tokkit heal``: train the rows a transplant / extension built (LM loss and ALM self-distillation)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from tokkit_cli.main import apply_threads, cli, max_minutes_option, threads_option

_LOSSES = ["alm", "lm", "alm+lm"]
_TRAIN = ["new-rows", "embeddings", "embeddings+norms", "all"]


@cli.command("heal")
@click.argument("model_dir")
@click.argument("sources", nargs=-1, required=True)
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output HF model folder.")
@click.option("--teacher", default=None, help="Teacher model with its own tokenizer [default: the report's source model].")
@click.option("--loss", type=click.Choice(_LOSSES, case_sensitive=False), default=None,
              help="Objective: ALM self-distillation, next-token loss, or both [default: alm+lm].")
@click.option("--train", "train", type=click.Choice(_TRAIN, case_sensitive=False), default=None,
              help="What is trained; everything else stays frozen [default: new-rows].")
@click.option("--steps", type=int, default=None, help="Optimizer steps [default: 200].")
@click.option("--seq-bytes", type=int, default=None, help="UTF-8 bytes of text per sequence [default: 512].")
@click.option("--batch-size", type=int, default=None, help="Sequences per step and process [default: 4].")
@click.option("--lr", type=float, default=None, help="AdamW peak learning rate [default: 2e-3].")
@click.option("--tau", type=float, default=None, help="ALM binarisation temperature [default: 100].")
@click.option("--lm-weight", type=float, default=None, help="alm+lm: weight of the LM term after balancing [default: 1].")
@click.option("--heldout", type=float, default=None, help="Share of SOURCE held out and scored before/after [default: 0.05].")
@click.option("--eval-every", type=int, default=None, help="Score the held-out texts every N steps [default: 0 = ends only].")
@click.option("--eval-text", "eval_texts", multiple=True, type=click.Path(path_type=Path),
              help="Another held-out text file to score (repeat).")
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints [default: 25].")
@click.option("--resume", is_flag=True, help="Continue the interrupted run whose checkpoint lies beside OUT.")
@click.option("--force", is_flag=True, help="Replace an existing OUT and discard a stray checkpoint.")
@click.option("--device", default=None, help="auto (CUDA when present), cpu, cuda ... [default: auto]")
@click.option("--seed", type=int, default=None)
@max_minutes_option
@threads_option
def heal_command(model_dir, sources, out_dir, teacher, loss, train, steps, seq_bytes, batch_size, lr, tau, lm_weight,
                 heldout, eval_every, eval_texts, checkpoint_every, resume, force, device, seed, max_minutes, threads) -> None:
    """Heal MODEL_DIR (a `tokkit transplant` / `tokkit extend` output) by training on SOURCE text files.

    Multi-GPU: `torchrun --nproc-per-node N -m tokkit_cli.main heal ...`.
    """
    from tokkit.transplant.heal import HealConfig, plan_heal, run_heal

    flags = dict(model=model_dir, sources=tuple(sources), teacher=teacher, loss=loss, train=train, steps=steps,
                 seq_bytes=seq_bytes, batch_size=batch_size, lr=lr, tau=tau, lm_weight=lm_weight, heldout=heldout,
                 eval_every=eval_every, eval_texts=tuple(str(p) for p in eval_texts) or None,
                 checkpoint_every=checkpoint_every, device=device, seed=seed)
    cfg = HealConfig.model_validate({k: v for k, v in flags.items() if v is not None})
    plan = plan_heal(cfg, out_dir, force=force, resume=resume)
    apply_threads(threads)
    what = "every row" if plan.ids is None else f"{len(plan.ids)} built rows"
    if (plan.report or {}).get("output_rows", {}).get("untied"):  # extend/transplant untied a tied head
        what += " (input and output: the head was untied)"
    if os.environ.get("RANK", "0") == "0":  # under torchrun only rank 0 talks
        click.echo(f"heal {plan.model.name}: {cfg.loss.value} on {what} ({cfg.train.value}), {cfg.steps} steps x "
                   f"{cfg.batch_size} x {cfg.seq_bytes} bytes; teacher {plan.teacher or '-'}; "
                   f"{len(plan.text.train.encode()):,} training bytes, {len(plan.text.heldout.encode()):,} held out")
    r = run_heal(plan, max_minutes=max_minutes)
    if r.rank != 0:
        return
    if r.resumed_from:
        click.echo(f"resumed from step {r.resumed_from}")
    for name, v in r.heldout.items():
        click.echo(f"{name}: {v['before']:.4f} -> {v['after']:.4f} bits/byte ({v['after'] / v['before']:.3f}x)")
    dev = f", peak device memory {r.peak_device_gb:.2f} GiB" if r.peak_device_gb is not None else ""
    click.echo(f"healed {r.steps - r.resumed_from} steps in {r.seconds:.1f} s ({r.tokens:,} tokens, {r.chunks:,} ALM "
               f"chunks, {r.world} process{'es' if r.world > 1 else ''}), peak RSS {r.peak_rss_gb:.2f} GiB{dev}")
    click.echo(f"wrote {plan.out_dir} (+ heal record in transplant_report.json)")
    if r.stopped:
        click.echo(f"stopped by --max-minutes at step {r.steps} of {cfg.steps} (the learning rate had not decayed); "
                   f"the checkpoint is kept: run the same command with --resume to finish")
