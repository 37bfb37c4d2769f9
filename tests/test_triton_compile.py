"""The Triton kernels compile for Hopper (sm_90) with Triton's own compiler and its bundled ptxas, no GPU needed: what
the interpreter, which runs the kernels as NumPy, cannot show (loop bounds read from memory, software pipelining,
dtypes of literals, register and shared-memory limits). Each variant is one gpt-oss-20b decode launch; none may need
Triton's runtime scratch allocator, which is unset in a torch process and would fail at launch."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SCRIPT = r"""
import re
import warnings
warnings.filterwarnings("ignore")
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from gptoss_torch.fast import attention_triton, mxfp4_triton

def compile_for_sm90(fn, types, constexprs, warps=4, stages=3):
    sig = {n: types.get(n, "constexpr") for n in fn.arg_names}
    src = ASTSource(fn, sig, constexprs={(fn.arg_names.index(k),): v for k, v in constexprs.items()})
    k = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))
    assert k.metadata.global_scratch_size == 0, fn.__name__
    assert k.metadata.shared <= 227 * 1024, (fn.__name__, k.metadata.shared)  # an H100/H200 block's shared memory
    return k

i32 = dict.fromkeys(["R", "G", "chunk", "stride_be", "stride_br", "stride_se", "stride_sr", "stride_xn", "stride_bias",
                     "stride_on", "S", "Hkv", "sq_b", "sq_h", "sk_b", "sk_s", "sk_h", "sv_b", "sv_s", "sv_h", "so_b",
                     "so_h", "E", "stride_l"], "i32")
mx = dict(i32, blocks_ptr="*i32", scales_ptr="*u8", ids_ptr="*i64", out_ptr="*fp32", alpha="fp32", limit="fp32")
# up: the activation (bf16, or float32 times 2^64 as a decode step's add + norm writes it), bf16 bias, 4 pairs per
# token, SwiGLU in the epilogue, its output times 2^64; down: that float32 activation, bias and router weight. The
# E2M1 values are float32 subnormals for exponent 0, so no multiply or add may flush them (.ftz) (the up kernel
# routing its token in its prologue, or reading the routing kernel's experts; the down split-K too)
for tile, act, route, scaled in ((mxfp4_triton.TILE_UP, True, True, True), (mxfp4_triton.TILE_UP, True, False, False),
                                 (mxfp4_triton.TILE_DOWN, False, False, True), ((16, 4, 3, 1, 2), False, False, True)):
    k = compile_for_sm90(mxfp4_triton._mxfp4_matvec_kernel,
                         dict(mx, x_ptr="*fp32" if scaled or not act else "*bf16", bias_ptr="*bf16", w_ptr="*fp32",
                              logits_ptr="*bf16"),
                         dict(BLOCK_R=tile[0], BLOCK_G=tile[1], NUM_STAGES=tile[2], TOPK=4 if act else 1, SWIGLU=act,
                              HAS_BIAS=True, HAS_W=not act, SPLITS=tile[4] if len(tile) > 4 else 1, ROUTE=route,
                              BLOCK_E=32 if route else 1, X_SCALED=scaled, OUT_SCALED=act), tile[3])
    flushed = [ln.strip() for ln in k.asm["ptx"].splitlines() if re.search(r"\b(fma|mul|add)\.[a-z.]*ftz", ln)]
    assert not flushed, flushed[:3]
compile_for_sm90(mxfp4_triton._route_kernel, dict(i32, logits_ptr="*bf16", ids_ptr="*i64", w_ptr="*fp32"),
                 dict(K=4, BLOCK_E=32))
# a full layer: the loop bound min(S, p + 1) is read from memory; "no window" is 2^62, an int64 argument
# (products on the tensor cores in bf16, in IEEE float32 for a float32 model, or elementwise)
for dt, mma in (("*bf16", True), ("*fp32", True), ("*bf16", False)):
    compile_for_sm90(attention_triton._decode_attention_kernel,
                     dict(i32, q_ptr=dt, k_ptr=dt, v_ptr=dt, kpos_ptr="*i64", pos_ptr="*i64",
                          sinks_ptr="*fp32", out_ptr=dt, window="i64", scale="fp32"),
                     dict(G=8, GP=16 if mma else 8, D=64, BLOCK_S=attention_triton.BLOCK_S if mma else 32, RING=False,
                          HAS_SINK=True, MMA=mma, IEEE=dt == "*fp32"))
compile_for_sm90(mxfp4_triton._mxfp4_dequant_kernel,
                 dict(blocks_ptr="*u8", scales_ptr="*u8", out_ptr="*bf16", R="i32", C="i32", stride_br="i32",
                      stride_sr="i32", stride_or="i32"), dict(BLOCK_R=16, BLOCK_C=256))
# the split (flash-decoding) pair on a full layer
for mma in (True, False):
    compile_for_sm90(attention_triton._decode_attention_split_kernel,
                     dict(i32, q_ptr="*bf16", k_ptr="*bf16", v_ptr="*bf16", kpos_ptr="*i64", pos_ptr="*i64",
                          pm_ptr="*fp32", pl_ptr="*fp32", pacc_ptr="*fp32", window="i64", scale="fp32", NSPLIT="i32"),
                     dict(G=8, GP=16 if mma else 8, D=64, BLOCK_S=attention_triton.SPLIT_BLOCK_S if mma else 16,
                          CHUNK=256, RING=False, MMA=mma, IEEE=False))
compile_for_sm90(attention_triton._decode_attention_combine_kernel,
                 dict(pm_ptr="*fp32", pl_ptr="*fp32", pacc_ptr="*fp32", sinks_ptr="*fp32", out_ptr="*bf16",
                      Hq="i32", NSPLIT="i32", so_b="i32", so_h="i32"), dict(D=64, BLOCK_N=32, HAS_SINK=True))
# the grouped MoE kernel of a prompt: up (bf16 input, SwiGLU) and down (float32 activation rounded to bf16; and a
# float32 model's IEEE products)
grp = dict(mx, slot_ptr="*i64", block_expert_ptr="*i64", bias_ptr="*bf16", w_ptr="*fp32")
for x_t, act, ieee, swap in (("*bf16", True, False, True), ("*bf16", False, False, True), ("*fp32", False, True, True),
                             ("*bf16", True, False, False), ("*fp32", False, True, False)):
    compile_for_sm90(mxfp4_triton._mxfp4_grouped_kernel, dict(grp, x_ptr=x_t),
                     dict(TOPK=4 if act else 1, SWIGLU=act, HAS_BIAS=True, HAS_W=not act, IEEE=ieee, FP16=False,
                          BLOCK_M=mxfp4_triton.GROUP_TILE[0], BLOCK_N=mxfp4_triton.GROUP_TILE[1],
                          BLOCK_G=mxfp4_triton.GROUP_TILE[2], SWAP=swap, EVEN=swap), *mxfp4_triton.GROUP_TILE[3:5])
# a decode step's residual add + RMSNorm (the MoE's four rows summed), gpt-oss-20b's width
from gptoss_torch.fast import norm_triton
compile_for_sm90(norm_triton._add_rms_norm_kernel,
                 dict(x_ptr="*bf16", d_ptr="*fp32", w_ptr="*bf16", xo_ptr="*bf16", h_ptr="*bf16", hs_ptr="*fp32",
                      D="i32", stride_x="i32", stride_d="i32", stride_xo="i32", stride_h="i32", stride_hs="i32",
                      eps="fp32"),
                 dict(ROWS=4, BLOCK=4096, SCALED=True))
# a decode step's RoPE + KV-cache write, gpt-oss-20b's heads (64 query, 8 key/value, d = 64)
from gptoss_torch.fast import rope_cache_triton
compile_for_sm90(rope_cache_triton._rope_cache_kernel,
                 dict(dict.fromkeys(["n_slots", "stride_qkv_b", "stride_q_b", "stride_k_b", "stride_k_s", "stride_v_b",
                                     "stride_v_s"], "i32"), qkv_ptr="*bf16", table_ptr="*bf16", pos_ptr="*i64",
                      q_ptr="*bf16", k_ptr="*bf16", v_ptr="*bf16", kpos_ptr="*i64"),
                 dict(HQ=64, HKV=8, D=64, RING=True))
# a prompt's RoPE of q and k
compile_for_sm90(rope_cache_triton._rope_kernel,
                 dict(dict.fromkeys(["T", "sq_b", "sq_t", "sk_b", "sk_t"], "i32"), q_ptr="*bf16", k_ptr="*bf16",
                      cos_ptr="*bf16", sin_ptr="*bf16", qo_ptr="*bf16", ko_ptr="*bf16"), dict(HQ=64, HKV=8, D=64))
# the prompt kernel: bf16 on the tensor cores, float32 with IEEE products
for dt, ieee in (("*bf16", False), ("*fp32", True)):
    compile_for_sm90(attention_triton._prefill_attention_kernel,
                     dict(dict.fromkeys(["T", "S", "Hq", "sq_b", "sq_t", "sq_h", "sk_b", "sk_s", "sk_h", "sv_b", "sv_s",
                                         "sv_h", "so_b", "so_t", "so_h"], "i32"),
                          q_ptr=dt, k_ptr=dt, v_ptr=dt, qpos_ptr="*i64", kpos_ptr="*i64", sinks_ptr="*bf16",
                          out_ptr=dt, window="i32", scale="fp32"),
                     dict(G=8, D=64, BLOCK_M=attention_triton.PREFILL_TILE[0], BLOCK_N=attention_triton.PREFILL_TILE[1],
                          HAS_SINK=True, IEEE=ieee), *attention_triton.PREFILL_TILE[2:])
print("compiled")
"""


def test_the_kernels_compile_for_hopper():
    pytest.importorskip("triton.backends.nvidia.compiler")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # real JIT functions, not interpreted
    env["PYTHONPATH"] = ROOT
    r = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0 and "compiled" in r.stdout, r.stdout[-3000:] + r.stderr[-3000:]



def test_the_kernels_machine_code():
    """benchmarks/kernel_sass.py --check: the kernels' SASS for sm_90 as Triton's JIT specialises them at
    gpt-oss-20b's shapes (cuobjdump from Triton's package): the matvec reads its packed weights in 128-bit loads (one
    32-value block a thread, summed in its registers), decode attention multiplies on the tensor cores (HMMA), the
    prompt's grouped MoE feeds its decoded weights to the tensor cores from registers (no shared-memory round trip),
    neither reads bf16 values 2 bytes a load in its loop, and nothing spills (cuobjdump's stack and local bytes).
    Controls show the checks can fail: without the alignment facts the JIT derives, the matvec reads a 4-byte word a
    load and the attention kernel k and v 2 bytes a load; the elementwise attention kernel at 32 slots a step spills;
    the grouped kernel's other orientation takes its weights through shared memory."""
    pytest.importorskip("triton.backends.nvidia.compiler")
    import triton
    if not os.path.exists(os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")):
        pytest.skip("Triton's package carries no cuobjdump here")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "kernel_sass.py"), "--check"], env=env,
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    ok = "vectorised, tensor cores, weights from registers, no spills" in r.stdout
    assert r.returncode == 0 and ok, r.stdout[-3000:] + r.stderr[-3000:]
