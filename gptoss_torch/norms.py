"""Normalisation layers, as gptoss_np/norms.py: the functions, and the module that holds their parameters."""

import torch
import torch.nn.functional as F
from torch import nn


def layer_norm(x, weight, bias, eps=1e-5):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over the last axis (biased variance)."""
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def rms_norm(x, weight, eps=1e-5, cast="after_weight"):
    """y = x / sqrt(mean(x^2) + eps) * weight, in float32 at least. A bf16/fp16 x is rounded back to its dtype after
    the weight (cast='after_weight', gpt-oss) or before it, the weight then applied in x's dtype ('before_weight',
    Qwen3)."""
    xf = x.float() if x.dtype in (torch.bfloat16, torch.float16) else x
    normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if cast == "before_weight":
        return normed.to(x.dtype) * weight
    return (normed * weight.to(xf.dtype)).to(x.dtype)


class Norm(nn.Module):
    """The config's norm over the last axis: LayerNorm (weight, bias) or RMSNorm (weight). Canonical names:
    `<prefix>.weight`, `<prefix>.bias`."""

    def __init__(self, dim, kind, eps, device=None, dtype=None, cast="after_weight"):
        super().__init__()
        self.kind, self.eps, self.cast = kind, eps, cast  # cast: the config's norm_cast (see rms_norm)
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(dim, device=device, dtype=dtype)) if kind == "layernorm" else None
        self.fused = False  # RMSNorm as F.rms_norm (one kernel on CUDA), set by gptoss_torch.fast.enable(prefill=True)

    def forward(self, x):
        if self.kind == "layernorm" or (self.fused and not self.training):
            return self.one_op(x)
        return rms_norm(x, self.weight, self.eps, self.cast)

    def one_op(self, x):
        """The norm as one op (one kernel on CUDA): F.layer_norm, or F.rms_norm where rms_norm takes several; what a
        prompt through gptoss_torch.fast and each decode step of FastDecoder use."""
        if self.kind == "layernorm":
            return layer_norm(x, self.weight, self.bias, self.eps)
        return rms_norm_op(x, self.weight, self.eps, self.cast)


def rms_norm_op(x, weight, eps, cast="after_weight"):
    """rms_norm as F.rms_norm (one kernel on CUDA); cast='before_weight': F.rms_norm without the weight, rounded to
    x's dtype, then times the weight in it (two ops)."""
    if cast == "before_weight":
        return F.rms_norm(x, (x.shape[-1],), None, eps) * weight
    return F.rms_norm(x, (x.shape[-1],), weight, eps)
