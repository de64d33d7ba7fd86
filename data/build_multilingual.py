"""Build data/multilingual/*.txt: short real texts in six scripts for the byte-level property tests.

Sources (all real, none written for tokkit; provenance and licences in data/README.md):

* ``ja.txt``, ``zh.txt``, ``ru.txt``, ``fa.txt`` (Japanese, Chinese, Russian/Cyrillic, Persian/Arabic
  script): Debian ``gnome-user-docs 43.0-2`` (CC-BY-SA-3.0), ``usr/share/help/<lang>/gnome-help/a11y-{bouncekeys,slowkeys,stickykeys}.page``, the ``<title>``/``<p>`` text with the extraction of
  ``data/heldout/gnome_help_de_net.txt`` (markup stripped, entities unescaped, whitespace collapsed;
  here every paragraph is kept, short CJK ones included).
* ``emoji.txt``: Debian ``unicode-data 15.0.0-1`` (Unicode licence), ``usr/share/unicode/emoji/emoji-test.txt``,
  the lines of the subgroups in ``SUBGROUPS`` (smileys, hearts, hands, gestures, families, flags) (the first 3 of each) up to
  the byte budget, each line's comment part only ("😀 E1.0 grinning face"; ZWJ sequences, skin-tone modifiers, regional-indicator pairs, variation selectors).
* ``code.txt``: CPython 3.11.7 ``Lib/textwrap.py`` (PSF licence), the first lines up to the byte budget.

Each file is cut at the last character end within ``BUDGET`` bytes. Deterministic.

Usage:
    apt-get download gnome-user-docs unicode-data
    for d in gnome-user-docs_43.0-2_all.deb unicode-data_15.0.0-1_all.deb; do dpkg-deb -x $d deb; done
    python data/build_multilingual.py --deb deb --stdlib "$(python -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')"
"""

from __future__ import annotations

import argparse
import html
import re
from pathlib import Path

BUDGET = 1000
PAGES = ("a11y-bouncekeys.page", "a11y-slowkeys.page", "a11y-stickykeys.page")
LANGS = {"ja": "ja", "zh": "zh_CN", "ru": "ru", "fa": "fa"}
SUBGROUPS = ("face-smiling", "heart", "hand-fingers-open", "person-gesture", "family", "country-flag", "subdivision-flag")
PER_SUBGROUP = 3
OUT = Path(__file__).parent / "multilingual"
_BLOCK = re.compile(r"<(title|p)\b[^>]*>(.*?)</\1>", re.S)


def _cut(text: str) -> str:
    """The longest prefix of whole characters within BUDGET bytes."""
    return text.encode("utf-8")[:BUDGET].decode("utf-8", errors="ignore")


def help_text(root: Path, lang: str) -> str:
    paras = []
    for page in PAGES:
        src = (root / "usr/share/help" / lang / "gnome-help" / page).read_text(encoding="utf-8")
        for m in _BLOCK.finditer(src):
            t = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", m.group(2)))).strip()
            if t:
                paras.append(t)
    return "\n".join(paras) + "\n"


def emoji_text(root: Path) -> str:
    keep, lines, n = False, [], 0
    for line in (root / "usr/share/unicode/emoji/emoji-test.txt").read_text(encoding="utf-8").splitlines():
        if line.startswith("# subgroup:"):
            keep, n = line.split(":", 1)[1].strip() in SUBGROUPS, 0
        if keep and "#" in line and not line.startswith("#") and n < PER_SUBGROUP:
            n += 1
            lines.append(line.split("#", 1)[1].strip())  # the emoji and its name, without the code-point columns
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deb", type=Path, required=True, help="folder the two .deb files were extracted into")
    ap.add_argument("--stdlib", type=Path, required=True, help="CPython 3.11.7 Lib folder")
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    texts = {name: help_text(a.deb, lang) for name, lang in LANGS.items()}
    texts["emoji"] = emoji_text(a.deb)
    texts["code"] = (a.stdlib / "textwrap.py").read_text(encoding="utf-8")
    for name, text in texts.items():
        (OUT / f"{name}.txt").write_text(_cut(text), encoding="utf-8")


if __name__ == "__main__":
    main()
