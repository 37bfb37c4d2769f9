"""The Triton kernels compile for Hopper (sm_90) with Triton's own compiler and its bundled ptxas, no GPU needed: what
the interpreter, which runs the kernels as NumPy, cannot show (loop bounds read from memory, software pipelining,
dtypes of literals, register and shared-memory limits). Each variant is a launch a kernel's Python wrapper makes at
gpt-oss-20b's shapes, recorded on the CPU and compiled as the JIT would specialise it (benchmarks/kernel_sass.py);
none may need Triton's runtime scratch allocator, which is unset in a torch process and would fail at launch."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import re
import sys
import types
import warnings
warnings.filterwarnings("ignore")
import torch
sys.path.insert(0, "benchmarks")
from kernel_sass import compile_launch
from gptoss_torch.fast import attention_triton as at, gemv_triton, moe_glue_triton as glue, mxfp4_triton as mx
from gptoss_torch.fast import norm_triton, rope_cache_triton

# each kernel as its wrapper launches it at gpt-oss-20b's shapes (the launch recorded, not run: no GPU), compiled
# for sm_90 as the JIT would specialise it
BF16, F32 = torch.bfloat16, torch.float32

def compiles(module, name, call):
    k = compile_launch(module, name, call)
    assert k.metadata.global_scratch_size == 0, name
    assert k.metadata.shared <= 227 * 1024, (name, k.metadata.shared)  # an H100/H200 block's shared memory
    return k

def experts(R, E=32):
    return (torch.empty(E, R, 90, 16, dtype=torch.uint8), torch.empty(E, R, 90, dtype=torch.uint8),
            torch.empty(E, R, dtype=BF16))

# up: the activation (float32 times 2^64 as a decode step's add + norm writes it, or bf16 as Model.run's few-token
# MoE passes it), 4 pairs a token, routing in the prologue or the routing kernel's experts, SwiGLU in the epilogue,
# its output times 2^64; down: that output, bias and router weight, also split-K. The E2M1 values are float32
# subnormals for exponent 0, so no multiply or add may flush them (.ftz)
(ub, us, ubias), (db, ds, dbias) = experts(5760), experts(2880)
ids, w = torch.zeros(4, dtype=torch.long), torch.empty(4)
logits = torch.empty(1, 32, dtype=BF16)
calls = [lambda: mx.mxfp4_matvec(ub, us, ids, torch.empty(1, 2880), ubias, w, topk=4, swiglu=(1.702, 7.0),
                                 logits=logits, x_scaled=True, out_scaled=True),
         lambda: mx.mxfp4_matvec(ub, us, ids, torch.empty(1, 2880, dtype=BF16), ubias, topk=4, swiglu=(1.702, 7.0),
                                 out_scaled=True),
         lambda: mx.mxfp4_matvec(db, ds, ids, torch.empty(4, 2880), dbias, w, tile=mx.TILE_DOWN, x_scaled=True),
         lambda: mx.mxfp4_matvec(db, ds, ids, torch.empty(4, 2880), dbias, w, tile=(16, 4, 3, 1, 2), x_scaled=True)]
for call in calls:
    k = compiles(mx, "_mxfp4_matvec_kernel", call)
    flushed = [ln.strip() for ln in k.asm["ptx"].splitlines() if re.search(r"\b(fma|mul|add)\.[a-z.]*ftz", ln)]
    assert not flushed, flushed[:3]
compiles(mx, "_route_kernel", lambda: mx.route_topk_softmax(logits, 4))
compiles(mx, "_mxfp4_dequant_kernel", lambda: mx.mxfp4_dequantize(ub[0], us[0], BF16))
# decode attention on a full layer of 128 slots (one program a kv head: the loop bound min(S, p + 1) read from
# memory; "no window" 2^62, an int64), products on the tensor cores in bf16, in IEEE float32 for a float32 model, or
# elementwise; then on 4096 slots, the split (flash-decoding) pair
def decode(dt, S, mma, ring=False):
    q, (k, v) = torch.empty(1, 1, 64, 64, dtype=dt), (torch.empty(1, S, 8, 64, dtype=dt) for _ in range(2))
    return lambda: at.decode_attention_triton(q, k, v, torch.arange(S), torch.tensor([S - 1]), 128 if ring else None,
                                              torch.empty(64), 0.125, ring=ring, mma=mma)
for dt, mma in ((BF16, True), (F32, True), (BF16, False)):
    compiles(at, "_decode_attention_kernel", decode(dt, 128, mma))
compiles(at, "_decode_attention_kernel", decode(BF16, 128, True, ring=True))  # a sliding layer's ring
for mma in (True, False):
    compiles(at, "_decode_attention_split_kernel", decode(BF16, 4096, mma))
compiles(at, "_decode_attention_combine_kernel", decode(BF16, 4096, True))
# the grouped MoE kernel of a prompt (64 tokens): up (bf16 input, SwiGLU) and down (router weight; bf16, and a float32
# model's IEEE products), in both orientations
pairs = torch.arange(256) % 32
for up, dt, swap in ((True, BF16, True), (False, BF16, True), (False, F32, True), (True, BF16, False),
                     (False, F32, False)):
    tile = (*mx.GROUP_TILE[:5], swap)
    slots, block_expert = mx.group_pairs(pairs, 32, tile[0])
    b, sc, bias = (ub, us, ubias) if up else (db, ds, dbias)
    x = torch.empty(64 if up else 256, 2880, dtype=dt)
    kw = dict(topk=4, swiglu=(1.702, 7.0)) if up else dict(weights=torch.empty(256))
    compiles(mx, "_mxfp4_grouped_kernel",
             lambda: mx.mxfp4_grouped(b, sc, slots, block_expert, x, bias, tile=tile, **kw))
# the grouped product's glue at a 2k prompt (8192 pairs): the up bias + SwiGLU, then the down bias, router weights and
# the sum over a token's 4 pairs
P = 8192
compiles(glue, "_bias_swiglu_kernel",
         lambda: glue.bias_swiglu(torch.empty(P, 5760, dtype=BF16), ubias, torch.zeros(P, dtype=torch.long), 1.702,
                                  7.0))
compiles(glue, "_combine_kernel",
         lambda: glue.combine_pairs(torch.empty(P, 2880, dtype=BF16), torch.arange(P), dbias,
                                    torch.zeros(P // 4, 4, dtype=torch.long), torch.empty(P // 4, 4)))
# a decode step's residual add + RMSNorm (the MoE's four rows summed, the float32 copy times 2^64 written too)
compiles(norm_triton, "_add_rms_norm_kernel",
         lambda: norm_triton.add_rms_norm(torch.empty(1, 2880, dtype=BF16), torch.empty(4, 2880),
                                          torch.empty(2880, dtype=BF16), 1e-5, scaled=True))
# ... and before the MoE: the attention's output added, the router's logits made (32 experts, bias)
compiles(norm_triton, "_add_rms_norm_kernel",
         lambda: norm_triton.add_rms_norm(torch.empty(1, 2880, dtype=BF16), torch.empty(1, 2880, dtype=BF16),
                                          torch.empty(2880, dtype=BF16), 1e-5, scaled=True,
                                          router=(torch.empty(32, 2880, dtype=BF16), torch.empty(32, dtype=BF16))))
# one token's q/k/v (5120 x 2880) and output projection (2880 x 4096) by the GEMV, bf16 with a bias
for N, K in ((5120, 2880), (2880, 4096)):
    compiles(gemv_triton, "_gemv_kernel", lambda: gemv_triton.gemv(torch.empty(1, K, dtype=BF16),
                                                                   torch.empty(N, K, dtype=BF16),
                                                                   torch.empty(N, dtype=BF16)))
# a decode step's RoPE + KV-cache write on a sliding layer's ring, gpt-oss-20b's heads (64 query, 8 key/value)
ring = types.SimpleNamespace(k=torch.empty(1, 128, 8, 64, dtype=BF16), v=torch.empty(1, 128, 8, 64, dtype=BF16),
                             pos=torch.empty(128, dtype=torch.long), n_slots=128, window=128)
compiles(rope_cache_triton, "_rope_cache_kernel",
         lambda: rope_cache_triton.rope_cache_write(torch.empty(1, 1, 80, 64, dtype=BF16),
                                                    torch.empty(4096, 2, 64, dtype=BF16), torch.tensor([5]), ring,
                                                    64, 8))
# a prompt (2048 tokens): RoPE of q and k; flash attention, bf16 on the tensor cores, float32 with IEEE products
T = 2048
compiles(rope_cache_triton, "_rope_kernel",
         lambda: rope_cache_triton.apply_rope_triton(torch.empty(1, T, 64, 64, dtype=BF16),
                                                     torch.empty(1, T, 8, 64, dtype=BF16),
                                                     torch.empty(T, 32, dtype=BF16), torch.empty(T, 32, dtype=BF16)))
for dt in (BF16, F32):
    q, (k, v) = torch.empty(1, T, 64, 64, dtype=dt), (torch.empty(1, T, 8, 64, dtype=dt) for _ in range(2))
    compiles(at, "_prefill_attention_kernel",
             lambda: at.prefill_attention_triton(q, k, v, torch.arange(T), torch.arange(T), None,
                                                 torch.empty(64, dtype=BF16), 0.125))
print("compiled")
"""

PDL_SCRIPT = r"""
import types
import warnings
warnings.filterwarnings("ignore")
import torch
import sys
sys.path.insert(0, "benchmarks")
from kernel_sass import compile_kernel, launch_signature, recorded
from gptoss_torch.fast import attention_triton as at, gemv_triton, mxfp4_triton as mx, norm_triton, rope_cache_triton

BF16 = torch.bfloat16
# a decode step's Triton launches at gpt-oss-20b's shapes: up matvec (routing in it), add + norm (the router in it),
# RoPE + cache write, attention on a sliding ring (one program a kv head) and on a full layer (split, combine)
ub, us, ubias = (torch.empty(32, 5760, 90, 16, dtype=torch.uint8), torch.empty(32, 5760, 90, dtype=torch.uint8),
                 torch.empty(32, 5760, dtype=BF16))
q, (k, v) = torch.empty(1, 1, 64, 64, dtype=BF16), (torch.empty(1, 4096, 8, 64, dtype=BF16) for _ in range(2))
ring = types.SimpleNamespace(k=torch.empty(1, 128, 8, 64, dtype=BF16), v=torch.empty(1, 128, 8, 64, dtype=BF16),
                             pos=torch.empty(128, dtype=torch.long), n_slots=128, window=128)
full = lambda: at.decode_attention_triton(q, k, v, torch.arange(4096), torch.tensor([4095]), None, torch.empty(64),
                                          0.125)
cases = [(mx, "_mxfp4_matvec_kernel", lambda: mx.mxfp4_matvec(
             ub, us, torch.zeros(4, dtype=torch.long), torch.empty(1, 2880), ubias, torch.empty(4), topk=4,
             swiglu=(1.702, 7.0), logits=torch.empty(1, 32, dtype=BF16), x_scaled=True, out_scaled=True)),
         (norm_triton, "_add_rms_norm_kernel", lambda: norm_triton.add_rms_norm(
             torch.empty(1, 2880, dtype=BF16), torch.empty(1, 2880, dtype=BF16), torch.empty(2880, dtype=BF16), 1e-5,
             scaled=True, router=(torch.empty(32, 2880, dtype=BF16), torch.empty(32, dtype=BF16)))),
         (rope_cache_triton, "_rope_cache_kernel", lambda: rope_cache_triton.rope_cache_write(
             torch.empty(1, 1, 80, 64, dtype=BF16), torch.empty(4096, 2, 64, dtype=BF16), torch.tensor([5]), ring,
             64, 8)),
         (at, "_decode_attention_kernel", lambda: at.decode_attention_triton(
             q, ring.k, ring.v, torch.arange(128), torch.tensor([127]), 128, torch.empty(64), 0.125, ring=True)),
         (at, "_decode_attention_split_kernel", full), (at, "_decode_attention_combine_kernel", full),
         (gemv_triton, "_gemv_kernel", lambda: gemv_triton.gemv(torch.empty(1, 2880, dtype=BF16),
                                                                torch.empty(5120, 2880, dtype=BF16),
                                                                torch.empty(5120, dtype=BF16)))]
# compiled for sm_90 with PDL on, each waits for the kernel before it (griddepcontrol.wait); off, none does
for module, name, call in cases:
    fn, types_, const, warps, aligned, stages = launch_signature(module, name, call)
    for on in (False, True):
        ptx = compile_kernel(fn, types_, {**const, "PDL": on}, warps, aligned, stages).asm["ptx"]
        assert ("griddepcontrol.wait" in ptx) == on, (name, on)
# the wrappers launch them so where mx.PDL is on and the device is CUDA (faked here: no GPU), and not otherwise
assert mx.pdl("cuda") == {"PDL": False}
mx.PDL = True
assert mx.pdl("cuda") == {"PDL": True, "launch_pdl": True} and mx.pdl("cpu") == {"PDL": False}
for module in (mx, norm_triton, rope_cache_triton, at, gemv_triton):
    module.pdl = lambda device: {"PDL": True, "launch_pdl": True}
for module, name, call in cases:
    for args, options in recorded(module, name, call):
        assert args["PDL"] is True and options.get("launch_pdl") is True, (name, args.get("PDL"), options)
print("pdl ok")
"""


def test_the_kernels_compile_for_hopper():
    pytest.importorskip("triton.backends.nvidia.compiler")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # real JIT functions, not interpreted
    env["PYTHONPATH"] = ROOT
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and "compiled" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_a_decode_steps_kernels_launch_as_programmatic_dependents_where_asked():
    """Programmatic dependent launch (mxfp4_triton.PDL, off by default until a GPU measures it): each Triton kernel of
    a decode step, compiled for sm_90 with it, waits for the kernel before it first (griddepcontrol.wait in its PTX;
    without it, none does), and the wrappers launch them with launch_pdl where it is on for a CUDA device."""
    pytest.importorskip("triton.backends.nvidia.compiler")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = ROOT
    r = subprocess.run([sys.executable, "-c", PDL_SCRIPT], env=env, capture_output=True, text=True, timeout=300,
                       cwd=ROOT)
    assert r.returncode == 0 and "pdl ok" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]


def test_the_kernels_machine_code():
    """benchmarks/kernel_sass.py --check: the kernels' SASS for sm_90 as Triton's JIT specialises them at
    gpt-oss-20b's shapes (cuobjdump from Triton's package): the matvec reads its packed weights in 128-bit loads (one
    32-value block a thread, summed in its registers), decode attention multiplies on the tensor cores (HMMA), the
    prompt's grouped MoE feeds its decoded weights to the tensor cores from registers (no shared-memory round trip),
    neither reads bf16 values 2 bytes a load in its loop, the matvec loads each step's scales in the
    step before, and nothing spills (cuobjdump's stack and local bytes). Controls show the checks can fail: without
    the alignment facts the JIT derives, the matvec reads a 4-byte word a load and the attention kernel k and v 2 bytes
    a load; the elementwise attention kernel at 32 slots a step spills; the grouped kernel's other orientation takes
    its weights through shared memory; a loop that uses the bytes it loads in the same step is seen as such."""
    pytest.importorskip("triton.backends.nvidia.compiler")
    import triton
    if not os.path.exists(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")):
        pytest.skip("Triton's package carries no cuobjdump here")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "kernel_sass.py"), "--check"], env=env,
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    ok = "vectorised, tensor cores, weights from registers, scales a step ahead, no spills" in r.stdout
    assert r.returncode == 0 and ok, r.stdout[-3000:] + r.stderr[-3000:]
