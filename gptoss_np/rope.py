"""Rotary position embeddings (half-split, as in gpt-oss, Qwen3 and HF) and YaRN's frequency stretching."""

import math

import numpy as np


def rope_inv_freq(head_dim, theta):
    """omega_i = theta^(-2i/d) for i = 0..d/2-1: one rotation speed per pair of dimensions."""
    return 1.0 / theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)  # [d/2]


def yarn_inv_freq(head_dim, theta, factor, original_context, beta_fast, beta_slow, truncate=False):
    """YaRN: omega_i = omega_i/s where a pair turns < beta_slow times over the original context, omega_i where it turns
    > beta_fast times, a linear ramp in between; returns (omega [d/2], attention factor 0.1 ln s + 1)."""
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
    ramp = np.clip((np.arange(half, dtype=np.float64) - low) / (high - low), 0.0, 1.0)  # [d/2] 0 = fast, 1 = slow
    omega = rope_inv_freq(head_dim, theta)
    inv_freq = omega * (1.0 - ramp) + (omega / factor) * ramp
    return inv_freq, 0.1 * math.log(factor) + 1.0


def rope_frequencies(cfg):
    """The config's (inv_freq [head_dim/2], attention factor): plain RoPE, or YaRN when rope_scaling is set."""
    if cfg.rope_scaling is None:
        return rope_inv_freq(cfg.head_dim, cfg.rope_theta), 1.0
    s = cfg.rope_scaling
    return yarn_inv_freq(cfg.head_dim, cfg.rope_theta, s.factor, s.original_context, s.beta_fast, s.beta_slow,
                         s.truncate)


def rope_cos_sin(positions, inv_freq, attention_factor=1.0, dtype=np.float32):
    """cos/sin of p * omega_i, times YaRN's factor (it scales both q and k, so logits by factor^2)."""
    angles = np.asarray(positions, dtype=np.float64)[:, None] * inv_freq[None, :]  # [T, d/2], float64: exact angles
    return (np.cos(angles) * attention_factor).astype(dtype), (np.sin(angles) * attention_factor).astype(dtype)


def apply_rope(x, cos, sin):
    """Rotate pairs (x_i, x_{i+d/2}) by angle p * omega_i: [x1 c - x2 s, x2 c + x1 s] (half-split, not interleaved)."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # [T, H, d/2] each
    c, s = cos[:, None, :], sin[:, None, :]  # [T, 1, d/2]: the same angle for every head
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], axis=-1)  # [T, H, d]
