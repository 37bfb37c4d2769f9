"""A decode step's dense matrix-vector products (q/k/v and the attention's output projection, one token) as one
Triton launch each, opt-in beside F.linear: the weights streamed 16 bytes a load through a pipelined loop, float32
sums, the bias added and the result rounded once, as cuBLAS's matmul rounds it. Where cuBLAS may split such a
product over two kernels (a split-K pass and its reduction) this is one, and, being Triton, it can take part in
programmatic dependent launch (mxfp4_triton.PDL) with the rest of the step's kernels. Equal to F.linear (tested in
Triton's interpreter, tests/test_gemv_triton.py); off until benchmarks/gpu_check.py times it against cuBLAS.

Runs on CUDA with Triton; with TRITON_INTERPRET=1 on the CPU.
"""

import torch

from .mxfp4_triton import available, gdc_wait, pdl, triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _gemv_kernel(x_ptr, w_ptr, b_ptr, out_ptr, N, K, stride_w, HAS_BIAS: tl.constexpr, BLOCK_N: tl.constexpr,
                     BLOCK_K: tl.constexpr, NUM_STAGES: tl.constexpr, PDL: tl.constexpr = False):
        """out[n] = sum_k W[n, k] x[k] (+ b[n]) for BLOCK_N rows a program: products summed in float32 per column
        of the [BLOCK_N, BLOCK_K] tile, then across it, rounded once to out's dtype. PDL: launched as a programmatic
        dependent (mxfp4_triton.pdl), wait for the kernel before first."""
        if PDL:
            gdc_wait()
        rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN]
        rmask = rows < N
        w_rows = w_ptr + rows[:, None].to(tl.int64) * stride_w  # [BN, 1]: each row's start
        acc = tl.zeros([BLOCK_N, BLOCK_K], dtype=tl.float32)
        for k0 in tl.range(0, K, BLOCK_K, num_stages=NUM_STAGES):  # software-pipelined on the GPU
            ks = k0 + tl.arange(0, BLOCK_K)  # [BK]
            kmask = ks < K
            w = tl.load(w_rows + ks[None, :], mask=rmask[:, None] & kmask[None, :], other=0.0)  # [BN, BK]
            x = tl.load(x_ptr + ks, mask=kmask, other=0.0)  # [BK]
            acc += w.to(tl.float32) * x.to(tl.float32)[None, :]
        out = tl.sum(acc, axis=1)  # [BN]
        if HAS_BIAS:
            out += tl.load(b_ptr + rows, mask=rmask, other=0.0).to(tl.float32)
        tl.store(out_ptr + rows, out.to(out_ptr.dtype.element_ty), mask=rmask)


# (rows, inputs a loop step, warps, pipeline stages) a program: 8 rows x 256 inputs (4 KB of bf16 weights a step) on 4
# warps, 3 stages, so gpt-oss-20b's q/k/v (5120 rows) and output projection (2880) make 640 and 360 programs, until
# benchmarks/gpu_check.py times others
GEMV_TILE = (8, 256, 4, 3)
ON = False  # FastDecoder's q/k/v and output projections by gemv (one token) instead of F.linear


def gemv(x, weight, bias=None, tile=None):
    """F.linear(x, weight, bias) for one row x [..., K] (a single token), weight [N, K], bias [N] or None -> [..., N]
    in x's dtype (float32 sums, rounded once), in one launch. tile: (rows, inputs a step, warps, stages)."""
    K = x.shape[-1]
    if x.numel() != K:
        raise ValueError(f"gemv: one row of {K} inputs, got x {list(x.shape)} (F.linear takes more rows)")
    if weight.dim() != 2 or weight.shape[1] != K or weight.stride(1) != 1:
        raise ValueError(f"gemv: weight [N, {K}] with contiguous rows, got {list(weight.shape)} strides "
                         f"{weight.stride()}")
    N = weight.shape[0]
    block_n, block_k, warps, stages = tile or GEMV_TILE
    out = torch.empty(*x.shape[:-1], N, dtype=x.dtype, device=x.device)
    _gemv_kernel[(triton.cdiv(N, block_n),)](x.contiguous(), weight, out if bias is None else bias, out, N, K,
                                             weight.stride(0), HAS_BIAS=bias is not None, BLOCK_N=block_n,
                                             BLOCK_K=block_k, NUM_STAGES=stages, num_warps=warps, **pdl(x.device))
    return out


__all__ = ["GEMV_TILE", "ON", "available", "gemv"]
