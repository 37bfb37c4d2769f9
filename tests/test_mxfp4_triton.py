"""The Triton MXFP4 kernels (gptoss_torch/fast/mxfp4_triton.py) in Triton's CPU interpreter, against the pure-torch
decode (gptoss_torch/mxfp4.py, itself bit-equal to the NumPy oracle's): every code and scale bit for bit, odd
shapes, gpt-oss-20b's real strides and K (2880 inputs = 90 blocks; rows of the 5760 x 90 and 2880 x 90 expert
matrices), the folded bias / SwiGLU / router weight, and the routing kernel against the torch router; the one-launch
dequantisation bit for bit; the grouped kernel for a prompt's MoE."""

import pytest
import torch

from interpreter import run_interpreted

pytest.importorskip("triton")

CHECK = r"""
import torch, gptoss_np
from gptoss_torch.model import Model
from gptoss_torch.mxfp4 import mxfp4_decode
from gptoss_torch.ffn import swiglu_oss
from gptoss_torch.fast.mxfp4_triton import fused_moe, mxfp4_dequantize, mxfp4_matvec, route_topk_softmax
from gptoss_torch.moe import moe_gathered
from gptoss_torch.routers import router_topk_softmax
g = torch.Generator().manual_seed(0)

def reference(blocks, scales, ids, x, bias=None, w=None, topk=1, act=False):
    xs = x.double()[torch.arange(ids.numel()) // topk]
    out = torch.einsum("nrk,nk->nr", mxfp4_decode(blocks[ids], scales[ids], torch.float64), xs)
    out = out if bias is None else out + bias[ids].double()
    if act:  # rows are (gate, linear) pairs
        out = swiglu_oss(out)
    return out if w is None else out * w.double()[:, None]

def close(out, ref, tol, what):
    assert out.dtype == torch.float32 and out.shape == ref.shape, (what, out.dtype, out.shape)
    err = ((out.double() - ref).abs().max() / ref.abs().max()).item()
    assert err < tol, (what, err)

# 1. every byte value (16 rows of one block) under 16 scales (0 and 1: subnormal, 252: near the top), one-hot
#    inputs (pair p reads input p): each output is one decoded weight, bit for bit
b = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 1, 16)
s = torch.tensor([0, 1, 100, 120, 127, 130, 200, 252, 60, 126, 128, 140, 2, 250, 251, 127], dtype=torch.uint8)
s = s.reshape(1, 16, 1)
out = mxfp4_matvec(b, s, torch.zeros(32, dtype=torch.long), torch.eye(32))  # [32 inputs, 16 rows]
assert torch.equal(out.T, mxfp4_decode(b, s, torch.float32)[0]), "E2M1 x E8M0 not bit-exact"

# 2. odd shapes: rows and blocks not multiples of the block sizes, repeated experts, bf16 input, topk > 1,
#    bias and router weight in the epilogue, SwiGLU of row pairs in the epilogue, tiles of 1..4 warps
for E, R, G in [(3, 37, 5), (5, 23, 7)]:
    blocks = torch.randint(0, 256, (E, R, G, 16), dtype=torch.uint8, generator=g)
    scales = torch.randint(118, 134, (E, R, G), dtype=torch.uint8, generator=g)
    ids = torch.tensor([2, 0, 2, 1, 2, 0])
    x = torch.randn(3, G * 32, generator=g)
    bias, w = torch.randn(E, R, generator=g), torch.rand(6, generator=g)
    close(mxfp4_matvec(blocks, scales, ids, x, topk=2), reference(blocks, scales, ids, x, topk=2), 1e-6, "plain")
    xb = x.bfloat16()
    close(mxfp4_matvec(blocks, scales, ids, xb, bias, w, topk=2, tile=(8, 2, 2, 2)),
          reference(blocks, scales, ids, xb, bias, w, 2), 1e-6, "bf16 x, bias, weight")
    # the input given as float32 times 2^64 (a decode step's add + norm writes it so), the output written times 2^64
    # (the up kernel's for the down one): the same numbers, bit for bit
    plain = mxfp4_matvec(blocks, scales, ids, xb, bias, w, topk=2)
    assert torch.equal(mxfp4_matvec(blocks, scales, ids, xb.float() * 2.0 ** 64, bias, w, topk=2, x_scaled=True),
                       plain), "x_scaled"
    assert torch.equal(mxfp4_matvec(blocks, scales, ids, xb, bias, w, topk=2, out_scaled=True), plain * 2.0 ** 64)
    try:
        mxfp4_matvec(blocks, scales, ids, xb, x_scaled=True)
        raise AssertionError("a bf16 x_scaled input ran")
    except ValueError as e:
        assert "x_scaled" in str(e)
    even = slice(0, R - 1)  # (gate, linear) pairs; outputs reach past the clamp at 7 now and then
    for tile in [(16, 4, 3, 1), (4, 8, 2, 4)]:
        close(mxfp4_matvec(blocks[:, even], scales[:, even], ids, xb, bias[:, even], w, topk=2,
                           swiglu=(1.702, 7.0), tile=tile),
              reference(blocks[:, even], scales[:, even], ids, xb, bias[:, even], w, 2, act=True), 1e-6, "swiglu")
    # split-K (the down projection's option): rows n * splits + j are pair n's parts, the bias in part 0 only; a
    # split past the last block (G = 5 in three splits of 4 blocks) is zeros
    for tile in [(8, 2, 2, 2, 2), (16, 4, 3, 1, 3)]:
        parts = mxfp4_matvec(blocks, scales, ids, x, bias, w, topk=2, tile=tile)
        assert parts.shape == (6 * tile[4], R), parts.shape
        close(parts.view(6, tile[4], R).sum(1), reference(blocks, scales, ids, x, bias, w, 2), 1e-6, f"split {tile}")
        no_bias = mxfp4_matvec(blocks, scales, ids, x, None, w, topk=2, tile=tile).view(6, tile[4], R)
        assert torch.equal(parts.view(6, tile[4], R)[:, 1:], no_bias[:, 1:]), "bias outside split 0"
    try:
        mxfp4_matvec(blocks[:, even], scales[:, even], ids, xb, swiglu=(1.702, 7.0), tile=(8, 2, 2, 2, 2))
        raise AssertionError("a split SwiGLU matvec ran")
    except ValueError as e:
        assert "split-K" in str(e)

# 3. gpt-oss-20b's real expert tensors (strides of [32 -> 2, R, 90, 16]) and K = 2880: a few rows of each (up:
#    its SwiGLU pairs; down: a float32 input, as the up kernel writes it)
for R, K, act in [(5760, 2880, True), (2880, 2880, False)]:
    blocks = torch.randint(0, 256, (2, R, K // 32, 16), dtype=torch.uint8, generator=g)
    scales = torch.randint(118, 134, (2, R, K // 32), dtype=torch.uint8, generator=g)
    rows = slice(R - 46, R - 32)  # 14 rows near the end, not aligned to a block of rows
    ids = torch.tensor([1, 0])
    x = torch.randn(2, K, generator=g)
    close(mxfp4_matvec(blocks[:, rows], scales[:, rows], ids, x.bfloat16() if act else x,
                       swiglu=(1.702, 7.0) if act else None),
          reference(blocks[:, rows], scales[:, rows], ids, x.bfloat16() if act else x, act=act), 1e-6,
          f"real {R} x {K // 32}")

# 4. the routing kernel equals the torch router (odd expert counts, bf16 logits); the fused MoE equals the
#    gathered torch path (a model's cached decode through enable(): tests/test_torch_twin.py)
ties = torch.tensor([[1.0, 3.0, 3.0, 0.5, 3.0, 2.0, 2.0, 1.0], [0.0] * 8])  # ties across and inside the top 4
for N, E, k, dt in [(5, 7, 2, torch.float32), (3, 32, 4, torch.bfloat16), (1, 128, 4, torch.float32),
                    (2, 8, 4, "ties")]:
    logits = ties if dt == "ties" else torch.randn(N, E, generator=g).to(dt)
    e_ref, w_ref = router_topk_softmax(logits.float(), k)
    e_got, w_got = route_topk_softmax(logits, k)
    # the same experts in the same order, ties to the lower index (bf16 makes ties), with the same weights
    assert torch.equal(e_got, e_ref), (e_got, e_ref)
    close(w_got, w_ref.double(), 1e-6, "route")
assert router_topk_softmax(ties, 4)[0].tolist() == [[1, 2, 4, 5], [0, 1, 2, 3]]  # the oracle's order (stable)
cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"))
m = Model.from_numpy(cfg, gptoss_np.init_weights(cfg, seed=3))
ex = m.layers[0].mlp.experts
x = torch.randn(3, cfg.d_model, generator=g)
logits = m.layers[0].mlp.router(x)
e, w = router_topk_softmax(logits, cfg.top_k)
ref = moe_gathered(x.double(), cfg, e, w.double(), ex.up, ex.down)
import gptoss_torch.fast.mxfp4_triton as mt
for route_in_up in (True, False):  # routing in the up kernel's prologue, or the routing kernel
    mt.ROUTE_IN_UP = route_in_up
    y, e_got, w_got = fused_moe(x, logits, ex.up, ex.down, cfg)
    assert torch.equal(e_got, e), (route_in_up, e_got, e)
    close(w_got, w.double(), 1e-6, f"fused_moe weights, routing in up: {route_in_up}")
    close(y.float(), ref, 1e-5, f"fused_moe, routing in up: {route_in_up}")
    # the up kernel reading the add + norm kernel's float32 copy times 2^64 instead of x: the same outputs
    hs = x.float() * 2.0 ** 64
    assert torch.equal(fused_moe(x, logits, ex.up, ex.down, cfg, x_scaled=hs)[0], y), route_in_up
mt.ROUTE_IN_UP = True
mt.TILE_DOWN = (16, 4, 3, 1, 2)  # the down projection split-K: summed here, or its parts left to the caller
close(fused_moe(x, logits, ex.up, ex.down, cfg)[0].float(), ref, 1e-5, "fused_moe, split down")
parts = fused_moe(x, logits, ex.up, ex.down, cfg, reduce=False)[0]
assert parts.shape == (3 * cfg.top_k * 2, cfg.d_model)
close(parts.view(3, -1, cfg.d_model).sum(1), ref, 1e-5, "fused_moe parts")
mt.TILE_DOWN = (16, 4, 3, 1)

# 5. the one-launch dequantisation (the prefill's per-expert matrices) equals mxfp4_decode bit for bit: every byte
#    under every tested scale, and an odd random expert (rows and blocks not multiples of its tile)
b, s = b[0], s[0]
for dt in (torch.float32, torch.bfloat16):
    # the interpreter flushes float32 subnormals when it rounds to bf16 (scales 0 and 1 make them); the GPU does not
    # (benchmarks/gpu_check.py checks every row there)
    rows = slice(None) if dt == torch.float32 else slice(2, None)
    assert torch.equal(mxfp4_dequantize(b[rows], s[rows], dt), mxfp4_decode(b[rows], s[rows], dt)), dt
    blocks = torch.randint(0, 256, (37, 7, 16), dtype=torch.uint8, generator=g)
    scales = torch.randint(110, 140, (37, 7), dtype=torch.uint8, generator=g)
    for tile in (None, (16, 8, 4), (8, 4, 2)):  # the default, a tile of gpu_check's sweep, one past both edges
        assert torch.equal(mxfp4_dequantize(blocks, scales, dt, tile=tile), mxfp4_decode(blocks, scales, dt)), tile

# 6. the grouped kernel (a prompt's MoE): pairs grouped by expert on the device, every expert in one launch; float32
#    in IEEE products, float16 on the tensor-core path (bf16 takes it on a GPU: the interpreter multiplies bf16
#    matrices wrongly, benchmarks/gpu_check.py checks it there); odd rows and blocks, padding slots, unused experts
from gptoss_torch.fast.mxfp4_triton import group_pairs, grouped_moe, mxfp4_grouped
E, R, G, N, k = 6, 38, 3, 9, 2
blocks = torch.randint(0, 256, (E, R, G, 16), dtype=torch.uint8, generator=g)
scales = torch.randint(118, 134, (E, R, G), dtype=torch.uint8, generator=g)
ids = torch.randint(0, E - 1, (N * k,), generator=g)  # expert E - 1 never routed
slots, block_expert = group_pairs(ids, E, 16)
assert sorted(slots[slots >= 0].tolist()) == list(range(N * k))  # every pair once
for b, e in enumerate(block_expert.tolist()):  # a block holds pairs of its expert only
    pairs = slots[16 * b:16 * (b + 1)]
    assert (ids[pairs[pairs >= 0]] == e).all() and (e >= 0 or (pairs < 0).all())
for dt in (torch.float32, torch.float16):
    x = torch.randn(N, G * 32, generator=g).to(dt)
    bias, w = torch.randn(E, R, generator=g), torch.rand(N * k, generator=g)
    for tile in ((16, 16, 2, 4, 3, False), (16, 32, 1, 4, 2, True)):  # (pairs, rows, blocks, warps, stages, swap)
        close(mxfp4_grouped(blocks, scales, slots, block_expert, x, bias, topk=k, tile=tile),
              reference(blocks, scales, ids, x, bias, topk=k), 1e-6, f"grouped {dt} {tile}")
        close(mxfp4_grouped(blocks, scales, slots, block_expert, x, bias, w, topk=k, swiglu=(1.702, 7.0), tile=tile),
              reference(blocks, scales, ids, x, bias, w, k, act=True), 1e-5, f"grouped swiglu {dt} {tile}")
# whole tiles (rows and blocks multiples of the tile: no masks, padding slots read row 0 and are not stored)
E, R, G = 4, 32, 4
blocks = torch.randint(0, 256, (E, R, G, 16), dtype=torch.uint8, generator=g)
scales = torch.randint(118, 134, (E, R, G), dtype=torch.uint8, generator=g)
ids = torch.randint(0, E, (N * k,), generator=g)
slots, block_expert = group_pairs(ids, E, 16)
x, bias, w = torch.randn(N, G * 32, generator=g), torch.randn(E, R, generator=g), torch.rand(N * k, generator=g)
for tile in ((16, 16, 2, 4, 3, True), (16, 32, 1, 4, 2, False)):
    close(mxfp4_grouped(blocks, scales, slots, block_expert, x, bias, w, topk=k, swiglu=(1.702, 7.0), tile=tile),
          reference(blocks, scales, ids, x, bias, w, k, act=True), 1e-5, f"grouped whole tiles {tile}")
ex = m.layers[0].mlp.experts
x = torch.randn(40, cfg.d_model, generator=g)  # 40 tokens x 4 pairs: past the decode kernel's few pairs
logits = m.layers[0].mlp.router(x)
e, w = router_topk_softmax(logits, cfg.top_k)
y, e_got, w_got = grouped_moe(x, logits, ex.up, ex.down, cfg)
close(y.float(), moe_gathered(x.double(), cfg, e, w.double(), ex.up, ex.down), 1e-5, "grouped_moe")
print("triton ok")
"""


def test_triton_mxfp4_kernels_in_the_cpu_interpreter():
    run_interpreted(CHECK, "triton ok")


@pytest.mark.parametrize("what,bad,match", [
    ("blocks as int8", dict(blocks=torch.zeros(2, 4, 3, 16, dtype=torch.int8)), "blocks: expected uint8"),
    ("blocks of 8 bytes", dict(blocks=torch.zeros(2, 4, 3, 8, dtype=torch.uint8)), r"\[E, R, G, 16\]"),
    ("one scale short", dict(scales=torch.zeros(2, 4, 2, dtype=torch.uint8)), r"scales: expected uint8 \[2, 4, 3\]"),
    ("float scales", dict(scales=torch.zeros(2, 4, 3)), "scales: expected uint8"),
    ("x one block short", dict(x=torch.zeros(1, 64)), "x: expected 96 inputs"),
])
def test_the_kernel_wrappers_name_a_wrong_operand(what, bad, match):
    """A wrong operand is refused before any launch, naming it and what was expected (it would otherwise be read as
    other bytes, or fail deep inside Triton)."""
    from gptoss_torch.fast.mxfp4_triton import mxfp4_dequantize, mxfp4_grouped, mxfp4_matvec
    args = dict(blocks=torch.zeros(2, 4, 3, 16, dtype=torch.uint8), scales=torch.zeros(2, 4, 3, dtype=torch.uint8),
                x=torch.zeros(1, 96))
    args.update(bad)
    with pytest.raises(ValueError, match=match):
        mxfp4_matvec(args["blocks"], args["scales"], torch.zeros(1, dtype=torch.long), args["x"])
    with pytest.raises(ValueError, match=match):
        mxfp4_grouped(args["blocks"], args["scales"], torch.zeros(16, dtype=torch.long),
                      torch.zeros(1, dtype=torch.long), args["x"])
    if "x" not in bad:
        with pytest.raises(ValueError, match=match.replace(r"\[E, R, G, 16\]", r"\[R, G, 16\]").replace(
                r"\[2, 4, 3\]", r"\[4, 3\]")):
            mxfp4_dequantize(args["blocks"][0], args["scales"][0], torch.float32)
