"""``tokkit transplant`` (move a model onto another tokenizer) and ``tokkit eval-lm`` (bits per byte)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from tokkit_cli.main import apply_threads, cli, interrupted, threads_option
from tokkit_cli.rows import read_capped, row_flags, row_options, rows_summary

_METHODS = ["omp", "heuristic", "fvt", "mean", "zero", "hypernet", "distill"]

#: Text read from --corpus / --keep-text for distillation and the output-row fit.
ROW_TEXT_BYTES = 64 << 20


def _human(x: float) -> str:
    for unit in ("", "K", "M", "G", "T", "P"):
        if abs(x) < 1000:
            return f"{x:.1f}{unit}"
        x /= 1000
    return f"{x:.1f}E"


@cli.command("transplant")
@click.option("--src", required=True, help="Base model: alias (smollm2, gemma3), HF folder or repo id.")
@click.option("--dst", required=True, help="New tokenizer: alias (mistral, llama3, ...), file, folder or repo id.")
@click.option("--donor", default=None, help="Donor model that uses the new tokenizer (needed by --method omp).")
@click.option("--method", type=click.Choice(_METHODS, case_sensitive=False), default=None,
              help="Reconstruction method [default: omp with --donor, hypernet with --hypernet, else heuristic].")
@click.option("-o", "--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Output HF model folder.")
@click.option("--force", is_flag=True, help="Replace an existing output folder (and discard a stray checkpoint).")
@click.option("--resume", is_flag=True, help="Continue an interrupted distillation from its checkpoint beside OUT.")
@click.option("--device", default=None, help="auto (CUDA when present), cpu, cuda ... [default: auto]")
@click.option("-k", "--k", "k", type=int, default=None, help="OMP: anchors per new token [default: 64].")
@click.option("--per-step", type=int, default=None, help="OMP: atoms added per correlation GEMM; 1 = textbook OMP [default: 32].")
@click.option("--candidates", type=int, default=None, help="OMP: restrict each token to its L most similar anchors [default: all].")
@click.option("--global-weight", type=float, default=None, help="heuristic: weight of the kNN estimate [default: 0.3].")
@click.option("--temperature", type=float, default=None, help="heuristic: softmax temperature [default: 0.3].")
@click.option("--top-k", type=int, default=None, help="heuristic: neighbours [default: 3].")
@click.option("--aux-model", default=None, help="heuristic: HF text-embedding model folder for similarities.")
@click.option("--hypernet", "hypernet", default=None, type=click.Path(path_type=Path),
              help="hypernet: checkpoint folder from `tokkit hypernet train` (implies --method hypernet).")
@click.option("--chat-template", type=click.Choice(["auto", "target", "source", "none"]), default=None,
              help="Chat template of the output [default: auto = target's, else source's if its tokens exist].")
@click.option("--heldout", type=int, default=None, help="Shared tokens rebuilt as new for the fidelity check [default: 500].")
@click.option("--treat-as-new", type=float, default=None,
              help="Evaluation only: rebuild this share of the shared multi-byte tokens as if new, so bits per byte "
                   "on any text measures the method [default: 0].")
@click.option("--memory-gb", type=float, default=None, help="Working-memory budget per batch [default: from free memory].")
@click.option("--corpus", "corpus", multiple=True,
              help="distill / --output-rows fit: text in which the new tokens occur (files, folders, globs, hf:NAME; repeatable).")
@click.option("--keep-text", "keep", multiple=True,
              help="--output-rows fit: text of the language the model keeps, where new tokens must stay quiet (repeatable).")
@row_options
@click.option("--seed", type=int, default=None)
@threads_option
def transplant_command(src, dst, donor, method, out_dir, force, resume, device, k, per_step, candidates, global_weight,
                       temperature, top_k, aux_model, hypernet, chat_template, heldout, treat_as_new, memory_gb,
                       seed, threads, corpus, keep, **rows) -> None:
    """Move the pretrained causal LM SRC onto the tokenizer DST without training."""
    from tokkit.atomic import check_output
    from tokkit.config import peak_rss_mb
    from tokkit.transplant import TransplantConfig, plan_transplant, run_transplant
    from tokkit.transplant.report import summary_lines

    flags = dict(src=src, dst=dst, donor=donor, method=method, device=device, k=k, per_step=per_step, candidates=candidates,
                 global_weight=global_weight, temperature=temperature, top_k=top_k, aux_model=aux_model,
                 hypernet=None if hypernet is None else str(hypernet), chat_template=chat_template, heldout=heldout,
                 treat_as_new=treat_as_new, memory_gb=memory_gb, seed=seed, **row_flags(rows))
    cfg = TransplantConfig.model_validate({key: v for key, v in flags.items() if v is not None})
    check_output(out_dir, force=force)
    apply_threads(threads)
    t0 = time.perf_counter()
    texts = read_capped(corpus, ROW_TEXT_BYTES, what="--corpus") if corpus else []
    keep_texts = read_capped(keep, ROW_TEXT_BYTES, what="--keep-text") if keep else []
    plan = plan_transplant(cfg, texts=texts, keep_texts=keep_texts)
    s = plan.summary()
    click.echo(f"transplant {cfg.src} -> {cfg.dst} with {s['method']} on {s['device']} "
               f"({'tied' if s['tied'] else 'untied'} head, {s['rows']} rows)")
    click.echo(f"cost: {s['new_tokens']} new tokens, {s['anchors']} anchors, {_human(s['flops'])}FLOP, "
               f"~{s['memory_bytes'] / 2**30:.2f} GiB working memory")
    result = run_transplant(plan, out_dir, force=force, resume=resume)
    for line in summary_lines(result.report) + rows_summary(result.report):
        click.echo(line)
    click.echo(f"chat template: {result.report['chat_template']}")
    peak = peak_rss_mb() / 1024  # GiB
    click.echo(f"wrote {result.out_dir} (+ transplant_report.json) in {time.perf_counter() - t0:.1f} s, "
               f"peak RSS {peak:.2f} GiB")


@cli.command("eval-lm")
@click.argument("models", nargs=-1, required=True)
@click.option("--text", "texts", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Raw text file (repeat for several domains; each is reported separately).")
@click.option("--max-bytes", type=click.IntRange(min=1), default=None,
              help="Score only the first N bytes of each text (cut back to a whole character; the same prefix every "
                   "run) [default: all of it].")
@click.option("--segment-bytes", type=click.IntRange(16, 1 << 20), default=2048, show_default=True, help="Longest scored segment (bytes).")
@click.option("--device", default="auto", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per model and text as each finishes (plus 'all').")
@threads_option
def eval_lm_command(models, texts, max_bytes, segment_bytes, device, as_json, threads) -> None:
    """Bits per byte of each MODEL (folder or alias) on identical raw text: fair across tokenizers.

    Each row is printed as soon as its text is scored; Ctrl-C keeps the rows printed so far (exit 130).
    """
    import sys

    from tokkit.names import resolve_model
    from tokkit.optim import pick_device
    from tokkit.text import read_text
    from tokkit.transplant.evaluate import combine, prefix_bytes, score_texts
    from tokkit.transplant.report import built_ids
    from tokkit_cli.cost import Cost

    cost = Cost()
    data = {p.stem: read_text(p, what="--text file") for p in texts}
    dev = pick_device(device)
    folders = [resolve_model(m) for m in models]  # every name checked before the first (slow) evaluation
    apply_threads(threads)
    n_bytes = sum(len(prefix_bytes(t, max_bytes).encode("utf-8")) for t in data.values())
    work = f"{len(models)} model{'s' if len(models) > 1 else ''} x {n_bytes:,} bytes"
    split = any(built_ids(f) is not None for f in folders)
    table = _EvalTable(split, as_json)
    done, todo = 0, len(models) * len(data)

    def notify(line: str) -> None:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stderr)

    try:
        for m, folder in zip(models, folders):
            scores = []
            for sc in score_texts(folder, data, segment_bytes=segment_bytes, device=dev, progress=not as_json,
                                  max_bytes=max_bytes, notify=notify):
                scores.append(sc)
                table.row(m, sc.as_dict())
                done += 1
            if len(scores) > 1:
                table.row(m, combine(scores).as_dict())
    except KeyboardInterrupt as e:  # the rows printed so far stand; the shared one-line ending (exit 130 / 143)
        raise interrupted(e, f"{done} of {todo} texts scored; {'the rows above are' if done else 'nothing is'} "
                             "complete", cost=lambda: cost.done(work + " (interrupted)")) from None
    table.footer()
    cost.done(work)


class _EvalTable:
    """eval-lm's output, one row at a time: a table (the header before the first row) or JSON lines."""

    def __init__(self, split: bool, as_json: bool) -> None:
        self.split, self.as_json, self.base, self.started = split, as_json, {}, False

    def row(self, model: str, d: dict) -> None:
        d["model"] = model
        if self.as_json:
            click.echo(json.dumps(d))
            return
        if not self.started:
            self.started = True
            click.echo(f"{'model':<40} {'text':<14} {'bytes':>8} {'tokens':>7} {'bits/byte':>9} {'vs first':>8}"
                       + (f" {'new tok':>7} {'their nats':>10} {'leak nats':>9}" if self.split else ""))
        ref = self.base.setdefault(d["domain"], d["bits_per_byte"])
        tail = (f" {d['new_targets']:>7} {d['nll_new_targets']:>10.1f} {d['leak_nats']:>9.1f}" if "new_targets" in d
                else f" {'-':>7} {'-':>10} {'-':>9}" if self.split else "")
        click.echo(f"{d['model'][-40:]:<40} {d['domain'][:14]:<14} {d['bytes']:>8} {d['tokens']:>7} "
                   f"{d['bits_per_byte']:>9.4f} {d['bits_per_byte'] / ref:>7.3f}x" + tail)

    def footer(self) -> None:
        if self.split and not self.as_json:
            click.echo("new tok / their nats: target tokens whose rows the transplant built, and their NLL; leak nats: "
                       "NLL the other positions lose to probability on built rows")
