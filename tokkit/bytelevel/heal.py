"""Token-level baselines for prompts that end mid-token: naive continuation and token healing.

*Naive*: encode the prompt and continue greedily at token level; the encoding asserts that the
text ended on a token boundary, so "The capital of Fr" is continued after the token " Fr".
*Token healing* (guidance; HF ``generate(token_healing=True)``, PR #30081): drop the prompt's last
token and constrain the first generated token to start with its bytes; it fixes one token of
boundary and nothing more (reference note §1: mean TV 0.12 vs 0.41 for naive on the toy, same max).
Both are here for comparison with :meth:`tokkit.bytelevel.ByteLM.complete`.
"""

from __future__ import annotations

import numpy as np

from tokkit.bytelevel.bytelm import ByteLM

__all__ = ["naive_continue", "token_heal_continue"]


def _greedy(blm: ByteLM, ids: list[int], *, max_tokens: int, first_prefix: bytes | None = None) -> list[int]:
    tab = blm.table
    out: list[int] = []
    for step in range(max_tokens):
        q = blm.lm.next_logprobs(tuple(ids + out))
        if step == 0 and first_prefix is not None:
            allowed = tab.with_prefix(first_prefix)
            t = int(allowed[np.argmax(q[allowed])])
        else:
            t = int(np.argmax(q))
        if t in blm.eos_ids:
            break
        out.append(t)
    return out


def naive_continue(blm: ByteLM, prefix: str, *, max_tokens: int = 3) -> str:
    """Greedy token-level continuation of ``encode(prefix)`` (shows the tokenization bias)."""
    ids = list(blm.tokenizer.encode(prefix))
    return blm.table.decode(_greedy(blm, ids, max_tokens=max_tokens)).decode("utf-8", errors="replace")


def token_heal_continue(blm: ByteLM, prefix: str, *, max_tokens: int = 3) -> str:
    """Token healing: back off the last prompt token, regrow it under a prefix constraint."""
    ids = list(blm.tokenizer.encode(prefix))
    if not ids:
        return naive_continue(blm, prefix, max_tokens=max_tokens)
    last = blm.table.token(ids[-1])
    gen = blm.table.decode(_greedy(blm, ids[:-1], max_tokens=max_tokens, first_prefix=last))
    return gen[len(last):].decode("utf-8", errors="replace")
