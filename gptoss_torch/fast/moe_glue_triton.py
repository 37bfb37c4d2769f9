"""The glue around the grouped product's MoE (fast/moe_grouped.py) in two launches where torch takes about a dozen
passes over the pairs' activations: the up projection's bias and gpt-oss's clamped SwiGLU in one pass over its
output, and the down projection's bias, the router weights and the sum over each token's k pairs in another, which
reads every pair where the sort by expert left it (no copy back to token order). Both compute in float32 and write
the activations' dtype; tests/test_moe_grouped.py keeps them equal to the torch ops in Triton's interpreter.

Runs on CUDA with Triton; with TRITON_INTERPRET=1 on the CPU.
"""

import torch

from .mxfp4_triton import available, triton

if triton is not None:
    import triton.language as tl

    from .mxfp4_triton import _swiglu_oss

    @triton.jit
    def _bias_swiglu_kernel(h_ptr, bias_ptr, e_ptr, out_ptr, M, F, stride_h, stride_b, stride_o, alpha, limit,
                            HAS_BIAS: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_F: tl.constexpr):
        """out[i, j] = swiglu_oss(g, l) with (g, l) = h[i, 2j : 2j + 2] + b[e_i, 2j : 2j + 2], a tile of rows x
        outputs a program; h's row pairs read contiguously and split in registers."""
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)  # [BM]
        c2 = tl.program_id(1) * 2 * BLOCK_F + tl.arange(0, 2 * BLOCK_F)  # [2 BF]: (gate, linear) columns
        m2 = (rows < M)[:, None] & (c2 < 2 * F)[None, :]
        r = rows.to(tl.int64)
        hv = tl.load(h_ptr + r[:, None] * stride_h + c2[None, :], mask=m2, other=0.0).to(tl.float32)  # [BM, 2BF]
        if HAS_BIAS:
            e = tl.load(e_ptr + rows, mask=rows < M, other=0).to(tl.int64)  # [BM]: each row's expert
            hv += tl.load(bias_ptr + e[:, None] * stride_b + c2[None, :], mask=m2, other=0.0).to(tl.float32)
        gate, lin = tl.split(tl.reshape(hv, [BLOCK_M, BLOCK_F, 2]))  # [BM, BF] each
        cols = tl.program_id(1) * BLOCK_F + tl.arange(0, BLOCK_F)  # [BF]
        tl.store(out_ptr + r[:, None] * stride_o + cols[None, :],
                 _swiglu_oss(gate, lin, alpha, limit).to(out_ptr.dtype.element_ty),
                 mask=(rows < M)[:, None] & (cols < F)[None, :])

    @triton.jit
    def _combine_kernel(out_ptr, pos_ptr, bias_ptr, chosen_ptr, w_ptr, y_ptr, D, stride_o, stride_b, stride_y,
                        K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK_D: tl.constexpr):
        """y[t] = sum_r w[t, r] (out[pos[t K + r]] + b[chosen[t, r]]), r = 0 .. K-1 in order, over a block of
        columns a program."""
        t = tl.program_id(0)
        cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)  # [BD]
        cm = cols < D
        acc = tl.zeros([BLOCK_D], dtype=tl.float32)
        for r in tl.static_range(K):
            p = tl.load(pos_ptr + t * K + r).to(tl.int64)  # where pair (t, r) sits among the sorted pairs
            v = tl.load(out_ptr + p * stride_o + cols, mask=cm, other=0.0).to(tl.float32)
            if HAS_BIAS:
                e = tl.load(chosen_ptr + t * K + r).to(tl.int64)
                v += tl.load(bias_ptr + e * stride_b + cols, mask=cm, other=0.0).to(tl.float32)
            acc += tl.load(w_ptr + t * K + r).to(tl.float32) * v
        tl.store(y_ptr + t.to(tl.int64) * stride_y + cols, acc.to(y_ptr.dtype.element_ty), mask=cm)


# (rows, outputs) a program of the bias + SwiGLU pass, columns a program of the combine: 16 x 128 outputs (4,096
# values read) and 1,024 columns, until benchmarks/gpu_check.py's prefill timings say otherwise
SWIGLU_TILE, COMBINE_BLOCK = (16, 128), 1024


def bias_swiglu(h, bias, experts, alpha, limit):
    """swiglu_oss(h + bias[experts]) in one launch: h [M, 2F] (rows of (gate, linear) pairs), bias [E, 2F] or None,
    experts [M] int -> [M, F] in h's dtype."""
    M, F2 = h.shape
    if F2 % 2:
        raise ValueError(f"h: expected (gate, linear) pairs, an even row length, got {list(h.shape)}")
    h = h.contiguous() if h.stride(-1) != 1 else h
    out = torch.empty(M, F2 // 2, dtype=h.dtype, device=h.device)
    bm, bf = SWIGLU_TILE
    _bias_swiglu_kernel[(triton.cdiv(M, bm), triton.cdiv(F2 // 2, bf))](
        h, h if bias is None else bias, experts, out, M, F2 // 2, h.stride(0), 0 if bias is None else bias.stride(0),
        out.stride(0), float(alpha), float(limit), HAS_BIAS=bias is not None, BLOCK_M=bm, BLOCK_F=bf)
    return out


def combine_pairs(out, pos, bias, chosen, weights):
    """y [N, D] = sum_r weights[t, r] (out[pos[t k + r]] + bias[chosen[t, r]]) in one launch: out [N k, D] the pairs'
    outputs in any order, pos [N k] where pair (t, r) = t k + r sits in it, bias [E, D] or None, chosen / weights
    [N, k] -> out's dtype."""
    N, k = chosen.shape
    D = out.shape[1]
    out = out.contiguous() if out.stride(-1) != 1 else out
    y = torch.empty(N, D, dtype=out.dtype, device=out.device)
    _combine_kernel[(N, triton.cdiv(D, COMBINE_BLOCK))](
        out, pos.contiguous(), out if bias is None else bias, chosen.contiguous(), weights.contiguous(), y, D,
        out.stride(0), 0 if bias is None else bias.stride(0), y.stride(0), K=k, HAS_BIAS=bias is not None,
        BLOCK_D=COMBINE_BLOCK)
    return y


__all__ = ["available", "bias_swiglu", "combine_pairs"]
