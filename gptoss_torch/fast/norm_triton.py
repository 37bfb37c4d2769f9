"""A decode step's residual add and the next RMSNorm in one launch: x' = x + sum_j delta_j (the attention's output,
or the k weighted expert outputs of the MoE, summed here instead of in a kernel of their own), then
h = x' / sqrt(mean(x'^2) + eps) * w. x' is rounded to x's dtype exactly as `x + delta.to(x.dtype)` rounds it (the
plain step's order), h is computed from it in float32 and rounded once. Before the MoE the same launch can also make
the router's logits h W_r^T + b_r (one program per few experts, each redoing the add and the norm, so no second
launch waits for h), rounded to the router's dtype as its matmul rounds them. Equal to the plain ops (tested in
Triton's interpreter, tests/test_norm_triton.py)."""

import torch

from .mxfp4_triton import available, gdc_wait, pdl, triton

if triton is not None:
    import triton.language as tl

    from .mxfp4_triton import INPUT_SCALE

    @triton.jit
    def _add_rms_norm_kernel(x_ptr, d_ptr, w_ptr, xo_ptr, h_ptr, hs_ptr, rw_ptr, rb_ptr, logits_ptr, D, E, stride_x,
                             stride_d, stride_xo, stride_h, stride_hs, stride_rw, stride_l, eps, ROWS: tl.constexpr,
                             BLOCK: tl.constexpr, SCALED: tl.constexpr, ROUTER: tl.constexpr, HAS_RB: tl.constexpr,
                             BLOCK_E: tl.constexpr, CAST_FIRST: tl.constexpr = False, PDL: tl.constexpr = False):
        """Program (n, b) (a token, a block of experts): s = sum of its ROWS delta rows (float32), x' = x + round(s),
        h = rmsnorm(x') * w, written by block 0; with SCALED also h (as rounded) in float32 times 2^64, the MXFP4
        matvec's input as it multiplies; with ROUTER the logits of experts [b BLOCK_E, (b + 1) BLOCK_E),
        sum_c h_c W_r[e, c] (+ b_r[e]) in float32, rounded to logits' dtype. PDL: launched as a programmatic
        dependent (mxfp4_triton.pdl), wait for the kernel before first. CAST_FIRST: rmsnorm(x') rounded to x's dtype
        before the weight (norm_cast='before_weight')."""
        if PDL:
            gdc_wait()
        n = tl.program_id(0)
        c = tl.arange(0, BLOCK)
        m = c < D
        x = tl.load(x_ptr + n * stride_x + c, mask=m, other=0.0)
        s = tl.zeros([BLOCK], tl.float32)
        for j in tl.static_range(ROWS):
            s += tl.load(d_ptr + (n * ROWS + j) * stride_d + c, mask=m, other=0.0).to(tl.float32)
        xn = (x.to(tl.float32) + s.to(x.dtype).to(tl.float32)).to(x.dtype)  # the plain step's two roundings
        xf = xn.to(tl.float32)
        r = 1.0 / tl.sqrt(tl.sum(xf * xf, axis=0) / D + eps)
        w = tl.load(w_ptr + c, mask=m, other=0.0).to(tl.float32)
        normed = xf * r
        if CAST_FIRST:  # as x's dtype, then times w: a product of two bf16 values is exact in float32, rounded once
            normed = normed.to(x.dtype).to(tl.float32)
        h = (normed * w).to(h_ptr.dtype.element_ty)
        if tl.program_id(1) == 0:  # one block of experts writes x' and h
            tl.store(xo_ptr + n * stride_xo + c, xn, mask=m)
            tl.store(h_ptr + n * stride_h + c, h, mask=m)
            if SCALED:
                tl.store(hs_ptr + n * stride_hs + c, h.to(tl.float32) * INPUT_SCALE, mask=m)
        if ROUTER:
            hf = h.to(tl.float32)
            ee = tl.program_id(1) * BLOCK_E + tl.arange(0, BLOCK_E)  # [BE]
            logits = tl.zeros([BLOCK_E], tl.float32)
            for j in tl.static_range(BLOCK_E):  # one expert's row at a time: [BLOCK] values, not [BLOCK_E, BLOCK]
                e = tl.minimum(tl.program_id(1) * BLOCK_E + j, E - 1)  # past the last expert: a row not stored
                row = tl.load(rw_ptr + e * stride_rw + c, mask=m, other=0.0).to(tl.float32)
                logits = tl.where(tl.arange(0, BLOCK_E) == j, tl.sum(hf * row, axis=0), logits)
            if HAS_RB:
                logits += tl.load(rb_ptr + ee, mask=ee < E, other=0.0).to(tl.float32)
            tl.store(logits_ptr + n * stride_l + ee, logits.to(logits_ptr.dtype.element_ty), mask=ee < E)


# experts whose router logits one program makes: gpt-oss-20b's 32 in 8 programs a token
ROUTER_BLOCK = 4


def add_rms_norm(x, delta, weight, eps, scaled=False, router=None, cast="after_weight"):
    """x [N, D] (the residual stream), delta [N * rows, D] (rows per token, summed), weight [D] ->
    (x + sum of delta rows, in x's dtype; its RMSNorm times weight, in weight's dtype), in one launch; with `scaled`
    one more output, that RMSNorm as float32 times 2^64 (exact: mxfp4_matvec's x_scaled input); with router =
    (W_r [E, D], b_r [E] or None) one more, the router's logits [N, E] of that RMSNorm, in W_r's dtype. cast: as
    norms.rms_norm's."""
    N, D = x.shape
    rows = delta.shape[0] // N
    x_new = torch.empty_like(x)
    h = torch.empty(N, D, dtype=weight.dtype, device=x.device)
    hs = torch.empty(N, D, dtype=torch.float32, device=x.device) if scaled else h
    rw, rb = router if router is not None else (h, None)
    E = rw.shape[0] if router is not None else 1
    logits = torch.empty(N, E, dtype=rw.dtype, device=x.device) if router is not None else h
    if router is not None and (rw.shape[1] != D or rw.stride(1) != 1):
        raise ValueError(f"router: expected a weight [E, {D}] with contiguous rows, got {list(rw.shape)} strides "
                         f"{rw.stride()}")
    blocks = triton.cdiv(E, ROUTER_BLOCK) if router is not None else 1
    _add_rms_norm_kernel[(N, blocks)](x, delta, weight, x_new, h, hs, rw, h if rb is None else rb, logits, D, E,
                                      x.stride(0), delta.stride(0), x_new.stride(0), h.stride(0), hs.stride(0),
                                      rw.stride(0), logits.stride(0), float(eps), ROWS=rows,
                                      BLOCK=triton.next_power_of_2(D), SCALED=scaled, ROUTER=router is not None,
                                      HAS_RB=rb is not None, BLOCK_E=ROUTER_BLOCK,
                                      CAST_FIRST=cast == "before_weight", **pdl(x.device))
    return (x_new, h) + ((hs,) if scaled else ()) + ((logits,) if router is not None else ())


__all__ = ["add_rms_norm", "available"]
