"""Feed-forward pieces, as gptoss_np/ffn.py, and the dense MLP module."""

import math

import torch
import torch.nn.functional as F
from torch import nn


def gelu_tanh(x):
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def swiglu(h):
    """silu(gate) * up on h = [gate | up] (halves)."""
    gate, up = h.chunk(2, dim=-1)  # [..., 2F] -> 2 x [..., F]: gate = columns 0..F-1, up = columns F..2F-1
    return F.silu(gate) * up


def swiglu_oss(h, alpha=1.702, limit=7.0):
    """g = min(h[::2], limit); l = clip(h[1::2], -limit, limit); g * sigmoid(alpha g) * (l + 1)."""
    gate, lin = h[..., 0::2], h[..., 1::2]  # [..., 2F] -> 2 x [..., F]: gate = even columns, linear = odd ones
    gate = gate.clamp(max=limit)
    lin = lin.clamp(min=-limit, max=limit)
    return gate * torch.sigmoid(alpha * gate) * (lin + 1.0)


def activate(h, cfg):
    """The config's FFN activation."""
    if cfg.activation == "gelu_tanh":
        return gelu_tanh(h)
    if cfg.activation == "swiglu":
        return swiglu(h)  # [..., 2F] -> [..., F]
    return swiglu_oss(h, cfg.swiglu_alpha, cfg.swiglu_limit)  # [..., 2F] -> [..., F]


def linear(x, weight, bias=None):
    """x @ W.T + b, W stored [out, in]."""
    return F.linear(x, weight, bias)  # [..., in] -> [..., out]


class MLP(nn.Module):
    """Dense FFN down(act(up(x))): `layers.{i}.mlp.up.weight/.bias` [F or 2F, D], `mlp.down.weight/.bias` [D, F]."""

    def __init__(self, cfg, device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        up_rows = 2 * cfg.ffn_hidden if cfg.glu else cfg.ffn_hidden
        self.up = nn.Linear(cfg.d_model, up_rows, bias=cfg.mlp_bias, device=device, dtype=dtype)
        self.down = nn.Linear(cfg.ffn_hidden, cfg.d_model, bias=cfg.mlp_bias, device=device, dtype=dtype)

    def forward(self, x):
        """down(act(up(x))): x [..., D] -> [..., D]."""
        return self.down(activate(self.up(x), self.cfg))  # [..., D] -> [..., F or 2F] -> act [..., F] -> [..., D]
