"""The per-token provenance report and the chat-template policy of a transplant.

The report (``transplant_report.json`` beside the weights) lists, for every destination id, how its
rows were obtained: ``copied`` / ``byte_matched`` (with the source id), ``special_text`` /
``special_role`` (special tokens by text or role), ``special_unmatched`` (mean row), ``unused``
(zero row), or ``new`` with the method's own facts (OMP residual, top anchors and coefficients;
the heuristic's pieces and neighbours; FVT's pieces).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tokkit.formats.hf_json import SIDE_FILE_MAX_BYTES, read_json, read_side_text
from tokkit.names import resolve_tokenizer
from tokkit.transplant.align import Match

if TYPE_CHECKING:
    from tokkit.transplant.pipeline import Plan

__all__ = ["REPORT_FILE", "build_report", "built_ids", "resolve_chat_template", "summary_lines"]

log = logging.getLogger(__name__)

#: The report's file name inside a transplanted model folder.
REPORT_FILE = "transplant_report.json"


def built_ids(folder: str | Path) -> list[int] | None:
    """Ids whose rows the transplant in ``folder`` built (kind ``new``), or None if it has no report."""
    path = Path(folder) / REPORT_FILE
    if not path.is_file():
        return None
    tokens = read_json(path).get("tokens", [])  # capped at TOKENIZER_JSON_MAX_BYTES: one entry per token
    return [t["id"] for t in tokens if t.get("kind") == Match.NEW.value]


def _text(b: bytes) -> str:
    return b.decode("utf-8", errors="backslashreplace")


def build_report(plan: "Plan", details: dict[str, list[Any]], *, heldout: dict[str, Any], seconds: float) -> dict[str, Any]:
    """JSON-able provenance of every destination row, plus the run's parameters and checks."""
    al = plan.alignment
    src, dst = al.src, al.dst
    new_pos = {i: r for r, i in enumerate(al.new_ids)}
    roles = {s.id: s.role for s in dst.specials}
    tokens = []
    for i, (s, k) in enumerate(zip(al.source_id, al.kind)):
        row: dict[str, Any] = {"id": i, "text": _text(dst.tokens[i]), "kind": k.value}
        if s >= 0:
            row["source_id"] = s
            if k is not Match.COPIED:
                row["source_text"] = _text(src.tokens[s])
        if i in roles:
            row["role"] = roles[i]
        if k is Match.NEW:
            row["method"] = plan.method.name
            r = new_pos[i]
            for key, vals in details.items():
                row[key] = vals[r]
        elif k is Match.SPECIAL_UNMATCHED:
            row["method"] = "mean"
        tokens.append(row)
    cfg = plan.cfg.model_dump(mode="json")
    return {
        "format": "tokkit-transplant-report/1",
        "config": cfg,
        "src_vocab": {"name": src.name, "size": len(src), "family": src.family},
        "dst_vocab": {"name": dst.name, "size": len(dst), "family": dst.family},
        "plan": plan.summary(),
        "seconds_method": round(seconds, 2),
        "heldout_anchor_check": heldout,
        "special_tokens": [t for t in tokens if t["id"] in roles],
        "tokens": tokens,
    }


def summary_lines(report: dict[str, Any], *, worst: int = 5) -> list[str]:
    """A few terminal lines: counts, held-out fidelity, the worst OMP residuals."""
    p = report["plan"]
    c = p["counts"]
    lines = [
        f"tokens: {report['dst_vocab']['size']}  copied {c['copied']}  byte-matched {c['byte_matched']}  "
        f"special by text {c['special_text']} / role {c['special_role']} / unmatched {c['special_unmatched']}  "
        f"new ({p['method']}) {c['new']}  unused {c['unused']}",
    ]
    for t in report["special_tokens"]:
        src = f"<- {t.get('source_text', t.get('source_id', ''))!r}" if "source_id" in t else "(mean row)"
        lines.append(f"  special {t['id']:>6} {t['text']!r:<22} {t.get('role', ''):<8} {t['kind']:<17} {src}")
    h = report.get("heldout_anchor_check") or {}
    if h:
        out = f", output {h['cosine_output_mean']:.3f}" if "cosine_output_mean" in h else ""
        lines.append(f"held-out anchor check ({h['tokens']} shared tokens rebuilt as new): mean cosine input "
                     f"{h['cosine_input_mean']:.3f}{out}")
    res = [(t["residual"], t["text"]) for t in report["tokens"] if "residual" in t]
    if res:
        res.sort(reverse=True)
        avg = sum(r for r, _ in res) / len(res)
        lines.append(f"OMP relative residual: mean {avg:.3f}; worst " + ", ".join(f"{t!r} {r:.2f}" for r, t in res[:worst]))
    return lines


def _folder_template(folder: Path) -> str | None:
    if (folder / "chat_template.jinja").exists():
        return read_side_text(folder / "chat_template.jinja")
    cfg = folder / "tokenizer_config.json"
    if cfg.exists():
        t = read_json(cfg, max_bytes=SIDE_FILE_MAX_BYTES).get("chat_template")
        return t if isinstance(t, str) else None
    return None


def _missing_controls(template: str, plan: "Plan") -> list[str]:
    """Special-token strings the template uses that the new vocab lacks."""
    src_texts = {s.text for s in plan.alignment.src.specials} | {s.text for s in plan.alignment.dst.specials}
    used = {t for t in src_texts if t and t in template}
    used |= set(re.findall(r"<\|[^|<>]{1,40}\|>", template))
    have = {s.text for s in plan.alignment.dst.specials}
    return sorted(used - have)


def resolve_chat_template(plan: "Plan") -> tuple[str | None, str]:
    """(template to write or None, a note for the report) under ``plan.cfg.chat_template``."""
    policy = plan.cfg.chat_template.value
    try:
        dst_path = resolve_tokenizer(plan.cfg.dst).path
        target = _folder_template(Path(dst_path).parent) if dst_path else None
    except Exception:  # noqa: BLE001 - a tokenizer with no folder has no template
        target = None
    source = _folder_template(plan.src_folder)
    if policy in ("auto", "target") and target:
        return target, "target: the destination tokenizer's template"
    if policy == "target":
        return None, "none: the destination tokenizer has no chat template"
    if policy in ("auto", "source") and source:
        missing = _missing_controls(source, plan)
        if not missing:
            return source, "source: the base model's template (all its control tokens exist in the new vocab)"
        msg = f"the base model's template uses {missing}, which the new vocab lacks"
        if policy == "source":
            log.warning("%s; writing it anyway as asked (--chat-template source)", msg)
            return source, f"source (forced): {msg}"
        log.info("%s; no chat template written (pass --chat-template source to keep it anyway)", msg)
        return None, f"none: {msg} (--chat-template source keeps it)"  # printed by the CLI: no second warning
    return None, "none"
