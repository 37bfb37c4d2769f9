"""A fused MXFP4 matrix-vector product for decode: the routed experts' packed weights are read once, decoded in
registers and multiplied with the token's activation, so only 4.25 bits per weight cross the memory bus.

    out[n, r] = sum_k W[ids[n], r, k] * x[n, k],   W[e, r, 32g + 2j + b] = E2M1(nibble b of byte j) * 2^(s - 127)

Runs on CUDA with Triton; with TRITON_INTERPRET=1 the same kernel runs on the CPU (how the tests check it here).
"""

import os

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - the pure-torch path in mxfp4.py is used instead
    triton = None


def available(device):
    """Triton can run the kernel here: CUDA with Triton, or the CPU interpreter (TRITON_INTERPRET=1)."""
    if triton is None:
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


if triton is not None:
    @triton.jit
    def _e2m1(code):
        """E2M1 code -> value: sign bit 3, exponent bits 2-1, mantissa bit 0 (exponent 0: 0 or 0.5)."""
        ex = (code >> 1) & 3
        man = (code & 1).to(tl.float32)
        mag = tl.where(ex == 0, 0.5 * man, tl.exp2((ex - 1).to(tl.float32)) * (1.0 + 0.5 * man))
        return tl.where((code >> 3) != 0, -mag, mag)

    @triton.jit
    def _mxfp4_matvec_kernel(blocks_ptr, scales_ptr, ids_ptr, x_ptr, out_ptr, R, G,
                             stride_be, stride_br, stride_se, stride_sr, stride_xn, stride_on,
                             BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr):
        n = tl.program_id(0)  # which (token, expert) pair
        rows = tl.program_id(1) * BLOCK_R + tl.arange(0, BLOCK_R)  # [BR]
        rmask = rows < R
        e = tl.load(ids_ptr + n).to(tl.int64)
        jb = tl.arange(0, 16)  # byte within a 32-value block
        acc = tl.zeros([BLOCK_R], dtype=tl.float32)
        for g0 in range(0, G, BLOCK_G):
            gs = g0 + tl.arange(0, BLOCK_G)  # [BG]
            gmask = gs < G
            m3 = rmask[:, None, None] & gmask[None, :, None]
            byte = tl.load(blocks_ptr + e * stride_be + rows[:, None, None] * stride_br + gs[None, :, None] * 16
                           + jb[None, None, :], mask=m3, other=0).to(tl.int32)  # [BR, BG, 16]
            xoff = gs[:, None] * 32 + 2 * jb[None, :]  # [BG, 16] even element of each byte
            xe = tl.load(x_ptr + n * stride_xn + xoff, mask=gmask[:, None], other=0.0).to(tl.float32)
            xo = tl.load(x_ptr + n * stride_xn + xoff + 1, mask=gmask[:, None], other=0.0).to(tl.float32)
            part = tl.sum(_e2m1(byte & 15) * xe[None, :, :] + _e2m1(byte >> 4) * xo[None, :, :], axis=2)  # [BR, BG]
            s = tl.load(scales_ptr + e * stride_se + rows[:, None] * stride_sr + gs[None, :],
                        mask=rmask[:, None] & gmask[None, :], other=127).to(tl.int32)
            factor = (s << 23).to(tl.float32, bitcast=True)  # 2^(s-127) exactly, as float32 exponent bits
            acc += tl.sum(part * factor, axis=1)
        tl.store(out_ptr + n * stride_on + rows, acc, mask=rmask)


def mxfp4_matvec(blocks, scales, ids, x, block_r=16, block_g=2):
    """out [n, R] float32 = W[ids[n]] @ x[n] for MXFP4 W (blocks [E, R, G, 16], scales [E, R, G])."""
    E, R, G, _ = blocks.shape
    n = ids.numel()
    blocks, scales, x = blocks.contiguous(), scales.contiguous(), x.contiguous()
    out = torch.empty(n, R, dtype=torch.float32, device=x.device)
    grid = (n, triton.cdiv(R, block_r))
    _mxfp4_matvec_kernel[grid](blocks, scales, ids.to(torch.int32).contiguous(), x, out, R, G,
                               blocks.stride(0), blocks.stride(1), scales.stride(0), scales.stride(1),
                               x.stride(0), out.stride(0), BLOCK_R=block_r, BLOCK_G=block_g)
    return out


def enable(model):
    """Route the model's few-token MoE steps through the fused kernel (MXFP4 configs, where Triton runs)."""
    from ..ffn import activate
    cfg = model.cfg
    if cfg.expert_quant != "mxfp4" or not available(model.device):
        return False
    k = cfg.top_k

    def fused(up, down, x, experts, weights):
        up_b, down_b = up.bias, down.bias
        ids = experts.reshape(-1)  # [T*k]
        h = mxfp4_matvec(up.blocks, up.scales, ids, x.repeat_interleave(k, dim=0))  # [T*k, 2F] float32
        if up_b is not None:
            h = h + up_b[ids].float()
        out = mxfp4_matvec(down.blocks, down.scales, ids, activate(h, cfg))  # [T*k, D]
        if down_b is not None:
            out = out + down_b[ids].float()
        return (out.view(-1, k, out.shape[-1]) * weights[..., None].float()).sum(1).to(x.dtype)

    for block in model.layers:
        ex = block.mlp.experts
        block.mlp.fused = (lambda x, e, w, up=ex.up, down=ex.down: fused(up, down, x, e, w))
    return True
