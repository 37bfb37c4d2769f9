"""Attention: causal and sliding-window masks, grouped-query attention with optional learned sinks."""

import numpy as np


def causal_mask(q_pos, k_pos):
    """allowed[t, s] = k_pos[s] <= q_pos[t]: a token sees itself and the past."""
    return np.asarray(k_pos)[None, :] <= np.asarray(q_pos)[:, None]  # [T, S] bool


def sliding_window_mask(q_pos, k_pos, window):
    """allowed[t, s] = q - window < k <= q: exactly `window` keys, the query's own position included."""
    q, k = np.asarray(q_pos)[:, None], np.asarray(k_pos)[None, :]  # [T, 1], [1, S]
    return (k <= q) & (k > q - window)  # [T, S] bool


def attention_mask(q_pos, k_pos, window=None):
    """The layer's mask: causal, or sliding when the layer has a window."""
    return causal_mask(q_pos, k_pos) if window is None else sliding_window_mask(q_pos, k_pos, window)


def softmax(x, axis=-1):
    """softmax(x)_i = exp(x_i - max x) / sum_j exp(x_j - max x)."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_with_sink(scores, sink):
    """p_j = exp(s_j - m) / (sum_j exp(s_j - m) + exp(sink - m)), m = max(max_j s_j, sink): the sink joins the
    denominator only (it has no value vector), so each row sums to less than 1."""
    m = np.maximum(scores.max(axis=-1, keepdims=True), sink)  # [..., 1]
    e = np.exp(scores - m)  # [..., S]
    return e / (e.sum(axis=-1, keepdims=True) + np.exp(sink - m))


def attention(q, k, v, allowed, sinks=None, scale=None):
    """Grouped-query attention: query head h reads kv head h // (Hq/Hkv).
    q [T, Hq, d], k/v [S, Hkv, d], allowed [T, S] bool, sinks [Hq] or None -> [T, Hq, d]."""
    T, Hq, d = q.shape
    S, Hkv, _ = k.shape
    G = Hq // Hkv  # query heads per kv head
    scale = 1.0 / np.sqrt(d) if scale is None else scale
    qg = q.reshape(T, Hkv, G, d).transpose(1, 2, 0, 3).reshape(Hkv, G * T, d)  # [Hkv, G*T, d]
    scores = (qg @ k.transpose(1, 2, 0)) * np.asarray(scale, q.dtype)  # [Hkv, G*T, S]: one BLAS matmul per kv head
    scores = scores.reshape(Hkv, G, T, S)  # [Hkv, G*T, S] -> [Hkv, G, T, S]: row g*T + t -> (g, t)
    scores = np.where(allowed, scores, -np.inf)  # [Hkv, G, T, S]
    if sinks is None:
        probs = softmax(scores)
    else:
        probs = softmax_with_sink(scores, sinks.reshape(Hkv, G, 1, 1).astype(q.dtype))  # sinks [Hq] -> [Hkv, G, 1, 1]
    out = probs.reshape(Hkv, G * T, S) @ v.transpose(1, 0, 2)  # [Hkv, G*T, d]
    return out.reshape(Hkv, G, T, d).transpose(2, 0, 1, 3).reshape(T, Hq, d)  # [T, Hq, d], head h = kv*G + g
