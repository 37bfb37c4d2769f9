"""A preallocated KV cache: full layers hold `max_tokens` slots, sliding-window layers a ring of `window` slots
(slot = position mod window). Each slot remembers the position it holds (-1 = empty), so the attention mask is
computed from positions alone and every decode step has the same shapes (what CUDA graphs need). A batch of B
sequences shares the positions (they advance together)."""

import numbers
import os

import torch

from gptoss_np.accounting import kv_cache_bytes
from gptoss_np.errors import InputError


class LayerCache:
    """One layer's k/v [B, S, Hkv, d] and slot positions [S] (-1 = empty): slot = p (full), p mod S (sliding)."""

    def __init__(self, n_slots, n_kv_heads, head_dim, window, dtype, device, batch=1):
        self.window, self.n_slots = window, n_slots
        self.k = torch.zeros(batch, n_slots, n_kv_heads, head_dim, dtype=dtype, device=device)  # [B, S, Hkv, d]
        self.v = torch.zeros_like(self.k)  # [B, S, Hkv, d]
        self.pos = torch.full((n_slots,), -1, dtype=torch.long, device=device)  # [S]

    def extend(self, k, v, pos):
        """Keys/values/positions to attend over for the queries at `pos`, then store what later tokens need.
        k/v [B, T, Hkv, d], pos [T] -> (k [B, S', Hkv, d], v, positions [S'])."""
        if self.window is None:  # full layer: write first, then attend over every slot (unused ones masked)
            self._write(k, v, pos, pos)
            return self.k, self.v, self.pos
        # sliding layer: the ring may not hold all of a long prompt at once, so attend over ring + new tokens
        keys, values = torch.cat([self.k, k], dim=1), torch.cat([self.v, v], dim=1)  # [B, S+T, Hkv, d] each
        kpos = torch.cat([self.pos, pos])  # [S+T]
        keep = min(k.shape[1], self.n_slots)  # only the last `window` new tokens can still be seen later
        self._write(k[:, -keep:], v[:, -keep:], pos[-keep:], pos[-keep:] % self.n_slots)  # [B, keep, Hkv, d], [keep]
        return keys, values, kpos

    def decode(self, k, v, pos):
        """One new token: store it, then attend over the stored slots only. On a sliding layer the token overwrites
        position pos - window, which the window has just dropped, so the ring alone holds every visible key.
        k/v [B, 1, Hkv, d], pos [1] -> (k [B, S, Hkv, d], v, positions [S])."""
        self._write(k, v, pos, pos if self.window is None else pos % self.n_slots)
        return self.k, self.v, self.pos

    def _write(self, k, v, pos, slots):
        """k[:, slots], v[:, slots], pos[slots] = k, v, pos: k/v [B, n, Hkv, d], pos/slots [n]."""
        self.k.index_copy_(1, slots, k)
        self.v.index_copy_(1, slots, v)
        self.pos.index_copy_(0, slots, pos)

    def stored_tokens(self):
        """#{slots with pos >= 0}: the tokens this layer holds."""
        return int((self.pos >= 0).sum())


def memory_bytes(device):
    """Memory a cache on `device` may take: what CUDA reports free there, else the host's RAM (None: unknown)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows)
        return None


def check_size(cfg, max_tokens, batch, dtype, device):
    """Refuse, before anything is allocated, a cache of no tokens, past the context, or larger than the memory."""
    for name, value, top in (("max_tokens", max_tokens, cfg.context_length), ("batch", batch, None)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1 or (top and value > top):
            raise InputError(f"{name}={value!r}; expected an integer "
                             + (f"from 1 to context_length={top}" if top else ">= 1"))
    need = batch * kv_cache_bytes(cfg, max_tokens, dtype.itemsize)  # the slots KVCache allocates (its nbytes())
    have = memory_bytes(device)
    if have is not None and need > have:
        raise InputError(f"max_tokens={max_tokens}, batch={batch}: the KV cache would take {need / 2**30:.1f} GiB; "
                         f"expected at most the {have / 2**30:.1f} GiB {device} has")


class KVCache:
    """One LayerCache per layer; `length` = tokens seen. Bytes: see gptoss_np.accounting.kv_cache_bytes."""

    def __init__(self, cfg, max_tokens, dtype, device, batch=1):
        check_size(cfg, max_tokens, batch, dtype, device)
        self.max_tokens, self.batch = int(max_tokens), int(batch)
        self.layers = [LayerCache(max_tokens if w is None else min(w, max_tokens), cfg.n_kv_heads, cfg.head_dim,
                                  w, dtype, device, batch) for w in cfg.layer_windows]
        self.length = 0

    def stored_tokens(self):
        """[layer.stored_tokens() for each layer]: the tokens each layer holds."""
        return [layer.stored_tokens() for layer in self.layers]

    def nbytes(self):
        """sum over layers of k.nbytes + v.nbytes: the bytes the cache's slots take."""
        return sum(layer.k.nbytes + layer.v.nbytes for layer in self.layers)
