"""The residual add + RMSNorm kernel (gptoss_torch/fast/norm_triton.py) in Triton's CPU interpreter: the new residual
stream bit-equal to `x + delta.to(x.dtype)` (the MoE's k rows summed first), the norm equal to norms.rms_norm, in
float32 and float16 (bf16 only on a GPU: the interpreter truncates float32 to bf16 instead of rounding it); and a
FastDecoder step with the fused norms and the fused MoE gives the NumPy oracle's logits token by token."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("triton")

CHECK = r"""
import numpy as np, torch, gptoss_np
from gptoss_torch.norms import rms_norm
from gptoss_torch.fast import mxfp4_triton
from gptoss_torch.fast.decode import FastDecoder
from gptoss_torch.fast.norm_triton import add_rms_norm
from gptoss_torch.model import Model
g = torch.Generator().manual_seed(0)
for dt, tol in ((torch.float32, 1e-6), (torch.float16, 1e-3)):
    for N, rows, D in ((1, 1, 37), (3, 4, 100), (2, 2, 2880)):
        x = torch.randn(N, D, generator=g).to(dt)
        delta = torch.randn(N * rows, D, generator=g)  # float32, as the MoE kernel writes it
        w = (1 + torch.randn(D, generator=g)).to(dt)
        x_ref = x + delta.view(N, rows, D).sum(1).to(dt)
        x_new, h = add_rms_norm(x, delta, w, 1e-5)
        assert x_new.dtype == dt and torch.equal(x_new, x_ref), (dt, N, rows)
        h_ref = rms_norm(x_ref.double(), w.double(), 1e-5)
        err = ((h.double() - h_ref).abs().max() / h_ref.abs().max()).item()
        assert h.dtype == dt and err < tol, (dt, N, rows, err)

cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), window=4)
w = gptoss_np.init_weights(cfg, seed=4)
toks = (np.arange(12) * 29 + 3) % 256
full = gptoss_np.Model(cfg, w, dtype="float64")(toks)
m = Model.from_numpy(cfg, w)
assert mxfp4_triton.enable(m)
cache = m.new_cache(16)
m(torch.as_tensor(toks[:3]), cache=cache)
fast = FastDecoder(m, 16, triton=True, fuse_norms=True)
assert fast.fuse_norms
outs = []
for i in range(3, len(toks)):
    outs.append(fast.step(torch.tensor([[toks[i]]]), torch.tensor([i]), cache)[0, 0])
    cache.length += 1
err = np.abs(torch.stack(outs).numpy() - full[3:]).max() / np.abs(full).max()
assert err < 1e-5, err
print("norm ok")
"""


def test_add_rms_norm_kernel_in_the_cpu_interpreter():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=root)
    r = subprocess.run([sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "norm ok" in r.stdout, r.stderr[-3000:]
