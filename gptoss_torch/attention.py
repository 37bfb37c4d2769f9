"""Masks and grouped-query attention with sinks, as gptoss_np/attention.py."""

import math

import torch


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


def attention(q, k, v, allowed, sinks=None, scale=None):
    """GQA with optional sinks: query head h reads kv head h // G; the sink joins each softmax denominator only.
    q [T, Hq, d], k/v [S, Hkv, d], allowed [T, S] -> [T, Hq, d]."""
    T, Hq, d = q.shape
    S, Hkv, _ = k.shape
    G = Hq // Hkv
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    qg = q.reshape(T, Hkv, G, d).permute(1, 2, 0, 3).reshape(Hkv, G * T, d)  # [Hkv, G*T, d]
    scores = torch.bmm(qg, k.permute(1, 2, 0)) * scale  # [Hkv, G*T, S]
    scores = scores.reshape(Hkv, G, T, S).masked_fill(~allowed, float("-inf"))
    scores = at_least_float32(scores)  # the softmax in float32 even for bf16 activations
    if sinks is None:
        probs = torch.softmax(scores, dim=-1)
    else:
        sink = sinks.reshape(Hkv, G, 1, 1).to(scores.dtype)
        m = torch.maximum(scores.amax(-1, keepdim=True), sink)  # [Hkv, G, T, 1]
        e = torch.exp(scores - m)
        probs = e / (e.sum(-1, keepdim=True) + torch.exp(sink - m))
    out = torch.bmm(probs.to(v.dtype).reshape(Hkv, G * T, S), v.permute(1, 0, 2))  # [Hkv, G*T, d]
    return out.reshape(Hkv, G, T, d).permute(2, 0, 1, 3).reshape(T, Hq, d)
