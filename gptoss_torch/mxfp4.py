"""MXFP4 in torch, as gptoss_np/mxfp4.py: E2M1 codes (low nibble first) times an E8M0 scale per 32 values along
the input axis. Experts stay packed on the device (uint8 buffers of moe.ExpertProjection) and are decoded inside the
expert matmul: by this pure-torch path anywhere, or by the fused Triton kernel in fast/mxfp4_triton.py on CUDA."""

import torch

FP4_VALUES = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0)


_LUTS = {}


def _lut(device):
    """The E2M1 table on `device`, made once (a host-to-device copy is not allowed inside CUDA-graph capture)."""
    if device not in _LUTS:
        _LUTS[device] = torch.tensor(FP4_VALUES, dtype=torch.float32, device=device)
    return _LUTS[device]


def mxfp4_decode(blocks, scales, dtype=torch.float32):
    """W[..., 32g + i] = FP4_VALUES[nibble i of block g] * 2^(scale_g - 127): [..., G, 16] u8, [..., G] u8 ->
    [..., G*32]. Exact in float32 and bfloat16 (2-bit mantissas times powers of two) barring over/underflow."""
    *lead, G, _ = blocks.shape
    lut = _lut(blocks.device)
    lo, hi = (blocks & 0x0F).long(), (blocks >> 4).long()  # [..., G, 16] each; low nibble = even element
    w = torch.stack([lut[lo], lut[hi]], dim=-1).reshape(*lead, G, 32)  # [..., G, 32]
    w = torch.ldexp(w, scales.to(torch.int32)[..., None] - 127)  # [..., G, 32] * 2^([..., G, 1] - 127)
    return w.reshape(*lead, G * 32).to(dtype)  # [..., G*32]
