"""Fast extendable-prefix validity for HF byte-level BPE tokenizers (GPT-2, SmolLM2, Llama-3, Qwen).

Same answers as :class:`~tokkit.bytelevel.canon.ReencodeCanon` (tests check both against brute force
on toys and against each other on SmolLM2), without re-encoding ``window + t`` for every token ``t``:

* **Pre-token junction.** Whether ``t`` starts a new pre-token or continues the last one depends on
  the window and the first two characters of ``t`` (three after an apostrophe: contractions; the regexes look ahead one character). Tokens
  are grouped by the regex classes of those characters (whitespace literally, else the Unicode
  category) and the tokenizer's own pre-tokenizer runs once per group (~100 for a 49k vocabulary); all-whitespace starts, whose split depends on what follows,
  go to the re-encode path.
* **Inside a pre-token**, canonicality is pairwise (reference note §3, P0b): ``L·t`` is canonical iff
  no *crossing merge* fires in BPE(bytes(L)+bytes(t)), i.e. no merge ``(a, b)`` with ``a`` on the
  right spine of ``L``'s merge tree, ``b`` on the left spine of ``t``'s, and a rank below the ranks
  that absorb ``a`` and ``b`` (ByteSampler's ``_valid_adj`` idea, Hayase et al., arXiv 2506.14123).
  This is a few numpy selections on an inverted index of left spines, cached per ``L``.
* **At a pre-token start**, ``t`` must be the first token of some canonical word (``enc(t·y)[0] == t``),
  precomputed once for the vocabulary.
"""

from __future__ import annotations

import json
import unicodedata
from collections import OrderedDict, defaultdict

import numpy as np

from tokkit.bytelevel.canon import _WS, ReencodeCanon, _utf8_cut
from tokkit.bytelevel.table import TokenTable
from tokkit.formats.hf_json import bytes_to_unicode
from tokkit.tokenizer import Tokenizer

__all__ = ["BPECanon", "PairwiseBPECanon"]

_INF = np.iinfo(np.int64).max
#: second-byte ranges of the UTF-8 lead bytes that restrict it (RFC 3629: no overlongs, no surrogates, <= U+10FFFF)
_SECOND = {0xE0: (0xA0, 0xBF), 0xED: (0x80, 0x9F), 0xF0: (0x90, 0xBF), 0xF4: (0x80, 0x8F)}


def _histories(vocab: dict[str, int], ranks: dict[tuple[str, str], int]) -> dict[int, tuple[int, int, int]]:
    """The last merge (left id, right id, rank) of BPE run on each token's own characters."""
    out: dict[int, tuple[int, int, int]] = {}
    for text, tid in vocab.items():
        syms = list(text)
        if len(syms) < 2:
            continue
        last = None
        while len(syms) > 1:
            best, at = _INF, -1
            for i in range(len(syms) - 1):
                r = ranks.get((syms[i], syms[i + 1]), _INF)
                if r < best:
                    best, at = r, i
            if at < 0:
                break
            last = (syms[at], syms[at + 1], best)
            syms[at: at + 2] = [syms[at] + syms[at + 1]]
        if len(syms) == 1 and last is not None and last[0] in vocab and last[1] in vocab:
            out[tid] = (vocab[last[0]], vocab[last[1]], last[2])
        elif len(syms) > 1:
            out[tid] = (-1, -1, -1)  # unreachable: BPE never builds this token from its characters
    return out


def _char_class(c: str) -> str:
    """What the pre-tokenizer regexes can see of a character: whitespace literally, else its Unicode category."""
    if c.isspace() or c in "'’":
        return c
    return unicodedata.category(c)


class BPECanon(ReencodeCanon):
    """Validity for a byte-level BPE ``tokenizer.json`` (no normalizer, no ``ignore_merges``)."""

    @staticmethod
    def supports(tokenizer: Tokenizer) -> bool:
        if tokenizer.backend != "hf" or tokenizer.vocab.family != "byte_level":
            return False
        data = json.loads(tokenizer.native.to_str())
        model = data.get("model", {})
        return (model.get("type") == "BPE" and not model.get("ignore_merges") and data.get("normalizer") is None
                and bool(model.get("merges")) and tokenizer.native.pre_tokenizer is not None)

    def __init__(self, tokenizer: Tokenizer, table: TokenTable, *, cache_size: int = 4096) -> None:
        super().__init__(tokenizer, table, cache_size=cache_size)
        data = json.loads(tokenizer.native.to_str())
        self._b2u = bytes_to_unicode()
        self._pre = tokenizer.native.pre_tokenizer
        self._bpe = tokenizer.native.model
        self._build_merges(data)
        self._piece_cache: dict[bytes, tuple[int, ...]] = {}
        self._groups: dict[str, np.ndarray] | None = None
        self._slow: np.ndarray | None = None
        self._reach: np.ndarray | None = None
        self._ncont: np.ndarray | None = None
        self._utf8_cache: dict[bytes, np.ndarray] = {}

    def _build_merges(self, data: dict) -> None:
        """Merge-tree tables: creator of each token, merges by left symbol, inverted left spines."""
        table = self.table
        vocab: dict[str, int] = data["model"]["vocab"]
        creator: dict[int, tuple[int, int, int]] = {}
        by_left: dict[int, list[tuple[int, int]]] = defaultdict(list)
        ranks: dict[tuple[str, str], int] = {}
        for r, m in enumerate(data["model"]["merges"]):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            ia, ib, iab = vocab.get(a), vocab.get(b), vocab.get(a + b)
            if ia is None or ib is None or iab is None:
                continue
            ranks.setdefault((a, b), r)
            if iab not in creator:
                creator[iab] = (ia, ib, r)
            by_left[ia].append((ib, r))
        if len(ranks) > len(creator):
            # several merges build the same token (vocabularies converted from SentencePiece, e.g.
            # Gemma): a token's history is the one BPE takes on its own characters
            creator = _histories(vocab, ranks)
        added = {a["id"] for a in data.get("added_tokens") or []}  # matched before BPE: reachable as text
        self._unreachable = frozenset(t for t, c in creator.items() if c[0] < 0 and t not in added)
        creator = {t: c for t, c in creator.items() if c[0] >= 0}
        self._creator = creator
        self._by_left = {a: (np.array([b for b, _ in v]), np.array([r for _, r in v])) for a, v in by_left.items()}
        pos = {int(t): j for j, t in enumerate(table.ordinary)}
        inv: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for t, j in pos.items():
            sym, rp = t, _INF
            while True:
                inv[sym].append((j, rp))
                if sym not in creator:
                    break
                sym, rp = creator[sym][0], creator[sym][2]
        self._inv = {s: (np.array([j for j, _ in v]), np.array([r for _, r in v], dtype=np.int64)) for s, v in inv.items()}
        self._pair_cache: OrderedDict[int, np.ndarray] = OrderedDict()

    # ------------------------------------------------------------------ per-vocabulary tables
    def _prepare(self) -> None:
        if self._groups is not None:
            return
        tab = self.table
        n = len(tab.ordinary)
        groups: dict[str, list[int]] = defaultdict(list)
        slow = np.zeros(n, dtype=bool)
        text_rows, texts = [], []
        for j, t in enumerate(tab.ordinary.tolist()):
            tb = tab.token(t)
            cut = _utf8_cut(tb)
            head = tb[:cut].decode("utf-8") if cut else ""
            if cut is None or len(head) == 0 or (len(head) < 2 and cut < len(tb)) or not head[:2].strip():
                slow[j] = True
                continue
            # contractions ('re, 've, 'll) are decided by three characters
            groups[head[:3] if head[0] in "'’" else head[:2]].append(j)
            if cut == len(tb):
                text_rows.append(j)
                texts.append(head)
        reach = np.ones(n, dtype=bool)  # tokens that are partial UTF-8 are checked in context only
        if texts:
            enc = self.tokenizer.encode_batch(texts, allowed_special="all")
            for j, e in zip(text_rows, enc):
                reach[j] = e == [int(tab.ordinary[j])]
        # keys whose characters have the same regex classes split alike: one pre-tokenizer call per class
        by_class: dict[tuple, tuple[str, list[int]]] = {}
        for key, rows in groups.items():
            cls = tuple(_char_class(c) for c in key) if key[0] not in "'’" else (key,)
            if cls in by_class:
                by_class[cls][1].extend(rows)
            else:
                by_class[cls] = (key, list(rows))
        self._groups = {rep: np.array(rows) for rep, rows in by_class.values()}
        self._slow = slow
        self._reach = reach

    def pair_bad(self, left: int) -> np.ndarray:
        """(n,) bool over ordinary tokens: a crossing merge fires in BPE(bytes(left) + bytes(t))."""
        hit = self._pair_cache.get(left)
        if hit is not None:
            return hit
        bad = np.zeros(len(self.table.ordinary), dtype=bool)
        sym, rp = left, _INF
        while True:
            bs_rs = self._by_left.get(sym)
            if bs_rs is not None:
                bs, rs = bs_rs
                sel = rs < rp
                for b, r in zip(bs[sel].tolist(), rs[sel].tolist()):
                    js_rps = self._inv.get(b)
                    if js_rps is not None:
                        js, rps = js_rps
                        bad[js[rps >= r]] = True  # a tie is the same merge rule: the leftmost (crossing) pair fires first
            if sym not in self._creator:
                break
            _, sym, rp = self._creator[sym]
        self._pair_cache[left] = bad
        if len(self._pair_cache) > 1024:
            self._pair_cache.popitem(last=False)
        return bad

    def _bpe_only(self, b: bytes) -> tuple[int, ...]:
        """BPE of one pre-token (no pre-tokenizer), cached."""
        hit = self._piece_cache.get(b)
        if hit is None:
            hit = tuple(tok.id for tok in self._bpe.tokenize("".join(self._b2u[x] for x in b)))
            self._piece_cache[b] = hit
        return hit

    # ------------------------------------------------------------------ masks
    def _mask(self, head: tuple[int, ...]) -> np.ndarray:
        self._prepare()  # tables built lazily, once
        tab = self.table
        n = len(tab.ordinary)
        wbytes = tab.decode(head)
        W = len(wbytes)
        cut = _utf8_cut(wbytes)
        if cut is None:
            return np.zeros(n, dtype=bool)
        if cut < W:  # inside a multi-byte character: t continues the pre-token (permissive on its split)
            return ~self.pair_bad(head[-1]) & self._reach & self._completes(wbytes[cut:])
        mask = np.zeros(n, dtype=bool)
        w_str = wbytes.decode("utf-8")
        ends = np.cumsum([0] + [int(tab.length[i]) for i in head])
        bounds = {int(e): i for i, e in enumerate(ends)}
        byte_at_char = np.cumsum([0] + [len(c.encode("utf-8")) for c in w_str]).tolist()
        memo: dict[tuple, tuple[bool, bool]] = {}
        bad = self.pair_bad(head[-1]) if head else None
        for key, members in self._groups.items():  # type: ignore[union-attr]
            pieces = self._pre.pre_tokenize_str(w_str + key)
            starts = []
            for _, (a, _b) in pieces:
                off = byte_at_char[a] if a < len(byte_at_char) else W + len(key[: a - len(w_str)].encode("utf-8"))
                starts.append(off)
            if any(W < s < W + len(key.encode("utf-8")) for s in starts):
                continue  # the pre-tokenizer splits inside t's first two characters: t spans two pre-tokens
            sig = tuple(s for s in starts if s <= W) + (any(s == W for s in starts),)
            res = memo.get(sig)
            if res is None:
                res = memo[sig] = self._consistent(head, wbytes, ends, bounds, sig)
            ok, boundary = res
            if not ok:
                continue
            if boundary:
                mask[members] = self._start_ok_rows(members)
            else:
                mask[members] = ~bad[members] & self._reach[members]  # type: ignore[index]
        slow = np.flatnonzero(self._slow)
        if slow.size:
            ids = tab.ordinary[slow]
            mask[slow] = self._check([head] * slow.size, [wbytes + tab.token(int(t)) for t in ids], ids)
        return mask

    def _consistent(self, head, wbytes: bytes, ends, bounds, sig) -> tuple[bool, bool]:
        """Do the window's tokens fit this pre-token split? Returns (fits, t starts a new pre-token)."""
        *starts, boundary = sig
        W = len(wbytes)
        if not head:
            return True, True
        cuts = sorted(set(starts) | ({W} if boundary else set()))
        if any(s not in bounds for s in cuts):
            return False, boundary
        for a, b in zip(cuts, cuts[1:] + [W]):
            if b <= a:
                continue
            if self._bpe_only(wbytes[a:b]) != tuple(head[bounds[a]:bounds[b]]):
                return False, boundary
        return True, boundary

    def _start_ok_rows(self, rows: np.ndarray) -> np.ndarray:
        return self._reach[rows]

    def _completes(self, partial: bytes) -> np.ndarray:
        """(n,) bool: ``partial + t`` is still a prefix of valid UTF-8, for every ordinary ``t``.

        ``partial`` is an unfinished character (a lead byte and 0-2 continuation bytes). Byte-level
        BPE splits rare characters over several tokens (SmolLM2: 首 = ``E9 | A6 | 96``), so ``t`` may
        continue the character without finishing it; when it finishes it, what follows must again be
        the start of valid UTF-8.
        """
        hit = self._utf8_cache.get(partial)
        if hit is not None:
            return hit
        if self._ncont is None:
            toks = [self.table.token(int(i)) for i in self.table.ordinary]
            ncont = np.array([len(t) - len(t.lstrip(bytes(range(0x80, 0xC0)))) for t in toks])
            self._ncont = ncont
            self._tok_len = np.array([len(t) for t in toks])
            self._rest_ok = np.array([_utf8_cut(t[n:]) is not None for t, n in zip(toks, ncont.tolist())])
        lead = partial[0]
        need = (2 if lead >= 0xF0 else 1 if lead >= 0xE0 else 0) + 1 - (len(partial) - 1)
        ncont, n = self._ncont, self._tok_len
        ok = ((ncont == n) & (n < need)) | ((ncont == need) & self._rest_ok)
        if len(partial) == 1 and lead in _SECOND:  # E0, ED, F0, F4 restrict the second byte
            lo, hi = _SECOND[lead]
            b = self.table.byte_at(self.table.ordinary, 0)
            ok &= (b >= lo) & (b <= hi)
        self._utf8_cache[partial] = ok
        return ok


class PairwiseBPECanon(ReencodeCanon):
    """Validity for SentencePiece-style HF BPE with no pre-tokenizer (Gemma, Llama-2/Mistral
    ``tokenizer.json``): the whole text is one BPE word, so validity is pairwise (crossing merges,
    as in :class:`BPECanon`) plus the byte-fallback rule: ``<0xNN>`` spells only characters that are
    not pieces (a single-byte character that is a piece never uses its fallback token; for
    multi-byte characters the check is permissive), and a started fallback character must be finished
    by continuation bytes. The rare tokens that contain "non-space, space" (Gemma: 1 of 262,144)
    are excluded, which makes spaces after words stable boundaries for the prompt's trunk.
    """

    @staticmethod
    def supports(tokenizer: Tokenizer) -> bool:
        if tokenizer.backend != "hf" or tokenizer.vocab.family != "sentencepiece":
            return False
        data = json.loads(tokenizer.native.to_str())
        model, pre = data.get("model", {}), data.get("pre_tokenizer")
        no_pre = pre is None or (pre.get("type") == "Split" and pre.get("pattern") == {"String": " "})
        return model.get("type") == "BPE" and not model.get("ignore_merges") and bool(model.get("merges")) and no_pre

    def __init__(self, tokenizer: Tokenizer, table: TokenTable, *, cache_size: int = 4096) -> None:
        super().__init__(tokenizer, table, cache_size=cache_size)
        import re

        toks = [table.token(int(i)) for i in table.ordinary]
        self._offender = np.array([re.search(rb"[^\s] ", t) is not None for t in toks])
        self.space_stable = int(self._offender.sum()) <= 8
        data = json.loads(tokenizer.native.to_str())
        helper = BPECanon.__new__(BPECanon)
        helper.table = table
        BPECanon._build_merges(helper, data)
        self._pairs = helper
        v = tokenizer.vocab
        pos = {int(t): j for j, t in enumerate(table.ordinary)}
        self._fb_row = np.full(256, -1)
        for b, i in enumerate(v.byte_fallback_ids):
            if i in pos:
                self._fb_row[b] = pos[i]
        self._is_fb = np.zeros(len(toks), dtype=bool)
        self._is_fb[self._fb_row[self._fb_row >= 0]] = True
        self._fb_ids = frozenset(v.byte_fallback_ids)
        single_piece = {t[0] for j, t in enumerate(toks) if len(t) == 1 and not self._is_fb[j]}
        # characters that are pieces never use their fallback bytes (SentencePiece prefers pieces): a
        # started fallback character must be able to end as a character that is not a piece
        self._piece_chars = frozenset(t for j, t in enumerate(toks) if not self._is_fb[j] and len(t) > 1
                                      and _utf8_cut(t) == len(t) and len(t.decode("utf-8")) == 1)
        self._fb_open: dict[bytes, bool] = {}
        self._fb_ok = np.zeros(len(toks), dtype=bool)  # fallback tokens allowed after a complete character
        for b in range(256):
            j = self._fb_row[b]
            if j >= 0 and ((0xC2 <= b <= 0xF4 and self._fallback_possible(bytes([b])))
                           or (b < 0x80 and b not in single_piece)):
                self._fb_ok[j] = True
        self._fb_cont = np.zeros(len(toks), dtype=bool)
        for b in range(0x80, 0xC0):
            if self._fb_row[b] >= 0:
                self._fb_cont[self._fb_row[b]] = True
        unreachable = np.array([int(t) in helper._unreachable for t in table.ordinary])
        self._base = ~self._offender & ~self._is_fb & ~unreachable

    def extend_mask(self, seq: tuple[int, ...]) -> np.ndarray:
        if not seq:
            mask = self._base | self._fb_ok
            return mask & self._starts_space if self.strip else mask
        tail = []
        for i in reversed(seq):  # the bytes of trailing fallback tokens: is a character still open?
            if int(i) not in self._fb_ids:
                break
            tail.append(self.table.token(int(i)))
        partial = b"".join(reversed(tail))
        cut = _utf8_cut(partial)
        if partial and cut is not None and cut != len(partial):
            partial = partial[cut:]  # the open character only
            mask = np.zeros(len(self.table.ordinary), dtype=bool)
            for b in range(0x80, 0xC0):
                j = self._fb_row[b]
                if j >= 0 and self._fallback_possible(partial + bytes([b])):
                    mask[j] = True
            return mask
        return (self._base & ~self._pairs.pair_bad(int(seq[-1]))) | self._fb_ok

    def _fallback_possible(self, partial: bytes) -> bool:
        """Some completion of the UTF-8 prefix ``partial`` is a character that is not a piece (so
        SentencePiece spells it with fallback bytes): count the valid completions against the pieces."""
        hit = self._fb_open.get(partial)
        if hit is None:
            if _utf8_cut(partial) is None:
                hit = False
            elif _utf8_cut(partial) == len(partial):
                hit = partial not in self._piece_chars
            else:
                lead = partial[0]
                size = 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
                rest = size - len(partial)
                total = 64 ** rest
                if len(partial) == 1 and lead in _SECOND:
                    lo, hi = _SECOND[lead]
                    total = (hi - lo + 1) * 64 ** (rest - 1)
                pieces = sum(1 for c in self._piece_chars if len(c) == size and c.startswith(partial))
                hit = pieces < total
            self._fb_open[partial] = hit
        return hit
