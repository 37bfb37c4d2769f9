"""The attention kernels (gptoss_torch/fast/attention_triton.py) in Triton's CPU interpreter. Decode, against
attention.decode_attention in float64 (itself checked against the oracle): full layers (stopping at the position),
sliding rings, sinks or none, GQA and MHA, float32 and bf16, one program per kv head and the split
(flash-decoding) pair of kernels; the fast decode step using it (with the MoE and residual add + norm kernels)
gives the oracle's logits token by token past the window. Prompts: the flash-attention kernel against attention.attention, and inside the model with the grouped
MoE kernel (tests/test_mxfp4_triton.py checks that kernel alone)."""

import pytest

from interpreter import run_interpreted

pytest.importorskip("triton")

CHECK = r"""
import numpy as np, torch, gptoss_np
from gptoss_torch.attention import attention, attention_mask, decode_attention
from gptoss_torch.fast.attention_triton import decode_attention_triton
from gptoss_torch.fast import mxfp4_triton
from gptoss_torch.fast.decode import FastDecoder
from gptoss_torch.model import Model
g = torch.Generator().manual_seed(0)
# (B, slots, Hq, Hkv, d, window, ring, position, sinks, dtype, tolerance)
CASES = [(1, 20, 4, 2, 16, None, False, 13, True, torch.float32, 1e-6),  # full layer, slots past p empty
         (2, 4, 8, 1, 16, 4, True, 9, True, torch.float32, 1e-6),  # a ring of 4 past the window, batch 2, G = 8
         (1, 37, 4, 4, 32, None, False, 36, False, torch.float32, 1e-6),  # MHA, no sinks, 37 slots (2 blocks)
         (1, 8, 8, 2, 16, 8, True, 5, True, torch.bfloat16, 8e-3),  # a ring not yet full; bf16 out (2^-8)
         (1, 100, 16, 2, 64, None, False, 70, True, torch.bfloat16, 8e-3),  # gpt-oss's head_dim
         (1, 40, 8, 2, 16, 40, True, 100, True, torch.float32, 1e-6)]  # a full ring of 40 (split: 3 or 2 programs)
for B, S, Hq, Hkv, d, window, ring, p, sink, dt, tol in CASES:
    q, k, v = (torch.randn(B, n, h, d, generator=g).to(dt) for n, h in ((1, Hq), (S, Hkv), (S, Hkv)))
    if ring:  # slot s holds the latest position = s mod S that is <= p
        kpos = torch.tensor([p - (p - s) % S for s in range(S)])
    else:
        kpos = torch.arange(S)
    kpos[(kpos < 0) | (kpos > p)] = -1
    sinks = 2 * torch.randn(Hq, generator=g) if sink else None
    pos = torch.tensor([p])
    ref = decode_attention(q.double(), k.double(), v.double(), attention_mask(pos, kpos, window),
                           None if sinks is None else sinks.double())
    # one program per kv head, then the split kernels: 16 or 32 slots a program (on a full layer, splits past p
    # empty); products elementwise, then on the tensor-core path (there float16 stands in for bf16: the interpreter
    # multiplies bf16 matrices wrongly; benchmarks/gpu_check.py checks bf16 on a GPU)
    for mma in (False, True):
        x = (q, k, v) if not (mma and dt == torch.bfloat16) else (q.half(), k.half(), v.half())
        for split in (0, 16) if mma else (0, 16, 32):  # (the tensor-core kernel rounds splits up to 32 slots)
            out = decode_attention_triton(*x, kpos, pos, window, sinks, ring=ring, split_slots=split, mma=mma)
            assert out.dtype == x[0].dtype and out.shape == ref.shape
            err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
            assert err < tol, (B, S, Hq, Hkv, d, window, ring, p, sink, dt, split, mma, err)
        if mma and dt == torch.float32:  # block sizes: 16 slots a step, and past the slots there are
            for block_s in (16, 128):
                out = decode_attention_triton(q, k, v, kpos, pos, window, sinks, ring=ring, split_slots=0,
                                              block_s=block_s)
                err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
                assert err < tol, (B, S, Hq, Hkv, d, window, ring, p, sink, dt, block_s, err)

# the prompt kernel: causal, a sliding window, empty slots (-1), queries later than the first keys (a cache that
# already holds tokens), sinks or none, GQA; float32 through IEEE products, float16 through the tensor-core path
# (bf16 takes the same path on a GPU: the interpreter multiplies bf16 matrices wrongly, benchmarks/gpu_check.py
# checks it there)
from gptoss_torch.fast.attention_triton import prefill_attention_triton
for B, T, S, Hq, Hkv, d, window, sink, dt, tol in [(1, 37, 37, 4, 2, 16, None, True, torch.float32, 1e-5),
                                                   (2, 20, 50, 8, 2, 32, 8, True, torch.float32, 1e-5),
                                                   (1, 70, 70, 4, 4, 16, None, False, torch.float16, 2e-3),
                                                   # a key block whose first key is a query block's last position,
                                                   # and one whose last key only the first query's window reaches
                                                   (1, 20, 21, 4, 2, 16, None, True, torch.float32, 1e-5),
                                                   (1, 20, 40, 4, 2, 16, 6, True, torch.float32, 1e-5)]:
    q = torch.randn(B, T, Hq, d, generator=g).to(dt)
    k, v = (torch.randn(B, S, Hkv, d, generator=g).to(dt) for _ in range(2))
    qpos, kpos = torch.arange(S - T, S), torch.arange(S)
    if S > T:
        kpos[S - 3:] = -1
    sinks = torch.randn(Hq, generator=g) if sink else None
    ref = attention(q.double(), k.double(), v.double(), attention_mask(qpos, kpos, window),
                    None if sinks is None else sinks.double())
    for bm, bn in ((16, 16), (32, 16)):
        out = prefill_attention_triton(q, k, v, qpos, kpos, window, sinks, tile=(bm, bn, 4, 3))
        err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
        assert out.dtype == dt and err < tol, (B, T, S, window, dt, bm, bn, err)

cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), window=4)
w = gptoss_np.init_weights(cfg, seed=2)
toks = (np.arange(12) * 37 + 5) % 256
full = gptoss_np.Model(cfg, w, dtype="float64")(toks)

def decode_err(model, fast, stop):  # tokens 3..stop-1 one at a time by `fast` after a 3-token prompt: worst error
    cache = model.new_cache(16)
    model(torch.as_tensor(toks[:3]), cache=cache)
    outs = []
    for i in range(3, stop):
        outs.append(fast.step(torch.tensor([[toks[i]]]), torch.tensor([i]), cache)[0, 0])
        cache.length += 1
    return np.abs(torch.stack(outs).numpy() - full[3:stop]).max() / np.abs(full).max()

m = Model.from_numpy(cfg, w)
assert mxfp4_triton.enable(m)  # every decode kernel: the MoE's, attention, residual add + norm (its sum over k),
fast = FastDecoder(m, 16, triton=True, fuse_norms=True, fuse_rope=True)  # RoPE + the cache write
assert fast.fuse_norms and fast.fuse_rope
err = decode_err(m, fast, 9)  # positions 3..8: the sliding layers' ring of 4 wraps
assert err < 1e-5, err
# the same with the down projection split-K in two (the add + norm kernel then sums 8 rows, not 4)
mxfp4_triton.TILE_DOWN = (16, 4, 3, 1, 2)
err = decode_err(m, fast, 5)
assert err < 1e-5, err
mxfp4_triton.TILE_DOWN = (16, 4, 3, 1)
# RoPE + the cache write alone (the plain MoE, attention and norms)
plain = Model.from_numpy(cfg, w)
err = decode_err(plain, FastDecoder(plain, 16, triton=False, fuse_norms=False, fuse_rope=True), 8)  # past the window
assert err < 1e-5, err

# the model with the prompt kernels enabled (flash attention, the grouped MoE: 20 tokens x 4 pairs are past the
# decode kernel's few): one prompt longer than the window, then a second one into the same cache
from gptoss_torch.fast import enable
toks = (np.arange(30) * 37 + 5) % 256
full = gptoss_np.Model(cfg, w, dtype="float64")(toks)
m = Model.from_numpy(cfg, w)
assert enable(m, prefill=True) == {"mxfp4": True, "prefill moe": True, "prefill attention": True,
                                   "prefill norms": True}
assert all(b.attn.rope_kernel is not None and b.attn_norm.fused for b in m.layers)  # RoPE, F.rms_norm
cache = m.new_cache(32)
got = torch.cat([m(torch.as_tensor(toks[:20]), cache=cache), m(torch.as_tensor(toks[20:]), cache=cache)])
err = np.abs(got.numpy() - full).max() / np.abs(full).max()
assert err < 1e-5, err
# and enable without prefill takes the prompt kernels away again (the decode kernels stay)
assert enable(m) == {"mxfp4": True, "prefill moe": False, "prefill attention": False,
                     "prefill norms": False}
assert all(b.attn.prefill_kernel is None and b.attn.rope_kernel is None and not b.ffn_norm.fused
           and b.mlp.grouped is None and b.mlp.fused is not None for b in m.layers)
print("attention ok")
"""


def test_decode_attention_kernel_in_the_cpu_interpreter():
    run_interpreted(CHECK, "attention ok")
