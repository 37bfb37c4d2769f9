"""The residual add + RMSNorm kernel (gptoss_torch/fast/norm_triton.py) in Triton's CPU interpreter: the new residual
stream bit-equal to `x + delta.to(x.dtype)` (the MoE's k rows summed first), the norm equal to norms.rms_norm, its
float32 copy times 2^64 (the MXFP4 kernel's input) exactly that norm, and the router's logits made in the same launch
those of that norm, in float32 and float16 (bf16 only on a GPU:
the interpreter truncates float32 to bf16 instead of rounding it).
tests/test_attention_triton.py runs FastDecoder with it against the NumPy oracle."""

import pytest

from interpreter import run_interpreted

pytest.importorskip("triton")

CHECK = r"""
import torch
from gptoss_torch.norms import rms_norm
from gptoss_torch.fast.norm_triton import add_rms_norm
g = torch.Generator().manual_seed(0)
for dt, tol in ((torch.float32, 1e-6), (torch.float16, 1e-3)):
    for N, rows, D in ((1, 1, 37), (3, 4, 100), (2, 2, 2880)):
        x = torch.randn(N, D, generator=g).to(dt)
        delta = torch.randn(N * rows, D, generator=g)  # float32, as the MoE kernel writes it
        w = (1 + torch.randn(D, generator=g)).to(dt)
        x_ref = x + delta.view(N, rows, D).sum(1).to(dt)
        x_new, h, hs = add_rms_norm(x, delta, w, 1e-5, scaled=True)
        assert x_new.dtype == dt and torch.equal(x_new, x_ref), (dt, N, rows)
        # the scaled copy: h as rounded, in float32, times 2^64 (exact)
        assert hs.dtype == torch.float32 and torch.equal(hs, h.float() * 2.0 ** 64), (dt, N, rows)
        assert all(torch.equal(a, b) for a, b in zip(add_rms_norm(x, delta, w, 1e-5), (x_new, h)))
        h_ref = rms_norm(x_ref.double(), w.double(), 1e-5)
        err = ((h.double() - h_ref).abs().max() / h_ref.abs().max()).item()
        assert h.dtype == dt and err < tol, (dt, N, rows, err)
        # norm_cast: rounded before or after the weight, as the plain norm of the same dtype rounds (a float32
        # rsqrt may differ in its last bit, so a few values may round the other way; the wrong order moves ~1/4)
        if dt == torch.float16:
            for cast in ("after_weight", "before_weight"):
                got = add_rms_norm(x, delta, w, 1e-5, cast=cast)[1]
                for want_cast in ("after_weight", "before_weight"):
                    off = (got != rms_norm(x_new, w, 1e-5, want_cast)).float().mean().item()
                    assert (off < 0.02) if cast == want_cast else (D < 100 or off > 0.05), (cast, want_cast, D, off)
        # the router's logits from the same launch (experts not a whole number of blocks; with and without a bias):
        # the other outputs unchanged, the logits those of h as rounded, within the router dtype's rounding
        for E, bias in ((5, True), (32, False)):
            rw = torch.randn(E, D, generator=g).to(dt)
            rb = torch.randn(E, generator=g).to(dt) if bias else None
            *same, logits = add_rms_norm(x, delta, w, 1e-5, scaled=True, router=(rw, rb))
            assert all(torch.equal(a, b) for a, b in zip(same, (x_new, h, hs))), (dt, E)
            want = h.double() @ rw.double().T + (rb.double() if bias else 0)
            err = ((logits.double() - want).abs().max() / want.abs().max()).item()
            assert logits.shape == (N, E) and logits.dtype == dt and err < tol, (dt, N, E, err)

print("norm ok")
"""


def test_add_rms_norm_kernel_in_the_cpu_interpreter():
    run_interpreted(CHECK, "norm ok")
