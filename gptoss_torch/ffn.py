"""Feed-forward pieces, as gptoss_np/ffn.py."""

import math

import torch
import torch.nn.functional as F


def gelu_tanh(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def swiglu(h):
    """silu(gate) * up on h = [gate | up] (halves)."""
    gate, up = h.chunk(2, dim=-1)
    return F.silu(gate) * up


def swiglu_oss(h, alpha=1.702, limit=7.0):
    """g = min(h[::2], limit); l = clip(h[1::2], -limit, limit); g * sigmoid(alpha g) * (l + 1)."""
    gate, lin = h[..., 0::2], h[..., 1::2]
    gate = gate.clamp(max=limit)
    lin = lin.clamp(min=-limit, max=limit)
    return gate * torch.sigmoid(alpha * gate) * (lin + 1.0)


def activate(h, cfg):
    """The config's FFN activation."""
    if cfg.activation == "gelu_tanh":
        return gelu_tanh(h)
    if cfg.activation == "swiglu":
        return swiglu(h)
    return swiglu_oss(h, cfg.swiglu_alpha, cfg.swiglu_limit)


def linear(x, weight, bias=None):
    """x @ W.T + b, W stored [out, in]."""
    return F.linear(x, weight, bias)


def mlp(x, cfg, up_weight, down_weight, up_bias=None, down_bias=None):
    """down(act(up(x)))."""
    return linear(activate(linear(x, up_weight, up_bias), cfg), down_weight, down_bias)
