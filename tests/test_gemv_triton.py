"""The one-token matrix-vector kernel (gptoss_torch/fast/gemv_triton.py) in Triton's CPU interpreter: equal to the
product in float64 (float32 and float16; bf16 only on a GPU, where benchmarks/gpu_check.py checks decode with it:
the interpreter truncates float32 to bf16 instead of rounding it) on shapes that fill no whole tile, with and
without a bias; a wrong operand refused by name; and the fast decoder with it against the NumPy oracle."""

import pytest

from interpreter import run_interpreted

pytest.importorskip("triton")

CHECK = r"""
import numpy as np
import torch
import gptoss_np
from gptoss_torch.fast import gemv_triton, mxfp4_triton
from gptoss_torch.fast.decode import FastDecoder
from gptoss_torch.model import Model
g = torch.Generator().manual_seed(0)
for dt, tol in ((torch.float32, 1e-6), (torch.float16, 2e-3)):
    for N, K, bias, tile in ((37, 100, True, None), (64, 2880, False, None), (5, 300, True, (4, 64, 2, 2))):
        x, w = torch.randn(1, K, generator=g).to(dt), torch.randn(N, K, generator=g).to(dt)
        b = torch.randn(N, generator=g).to(dt) if bias else None
        ref = x.double() @ w.double().T + (b.double() if bias else 0)
        for shaped in (x, x.view(1, 1, K)):  # a token as [1, K] or [B, 1, K]
            out = gemv_triton.gemv(shaped, w, b, tile=tile)
            err = ((out.double().reshape(1, N) - ref).abs().max() / ref.abs().max()).item()
            assert out.shape == (*shaped.shape[:-1], N) and out.dtype == dt and err < tol, (dt, N, K, err)
for bad, match in (((torch.zeros(2, 8), torch.zeros(3, 8)), "one row of 8 inputs"),
                   ((torch.zeros(1, 8), torch.zeros(3, 9)), r"weight \[N, 8\]"),
                   ((torch.zeros(1, 8), torch.zeros(8, 3).T), "contiguous rows")):
    try:
        gemv_triton.gemv(*bad)
    except ValueError as e:
        assert __import__("re").search(match, str(e)), e
    else:
        raise AssertionError(f"no error for {match}")

# the fast decoder with every decode kernel and the projections by gemv, against the oracle (as
# tests/test_attention_triton.py checks it without them)
cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), window=4)
weights = gptoss_np.init_weights(cfg, seed=2)
toks = (np.arange(12) * 37 + 5) % 256
full = gptoss_np.Model(cfg, weights, dtype="float64")(toks)
m = Model.from_numpy(cfg, weights)
assert mxfp4_triton.enable(m)
calls = []
real = gemv_triton.gemv
gemv_triton.gemv = lambda *a, **k: calls.append(1) or real(*a, **k)
fast = FastDecoder(m, 16, triton=True, fuse_norms=True, fuse_rope=True, gemv=True)
cache = m.new_cache(16)
m(torch.as_tensor(toks[:3]), cache=cache)
outs = []
for i in range(3, 9):
    outs.append(fast.step(torch.tensor([[toks[i]]]), torch.tensor([i]), cache)[0, 0])
    cache.length += 1
err = np.abs(torch.stack(outs).numpy() - full[3:9]).max() / np.abs(full).max()
assert err < 1e-5 and len(calls) == 6 * 2 * cfg.n_layers, (err, len(calls))
assert not FastDecoder(m, 16).gemv  # off by default (gemv_triton.ON) and on the CPU
print("gemv ok")
"""


def test_gemv_kernel_and_the_decoder_with_it_in_the_cpu_interpreter():
    run_interpreted(CHECK, "gemv ok")
