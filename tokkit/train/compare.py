"""The comparison report: many tokenizers (trained folders, aliases, files) on the same raw text.

Columns: bytes/token, tokens/char, tokens vs the first tokenizer (the percentages a domain
tokenizer is judged by), fertility, continued words, Rényi efficiency (α = 2.5, V = vocab size),
round trip, encode MB/s; optional parity on parallel text and a domain-term table. A tokenizer
that fails the round trip is marked LOSSY and never called better: its row has no percentage.
Rendered as a terminal table, JSON or CSV; ``plot`` draws bytes/token and round-trip status.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from tokkit.train.metrics import TokenizerMetrics, measure

__all__ = ["DEFAULT_TERMS", "LEGAL_TERMS", "FINANCIAL_TERMS", "Report", "compare_tokenizers", "label_of", "recipe_terms"]

#: Domain terms of the KL3M paper's table: 10 legal, 10 financial (the legal and financial recipes list them).
LEGAL_TERMS = ("certiorari", "42 U.S.C. § 1983", "habeas corpus", "res judicata", "indemnification", "notwithstanding",
               "hereinafter", "sublicensable", "stare decisis", "Fed. R. Civ. P. 12(b)(6)")
FINANCIAL_TERMS = ("EBITDA", "P/E ratio", "10-K filing", "year-over-year growth", "amortization", "GAAP",
                   "accounts receivable", "collateralized debt obligation", "price-to-earnings", "dividend yield")
DEFAULT_TERMS = LEGAL_TERMS + FINANCIAL_TERMS


def recipe_terms(name: str) -> tuple[str, ...]:
    """The ``terms`` of the recipe a tokkit-trained tokenizer (folder or its ``tokenizer.json``) was trained
    with; ``()`` for anything else (an alias, a foreign file, a recipe without terms)."""
    p = Path(name)
    folder = p if p.is_dir() else p.parent
    manifest = folder / "tokkit_train.json"
    if not p.exists() or not manifest.is_file():
        return ()
    try:
        terms = json.loads(manifest.read_text(encoding="utf-8")).get("recipe", {}).get("terms", [])
    except (OSError, ValueError, AttributeError):
        return ()
    return tuple(t for t in terms if isinstance(t, str) and t.strip())


def label_of(name: str) -> str:
    """A short label for a tokenizer argument: the alias, or the folder/file name of a path."""
    p = Path(name)
    if p.exists():
        return p.name if p.is_dir() or p.name not in ("tokenizer.json", "tokenizer.model") else p.parent.name
    return name


@dataclass(frozen=True)
class Report:
    """Metrics per tokenizer plus the optional parity and term tables."""

    rows: tuple[TokenizerMetrics, ...]
    terms: dict[str, dict[str, int]] = field(default_factory=dict)  # term -> {tokenizer: tokens}
    parity: dict[str, float] = field(default_factory=dict)  # tokenizer -> tokens(other)/tokens(ref)

    def delta(self, row: TokenizerMetrics) -> float | None:
        """Tokens of ``row`` relative to the first tokenizer, in percent (None when either is lossy)."""
        ref = self.rows[0]
        if not (row.lossless and ref.lossless) or not ref.tokens:
            return None
        return 100.0 * (row.tokens / ref.tokens - 1.0)

    def records(self) -> list[dict[str, Any]]:
        out = []
        for r in self.rows:
            d = asdict(r)
            d.update(bytes_per_token=r.bytes_per_token, tokens_per_char=r.tokens_per_char, fertility=r.fertility,
                     continued_share=r.continued_share, lossless=r.lossless, mb_per_s=r.mb_per_s,
                     tokens_vs_first_pct=self.delta(r))
            if r.name in self.parity:
                d["parity"] = self.parity[r.name]
            out.append(d)
        return out

    def to_json(self) -> str:
        return json.dumps({"tokenizers": self.records(), "terms": self.terms, "parity": self.parity,
                           "reference": self.rows[0].name}, indent=2, ensure_ascii=False)

    def to_csv(self) -> str:
        recs = self.records()
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(recs[0]))
        w.writeheader()
        w.writerows(recs)
        return buf.getvalue()

    def headline(self) -> list[str]:
        """One sentence per tokenizer: how many fewer (or more) tokens the first one uses."""
        first = self.rows[0]
        out = []
        for r in self.rows[1:]:
            if not (r.lossless and first.lossless):
                bad = r.name if not r.lossless else first.name
                out.append(f"{first.name} vs {r.name}: not compared, {bad} is LOSSY (fails the round trip)")
                continue
            saved = 100.0 * (1 - first.tokens / r.tokens)
            word = "fewer" if saved >= 0 else "more"
            out.append(f"{first.name} uses {abs(saved):.1f}% {word} tokens than {r.name} ({first.tokens:,} vs {r.tokens:,})")
        return out

    def table(self) -> str:
        head = ["tokenizer", "vocab", "tokens", "bytes/tok", "tok/char", f"vs {self.rows[0].name}", "fertility",
                "contin.", "Renyi2.5", "round trip", "MB/s"]
        body = []
        for r in self.rows:
            d = self.delta(r)
            rt = "ok" if r.lossless else f"LOSSY {r.roundtrip_failures}/{r.documents}"
            body.append([r.name, f"{r.vocab_size:,}", f"{r.tokens:,}", f"{r.bytes_per_token:.3f}", f"{r.tokens_per_char:.4f}",
                         "-" if d is None else f"{d:+.1f}%", f"{r.fertility:.3f}", f"{100 * r.continued_share:.1f}%",
                         f"{r.renyi_efficiency:.3f}", rt, f"{r.mb_per_s:.2f}"])
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [fmt.format(*head), fmt.format(*["-" * w for w in widths])] + [fmt.format(*b) for b in body]
        lines += [""] + self.headline()
        if self.parity:
            lines += ["", "parity (tokens on the other text / tokens on the reference text):"]
            lines += [f"  {k}: {v:.3f}" for k, v in self.parity.items()]
        if self.terms:
            names = [r.name for r in self.rows]
            tw = max(len(t) for t in self.terms)
            lines += ["", "tokens per domain term:", "  " + " " * tw + "  " + "  ".join(f"{n[:12]:>12}" for n in names)]
            for t, per in self.terms.items():
                lines.append(f"  {t:<{tw}}  " + "  ".join(f"{per[n]:>12}" for n in names))
            avg = {n: sum(per[n] for per in self.terms.values()) / len(self.terms) for n in names}
            lines.append(f"  {'average':<{tw}}  " + "  ".join(f"{avg[n]:>12.2f}" for n in names))
        return "\n".join(lines)

    def plot(self, path: str | Path, *, force: bool = False) -> Path:
        """Bar chart of bytes/token (lossy tokenizers hatched and labelled) saved to ``path`` (atomically; an
        existing file is replaced only with ``force``: :class:`~tokkit.errors.OutputExistsError` otherwise)."""
        from tokkit.atomic import atomic_file

        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            from tokkit.errors import MissingFileError

            raise MissingFileError("--plot needs matplotlib, which is not installed; pip install matplotlib") from None
        fig, ax = plt.subplots(figsize=(1.2 * len(self.rows) + 2, 3.5))
        names = [r.name + ("\n(LOSSY)" if not r.lossless else "") for r in self.rows]
        bars = ax.bar(names, [r.bytes_per_token for r in self.rows])
        for b, r in zip(bars, self.rows):
            if not r.lossless:
                b.set_hatch("//")
        ax.set_ylabel("bytes / token (higher = fewer tokens)")
        fig.tight_layout()
        try:
            with atomic_file(path, force=force) as tmp:
                suffix = Path(path).suffix.lstrip(".").lower()
                fig.savefig(tmp, dpi=120, format=suffix if suffix in ("png", "svg", "pdf", "jpg", "jpeg") else "png")
        finally:
            plt.close(fig)
        return Path(path)


def compare_tokenizers(names: Sequence[str], docs: Sequence[str], *, terms: Sequence[str] = (),
                       parallel: tuple[Sequence[str], Sequence[str]] | None = None) -> Report:
    """Measure every tokenizer in ``names`` (aliases or paths, via :func:`tokkit.load_tokenizer`) on ``docs``.

    Args:
        names: tokenizers; the first is the reference for the percentages.
        docs: raw documents (not normalized).
        terms: domain terms; each is encoded on its own and its token count reported.
        parallel: (reference-language docs, other-language docs) for the parity column.
    """
    from tokkit import load_tokenizer

    rows, term_table, parity = [], {t: {} for t in terms}, {}
    for n in names:
        tok = load_tokenizer(n)
        label = label_of(n)
        rows.append(measure(tok, docs, name=label))
        for t in terms:
            term_table[t][label] = len(tok.encode(t))
        if parallel is not None:
            ref = sum(map(len, tok.encode_batch(list(parallel[0]))))
            other = sum(map(len, tok.encode_batch(list(parallel[1]))))
            parity[label] = other / ref if ref else float("nan")
    return Report(tuple(rows), term_table, parity)
