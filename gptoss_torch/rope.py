"""Rotary embeddings and YaRN, as gptoss_np/rope.py (frequencies in float64, computed once per model)."""

import math

import torch


def rope_inv_freq(head_dim, theta):
    """omega_i = theta^(-2i/d) for i = 0..d/2-1. [d/2] float64."""
    return 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64, device="cpu") / head_dim)  # [d/2]


def yarn_inv_freq(head_dim, theta, factor, original_context, beta_fast, beta_slow, truncate=False):
    """YaRN: omega_i / s for slow pairs, omega_i for fast ones, linear ramp between; -> (omega [d/2], 0.1 ln s + 1)."""
    half = head_dim // 2

    def pair_index(turns):
        """i = (d/2) ln(L / (2 pi turns)) / ln theta (real), L = original_context: the pair turning `turns` times."""
        return half * math.log(original_context / (turns * 2 * math.pi)) / math.log(theta)

    low, high = pair_index(beta_fast), pair_index(beta_slow)
    if truncate:
        low, high = math.floor(low), math.ceil(high)
    low, high = max(low, 0), min(high, head_dim - 1)
    if high == low:
        high += 0.001  # avoid a zero-width ramp
    ramp = ((torch.arange(half, dtype=torch.float64, device="cpu") - low) / (high - low)).clamp(0.0, 1.0)  # [d/2]
    omega = rope_inv_freq(head_dim, theta)
    return omega * (1.0 - ramp) + (omega / factor) * ramp, 0.1 * math.log(factor) + 1.0


def rope_frequencies(cfg):
    """The config's (inv_freq [head_dim/2] float64, attention factor): plain RoPE, or YaRN when rope_scaling is set."""
    if cfg.rope_scaling is None:
        return rope_inv_freq(cfg.head_dim, cfg.rope_theta), 1.0
    s = cfg.rope_scaling
    return yarn_inv_freq(cfg.head_dim, cfg.rope_theta, s.factor, s.original_context, s.beta_fast, s.beta_slow,
                         s.truncate)


def rope_cos_sin(positions, inv_freq, attention_factor, dtype):
    """cos/sin of p * omega_i times YaRN's factor, angles in float64 as the oracle computes them. [..., T, d/2] each."""
    angles = positions.to(torch.float64)[..., None] * inv_freq  # [..., T, d/2]
    return (torch.cos(angles) * attention_factor).to(dtype), (torch.sin(angles) * attention_factor).to(dtype)


def apply_rope(x, cos, sin):
    """Half-split rotation: [x1 c - x2 s, x2 c + x1 s]. x [..., T, H, d], cos/sin [..., T, d/2]."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # [..., T, H, d/2] each
    c, s = cos.unsqueeze(-2), sin.unsqueeze(-2)  # [..., T, 1, d/2]: the same angle for every head
    return torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)  # [..., T, H, d]
