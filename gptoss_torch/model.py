"""The torch twin of gptoss_np.model: same config object, same canonical weights, same trace names.

Trace points are those of gptoss_np.model (see its docstring); `gptoss_np.trace_names(cfg)` lists them.
"""

import numpy as np
import torch

from gptoss_np.errors import InputError
from gptoss_np.params import check_weights
from .rope import rope_frequencies

from .attention import attention, attention_mask
from .ffn import linear, mlp
from .kv_cache import KVCache
from .moe import moe
from .mxfp4 import ExpertWeights
from .norms import layer_norm, rms_norm
from .rope import apply_rope, rope_cos_sin


def norm(x, w, prefix, cfg):
    if cfg.norm == "layernorm":
        return layer_norm(x, w[prefix + ".weight"], w[prefix + ".bias"], cfg.norm_eps)
    return rms_norm(x, w[prefix + ".weight"], cfg.norm_eps)


class Model:
    """`model(tokens)` -> logits [T, V] (float32); `model(tokens, trace=True)` -> (logits, trace);
    `cache = model.new_cache(max_tokens)` then `model(tokens, cache=cache)` decodes incrementally."""

    def __init__(self, cfg, weights, device="cpu", dtype=torch.float32):
        self.cfg, self.device, self.dtype = cfg, torch.device(device), dtype
        self.w = weights  # canonical name -> tensor on device (MXFP4 blocks/scales stay uint8)
        self.experts = {}
        for i in range(cfg.n_layers if cfg.ffn == "moe" else 0):
            for m in ("up", "down"):
                base = f"layers.{i}.mlp.experts.{m}"
                self.experts[base] = (ExpertWeights(blocks=weights[base + ".blocks"], scales=weights[base + ".scales"],
                                                    name=base) if cfg.expert_quant == "mxfp4"
                                      else ExpertWeights(weights[base + ".weight"]))
        if cfg.positions == "rope":
            inv_freq, self.attention_factor = rope_frequencies(cfg)
            self.inv_freq = inv_freq.to(self.device)
        self.unembed = weights["embed.weight"] if cfg.tie_embeddings else weights["unembed.weight"]
        self.fused_moe = None  # set by mxfp4_triton.enable(model) on CUDA
        self.moe_path = None  # None: automatic; "gathered" / "per_expert" to force one (tests)

    @classmethod
    def from_numpy(cls, cfg, np_weights, device="cpu", dtype=torch.float32):
        """Build from a canonical NumPy weight dict (as gptoss_np.init_weights / loader.load_weights give)."""
        check_weights(cfg, np_weights)
        return cls(cfg, {n: to_torch(a, device, None if n.endswith((".blocks", ".scales")) else dtype)
                         for n, a in np_weights.items()}, device, dtype)

    def new_cache(self, max_tokens=None):
        return KVCache(self.cfg, max_tokens or min(self.cfg.context_length, 4096), self.dtype, self.device)

    def _check_tokens(self, tokens, start, cache):
        if not isinstance(tokens, torch.Tensor):
            tokens = torch.as_tensor(np.asarray(tokens))
        if tokens.ndim != 1 or tokens.numel() == 0 or tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
            raise InputError(f"tokens: expected a non-empty 1-D integer tensor, got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise InputError(f"tokens: id {lo if lo < 0 else hi} is out of range: vocab_size is {self.cfg.vocab_size}")
        limit = self.cfg.context_length if cache is None else min(self.cfg.context_length, cache.max_tokens)
        if start + tokens.numel() > limit:
            raise InputError(f"tokens: {start} cached + {tokens.numel()} new exceed the limit of {limit} positions "
                             f"(context_length={self.cfg.context_length}"
                             + (f", cache max_tokens={cache.max_tokens})" if cache is not None else ")"))
        return tokens.to(self.device, torch.long)

    @torch.no_grad()
    def __call__(self, tokens, trace=False, cache=None, positions=None):
        start = cache.length if cache is not None else 0
        tokens = self._check_tokens(tokens, start, cache)
        pos = positions if positions is not None else \
            torch.arange(start, start + tokens.numel(), device=self.device)
        logits, tr = self.forward(tokens, pos, cache, trace)
        if cache is not None:
            cache.length += tokens.numel()
        return (logits, tr) if trace else logits

    def forward(self, tokens, pos, cache=None, trace=False):
        """The forward on device tensors, no Python-side checks (what a CUDA graph captures)."""
        cfg, w = self.cfg, self.w
        tr = {} if trace else None
        x = w["embed.weight"][tokens]  # [T, D]
        if cfg.positions == "learned":
            x = x + w["pos_embed.weight"][pos]
        cos_sin = rope_cos_sin(pos, self.inv_freq, self.attention_factor, self.dtype) \
            if cfg.positions == "rope" else None
        self._record(tr, "embed", x)
        for i in range(cfg.n_layers):
            x = self.block(x, i, pos, cos_sin, None if cache is None else cache.layers[i], tr)
        x = norm(x, w, "final_norm", cfg)
        self._record(tr, "final_norm", x)
        logits = linear(x, self.unembed)  # [T, V]
        logits = logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits
        self._record(tr, "logits", logits)
        return logits, tr

    @staticmethod
    def _record(tr, name, value):
        if tr is not None:
            tr[name] = value

    def block(self, x, i, pos, cos_sin, layer_cache, tr):
        cfg, w, pre = self.cfg, self.w, f"layers.{i}."
        h = norm(x, w, pre + "attn_norm", cfg)
        self._record(tr, pre + "attn_norm", h)
        a = self.attention(h, i, pos, cos_sin, layer_cache, tr)
        self._record(tr, pre + "attn.out", a)
        x = x + a
        self._record(tr, pre + "attn_residual", x)
        h = norm(x, w, pre + "ffn_norm", cfg)
        self._record(tr, pre + "ffn_norm", h)
        if cfg.ffn == "dense":
            f = mlp(h, cfg, w[pre + "mlp.up.weight"], w[pre + "mlp.down.weight"], w.get(pre + "mlp.up.bias"),
                    w.get(pre + "mlp.down.bias"))
        else:
            fused = None if self.fused_moe is None else (lambda xx, e, wt: self.fused_moe(i, xx, e, wt))
            f, logits, experts, weights = moe(
                h, cfg, w[pre + "mlp.router.weight"], w.get(pre + "mlp.router.bias"),
                self.experts[pre + "mlp.experts.up"], w.get(pre + "mlp.experts.up.bias"),
                self.experts[pre + "mlp.experts.down"], w.get(pre + "mlp.experts.down.bias"), fused=fused,
                path=self.moe_path)
            self._record(tr, pre + "router.logits", logits)
            self._record(tr, pre + "router.experts", experts)
            self._record(tr, pre + "router.weights", weights)
        self._record(tr, pre + "ffn.out", f)
        x = x + f
        self._record(tr, pre + "residual", x)
        return x

    def attention(self, h, i, pos, cos_sin, layer_cache, tr):
        cfg, w, pre = self.cfg, self.w, f"layers.{i}.attn."
        T = h.shape[0]
        q = linear(h, w[pre + "q.weight"], w.get(pre + "q.bias")).view(T, cfg.n_heads, cfg.head_dim)
        k = linear(h, w[pre + "k.weight"], w.get(pre + "k.bias")).view(T, cfg.n_kv_heads, cfg.head_dim)
        v = linear(h, w[pre + "v.weight"], w.get(pre + "v.bias")).view(T, cfg.n_kv_heads, cfg.head_dim)
        if cfg.qk_norm:
            q = rms_norm(q, w[pre + "q_norm.weight"], cfg.norm_eps)
            k = rms_norm(k, w[pre + "k_norm.weight"], cfg.norm_eps)
        if cos_sin is not None:
            q, k = apply_rope(q, *cos_sin), apply_rope(k, *cos_sin)
        self._record(tr, pre + "q", q)
        self._record(tr, pre + "k", k)
        self._record(tr, pre + "v", v)
        window = cfg.layer_windows[i]
        k_all, v_all, k_pos = (k, v, pos) if layer_cache is None else layer_cache.extend(k, v, pos)
        o = attention(q, k_all, v_all, attention_mask(pos, k_pos, window), w.get(pre + "sinks"))
        return linear(o.reshape(T, cfg.q_dim), w[pre + "o.weight"], w.get(pre + "o.bias"))


def to_torch(a, device, dtype=None):
    """NumPy (incl. ml_dtypes bfloat16, memory-mapped) -> torch tensor on device; uint8 kept as is."""
    a = np.asarray(a)
    if not a.flags.writeable:  # torch wants writable memory; a memory-mapped checkpoint is read-only: copy once
        a = np.array(a)
    if a.dtype.name == "bfloat16":
        t = torch.from_numpy(np.ascontiguousarray(a).view(np.uint16)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(np.ascontiguousarray(a))
    t = t.to(device)
    return t if dtype is None or not t.is_floating_point() else t.to(dtype)

