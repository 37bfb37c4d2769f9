"""The forward pass of every config in the chain, with a KV cache and a trace of named activations.

Trace points (the torch twin uses exactly these names; T tokens, D = d_model, E experts, k = top_k):

    embed                       [T, D]        token (+ learned position) embedding
    layers.{i}.attn_norm        [T, D]        norm before attention
    layers.{i}.attn.q           [T, Hq, d]    queries after QK-norm and RoPE
    layers.{i}.attn.k           [T, Hkv, d]   keys after QK-norm and RoPE (this call's tokens only)
    layers.{i}.attn.v           [T, Hkv, d]
    layers.{i}.attn.out         [T, D]        attention branch after the output projection
    layers.{i}.attn_residual    [T, D]        x + attention branch
    layers.{i}.ffn_norm         [T, D]        norm before the FFN / MoE
    layers.{i}.router.logits    [T, E]        (MoE) router logits
    layers.{i}.router.experts   [T, k]        (MoE) chosen experts, best first
    layers.{i}.router.weights   [T, k]        (MoE) their mixing weights
    layers.{i}.ffn.out          [T, D]        FFN / MoE branch output
    layers.{i}.residual         [T, D]        the block's output
    final_norm                  [T, D]
    logits                      [T, V]
"""

import numpy as np

from .attention import attention, attention_mask
from .errors import InputError
from .ffn import linear, mlp
from .kv_cache import KVCache
from .moe import ExpertWeights, moe
from .norms import layer_norm, rms_norm
from .params import check_weights, is_expert_matrix
from .rope import apply_rope, rope_cos_sin, rope_frequencies

LAYER_TRACE_POINTS = ("attn_norm", "attn.q", "attn.k", "attn.v", "attn.out", "attn_residual", "ffn_norm",
                      "router.logits", "router.experts", "router.weights", "ffn.out", "residual")


def trace_names(cfg):
    """The trace point names a forward of `cfg` produces, in order."""
    names = ["embed"]
    for i in range(cfg.n_layers):
        names += [f"layers.{i}.{p}" for p in LAYER_TRACE_POINTS if cfg.ffn == "moe" or not p.startswith("router")]
    return names + ["final_norm", "logits"]


def norm(x, p, prefix, cfg):
    """The config's norm with the parameters under `prefix`."""
    if cfg.norm == "layernorm":
        return layer_norm(x, p[prefix + ".weight"], p[prefix + ".bias"], cfg.norm_eps)
    return rms_norm(x, p[prefix + ".weight"], cfg.norm_eps)


class Model:
    """A decoder-only transformer for `cfg`: `model(tokens)` -> logits [T, V]; `model(tokens, trace=True)` ->
    (logits, trace); pass `cache=model.new_cache()` to decode incrementally."""

    def __init__(self, cfg, weights, dtype=np.float32, source="weights"):
        check_weights(cfg, weights, source)
        self.cfg, self.dtype = cfg, np.dtype(dtype)
        # float weights are converted once to the compute dtype; expert matrices stay as stored (MXFP4 packed,
        # memory-mapped) and are decoded/converted only for the experts a batch is routed to
        self.params = {n: (w if n.endswith((".blocks", ".scales")) or is_expert_matrix(n) or self._lookup_only(n)
                           else np.asarray(w, dtype=self.dtype)) for n, w in weights.items()}
        p = self.params
        self.experts = {}
        for i in range(cfg.n_layers if cfg.ffn == "moe" else 0):
            for m in ("up", "down"):
                base = f"layers.{i}.mlp.experts.{m}"
                self.experts[base] = (ExpertWeights(blocks=p[base + ".blocks"], scales=p[base + ".scales"], name=base)
                                      if cfg.expert_quant == "mxfp4" else ExpertWeights(p[base + ".weight"]))
        if cfg.positions == "rope":
            self.inv_freq, self.attention_factor = rope_frequencies(cfg)
        self.unembed = p["embed.weight"] if cfg.tie_embeddings else p["unembed.weight"]

    def _lookup_only(self, name):
        """An untied embedding table is only ever indexed: keep it as stored (bf16: 2.3 GB instead of 4.6 GB for
        gpt-oss) and convert the rows a batch looks up."""
        return name == "embed.weight" and not self.cfg.tie_embeddings

    def new_cache(self, max_tokens=None):
        """An empty KV cache; `max_tokens` (1..context_length, default context_length) caps the tokens it may hold
        (it grows as they come: nothing is allocated up front)."""
        return KVCache(self.cfg, self.dtype, max_tokens)

    # ---- input checks --------------------------------------------------------------------------------------
    def _check_tokens(self, tokens, start, cache=None):
        """tokens: a non-empty 1-D sequence of ids of any integer dtype (unsigned included) or Python ints -> int64
        [T], after checking each id against vocab_size and the room left in the context and the cache. A batch
        ([B, T]) is the torch twin's; here it is refused."""
        V = self.cfg.vocab_size
        try:
            t = np.asarray(tokens)
        except (TypeError, ValueError) as e:  # ragged nesting
            raise InputError(f"tokens: expected a non-empty 1-D array of token ids, got a {type(tokens).__name__} "
                             f"that is not an array ({e})") from None
        if t.ndim != 1 or t.size == 0:
            raise InputError(f"tokens: expected a non-empty 1-D array of token ids, got shape {t.shape}"
                             + (" (one sequence here: batches [B, T] run on gptoss_torch)" if t.ndim == 2 else ""))
        ints = t.dtype == object and all(type(v) is int for v in t)  # NumPy keeps ints past 64 bits as objects
        if not ints and not np.issubdtype(t.dtype, np.integer):
            raise InputError(f"tokens: expected integer token ids, got dtype {t.dtype}")
        bad = np.array([not 0 <= v < V for v in t]) if ints else (t < 0) | (t >= V)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"tokens[{i}] = {int(t[i])} is out of range: vocab_size is {V} (ids 0..{V - 1})")
        limit = self.cfg.context_length if cache is None else min(self.cfg.context_length, cache.max_tokens)
        if start + t.size > limit:
            raise InputError(f"tokens: {start} cached + {t.size} new = {start + t.size} positions exceed "
                             f"context_length={self.cfg.context_length} of {self.cfg.name!r}"
                             + (f" or the cache's max_tokens={cache.max_tokens}" if limit < self.cfg.context_length
                                else ""))
        return t.astype(np.int64)

    # ---- the forward -----------------------------------------------------------------------------------------
    def __call__(self, tokens, trace=False, cache=None):
        start = cache.length if cache is not None else 0
        tokens = self._check_tokens(tokens, start, cache)
        cfg, p = self.cfg, self.params
        tr = {} if trace else None
        pos = np.arange(start, start + len(tokens))  # [T] absolute positions
        x = np.asarray(p["embed.weight"][tokens], dtype=self.dtype)  # [T, D]: only these rows are converted
        if cfg.positions == "learned":
            x = x + p["pos_embed.weight"][pos]
        cos_sin = rope_cos_sin(pos, self.inv_freq, self.attention_factor, self.dtype) \
            if cfg.positions == "rope" else None  # ([T, d/2], [T, d/2]) or None
        self._record(tr, "embed", x)
        for i in range(cfg.n_layers):
            layer_cache = cache.layers[i] if cache is not None else None
            x = self.block(x, i, pos, cos_sin, layer_cache, tr)
        x = norm(x, p, "final_norm", cfg)
        self._record(tr, "final_norm", x)
        logits = linear(x, self.unembed)  # [T, D] -> [T, V]
        self._record(tr, "logits", logits)
        if cache is not None:
            cache.length += len(tokens)
        return (logits, tr) if trace else logits

    @staticmethod
    def _record(tr, name, value):
        if tr is not None:
            tr[name] = value

    def block(self, x, i, pos, cos_sin, layer_cache, tr):
        """x + attn(norm(x)), then + ffn(norm(.)): one pre-norm transformer block."""
        cfg, p, pre = self.cfg, self.params, f"layers.{i}."
        h = norm(x, p, pre + "attn_norm", cfg)
        self._record(tr, pre + "attn_norm", h)
        a = self.attention(h, i, pos, cos_sin, layer_cache, tr)
        self._record(tr, pre + "attn.out", a)
        x = x + a
        self._record(tr, pre + "attn_residual", x)
        h = norm(x, p, pre + "ffn_norm", cfg)
        self._record(tr, pre + "ffn_norm", h)
        if cfg.ffn == "dense":
            f = mlp(h, cfg, p[pre + "mlp.up.weight"], p[pre + "mlp.down.weight"], p.get(pre + "mlp.up.bias"),
                    p.get(pre + "mlp.down.bias"))
        else:
            f, logits, experts, weights = moe(
                h, cfg, p[pre + "mlp.router.weight"], p.get(pre + "mlp.router.bias"),
                self.experts[pre + "mlp.experts.up"], p.get(pre + "mlp.experts.up.bias"),
                self.experts[pre + "mlp.experts.down"], p.get(pre + "mlp.experts.down.bias"))
            self._record(tr, pre + "router.logits", logits)
            self._record(tr, pre + "router.experts", experts)
            self._record(tr, pre + "router.weights", weights)
        self._record(tr, pre + "ffn.out", f)
        x = x + f
        self._record(tr, pre + "residual", x)
        return x

    def attention(self, h, i, pos, cos_sin, layer_cache, tr):
        """Project to q/k/v, QK-norm, RoPE, (cache), masked GQA attention with sinks, output projection."""
        cfg, p, pre = self.cfg, self.params, f"layers.{i}.attn."
        T = h.shape[0]
        q = linear(h, p[pre + "q.weight"], p.get(pre + "q.bias")).reshape(T, cfg.n_heads, cfg.head_dim)  # [T,Hq,d]
        k = linear(h, p[pre + "k.weight"], p.get(pre + "k.bias")).reshape(T, cfg.n_kv_heads, cfg.head_dim)  # [T,Hkv,d]
        v = linear(h, p[pre + "v.weight"], p.get(pre + "v.bias")).reshape(T, cfg.n_kv_heads, cfg.head_dim)  # [T,Hkv,d]
        if cfg.qk_norm:  # per head, over head_dim, before RoPE (Qwen3)
            q = rms_norm(q, p[pre + "q_norm.weight"], cfg.norm_eps)
            k = rms_norm(k, p[pre + "k_norm.weight"], cfg.norm_eps)
        if cos_sin is not None:
            q, k = apply_rope(q, *cos_sin), apply_rope(k, *cos_sin)
        self._record(tr, pre + "q", q)
        self._record(tr, pre + "k", k)
        self._record(tr, pre + "v", v)
        window = cfg.layer_windows[i]
        k_all, v_all, k_pos = (k, v, pos) if layer_cache is None else layer_cache.extend(k, v, pos)  # [S,Hkv,d], [S]
        allowed = attention_mask(pos, k_pos, window)  # [T, S]
        o = attention(q, k_all, v_all, allowed, p.get(pre + "sinks"))  # [T, Hq, d]
        return linear(o.reshape(T, cfg.q_dim), p[pre + "o.weight"], p.get(pre + "o.bias"))  # [T, D]
