"""Choosing the next token from logits: greedy, temperature, nucleus (top-p); seeded and reproducible."""

import numpy as np

from .attention import softmax
from .errors import InputError


def greedy(logits):
    """argmax_i logits_i (the lowest id on ties)."""
    return int(np.argmax(logits))


def _most_likely_first(probs, top_p, head=1024):
    """Token ids by decreasing probability, at least up to where the mass reaches top_p: sorting only the top
    `head` of 200k ids (argpartition) when they already hold that mass, everything otherwise."""
    if probs.size > 2 * head:
        top = np.argpartition(-probs, head)[:head]
        top = top[np.argsort(-probs[top], kind="stable")]
        if probs[top].sum() >= top_p and probs[top[-1]] > np.partition(probs, probs.size - head - 1)[-head - 1]:
            return top  # strictly above every excluded id, so no tie crosses the cut
    return np.argsort(-probs, kind="stable")


def top_p_filter(probs, top_p):
    """Keep the smallest set of most likely tokens whose mass reaches top_p; zero the rest and renormalise."""
    order = _most_likely_first(probs, top_p)
    cum = np.cumsum(probs[order])
    keep = order[: int(np.searchsorted(cum, top_p) + 1)]  # the token that crosses top_p is kept
    out = np.zeros_like(probs)
    out[keep] = probs[keep]
    return out / out.sum()


def sample(logits, temperature=1.0, top_p=1.0, rng=None):
    """temperature 0 -> greedy; else draw from softmax(logits / T), restricted to the top-p nucleus."""
    if temperature < 0 or not np.isfinite(temperature):
        raise InputError(f"temperature={temperature}; expected a finite value >= 0")
    if not 0.0 < top_p <= 1.0:
        raise InputError(f"top_p={top_p}; expected 0 < top_p <= 1")
    logits = np.asarray(logits, dtype=np.float64)
    if np.isnan(logits).any() or not np.isfinite(logits).any():
        raise InputError(f"logits: expected finite values (at least one), got {np.isnan(logits).sum()} NaN of "
                         f"{logits.size}")
    if temperature == 0:
        return greedy(logits)
    with np.errstate(over="ignore", under="ignore"):  # shift first: (l - max) / T <= 0 even for a tiny T
        probs = softmax((logits - logits.max()) / temperature)
    if top_p < 1.0:
        probs = top_p_filter(probs, top_p)
    rng = np.random.default_rng(rng) if not isinstance(rng, np.random.Generator) else rng
    return int(rng.choice(len(probs), p=probs))
