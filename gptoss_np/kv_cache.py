"""KV cache: full layers keep every past key/value; sliding-window layers keep only the last window - 1 (all a
future query can still see, its own key being added at its own step)."""

import numpy as np

from .errors import InputError


class LayerCache:
    """Keys/values [n, Hkv, d] of one layer with their absolute positions [n]; grows by doubling."""

    def __init__(self, n_kv_heads, head_dim, window=None, dtype=np.float32):
        self.window = window
        self.k = np.zeros((0, n_kv_heads, head_dim), dtype)
        self.v = np.zeros((0, n_kv_heads, head_dim), dtype)
        self.pos = np.zeros((0,), np.int64)
        self.n = 0

    def extend(self, k, v, pos):
        """All cached keys plus the new ones: (k [n+T, Hkv, d], v, pos [n+T]); then keep what the future needs."""
        need = self.n + len(pos)
        if need > len(self.pos):  # amortised growth: copying the cache at every token would be O(S) per step
            cap = max(need, 2 * len(self.pos), 16)
            self.k = np.concatenate([self.k[: self.n], np.zeros((cap - self.n,) + k.shape[1:], k.dtype)])
            self.v = np.concatenate([self.v[: self.n], np.zeros((cap - self.n,) + v.shape[1:], v.dtype)])
            self.pos = np.concatenate([self.pos[: self.n], np.zeros(cap - self.n, np.int64)])
        self.k[self.n: need], self.v[self.n: need], self.pos[self.n: need] = k, v, pos
        self.n = need
        out = self.k[:need], self.v[:need], self.pos[:need]  # views: full layers never move what they hold
        if self.window is not None and self.n > self.window - 1:
            out = tuple(a.copy() for a in out)  # small (window + T rows), and the trim below overwrites the buffer
            keep = self.window - 1  # the next query at p sees p-window+1 .. p: window-1 cached keys + its own
            self.k[:keep], self.v[:keep], self.pos[:keep] = (a[need - keep: need].copy()
                                                              for a in (self.k, self.v, self.pos))
            self.n = keep
        return out


class KVCache:
    """One LayerCache per layer, the number of tokens seen so far (the next token's position) and the most it may
    hold, `max_tokens` (1..context_length; None: context_length)."""

    def __init__(self, cfg, dtype=np.float32, max_tokens=None):
        max_tokens = cfg.context_length if max_tokens is None else max_tokens
        if not isinstance(max_tokens, (int, np.integer)) or isinstance(max_tokens, bool) or \
                not 1 <= max_tokens <= cfg.context_length:
            raise InputError(f"max_tokens={max_tokens!r}; expected an integer from 1 to context_length="
                             f"{cfg.context_length} (or None for all of it)")
        self.max_tokens = int(max_tokens)
        self.layers = [LayerCache(cfg.n_kv_heads, cfg.head_dim, w, dtype) for w in cfg.layer_windows]
        self.length = 0

    def stored_tokens(self):
        """How many tokens each layer holds (sliding layers stay below their window)."""
        return [layer.n for layer in self.layers]
