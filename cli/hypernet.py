"""``tokkit hypernet train``: train a ZeTT-style hypernetwork for one base model (then ``transplant --hypernet``)."""

from __future__ import annotations

from pathlib import Path

import click

from tokkit_cli.main import apply_threads, cli, max_minutes_option, threads_option


@cli.group("hypernet")
def hypernet_group() -> None:
    """Hypernetworks that embed any new tokenizer zero-shot (ZeTT)."""


@hypernet_group.command("train")
@click.option("--base", required=True, help="Base model: alias (smollm2) or HF folder. Stays frozen.")
@click.option("--corpus", "corpus", multiple=True, required=True, type=click.Path(exists=True, path_type=Path),
              help="Training text: .txt / .jsonl ('text' field) files or folders (repeat).")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Checkpoint folder; an interrupted run in it is resumed.")
@click.option("--force", is_flag=True, help="Start over, replacing an existing folder.")
@click.option("--steps", type=int, default=None, help="Optimizer steps, warm-up included [default: 700].")
@click.option("--warmup-steps", type=int, default=None, help="Steps of sub-piece reconstruction only, fewer than --steps [default: 300, or 3/7 of a shorter --steps].")
@click.option("--batch-size", type=int, default=None, help="Sequences per step [default: 4].")
@click.option("--seq-len", type=int, default=None, help="Tokens per sequence [default: 128].")
@click.option("--vocab-size", type=int, default=None, help="Largest sampled tokenizer, bytes excluded [default: 3000].")
@click.option("--noise-log-sigma", type=float, default=None, help="Sampled tokenizers: noise on log scores [default: 1.0].")
@click.option("--max-words", type=int, default=None, help="Sampled tokenizers: longest piece in words [default: 3].")
@click.option("--multiword-prob", type=float, default=None, help="Share of sampled tokenizers with multi-word pieces [default: 0.5].")
@click.option("--negatives", type=int, default=None, help="Extra sampled-vocab rows per step's softmax [default: 512].")
@click.option("--softmax-rows", type=int, default=None,
              help="Vocabulary size each step's softmax stands for (negatives weighted up; 0 = off); "
                   "about the size of the target vocabularies [default: 32000].")
@click.option("--hidden", type=int, default=None, help="Hypernetwork width [default: 256].")
@click.option("--layers", type=int, default=None, help="Encoder layers [default: 2].")
@click.option("--heads", type=int, default=None, help="Attention heads [default: 4].")
@click.option("--max-pieces", type=int, default=None, help="Base pieces per token seen by the encoder [default: 8].")
@click.option("--lr", type=float, default=None, help="Peak learning rate [default: 1e-3].")
@click.option("--aux-weight", type=float, default=None, help="Weight of the auxiliary MSE [default: 0.5].")
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints [default: 50].")
@click.option("--device", default=None, help="auto (CUDA when present), cpu, cuda ... [default: auto]")
@click.option("--seed", type=int, default=None)
@max_minutes_option
@threads_option
def train_command(base, corpus, out_dir, force, steps, warmup_steps, batch_size, seq_len, vocab_size, noise_log_sigma,
                  max_words, multiword_prob, negatives, softmax_rows, hidden, layers, heads, max_pieces, lr, aux_weight,
                  checkpoint_every, device, seed, max_minutes, threads) -> None:
    """Train a hypernetwork for BASE on a fresh sampled tokenizer per step; checkpoints in OUT.

    Multi-GPU: `torchrun --nproc-per-node N -m tokkit_cli.main hypernet train ...`.
    """
    from tokkit.transplant.hypernet import HypernetConfig
    from tokkit.transplant.hypernet.train import train_hypernet

    apply_threads(threads)

    flags = dict(base=base, corpus=tuple(str(c) for c in corpus), steps=steps, warmup_steps=warmup_steps,
                 batch_size=batch_size, seq_len=seq_len, vocab_size=vocab_size, noise_log_sigma=noise_log_sigma,
                 max_words=max_words, multiword_prob=multiword_prob, negatives=negatives, softmax_rows=softmax_rows,
                 hidden=hidden, layers=layers,
                 heads=heads, max_pieces=max_pieces, lr=lr, aux_weight=aux_weight, checkpoint_every=checkpoint_every,
                 device=device, seed=seed)
    cfg = HypernetConfig.model_validate({k: v for k, v in flags.items() if v is not None})
    r = train_hypernet(cfg, out_dir, force=force, max_minutes=max_minutes)
    if r.rank != 0:
        return
    if r.resumed_from:
        click.echo(f"resumed from step {r.resumed_from}")
    loss = ", ".join(f"{k} {v:.4f}" for k, v in r.last_loss.items())
    click.echo(f"trained {cfg.base} hypernetwork to step {r.steps}/{cfg.steps} in {r.seconds:.1f} s "
               f"({r.tokens:,} LM tokens, peak RSS {r.peak_rss_gb:.2f} GiB); last step: {loss}")
    if r.stopped:
        click.echo(f"stopped by --max-minutes at step {r.steps} of {cfg.steps}; run the same command again to continue")
    click.echo(f"wrote {r.out_dir}; apply with: tokkit transplant --src {cfg.base} --dst TOKENIZER "
               f"--method hypernet --hypernet {r.out_dir} -o OUT")
