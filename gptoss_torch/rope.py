"""Rotary embeddings, as gptoss_np/rope.py (which computes the frequencies once, in float64)."""


import torch


def rope_cos_sin(positions, inv_freq, attention_factor, dtype):
    """cos/sin of p * omega_i times YaRN's factor, angles in float64 as the oracle computes them. [T, d/2] each."""
    angles = positions.to(torch.float64)[:, None] * inv_freq[None, :]
    return (torch.cos(angles) * attention_factor).to(dtype), (torch.sin(angles) * attention_factor).to(dtype)


def apply_rope(x, cos, sin):
    """Half-split rotation: [x1 c - x2 s, x2 c + x1 s]. x [T, H, d], cos/sin [T, d/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c, s = cos[:, None, :], sin[:, None, :]
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)
