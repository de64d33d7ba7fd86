"""Training recipes: the pydantic model users write as YAML, and how a recipe name is found.

A recipe is the one source of defaults for ``tokkit train-bpe``: CLI flags that are given override
its fields, unknown keys are errors (``extra="forbid"``). ``load_recipe("legal-32k")`` reads
``recipes/legal-32k.yaml``; a path to a ``.yaml`` file works too.

Recipe families follow KL3M (arXiv 2503.17247) for domain and character BPE and SuperBPE
(arXiv 2503.13423) for supertokens; see ``docs/training.md``.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from tokkit.config import SEED_MAX, flag_name, read_yaml, validation_message
from tokkit.errors import FormatError, MissingFileError, UnknownNameError

__all__ = ["Kind", "Unit", "SupertokenMethod", "SupertokenOptions", "TrainRecipe", "load_recipe",
           "recipe_dir", "known_recipes", "KL3M_SPECIALS", "RecipeError"]

#: The 13 KL3M special tokens (kl3m-003/004), in their id order.
KL3M_SPECIALS = ("<|start|>", "<|end|>", "<|pad|>", "<|unk|>", "<|sep|>", "<|cls|>", "<|mask|>",
                 "<|system|>", "</|system|>", "<|user|>", "</|user|>", "<|instruction|>", "</|instruction|>")


#: Largest vocabulary train-bpe accepts: ids beyond 2^24 are no real tokenizer's, and the native trainer
#: reserves memory per requested id up front (10^11 aborts it).
MAX_VOCAB_SIZE = 1 << 24


def _surrogate_problem(token: str, what: str) -> str | None:
    """Why ``token`` cannot be a token of a tokenizer (it holds a surrogate code point: no UTF-8 spells it), or None.

    Python carries a byte that is not UTF-8 in a command-line argument as U+DC80..U+DCFF (PEP 383); YAML's
    ``"\\ud800"`` escape gives a lone surrogate, and YAML does not join a ``\\ud83d\\ude00`` pair into one character.
    """
    from tokkit.formats.surrogates import find_surrogate

    k = find_surrogate(token)
    if k is None:
        return None
    c = ord(token[k])
    shown = f"{token!r:.60}"  # repr escapes the surrogates, keeps other characters readable
    if 0xD800 <= c <= 0xDBFF and k + 1 < len(token) and 0xDC00 <= ord(token[k + 1]) <= 0xDFFF:
        joined = 0x10000 + ((c - 0xD800) << 10) + (ord(token[k + 1]) - 0xDC00)
        return (f"{what} {shown} holds the surrogate pair U+{c:04X} U+{ord(token[k + 1]):04X} at character {k}: two "
                f"code points with no UTF-8 form (a YAML \\u escape does not join them into U+{joined:04X}); expected "
                f"UTF-8 text: write the character as \\U{joined:08X} or the character itself")
    if 0xDC80 <= c <= 0xDCFF:
        return (f"{what} {shown} is not UTF-8 (byte 0x{c - 0xDC00:02x} at character {k}, carried as U+{c:04X}); "
                "expected UTF-8 text: pass the token in UTF-8")
    return (f"{what} {shown} holds the lone surrogate U+{c:04X} at character {k}, which is not a character and has no "
            "UTF-8 form; expected UTF-8 text: write the character you mean (\\UXXXXXXXX) or remove the token")


class RecipeError(FormatError):
    """A recipe file or recipe value that does not validate (unknown key, wrong type, bad value)."""


class Kind(str, Enum):
    """What ``train-bpe`` trains."""

    BPE = "bpe"  # byte-level BPE with domain tokens (KL3M manner)
    CHAR = "char"  # character-level BPE with a hard token-length cap
    SUPERTOKEN = "supertoken"  # multi-word tokens (SuperBPE two-stage or random split)


class Unit(str, Enum):
    """What ``max_token_length`` counts."""

    CHARS = "chars"  # Unicode characters
    BYTES = "bytes"  # UTF-8 bytes


class SupertokenMethod(str, Enum):
    TWO_STAGE = "two_stage"  # SuperBPE curriculum (stage 1 regex BPE, stage 2 across whitespace)
    RANDOM_SPLIT = "random_split"  # TokenAdapt SuperTokenizer / KL3M-005: random split points at training only


class SupertokenOptions(BaseModel):
    """Options of the supertoken kind (ignored by the other kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: SupertokenMethod = Field(SupertokenMethod.TWO_STAGE, description="two_stage (SuperBPE) or random_split")
    transition: float = Field(0.5, gt=0.0, lt=1.0, description="two_stage: share of the vocab learnt by stage 1 (SuperBPE's t/V)")
    max_words: int = Field(4, ge=1, description="two_stage: a supertoken spans at most this many words (SuperBPE: 4)")
    veto_colon_space: bool = Field(True, description="two_stage: refuse supertokens containing ': ' (SuperBPE's ':Ġ' veto)")
    split_probability: float = Field(0.5, ge=0.0, le=1.0, description="random_split: chance to cut at each space")


class TrainRecipe(BaseModel):
    """Everything ``train-bpe`` needs besides the corpus and the output folder.

    ``vocab_size`` is the size of the final tokenizer (special tokens, domain tokens and the
    byte alphabet included); padding (``pad_to``) may only add reserved ids on top of what was
    trained, never runs of spaces.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)

    kind: Kind = Field(Kind.BPE, description="bpe | char | supertoken")
    vocab_size: int = Field(32768, le=MAX_VOCAB_SIZE,  # lower bound: the alphabet, checked in _kinds
                            description="final vocabulary size (specials and domain tokens included)")
    min_frequency: int = Field(2, ge=1, description="a merge needs at least this many occurrences")
    nfkc: bool = Field(False, description="NFKC-normalize text (KL3M does; lossy: the compare report flags it)")
    lowercase: bool = Field(False, description="lowercase text (uncased tokenizer; lossy)")
    special_tokens: tuple[str, ...] = Field(KL3M_SPECIALS, description="special tokens, ids 0..n-1")
    domain_tokens: tuple[str, ...] = Field((), description="extra tokens reserved before training")
    domain_token_sets: tuple[str, ...] = Field((), description="built-in lists: legal, financial, markup, code")
    pad_to: int | Literal["pow2"] | None = Field(None, description="pad with reserved ids to a multiple of N or to a power of two")
    max_token_length: int | None = Field(None, ge=1, description="char kind: a token holds at most N units")
    max_token_unit: Unit = Field(Unit.CHARS, description="what max_token_length counts: chars or bytes")
    held_out: float = Field(0.01, ge=0.0, lt=1.0, description="share of documents kept out of training for the summary")
    held_out_max_bytes: int = Field(2_000_000, ge=0, description="cap on the held-out sample size")
    text_column: str = Field("text", description="jsonl/parquet/datasets column holding the text")
    skip_bad_utf8: bool = Field(False, description="skip documents that are not UTF-8 (counted) instead of failing")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="seed of the held-out split, sampling and random splits")
    terms: tuple[str, ...] = Field((), description="domain terms `tokkit compare` lists tokens for when this "
                                   "tokenizer comes first (the KL3M paper's table)")
    supertoken: SupertokenOptions = Field(default_factory=SupertokenOptions)

    @field_validator("pad_to")
    @classmethod
    def _pad(cls, v: int | str | None) -> int | str | None:
        if isinstance(v, int) and v < 1:
            raise ValueError("pad_to must be a positive multiple (e.g. 64 or 128) or 'pow2'")
        return v

    @field_validator("special_tokens", "domain_tokens")
    @classmethod
    def _no_empty(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        bad = [t for t in v if not t]
        if bad:
            raise ValueError("empty strings are not tokens; remove them")
        for t in v:
            problem = _surrogate_problem(t, "special token" if info.field_name == "special_tokens" else "domain token")
            if problem:
                raise ValueError(problem)
        if len(set(v)) != len(v):
            dup = sorted({t for t in v if v.count(t) > 1})
            raise ValueError(f"duplicate tokens {dup}; list each token once")
        return v

    @model_validator(mode="after")
    def _kinds(self) -> "TrainRecipe":
        need = len(self.special_tokens) + len(self.domain_tokens) + (1 if self.kind == Kind.CHAR else 256)
        if self.vocab_size < need:
            what = "one character" if self.kind == Kind.CHAR else "256 bytes"
            raise ValueError(f"vocab_size: {self.vocab_size} is smaller than the alphabet: expected at least {need} "
                             f"({len(self.special_tokens)} special + {len(self.domain_tokens)} domain tokens + {what}) "
                             f"and at most {MAX_VOCAB_SIZE}")
        if self.kind == Kind.CHAR and self.max_token_length is None:
            raise ValueError("kind 'char' needs max_token_length (e.g. 3 for char-4k/8k, 4 for char-16k)")
        if self.kind != Kind.CHAR and self.max_token_length is not None:
            raise ValueError(f"max_token_length is only used by kind 'char', not {self.kind.value!r}")
        if self.kind == Kind.CHAR and (self.domain_tokens or self.domain_token_sets):
            raise ValueError("kind 'char' takes no domain tokens (they would break the length cap)")
        if self.kind == Kind.SUPERTOKEN and (self.domain_tokens or self.domain_token_sets):
            raise ValueError("kind 'supertoken' does not reserve domain tokens yet; use kind 'bpe' for domain tokens")
        return self


def recipe_dir() -> Path:
    """The folder of built-in recipes (``recipes/`` at the repository root)."""
    return Path(__file__).resolve().parents[2] / "recipes"


def known_recipes() -> list[str]:
    d = recipe_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []


def _read_yaml(path: Path) -> dict[str, Any]:
    """The recipe's top-level mapping (:func:`~tokkit.config.read_yaml`'s rules: plain YAML, each key once)."""
    try:
        data = read_yaml(path, "recipe")
    except FormatError as e:
        raise RecipeError(str(e)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise RecipeError(f"recipe {path}: expected a mapping of recipe keys at the top level, found {type(data).__name__}")
    return data


def _validate(data: Mapping[str, Any], label: str, flags: Mapping[str, str]) -> TrainRecipe:
    try:
        return TrainRecipe.model_validate(dict(data))
    except ValidationError as e:
        raise RecipeError(validation_message(e, label=label, flags=flags, known=TrainRecipe.model_fields)) from None


#: Fields whose train-bpe flag is not :func:`flag_name`'s (a repeatable flag names one item).
_FLAGS = {"special_tokens": "--special-token"}


def load_recipe(name_or_path: str | Path | None = None, *, overrides: Mapping[str, Any] | None = None) -> TrainRecipe:
    """The recipe ``name_or_path`` (a built-in name or a YAML path) with ``overrides`` applied.

    ``overrides`` with value ``None`` are ignored, so CLI options can default to ``None`` and the
    recipe (or the model default) stays the only source of defaults.

    Raises:
        UnknownNameError: a name that is neither a file nor a built-in recipe (lists the known ones).
        RecipeError: invalid YAML, an unknown key or a bad value (says which key and why).
    """
    data: dict[str, Any] = {}
    label = "recipe"
    if name_or_path is not None:
        p = Path(name_or_path).expanduser()
        if not p.exists() and p.suffix not in (".yaml", ".yml"):
            p = recipe_dir() / f"{name_or_path}.yaml"
        if not p.exists():
            if str(name_or_path).endswith((".yaml", ".yml")) or "/" in str(name_or_path):
                raise MissingFileError(f"recipe file {name_or_path} does not exist; check the path")
            raise UnknownNameError(
                f"unknown recipe {str(name_or_path)!r}: not a file and not a built-in recipe; "
                f"known recipes: {', '.join(known_recipes())}")
        data = _read_yaml(p)
        label = f"recipe {p}"
    for k, v in (overrides or {}).items():
        if v is None:
            continue
        if k == "supertoken" and isinstance(v, Mapping):
            data["supertoken"] = {**data.get("supertoken", {}), **{a: b for a, b in v.items() if b is not None}}
        else:
            data[k] = v
    flags = {k: _FLAGS.get(k) or flag_name(k) for k, v in (overrides or {}).items() if v is not None}
    return _validate(data, label, flags)
