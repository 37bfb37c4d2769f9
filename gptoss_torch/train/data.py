"""Batches of next-token prediction from one long token array: random windows for training (a seeded generator:
the same seed gives the same batches), and a fixed set of consecutive windows for validation."""

import numpy as np
import torch

from gptoss_np.errors import InputError


def random_batch(tokens, batch_size, context, generator, targets=None):
    """(x [B, T], y [B, T]) from windows starting at random offsets; y is x shifted by one token (taken from
    `targets` when given: the same ids with -100 where no loss is wanted, e.g. a chat's system prompt)."""
    if len(tokens) < context + 2:
        raise InputError(f"training split of {len(tokens)} tokens: expected at least {context + 2} (windows of "
                         f"{context + 1} tokens at random starts), i.e. more training text")
    starts = torch.randint(0, len(tokens) - context - 1, (batch_size,), generator=generator)  # [B]
    idx = starts[:, None] + torch.arange(context + 1)  # [B, T+1]
    window = tokens[idx]  # [B, T+1]
    return window[:, :-1], (window if targets is None else targets[idx])[:, 1:]


def validation_batches(tokens, batch_size, context, max_batches=None, targets=None):
    """Consecutive, non-overlapping windows covering the validation tokens (at most max_batches batches):
    [(x [b, T], y [b, T]), ...] (y from `targets` when given, as in random_batch). The same split always gives the
    same windows."""
    if batch_size < 1 or (max_batches is not None and max_batches < 1):
        raise InputError(f"validation_batches: batch_size {batch_size}, max_batches {max_batches}: expected "
                         "integers >= 1 (max_batches None: every window)")
    n = (len(tokens) - 1) // context
    if max_batches is not None:
        n = min(n, max_batches * batch_size)
    if n == 0:
        raise InputError(f"validation split of {len(tokens)} tokens is shorter than one window of {context + 1}; "
                         "expected more held-out text")
    idx = torch.arange(n)[:, None] * context + torch.arange(context + 1)  # [n, T+1]
    windows = tokens[idx]
    ys = (windows if targets is None else targets[idx])[:, 1:]
    return [(w[:, :-1], y) for w, y in zip(windows.split(batch_size), ys.split(batch_size))]


def as_tensor(ids):
    """A token id array (NumPy uint8/uint16/int) -> a torch.long tensor."""
    return torch.from_numpy(np.asarray(ids).astype(np.int64))
