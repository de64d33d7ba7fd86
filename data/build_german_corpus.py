"""Build the German training corpus of ``tokkit extend`` / ``tokkit heal`` measurements (not committed).

Sources (Debian packages, fetched with ``apt-get download``; see data/README.md for licences):

* ``manpages-de 4.18.1-1``: every German manual page ``usr/share/man/de/man*/*.gz``, rendered to plain
  text with ``groff -k -man -Tutf8`` (no hyphenation, one long line per paragraph), header/footer lines
  and indentation removed; one document per page.
* ``debian-reference-de 2.100``: ``usr/share/debian-reference/debian-reference.de.txt.gz``, cut into
  documents of about 4 KB at blank lines.

The held-out German text of the benchmarks, ``data/heldout/gnome_help_de_net.txt``, comes from another
package and genre (GNOME desktop help); the build checks by substring that none of its sentences occurs
in the corpus.

Usage:
    apt-get download manpages-de debian-reference-de
    for f in manpages-de_*.deb debian-reference-de_*.deb; do dpkg-deb -x $f de_root; done
    python data/build_german_corpus.py --root de_root --out /tmp/de_corpus

Output: ``$OUT/train.jsonl`` (``{"id", "text"}`` per document, fixed order). With ``--dev-docs N``
(the extend/distill measurements of docs/extend.md take 40) N manual pages, evenly spaced in the sorted
list, leave the training corpus and the first ~500 characters of each (cut at a space) go to
``$OUT/dev.txt``, separated by blank lines: German of the training genre that no fitting read.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import subprocess
from pathlib import Path

HELD_OUT_DE = Path(__file__).parent / "heldout" / "gnome_help_de_net.txt"
DOC_BYTES = 4096


def render_manpage(path: Path) -> str:
    """Plain text of one gzipped man page: paragraphs joined, header/footer and indentation dropped."""
    src = gzip.decompress(path.read_bytes())
    out = subprocess.run(["groff", "-k", "-man", "-Tutf8", "-rLL=5000n", "-rHY=0", "-P-cbou"], input=src,
                         capture_output=True, check=False).stdout.decode("utf-8", "replace")
    lines = [ln.rstrip() for ln in out.splitlines()]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    lines = lines[1:-1]  # the running header "LS(1) ... LS(1)" and footer
    paras, cur = [], []
    for ln in lines:
        if ln.strip():
            cur.append(ln.strip())
        elif cur:
            paras.append(" ".join(cur))
            cur = []
    if cur:
        paras.append(" ".join(cur))
    return "\n\n".join(re.sub(r"\s+", " ", p) for p in paras if p)


def reference_documents(path: Path) -> list[str]:
    """The Debian reference text in documents of about DOC_BYTES at blank lines."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    docs, cur, size = [], [], 0
    for block in re.split(r"\n\s*\n", text):
        b = block.strip()
        if not b:
            continue
        cur.append(b)
        size += len(b.encode("utf-8"))
        if size >= DOC_BYTES:
            docs.append("\n\n".join(cur))
            cur, size = [], 0
    if cur:
        docs.append("\n\n".join(cur))
    return docs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, required=True, help="folder the two .deb files were extracted into")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dev-docs", type=int, default=0, help="manual pages held out as development text (dev.txt)")
    a = ap.parse_args()
    docs: list[tuple[str, str]] = []
    for p in sorted((a.root / "usr/share/man/de").glob("man*/*.gz")):
        t = render_manpage(p)
        if len(t) > 200:
            docs.append((f"manpages-de/{p.parent.name}/{p.name}", t))
    dev: list[str] = []
    if a.dev_docs:
        step = len(docs) // a.dev_docs
        picked = set(range(step // 2, step * a.dev_docs, step))
        dev = [docs[i][1][:500].rsplit(" ", 1)[0] for i in sorted(picked)]
        docs = [d for i, d in enumerate(docs) if i not in picked]
    ref = a.root / "usr/share/debian-reference/debian-reference.de.txt.gz"
    docs += [(f"debian-reference-de/{i:04d}", d) for i, d in enumerate(reference_documents(ref))]
    held = [s.strip() for s in re.split(r"(?<=[.!?])\s+", HELD_OUT_DE.read_text(encoding="utf-8")) if len(s.strip()) > 40]
    joined = "\n".join(t for _, t in docs)
    leaks = [s for s in held if s in joined]
    if leaks:
        raise SystemExit(f"{len(leaks)} held-out sentences occur in the corpus, e.g. {leaks[0]!r}")
    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / "train.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, t in docs:
            f.write(json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n")
    if dev:
        (a.out / "dev.txt").write_text("\n\n".join(dev) + "\n", encoding="utf-8")
    n = sum(len(t.encode("utf-8")) for _, t in docs)
    print(f"{len(docs)} documents, {n:,} bytes -> {path} (sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")


if __name__ == "__main__":
    main()
