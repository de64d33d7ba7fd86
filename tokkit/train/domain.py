"""Domain tokens reserved *before* training, and the pre-tokenizer pattern that keeps them whole.

KL3M (arXiv 2503.17247) adds its ~4k custom tokens as ``AddedToken``s *after* training; HF then
splits them out of the text before the BPE model runs, which the trainer never saw (tokenizers#523,
#1380). With kl3m-001's single-space AddedToken this cost +22% tokens on licence text.

tokkit instead puts each domain token into the pre-tokenizer pattern, as alternatives tried before
the GPT-2 pattern at every position, and into the BPE vocabulary (the model runs with
``ignore_merges=True``, so a pre-token that is a whole vocabulary entry becomes one token, as in
tiktoken and Llama 3). Training and inference then split text the same way, no merge can shadow a
domain token, and the result still exports to tiktoken exactly (the pattern is the ``pat_str``).

Each domain token ``t`` gets two entries, ``t`` and ``" " + t`` (the form it takes after a space, as
``Ġword`` in GPT-2), and a token ending in a letter or digit only matches when the next character is
neither (``EBITDA`` never cuts ``EBITDAs``). Whitespace-only domain tokens are refused: they are the
kl3m-001 failure. The built-in lists are pinned here; nothing is downloaded at training time.
"""

from __future__ import annotations

from typing import Iterable, Sequence

from tokkit.errors import TokkitError, UnknownNameError
from tokkit.formats.fast_bpe import GPT2_PATTERN  # HF ByteLevel(use_regex=True)'s regex; defined once there

__all__ = ["GPT2_PATTERN", "DOMAIN_SETS", "expand_domain_tokens", "domain_entries", "pretokenize_pattern", "DomainTokenError"]



class DomainTokenError(TokkitError, ValueError):
    """A domain token that would break tokenization (whitespace-only, or empty)."""


def _letters(upper: bool = False) -> list[str]:
    chars = "abcdefghijklmnopqrstuvwxyz"
    return [f"({c.upper() if upper else c})" for c in chars]


_ROMAN = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi", "xii"]

#: Pinned built-in lists (KL3M-style legal markers and citation forms; no live downloads).
DOMAIN_SETS: dict[str, tuple[str, ...]] = {
    "legal": tuple(
        ["§", "§§", "U.S.C.", "C.F.R.", "U.S.", "F.2d", "F.3d", "F.4th", "F. Supp.", "S. Ct.", "L. Ed.",
         "Stat.", "Pub. L.", "et seq.", "Id.", "v.", "i.e.", "e.g.", "etc.", "Inc.", "Ltd.", "LLC", "No.",
         "hereinafter", "notwithstanding", "thereof", "therein", "herein", "hereunder", "hereto", "whereas",
         "pursuant", "certiorari", "indemnify", "indemnification", "sublicense", "sublicensable",
         "non-exclusive", "royalty-free", "worldwide", "warranty", "warranties", "liability", "licensor",
         "licensee", "MERCHANTABILITY", "NONINFRINGEMENT", "FITNESS", "PURPOSE", "WARRANTIES", "LIABILITY"]
        + _letters() + _letters(upper=True) + [f"({r})" for r in _ROMAN] + [f"({n})" for n in range(1, 31)]),
    "financial": ("EBITDA", "GAAP", "IFRS", "10-K", "10-Q", "8-K", "P/E", "EPS", "YoY", "FY", "bps", "Q1", "Q2", "Q3", "Q4",
                  "ROE", "ROI", "SEC", "NASDAQ", "NYSE", "year-over-year", "per share", "net income"),
    "markup": ("http://", "https://", "www.", "mailto:", "<!--", "-->", "```", "##", "###", "####", "**", "~~",
               "<p>", "</p>", "<div", "</div>", "<br>", "<a href=", "</a>", "<li>", "</li>", "<ul>", "</ul>",
               '{"', '"}', '":', '",', "null", "true", "false", "<?xml", "<![CDATA[", "]]>"),
    "code": ("->", "=>", "!=", "==", "<=", ">=", "::", "...", "//", "/*", "*/", "#include", "self.", "__init__",
             "return", "def", "class", "import", "function", "const", "None", "True", "False"),
}


def expand_domain_tokens(tokens: Sequence[str], sets: Sequence[str]) -> tuple[str, ...]:
    """``tokens`` plus the named built-in lists, deduplicated in first-seen order.

    Raises:
        UnknownNameError: an unknown list name (lists the known ones).
        DomainTokenError: a whitespace-only token.
    """
    out: list[str] = []
    for name in sets:
        if name not in DOMAIN_SETS:
            raise UnknownNameError(f"unknown domain token set {name!r}; known sets: {', '.join(sorted(DOMAIN_SETS))}")
        out += DOMAIN_SETS[name]
    out += list(tokens)
    seen: dict[str, None] = {}
    for t in out:
        if not t.strip():
            raise DomainTokenError(
                f"domain token {t!r} is whitespace only; expected visible text. Such a token is split out of every "
                "text before the model and cut kl3m-001's compression by 22%; remove it (BPE learns space runs itself)")
        seen.setdefault(t, None)
    return tuple(seen)


def domain_entries(tokens: Iterable[str]) -> list[str]:
    """The vocabulary strings (plain text) reserved for ``tokens``: ``t`` and ``" " + t`` each."""
    out: dict[str, None] = {}
    for t in tokens:
        out.setdefault(t, None)
        if not t[0].isspace():
            out.setdefault(" " + t, None)
    return list(out)


_META = set("\\.^$|?*+()[]{}")


def _escape(t: str) -> str:
    """Escape regex metacharacters the same way for onig (HF), fancy-regex (tiktoken) and ``regex``."""
    return "".join("\\" + c if c in _META else c for c in t)


def _tail(t: str) -> str:
    return "(?![\\p{L}\\p{N}])" if t[-1].isalnum() else ""


def _render(node: dict) -> str:
    alts = [_escape(c) + _render(node[c]) for c in sorted(k for k in node if k != "")]
    if "" in node:  # a token ends here: tried after the longer continuations (longest match first)
        alts.append(node[""])
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _trie(tokens: Sequence[str]) -> str:
    root: dict = {}
    for t in tokens:
        node = root
        for c in t:
            node = node.setdefault(c, {})
        node[""] = _tail(t)
    return _render(root)


def pretokenize_pattern(tokens: Sequence[str], base: str = GPT2_PATTERN) -> str:
    """``base`` with the domain tokens as leading alternatives.

    The tokens are compiled into a prefix trie (``U\\.S\\.(?:C\\.|)``), longest match first: a flat
    alternation of a few hundred literals made HF pre-tokenization 2.6x slower than GPT-2's pattern
    alone, the trie 1.2x (1.4 MB of licence text).
    """
    if not tokens:
        return base
    spaced = [t for t in tokens if not t[0].isspace()]
    bare = [t for t in tokens if t[0].isspace()]
    parts = ([" ?" + _trie(spaced)] if spaced else []) + ([_trie(bare)] if bare else [])
    return "|".join(parts) + "|" + base
