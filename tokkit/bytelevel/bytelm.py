"""``ByteLM``: a tokenized causal LM as an exact byte-level LM (next byte, scoring, sampling, completion).

Target (explicit, per Phan et al., arXiv 2410.09303, and Vieira et al., arXiv 2412.03719):

* ``"canonical"`` (default): sums over token sequences the tokenizer can output (extendable-prefix
  validity, :mod:`tokkit.bytelevel.canon`). A real LM leaks some mass to other sequences; each
  distribution is renormalised and the normaliser ``log Z_n`` is reported, so that
  ``logprob(x, eos=True) == log Q(enc(x)·EOS) − Σ_n log Z_n − log P̃(lead)``.
* ``"all"``: every tokenization counts (the exact pushforward of the LM through the decoder); the
  number of exact sequences grows quickly, so ``beam`` caps them (exact only with ``beam=None``).

Byte streams: SentencePiece-style tokenizers that prepend a dummy space (``strip_leading_space``)
see the stream ``b" " + text``; the leading space is part of every context and never generated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Sequence

import numpy as np

from tokkit.bytelevel.canon import AnyCanon, ReencodeCanon
from tokkit.bytelevel.engine import CoverState, NextByte
from tokkit.bytelevel.lm import CallableLM, HFCausalLM, TokenLM
from tokkit.bytelevel.table import EOS, TokenTable
from tokkit.errors import InputTypeError, TokkitError, UnencodableBytesError
from tokkit.formats.surrogates import find_surrogate
from tokkit.tokenizer import Tokenizer, load_tokenizer

__all__ = ["ByteLM", "ByteModel", "ByteScore", "Target"]

LOG = logging.getLogger(__name__)

Target = Literal["canonical", "all"]


class _RecordingLM:
    """Stands in for the LM during the dry pass over a prompt: records contexts, returns zeros."""

    def __init__(self, vocab_size: int) -> None:
        self.vocab_size = vocab_size
        self.calls = 0
        self.seen: list[tuple[int, ...]] = []

    def next_logprobs(self, context: tuple[int, ...]) -> np.ndarray:
        self.seen.append(tuple(context))
        return np.zeros(self.vocab_size)


@dataclass(frozen=True)
class ByteScore:
    """Byte-level score of a text.

    Attributes:
        logprob: natural-log probability that the output starts with the text (or is exactly it).
        byte_logprobs: (n,) log-probability of each byte (and of end-of-text when asked).
        log_z: (n,) the normaliser ``log Z`` of each of those distributions (0 = no leak).
        log_lead: ``log P̃`` of the starting context (the dummy space of SentencePiece; 0 otherwise).
    """

    logprob: float
    byte_logprobs: np.ndarray
    log_z: np.ndarray
    log_lead: float

    @property
    def bits_per_byte(self) -> float:
        return -self.logprob / np.log(2) / max(len(self.byte_logprobs), 1)


def _as_bytes(x: str | bytes) -> bytes:
    """The exact bytes of a text argument: a str as UTF-8, bytes-like as given; anything else refused
    (``bytes(5)`` would be five zero bytes), as is a str holding a surrogate code point (no UTF-8 bytes)."""
    if isinstance(x, str):
        at = find_surrogate(x)
        if at is None:
            return x.encode("utf-8")
        raise UnencodableBytesError(f"text holds the surrogate code point U+{ord(x[at]):04X} at character {at}, which has "
                                    "no UTF-8 bytes; expected valid text or the exact bytes: pass bytes (e.g. the data "
                                    "read in binary mode, or os.fsencode(arg) for a command-line argument)")
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x)
    raise InputTypeError(f"expected text as str or bytes, found {type(x).__name__}; pass a str or bytes")


def _default_start(tokenizer: Tokenizer) -> tuple[int, ...]:
    ids = tokenizer.encode("", add_special_tokens=True)
    if ids:
        return tuple(ids)
    v = tokenizer.vocab
    by_text = {s.text: s.id for s in v.specials}
    for name in ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"):
        if name in by_text:
            return (by_text[name],)
    for role in ("bos", "eos"):
        if v.role_id(role) is not None:
            return (v.role_id(role),)
    raise TokkitError(f"{tokenizer.name} has no BOS and no end-of-text token; pass start_ids=[...] "
                      "(the token the model saw before each document)")


def _default_eos(tokenizer: Tokenizer) -> tuple[int, ...]:
    v = tokenizer.vocab
    ids = set(v.roles.get("eos", ()))
    by_text = {s.text: s.id for s in v.specials}
    for name in ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"):
        if name in by_text:
            ids.add(by_text[name])
    return tuple(sorted(ids))


class ByteModel:
    """Scoring, sampling and completion for anything with ``state(prefix)`` returning an object with
    ``next_byte() -> NextByte``, ``push(byte)`` and ``mass()`` (a :class:`ByteLM` or a
    :class:`~tokkit.bytelevel.ensemble.ByteEnsemble`)."""

    def state(self, prefix: str | bytes = b""):  # pragma: no cover - interface
        raise NotImplementedError

    # ------------------------------------------------------------------ distributions and scores
    def next_byte(self, prefix: str | bytes = b"") -> NextByte:
        """Next-byte distribution after ``prefix`` with its normaliser (see :class:`NextByte`)."""
        return self.state(prefix).next_byte()

    def next_byte_logprobs(self, prefix: str | bytes = b"") -> np.ndarray:
        """(257,) float64 log-probabilities of the next byte (0..255) and of end-of-text (256)."""
        return self.next_byte(prefix).logprobs

    def score(self, text: str | bytes, *, eos: bool = False, context: str | bytes = b"",
              progress: bool = False) -> ByteScore:
        """Byte-by-byte log-probabilities of ``text`` after ``context`` (one LM call per byte).
        ``progress``: a tqdm bar on a terminal, shown once scoring has taken more than 2 s."""
        from tqdm.auto import tqdm

        st = self.state(context)
        log_lead = st.mass()
        lps, zs = [], []
        for b in tqdm(_as_bytes(text), desc="bytes score", unit="B", delay=2, leave=False,
                      disable=None if progress else True):  # None: only on a terminal
            nb = st.next_byte()
            lps.append(nb.logprobs[b])
            zs.append(nb.log_z)
            if nb.logprobs[b] == -np.inf:
                break
            st.push(b)
        else:
            if eos:
                nb = st.next_byte()
                lps.append(nb.logprobs[EOS])
                zs.append(nb.log_z)
        lp = np.array(lps, dtype=np.float64)
        return ByteScore(float(lp.sum()), lp, np.array(zs), log_lead)

    def logprob(self, text: str | bytes, *, eos: bool = False, context: str | bytes = b"") -> float:
        """log P(output starts with ``text`` | ``context``); with ``eos=True``, log P(output is exactly it)."""
        return self.score(text, eos=eos, context=context).logprob

    # ------------------------------------------------------------------ generation
    def generate(self, prompt: str | bytes = b"", *, max_bytes: int = 200, seed: int | None = 0,
                 temperature: float = 1.0, stop: Callable[[bytes], bool] | None = None) -> bytes:
        """Sample bytes after ``prompt`` (``temperature=0``: greedy). Temperature acts on byte
        probabilities (``p^(1/T)``), not token ones. Stops at end-of-text, ``max_bytes`` or when
        ``stop(generated)`` is true."""
        out = bytearray()
        for b in self.stream(prompt, max_bytes=max_bytes, seed=seed, temperature=temperature):
            out.append(b)
            if stop is not None and stop(bytes(out)):
                break
        return bytes(out)

    def stream(self, prompt: str | bytes = b"", *, max_bytes: int = 200, seed: int | None = 0,
               temperature: float = 1.0) -> Iterator[int]:
        """:meth:`generate`'s bytes one at a time, each as soon as it is drawn (the same bytes for the same
        seed); stop taking them to cut the sample short."""
        for b, _ in _draw(self.state(prompt), max_bytes, temperature, seed):
            yield b

    def complete(self, prefix: str | bytes, suffix: str | bytes | None = None, *, max_bytes: int = 64,
                 seed: int | None = None, temperature: float = 0.0) -> bytes:
        """Complete a prompt that may end mid-token, without tokenization bias.

        Returns bytes, as :meth:`generate` does: a byte-level model's output may end inside a UTF-8
        character; ``.decode()`` it for text.

        With no ``suffix``: the rest of the current word (stops before the first whitespace or
        punctuation byte after a word byte). With a ``suffix`` (fill-in-the-middle for a plain LM):
        the middle, ending where the suffix's first byte becomes the most likely next byte.
        Greedy by default; ``temperature > 0`` samples with ``seed``.
        """
        sfx = _as_bytes(suffix) if suffix is not None else None
        out = bytearray()
        for b, lp in _draw(self.state(prefix), max_bytes, temperature, seed):
            if sfx is not None:
                if sfx and b == sfx[0] and int(np.argmax(lp)) == sfx[0]:
                    break
            elif out and _ends_word(out, b):
                break
            out.append(b)
        return bytes(out)



class ByteLM(ByteModel):
    """A causal LM over bytes, built from a token LM and its tokenizer.

    Args:
        lm: a :class:`~tokkit.bytelevel.lm.TokenLM`, or any callable ``(token_ids) -> (V,)
            next-token log-probs`` (ids exclude BOS; ``fn(())`` is the first-token distribution).
        tokenizer: the tokkit tokenizer the LM was trained with.
        target: ``"canonical"`` or ``"all"`` (see module doc).
        beam: cap on exact sequences per byte for ``target="all"``.
        eos_ids: token ids that end the text (default: the eos role plus ``<|endoftext|>``-like tokens).

    Example:
        >>> blm = ByteLM.from_pretrained("smollm2")                       # doctest: +SKIP
        >>> blm.complete("The capital of Fr")                              # doctest: +SKIP
        b'ance'
    """

    def __init__(self, lm: TokenLM | Callable[[tuple[int, ...]], Sequence[float]], tokenizer: Tokenizer, *,
                 target: Target = "canonical", beam: int | None = None,
                 eos_ids: Sequence[int] | None = None) -> None:
        if target not in ("canonical", "all"):
            raise TokkitError(f"target must be 'canonical' or 'all', found {target!r}")
        self.tokenizer = tokenizer
        self.table = TokenTable.from_vocab(tokenizer.vocab)
        self.lm: TokenLM = lm if hasattr(lm, "next_logprobs") else CallableLM(lm, len(tokenizer.vocab))  # type: ignore[arg-type]
        if self.lm.vocab_size != len(tokenizer.vocab):
            from tokkit.errors import VocabMismatchError

            raise VocabMismatchError(f"the LM has {self.lm.vocab_size} ids but {tokenizer.name} has "
                                     f"{len(tokenizer.vocab)}; pass the tokenizer the LM was trained with")
        self.target = target
        self.beam = beam
        self.eos_ids = tuple(eos_ids) if eos_ids is not None else _default_eos(tokenizer)
        self.lead = b" " if tokenizer.vocab.strip_leading_space else b""
        self.canon = _make_canon(tokenizer, self.table)
        if target == "all":
            self.canon = AnyCanon(self.canon)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, *, device: str = "cpu", target: Target = "canonical",
                        beam: int | None = None, start_ids: Sequence[int] | None = None,
                        eos_ids: Sequence[int] | None = None) -> "ByteLM":
        """Load an HF causal LM folder (or a tokkit model alias such as ``smollm2``) in float32.

        ``start_ids`` defaults to the tokenizer's BOS, else its ``<|endoftext|>``-like token.
        """
        from tokkit.hf_models import load_causal_lm
        from tokkit.names import resolve_model
        from tokkit.optim.distributed import pick_device

        path = resolve_model(name_or_path)
        tok = load_tokenizer(path / "tokenizer.json" if (path / "tokenizer.json").exists() else path)
        model = load_causal_lm(path, device=pick_device(device))
        start = tuple(start_ids) if start_ids is not None else _default_start(tok)
        lm = HFCausalLM(model, vocab_size=len(tok.vocab), start_ids=start)
        return cls(lm, tok, target=target, beam=beam, eos_ids=eos_ids)

    def generate(self, prompt: str | bytes = b"", *, max_bytes: int = 200, seed: int | None = 0,
                 temperature: float = 1.0, stop: Callable[[bytes], bool] | None = None,
                 per_byte: bool = False) -> bytes:
        """Sample bytes after ``prompt``. At ``temperature=1`` with the canonical target, whole tokens are
        drawn past the prompt boundary (:mod:`tokkit.bytelevel.token_sampling`: one LM call per token,
        the per-byte sampler's distribution); otherwise, or with ``per_byte=True``, byte by byte."""
        if temperature == 1.0 and self.target == "canonical" and not per_byte:
            from tokkit.bytelevel.token_sampling import sample_tokens

            return sample_tokens(self, _as_bytes(prompt), max_bytes=max_bytes, seed=seed, stop=stop)
        return super().generate(prompt, max_bytes=max_bytes, seed=seed, temperature=temperature, stop=stop)

    def stream(self, prompt: str | bytes = b"", *, max_bytes: int = 200, seed: int | None = 0,
               temperature: float = 1.0, per_byte: bool = False) -> Iterator[int]:
        """:meth:`generate`'s bytes one at a time as they are drawn (token speed at ``temperature=1``)."""
        if temperature == 1.0 and self.target == "canonical" and not per_byte:
            from itertools import islice

            from tokkit.bytelevel.token_sampling import iter_token_bytes

            yield from islice(iter_token_bytes(self, _as_bytes(prompt), seed=seed), max(0, max_bytes))
            return
        yield from super().stream(prompt, max_bytes=max_bytes, seed=seed, temperature=temperature)

    # ------------------------------------------------------------------ states
    def _new_state(self, exact, stream: bytes) -> CoverState:
        return CoverState(self.canon, self.lm, eos_ids=self.eos_ids, exact=exact, stream=stream,
                          canonical_eos=self.target == "canonical", beam=self.beam)

    def state(self, prefix: str | bytes = b"") -> CoverState:
        """The covers of ``prefix``, with its LM contexts evaluated in one batched call.

        The prompt is encoded canonically up to its last stable boundary (the trunk); the cover
        recursion runs over the remaining bytes twice: a dry pass that records which contexts it
        needs, then, after one :meth:`TokenLM.evaluate` call, the real pass.
        """
        stream = self.lead + _as_bytes(prefix)
        if self.target == "all" and self.beam is not None:
            # a beam ranks sequences by their LM mass, which a dry pass cannot know: push the bytes
            # with the real LM (at most `beam` contexts per byte, each sharing the KV cache's prefix)
            st = self._new_state([((), 0.0)], b"")
            for b in stream:
                st.push(b)
            return st
        B = self.canon.stable_boundary(stream)
        trunk = self.canon.encode(stream[:B]) if B else ()
        if trunk is None:
            raise TokkitError(f"the prompt is not valid UTF-8 before byte {B}; expected text")
        dry = CoverState(self.canon, _RecordingLM(len(self.table)), eos_ids=(), exact=[(trunk, 0.0)],
                         stream=stream[:B], canonical_eos=False, beam=None)
        for b in stream[B:]:
            dry.push(b)
        dry.next_byte()
        contexts = list(dict.fromkeys(dry.lm.seen))  # type: ignore[attr-defined]
        lq, _ = self.lm.evaluate(trunk, contexts)
        st = self._new_state([(trunk, lq)], stream[:B])
        for b in stream[B:]:
            st.push(b)
        if self.lead and stream == self.lead and self.target == "canonical":
            # SentencePiece encodes the empty text as () although its stream is the dummy space
            q = self.lm.next_logprobs(())
            st.extra_stop = float(np.logaddexp.reduce(q[list(self.eos_ids)])) if self.eos_ids else float("-inf")
        return st


def _ends_word(out: bytearray, b: int) -> bool:
    """A whitespace or punctuation byte right after a word byte ends the word (UTF-8 bytes >= 128 are word bytes)."""

    def word(c: int) -> bool:
        return c >= 128 or chr(c).isalnum()

    return word(out[-1]) and not word(b) and chr(b) not in "_-'"


def _make_canon(tokenizer: Tokenizer, table: TokenTable) -> ReencodeCanon:
    """The fastest exact validity oracle for this tokenizer."""
    try:
        from tokkit.bytelevel.bpe_canon import BPECanon, PairwiseBPECanon

        if BPECanon.supports(tokenizer):
            return BPECanon(tokenizer, table)
        if PairwiseBPECanon.supports(tokenizer):
            return PairwiseBPECanon(tokenizer, table)
    except ImportError:
        pass
    return ReencodeCanon(tokenizer, table)


def _draw(st: Any, max_bytes: int, temperature: float, seed: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """Bytes drawn one at a time from the byte state ``st`` (with their ``(256,)`` log-probs), each
    pushed once the caller takes the next; ends at end-of-text, an impossible byte or ``max_bytes``."""
    rng = np.random.default_rng(seed)
    for _ in range(max_bytes):
        lp = st.next_byte().logprobs
        b = _pick_byte(lp, temperature, rng)
        if b == EOS or lp[b] == -np.inf:
            return
        yield b, lp
        st.push(b)


def _pick_byte(lp: np.ndarray, temperature: float, rng: np.random.Generator) -> int:
    """Greedy (``temperature == 0``) or sampled choice among the 257 outcomes of ``lp`` (log-probs)."""
    if temperature == 0:
        return int(np.argmax(lp))
    z = lp / temperature
    p = np.exp(z - z.max())
    return int(rng.choice(257, p=p / p.sum()))
