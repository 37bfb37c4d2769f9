"""Masks and grouped-query attention with sinks, as gptoss_np/attention.py, batched, on
torch.nn.functional.scaled_dot_product_attention; and the attention module with its canonical parameters."""

import torch
import torch.nn.functional as F
from torch import nn

from .norms import rms_norm
from .rope import apply_rope


def at_least_float32(x):
    """x in float32 when it is in a narrower float dtype (bf16/fp16), unchanged otherwise (float32/float64)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def attention_mask(q_pos, k_pos, window=None):
    """allowed[t, s]: k <= q (causal) and, on sliding layers, k > q - window; k < 0 marks an empty cache slot."""
    q, k = q_pos[:, None], k_pos[None, :]
    allowed = (k <= q) & (k >= 0)
    if window is not None:
        allowed = allowed & (k > q - window)
    return allowed


def attention(q, k, v, allowed, sinks=None, dropout_p=0.0, scale=None):
    """softmax(q k^T / sqrt(d) masked, with the sink in each denominator) v; query head h reads kv head h // G.
    q [B, T, Hq, d], k/v [B, S, Hkv, d], allowed [T, S] bool, sinks [Hq] -> [B, T, Hq, d].

    The sink is a key whose logit is `sinks[h]` for every query and whose value is zero: it joins the softmax
    denominator and adds nothing to the output (OpenAI's "extra column, dropped after", done inside one SDPA call)."""
    B, T, Hq, d = q.shape
    Hkv = k.shape[2]
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # [B, H, T|S, d]
    mask = allowed
    if sinks is not None:
        zero = k.new_zeros(B, Hkv, 1, d)
        k, v = torch.cat([k, zero], dim=2), torch.cat([v, zero], dim=2)  # [B, Hkv, S+1, d]
        bias = torch.zeros(allowed.shape, dtype=q.dtype, device=q.device).masked_fill(~allowed, float("-inf"))
        sink = sinks.to(q.dtype).view(Hq, 1, 1).expand(Hq, T, 1)  # [Hq, T, 1]
        mask = torch.cat([bias.expand(Hq, *allowed.shape), sink], dim=-1)  # [Hq, T, S+1] additive
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p, scale=scale,
                                         enable_gqa=Hq != Hkv)  # [B, Hq, T, d]
    return out.transpose(1, 2)  # [B, T, Hq, d]


def decode_attention(q, k, v, allowed, sinks=None, scale=None):
    """One query per sequence, scores and softmax in float32 at least (a bf16 sink or score would round away the
    small differences a long context is made of); the sink is an extra logit column dropped after the softmax.
    q [B, 1, Hq, d], k/v [B, S, Hkv, d], allowed [1, S] bool, sinks [Hq] -> [B, 1, Hq, d] in q's dtype."""
    B, _, Hq, d = q.shape
    Hkv = k.shape[2]
    qf = at_least_float32(q).view(B, Hkv, Hq // Hkv, d)  # [B, Hkv, G, d]: head h = kv * G + g
    scale = d ** -0.5 if scale is None else scale
    if scale != 1.0:
        qf = qf * scale
    s = torch.matmul(qf, at_least_float32(k).permute(0, 2, 3, 1))  # [B, Hkv, G, S]
    s = torch.where(allowed[0], s, float("-inf"))
    if sinks is not None:
        s = torch.cat([s, sinks.to(s.dtype).view(1, Hkv, Hq // Hkv, 1).expand(B, -1, -1, -1)], dim=-1)
    p = torch.softmax(s, dim=-1)[..., :k.shape[1]]  # [B, Hkv, G, S]: the sink's share dropped
    o = torch.matmul(p, at_least_float32(v).transpose(1, 2))  # [B, Hkv, G, d]
    return o.reshape(B, 1, Hq, d).to(q.dtype)


class Attention(nn.Module):
    """q/k/v/o projections (nn.Linear, [out, in]), optional QK-norm weights and sinks, under the canonical names
    `layers.{i}.attn.{q,k,v,o}.weight/.bias`, `.q_norm.weight`, `.k_norm.weight`, `.sinks`."""

    def __init__(self, cfg, window, device=None, dtype=None):
        super().__init__()
        kw = dict(device=device, dtype=dtype)
        self.cfg, self.window = cfg, window
        self.q = nn.Linear(cfg.d_model, cfg.q_dim, bias=cfg.attn_bias, **kw)
        self.k = nn.Linear(cfg.d_model, cfg.kv_dim, bias=cfg.attn_bias, **kw)
        self.v = nn.Linear(cfg.d_model, cfg.kv_dim, bias=cfg.attn_bias, **kw)
        self.o = nn.Linear(cfg.q_dim, cfg.d_model, bias=cfg.attn_bias, **kw)
        if cfg.qk_norm:
            self.q_norm = nn.Module()
            self.q_norm.weight = nn.Parameter(torch.ones(cfg.head_dim, **kw))
            self.k_norm = nn.Module()
            self.k_norm.weight = nn.Parameter(torch.ones(cfg.head_dim, **kw))
        self.sinks = nn.Parameter(torch.zeros(cfg.n_heads, **kw)) if cfg.sinks else None
        self.prefill_kernel = None  # a fused attention for prompts, set by gptoss_torch.fast.attention_triton.enable
        self.rope_kernel = None  # RoPE of q and k in one launch, set by gptoss_torch.fast.enable(model, prefill=True)

    def forward(self, h, pos, cos_sin=None, layer_cache=None, record=None, q_chunk=None):
        """h [B, T, D], pos [T] -> [B, T, D]; `record(name, value)` receives q, k, v (after QK-norm and RoPE);
        `q_chunk`: the queries at most this many at a time against every key (bounded score temporaries)."""
        cfg = self.cfg
        B, T, _ = h.shape
        q = self.q(h).view(B, T, cfg.n_heads, cfg.head_dim)  # [B, T, Hq, d]
        k = self.k(h).view(B, T, cfg.n_kv_heads, cfg.head_dim)  # [B, T, Hkv, d]
        v = self.v(h).view(B, T, cfg.n_kv_heads, cfg.head_dim)
        if cfg.qk_norm:
            q = rms_norm(q, self.q_norm.weight, cfg.norm_eps, cfg.norm_cast)
            k = rms_norm(k, self.k_norm.weight, cfg.norm_eps, cfg.norm_cast)
        if cos_sin is not None:
            if self.rope_kernel is not None and not self.training:
                q, k = self.rope_kernel(q, k, *cos_sin)
            else:
                q, k = apply_rope(q, *cos_sin), apply_rope(k, *cos_sin)
        if record is not None:
            record("attn.q", q), record("attn.k", k), record("attn.v", v)
        if layer_cache is not None and T == 1:  # decode: the window only on sliding layers, float32 scores
            k_all, v_all, k_pos = layer_cache.decode(k, v, pos)
            o = decode_attention(q, k_all, v_all, attention_mask(pos, k_pos, self.window), self.sinks)
            return self.o(o.reshape(B, T, cfg.q_dim))  # [B, T, D]
        k_all, v_all, k_pos = (k, v, pos) if layer_cache is None else layer_cache.extend(k, v, pos)
        drop = cfg.dropout if self.training else 0.0
        if self.prefill_kernel is not None and not self.training:  # no [T, S] scores at all: q_chunk is moot
            o = self.prefill_kernel(q, k_all, v_all, pos, k_pos, self.window, self.sinks)  # [B, T, Hq, d]
        elif q_chunk is None or q_chunk >= T:
            o = attention(q, k_all, v_all, attention_mask(pos, k_pos, self.window), self.sinks, drop)  # [B, T, Hq, d]
        else:  # a chunk of queries at a time: [B, Hq, q_chunk, S] scores instead of [B, Hq, T, S]
            o = torch.cat([attention(q[:, i:i + q_chunk], k_all, v_all,
                                     attention_mask(pos[i:i + q_chunk], k_pos, self.window), self.sinks, drop)
                           for i in range(0, T, q_chunk)], dim=1)  # [B, T, Hq, d]
        return self.o(o.reshape(B, T, cfg.q_dim))  # [B, T, D]
