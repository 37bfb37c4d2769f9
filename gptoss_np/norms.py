"""Normalisation layers: LayerNorm (GPT-2) and RMSNorm (gpt-oss, Qwen3, and Qwen3's per-head QK-norm)."""

import numpy as np


def layer_norm(x, weight, bias, eps=1e-5):
    """y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias, over the last axis (biased variance)."""
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [..., 1]
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def rms_norm(x, weight, eps=1e-5):
    """y = x / sqrt(mean(x^2) + eps) * weight, over the last axis: no mean subtraction, no bias."""
    ms = (x * x).mean(axis=-1, keepdims=True)  # [..., 1]
    return x / np.sqrt(ms + eps) * weight
