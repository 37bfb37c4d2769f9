"""A decode step's residual add and the next RMSNorm in one launch: x' = x + sum_j delta_j (the attention's output,
or the k weighted expert outputs of the MoE, summed here instead of in a kernel of their own), then
h = x' / sqrt(mean(x'^2) + eps) * w. x' is rounded to x's dtype exactly as `x + delta.to(x.dtype)` rounds it (the
plain step's order), h is computed from it in float32 and rounded once. Equal to the plain ops (tested in Triton's
interpreter, tests/test_norm_triton.py)."""

import torch

from .mxfp4_triton import available, triton

if triton is not None:
    import triton.language as tl

    from .mxfp4_triton import INPUT_SCALE

    @triton.jit
    def _add_rms_norm_kernel(x_ptr, d_ptr, w_ptr, xo_ptr, h_ptr, hs_ptr, D, stride_x, stride_d, stride_xo, stride_h,
                             stride_hs, eps, ROWS: tl.constexpr, BLOCK: tl.constexpr, SCALED: tl.constexpr):
        """Program n (a token): s = sum of its ROWS delta rows (float32), x' = x + round(s), h = rmsnorm(x') * w;
        with SCALED also h (as rounded) in float32 times 2^64, the MXFP4 matvec's input as it multiplies."""
        n = tl.program_id(0)
        c = tl.arange(0, BLOCK)
        m = c < D
        x = tl.load(x_ptr + n * stride_x + c, mask=m, other=0.0)
        s = tl.zeros([BLOCK], tl.float32)
        for j in tl.static_range(ROWS):
            s += tl.load(d_ptr + (n * ROWS + j) * stride_d + c, mask=m, other=0.0).to(tl.float32)
        xn = (x.to(tl.float32) + s.to(x.dtype).to(tl.float32)).to(x.dtype)  # the plain step's two roundings
        tl.store(xo_ptr + n * stride_xo + c, xn, mask=m)
        xf = xn.to(tl.float32)
        r = 1.0 / tl.sqrt(tl.sum(xf * xf, axis=0) / D + eps)
        w = tl.load(w_ptr + c, mask=m, other=0.0).to(tl.float32)
        h = (xf * r * w).to(h_ptr.dtype.element_ty)
        tl.store(h_ptr + n * stride_h + c, h, mask=m)
        if SCALED:
            tl.store(hs_ptr + n * stride_hs + c, h.to(tl.float32) * INPUT_SCALE, mask=m)


def add_rms_norm(x, delta, weight, eps, scaled=False):
    """x [N, D] (the residual stream), delta [N * rows, D] (rows per token, summed), weight [D] ->
    (x + sum of delta rows, in x's dtype; its RMSNorm times weight, in weight's dtype), in one launch; with `scaled`
    a third output, that RMSNorm as float32 times 2^64 (exact: mxfp4_matvec's x_scaled input)."""
    N, D = x.shape
    rows = delta.shape[0] // N
    x_new = torch.empty_like(x)
    h = torch.empty(N, D, dtype=weight.dtype, device=x.device)
    hs = torch.empty(N, D, dtype=torch.float32, device=x.device) if scaled else h
    _add_rms_norm_kernel[(N,)](x, delta, weight, x_new, h, hs, D, x.stride(0), delta.stride(0), x_new.stride(0),
                               h.stride(0), hs.stride(0), float(eps), ROWS=rows, BLOCK=triton.next_power_of_2(D),
                               SCALED=scaled)
    return (x_new, h, hs) if scaled else (x_new, h)


__all__ = ["add_rms_norm", "available"]
