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


def is_number(x, integer=False):
    """Whether `x` is a real (or, with integer=True, an integer) Python or NumPy number; bools are not."""
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    return isinstance(x, kinds) and not isinstance(x, (bool, np.bool_))


def sample(logits, temperature=1.0, top_p=1.0, rng=None):
    """temperature 0 -> greedy; else draw from softmax(logits / T), restricted to the top-p nucleus.

    -inf logits are never drawn; +inf ones are certain (softmax's limit): a draw is uniform among them, greedy takes
    the first. `rng`: a np.random.Generator, a seed (an integer >= 0) or None (fresh entropy)."""
    if not is_number(temperature) or temperature < 0 or not np.isfinite(temperature):
        raise InputError(f"temperature={temperature!r}; expected a finite number >= 0 (0: greedy)")
    if not is_number(top_p) or not 0.0 < top_p <= 1.0:
        raise InputError(f"top_p={top_p!r}; expected a number with 0 < top_p <= 1")
    if not (rng is None or isinstance(rng, np.random.Generator) or (is_number(rng, integer=True) and rng >= 0)):
        raise InputError(f"rng={rng!r}; expected a numpy Generator, a seed (an integer >= 0) or None")
    try:
        logits = np.asarray(logits, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise InputError(f"logits: expected a 1-D array of numbers ({e})") from None
    if logits.ndim != 1 or logits.size == 0:
        raise InputError(f"logits: expected a non-empty 1-D array [V] (one position's logits), got shape "
                         f"{logits.shape}")
    if np.isnan(logits).any() or np.isneginf(logits).all():
        raise InputError(f"logits: expected no NaN and at least one value above -inf, got {np.isnan(logits).sum()} "
                         f"NaN and {np.isneginf(logits).sum()} -inf of {logits.size}")
    if temperature == 0:
        return greedy(logits)
    certain = np.isposinf(logits)
    if certain.any():
        probs = certain / certain.sum()
    else:
        with np.errstate(over="ignore", under="ignore"):  # shift first: (l - max) / T <= 0 even for a tiny T
            probs = softmax((logits - logits.max()) / temperature)
    if top_p < 1.0:
        probs = top_p_filter(probs, top_p)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return int(rng.choice(len(probs), p=probs))
