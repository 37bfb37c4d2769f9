"""Feed-forward pieces: GELU (tanh form), plain SwiGLU (Qwen3) and gpt-oss's clamped SwiGLU, and the dense MLP."""

import math

import numpy as np

from . import kernels


def gelu_tanh(x):
    """gelu(x) ~= 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (GPT-2's 'gelu_new')."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def sigmoid(x):
    """sigma(x) = 1 / (1 + exp(-x)), written so that large |x| never overflows."""
    x = np.asarray(x)
    x = x if np.issubdtype(x.dtype, np.floating) else x.astype(np.float64)  # ints would truncate to 0/1
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def silu(x):
    """silu(x) = x * sigma(x)."""
    return x * sigmoid(x)


def swiglu(h):
    """Qwen3/Llama SwiGLU on the fused up-projection h = [gate | up] (halves): silu(gate) * up."""
    gate, up = np.split(h, 2, axis=-1)  # [..., 2F] -> 2 x [..., F]
    return silu(gate) * up


def swiglu_oss(h, alpha=1.702, limit=7.0):
    """gpt-oss SwiGLU, columns interleaved (gate = h[::2], linear = h[1::2]):
    g = min(gate, limit); l = clip(linear, -limit, limit); out = g * sigma(alpha g) * (l + 1)."""
    gate, lin = h[..., 0::2], h[..., 1::2]  # [..., 2F] -> 2 x [..., F]
    gate = np.minimum(gate, limit)  # clamp from above only: a very negative gate already gives ~0
    lin = np.clip(lin, -limit, limit)
    return gate * sigmoid(alpha * gate) * (lin + 1.0)


def activate(h, cfg):
    """Apply the config's FFN activation to the first projection's output (GLUs halve the width)."""
    if cfg.activation == "gelu_tanh":
        return gelu_tanh(h)
    if cfg.activation == "swiglu":
        return swiglu(h)
    return swiglu_oss(h, cfg.swiglu_alpha, cfg.swiglu_limit)


def linear(x, weight, bias=None):
    """y = x @ W.T + b, with W stored [out, in] as nn.Linear and the gpt-oss checkpoints do."""
    y = kernels.dense_matmul(x, weight)  # [T, in] -> [T, out]
    return y if bias is None else y + bias


def mlp(x, cfg, up_weight, down_weight, up_bias=None, down_bias=None):
    """Dense FFN: down(act(up(x))); up is [F or 2F (GLU), D], down is [D, F]."""
    h = linear(x, up_weight, up_bias)  # [T, D] -> [T, F] or [T, 2F]
    return linear(activate(h, cfg), down_weight, down_bias)  # [T, F] -> [T, D]
