"""Normalisation layers, as gptoss_np/norms.py: the functions, and the module that holds their parameters."""

import torch
import torch.nn.functional as F
from torch import nn


def layer_norm(x, weight, bias, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance)."""
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def rms_norm(x, weight, eps=1e-5):
    """y = x / sqrt(mean(x^2) + eps) * weight, computed in float32 at least (gpt-oss multiplies before casting)."""
    xf = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps) * weight.to(xf.dtype)
    return y.to(x.dtype)


class Norm(nn.Module):
    """The config's norm over the last axis: LayerNorm (weight, bias) or RMSNorm (weight). Canonical names:
    `<prefix>.weight`, `<prefix>.bias`."""

    def __init__(self, dim, kind, eps, device=None, dtype=None):
        super().__init__()
        self.kind, self.eps = kind, eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(dim, device=device, dtype=dtype)) if kind == "layernorm" else None
        self.fused = False  # RMSNorm as F.rms_norm (one kernel on CUDA), set by gptoss_torch.fast.enable(prefill=True)

    def forward(self, x):
        if self.kind == "layernorm" or (self.fused and not self.training):
            return self.one_op(x)
        return rms_norm(x, self.weight, self.eps)

    def one_op(self, x):
        """The norm as one op (one kernel on CUDA): F.layer_norm, or F.rms_norm where rms_norm takes several; what a
        prompt through gptoss_torch.fast and each decode step of FastDecoder use."""
        if self.kind == "layernorm":
            return layer_norm(x, self.weight, self.bias, self.eps)
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)
