"""The Triton kernels' machine code for Hopper (sm_90), read on any machine with Triton (its compiler, bundled ptxas
and cuobjdump; no GPU): compiled as Triton's JIT specialises them at gpt-oss-20b's shapes, their registers, spills
and the instructions their main loops issue. The decode MXFP4 matvec per projection and tile: how its packed
weights are loaded, loop instructions per weight. Decode attention (G = 8 query heads a kv head, d = 64, bf16): the
tensor-core kernels (HMMA) against the elementwise ones runs 1 to 3 measured, loop instructions per slot. The
prompt's grouped MoE kernel in both orientations: whether the decoded weights feed the tensor cores from registers,
and whether a multiply stays in flight while the next tile decodes (Triton 3.9 keeps one for W x^T; 3.6, what the
H200 has, waits for each either way). For both, the bf16 loads in the loop that read 2 bytes a load.

    python benchmarks/kernel_sass.py            # the tables
    python benchmarks/kernel_sass.py --check    # fail unless the weights come 16 bytes a load, the attention
                                                # kernels use the tensor cores, the grouped kernel's weights go
                                                # from registers, no loop reads bf16 2 bytes a load, nothing
                                                # spills (tests/test_triton_compile.py)
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import warnings

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
warnings.filterwarnings("ignore")

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from gptoss_torch.fast import attention_triton as at, mxfp4_triton  # noqa: E402

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
I32 = dict.fromkeys(["R", "G", "chunk", "E", "stride_l", "stride_be", "stride_br", "stride_se", "stride_sr",
                     "stride_xn", "stride_bias", "stride_on"], "i32")
POINTERS = ["blocks_ptr", "scales_ptr", "ids_ptr", "x_ptr", "bias_ptr", "w_ptr", "out_ptr", "logits_ptr"]


def matvec_args(R, tile):
    """The matvec's integer arguments at gpt-oss-20b (R = 5760 up rows or 2880 down rows, 90 blocks a row, 32
    experts, outputs 2880 a row), as mxfp4_matvec passes them for `tile` (block strides in 16-byte blocks)."""
    splits = tile[4] if len(tile) > 4 else 1
    chunk = -(-(-(-90 // splits)) // tile[1]) * tile[1]  # blocks a split, whole loop steps
    return dict(R=R, G=90, chunk=chunk, E=32, stride_l=32, stride_be=R * 90, stride_br=90, stride_se=R * 90,
                stride_sr=90, stride_xn=2880, stride_bias=R, stride_on=2880)


def div16(R, tile):
    """What Triton's JIT specialises there: every pointer 16-byte aligned, the integers divisible by 16 (so not
    G = 90 blocks, nor the row strides of 90 blocks and 90 scales)."""
    return POINTERS + [k for k, v in matvec_args(R, tile).items() if v % 16 == 0]
WIDE_LOAD = r"LDG(STS)?\.E(\.BYPASS)?\.128"


def cuobjdump(cubin, flag):
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        return subprocess.run([os.path.join(BIN, "cuobjdump"), flag, f.name], capture_output=True, text=True,
                              check=True).stdout
    finally:
        os.unlink(f.name)


def compile_sass(fn, types, const, warps, aligned=(), stages=3):
    """(SASS text, registers, spilled bytes) of `fn` compiled for sm_90: `types` for its runtime arguments, `const`
    its constexprs, `aligned` the arguments the JIT would find divisible by 16. Spills are the per-thread stack plus
    local memory (cuobjdump's STACK and LOCAL: registers spilled by ptxas land on the stack)."""
    sig = {n: types.get(n, "constexpr") for n in fn.arg_names}
    attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in aligned}
    src = ASTSource(fn, sig, constexprs={(fn.arg_names.index(k),): v for k, v in const.items()}, attrs=attrs)
    cubin = triton.compile(src, target=GPUTarget("cuda", 90, 32),
                           options=dict(num_warps=warps, num_stages=stages)).asm["cubin"]
    res = cuobjdump(cubin, "-res-usage")
    return (cuobjdump(cubin, "-sass"), int(re.search(r"REG:(\d+)", res).group(1)),
            int(re.search(r"STACK:(\d+)", res).group(1)) + int(re.search(r"LOCAL:(\d+)", res).group(1)))


def sass(tile, up, specialised=True, scaled=True):
    """(SASS text, registers, spilled bytes) of the matvec: the up projection (routing in its prologue, SwiGLU
    epilogue, its output times 2^64) or the down one (float32 input, bias and router weight), tile = (rows, blocks,
    stages, warps[, splits]). scaled: the input float32 times 2^64, as a decode step passes it (else the up
    projection's input is bf16 and the down one's unscaled, as Model.run's few-token MoE passes them)."""
    fn = mxfp4_triton._mxfp4_matvec_kernel
    types = dict(I32, blocks_ptr="*i32", scales_ptr="*u8", ids_ptr="*i64", out_ptr="*fp32", alpha="fp32",
                 limit="fp32", x_ptr="*bf16" if up and not scaled else "*fp32", bias_ptr="*bf16", w_ptr="*fp32",
                 logits_ptr="*bf16")
    const = dict(BLOCK_R=tile[0], BLOCK_G=tile[1], NUM_STAGES=tile[2], TOPK=4 if up else 1, SWIGLU=up,
                 HAS_BIAS=True, HAS_W=not up, SPLITS=tile[4] if len(tile) > 4 else 1, ROUTE=up,
                 BLOCK_E=32 if up else 1, X_SCALED=scaled, OUT_SCALED=up)
    return compile_sass(fn, types, const, tile[3], div16(5760 if up else 2880, tile) if specialised else ())


def attention_sass(split, mma, block_s, warps=4, unaligned=()):
    """(SASS, registers, spilled bytes) of a decode attention kernel: the one-program kernel on a sliding ring or the
    split kernel's first half on a full layer; products on the tensor cores (mma) or elementwise. The strides are
    those of a [B, S, Hkv, 64] cache, all multiples of 16 as the JIT finds them (but the `unaligned` ones)."""
    fn = at._decode_attention_split_kernel if split else at._decode_attention_kernel
    i32 = dict.fromkeys(["S", "Hkv", "sq_b", "sq_h", "sk_b", "sk_s", "sk_h", "sv_b", "sv_s", "sv_h", "so_b", "so_h",
                         "NSPLIT"], "i32")
    types = dict(i32, q_ptr="*bf16", k_ptr="*bf16", v_ptr="*bf16", kpos_ptr="*i64", pos_ptr="*i64", window="i64",
                 scale="fp32", sinks_ptr="*fp32", out_ptr="*bf16", pm_ptr="*fp32", pl_ptr="*fp32", pacc_ptr="*fp32")
    const = dict(G=8, GP=16 if mma else 8, D=64, BLOCK_S=block_s, MMA=mma, IEEE=False)
    const.update(dict(CHUNK=at.SPLIT_SLOTS, RING=False) if split else dict(RING=True, HAS_SINK=True))
    aligned = [n for n in ("q_ptr", "k_ptr", "v_ptr", "kpos_ptr", "pos_ptr", "sinks_ptr", "out_ptr", "pm_ptr",
                           "pl_ptr", "pacc_ptr", "sq_b", "sq_h", "sk_b", "sk_s", "sk_h", "sv_b", "sv_s", "sv_h", "so_b",
                           "so_h")
               if n in fn.arg_names and n not in unaligned]
    return compile_sass(fn, types, const, warps, aligned)


def grouped_sass(tile, up=True):
    """(SASS, registers, spilled bytes) of the prompt's grouped MoE kernel in bf16 (up: SwiGLU epilogue; down:
    router weight), tile = (pairs, rows, 32-value blocks, warps, stages, swap)."""
    fn = mxfp4_triton._mxfp4_grouped_kernel
    types = dict(I32, blocks_ptr="*u8", scales_ptr="*u8", slot_ptr="*i64", block_expert_ptr="*i64", x_ptr="*bf16",
                 bias_ptr="*bf16", w_ptr="*fp32", out_ptr="*fp32", alpha="fp32", limit="fp32")
    const = dict(TOPK=4 if up else 1, SWIGLU=up, HAS_BIAS=True, HAS_W=not up, IEEE=False, FP16=False,
                 BLOCK_M=tile[0], BLOCK_N=tile[1], BLOCK_G=tile[2], SWAP=tile[5],
                 EVEN=5760 % tile[1] == 0 and 90 % tile[2] == 0)
    aligned = ["blocks_ptr", "scales_ptr", "slot_ptr", "x_ptr", "bias_ptr", "w_ptr", "out_ptr", "R", "stride_be",
               "stride_br", "stride_se", "stride_xn", "stride_bias", "stride_on"]
    return compile_sass(fn, types, const, tile[3], aligned, stages=tile[4])


def prompt_attention_sass(tile):
    """(SASS, registers, spilled bytes) of the prompt's flash attention in bf16 with sinks (G = 8, d = 64),
    tile = (queries, keys a step, warps, stages)."""
    fn = at._prefill_attention_kernel
    types = dict(dict.fromkeys(["T", "S", "Hq", "sq_b", "sq_t", "sq_h", "sk_b", "sk_s", "sk_h", "sv_b", "sv_s", "sv_h",
                                "so_b", "so_t", "so_h"], "i32"), q_ptr="*bf16", k_ptr="*bf16", v_ptr="*bf16",
                 qpos_ptr="*i64", kpos_ptr="*i64", sinks_ptr="*bf16", out_ptr="*bf16", window="i32", scale="fp32")
    aligned = ["q_ptr", "k_ptr", "v_ptr", "qpos_ptr", "kpos_ptr", "sinks_ptr", "out_ptr", "sq_b", "sq_t", "sq_h",
               "sk_b", "sk_s", "sk_h", "sv_b", "sv_s", "sv_h", "so_b", "so_t", "so_h"]
    const = dict(G=8, D=64, BLOCK_M=tile[0], BLOCK_N=tile[1], HAS_SINK=True, IEEE=False)
    return compile_sass(fn, types, const, tile[2], aligned, stages=tile[3])


def longest_loop(code):
    """(first, last) address of the longest loop: a backward branch's target and the branch; None if none."""
    best = None
    for m in re.finditer(r"/\*([0-9a-f]{4})\*/\s+(?:@!?U?P\w+\s+)?BRA\s+0x([0-9a-f]+)", code):
        at, target = int(m.group(1), 16), int(m.group(2), 16)
        if target < at and (best is None or at - target > best[1] - best[0]):
            best = (target, at)
    return best


def loop_instructions(code):
    """Instructions of the longest loop, by their addresses (one 16-byte instruction each)."""
    loop = longest_loop(code)
    return (loop[1] - loop[0]) // 16 + 1 if loop else 0


def narrow_loads(code):
    """Global 2-byte loads in the longest loop: bf16 values read one a load, where Triton could not prove 16-byte
    alignment or contiguity (the 1-byte MXFP4 scales, 90 a row, are read a byte a load either way)."""
    loop = longest_loop(code)
    return sum(1 for m in re.finditer(r"/\*([0-9a-f]{4})\*/\s+(?:@!?U?P\w+\s+)?LDG\S*\.U16\b", code)
               if loop and loop[0] <= int(m.group(1), 16) <= loop[1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true",
                    help="assert 16-byte weight loads, tensor cores, register-fed grouped weights, no 2-byte "
                         "bf16 loads in a loop and no spills")
    args = ap.parse_args(argv)
    print(f"# the MXFP4 matvec on sm_90, Triton {triton.__version__}\n")
    print("| projection | input | tile (rows, blocks, stages, warps) | registers | spilled bytes | 16-byte loads | "
          "loop instructions | per weight |")
    print("|---|---|---|---:|---:|---|---:|---:|")
    for name, tile, up, scaled in (("up", mxfp4_triton.TILE_UP, True, True),
                                   ("down", mxfp4_triton.TILE_DOWN, False, True),
                                   ("up", mxfp4_triton.TILE_UP, True, False),
                                   ("down", mxfp4_triton.TILE_DOWN, False, False)):
        code, regs, local = sass(tile, up, scaled=scaled)
        wide = bool(re.search(WIDE_LOAD, code))
        n = loop_instructions(code)
        per_thread = tile[0] * tile[1] * 32 // (32 * tile[3])  # weights a thread takes a loop step
        given = "float32 x 2^64 (a decode step)" if scaled else "bf16" if up else "float32"
        print(f"| {name} | {given} | {tuple(tile)} | {regs} | {local} | {'yes' if wide else 'no'} | {n} | "
              f"{n / per_thread:.1f} |")
        if args.check:
            assert wide, f"{name}: the packed weights are not read 16 bytes a load"
            assert local == 0, f"{name}: {local} bytes spilled (stack + local memory)"
    print("\n# decode attention on sm_90 (G = 8, d = 64, bf16)\n")
    print("| kernel | products | slots a step | warps | registers | spilled bytes | HMMA | warp shuffles | "
          "2-byte loads a step | loop instructions | per slot |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(False, True, at.BLOCK_S), (True, True, at.SPLIT_BLOCK_S)]  # the defaults, then runs 1-3's kernels
    rows += [(False, False, at.ELEMENTWISE_BLOCK_S[0]), (True, False, at.ELEMENTWISE_BLOCK_S[1])]
    spilled = {}
    for split, mma, block_s in rows:
        code, regs, local = attention_sass(split, mma, block_s)
        n = loop_instructions(code)
        hmma = len(re.findall(r"\bHMMA\.", code))
        shfl = len(re.findall(r"\bSHFL\.", code))  # in the whole kernel
        spilled[split, mma] = local
        narrow = narrow_loads(code)
        print(f"| {'split, first half' if split else 'one program a kv head'} | "
              f"{'tensor cores' if mma else 'elementwise'} | {block_s} | 4 | {regs} | {local} | {hmma} | {shfl} | "
              f"{narrow} | " + (f"{n} | {n / block_s:.1f} |" if n else "no loop found | - |"))
        if args.check and mma:
            assert hmma, f"attention (split={split}): no HMMA: the products are not on the tensor cores"
            assert local == 0, f"attention (split={split}): {local} bytes spilled"
            assert n and not narrow, f"attention (split={split}): {narrow} 2-byte loads a step"
    print("\n# the prompt's grouped MoE kernel on sm_90 (bf16, up projection)\n")
    print("| tile (pairs, rows, blocks, warps, stages, swap) | registers | spilled bytes | weights from registers | "
          "multiplies in flight | 2-byte loads a step | loop instructions | per weight |")
    print("|---|---:|---:|---|---:|---:|---:|---:|")
    default = mxfp4_triton.GROUP_TILE
    other = (*default[:5], not default[5])
    flight, fed = {}, {}
    for tile in (default, other):
        code, regs, local = grouped_sass(tile)
        reg_a = bool(re.search(r"HGMMA\.\S+ R\d+, R\d+", code))  # the A operand from registers, not a descriptor
        flight[tile] = 1 if "WARPGROUP.DEPBAR.LE gsb0, 0x1" in code else 0  # waits leave one multiply running
        n = loop_instructions(code)
        per_thread = tile[1] * tile[2] * 32 // (32 * tile[3])  # weights a thread decodes a loop step
        narrow = narrow_loads(code)
        print(f"| {tuple(tile)} | {regs} | {local} | {'yes' if reg_a else 'no'} | {flight[tile]} | {narrow} | {n} | "
              f"{n / per_thread:.1f} |")
        fed[tile] = reg_a
        if args.check and tile == default:
            assert local == 0, f"grouped {tile}: {local} bytes spilled"
            assert reg_a == bool(tile[5]), f"grouped {tile}: weights not fed as its orientation says"
            assert n and not narrow, f"grouped {tile}: {narrow} 2-byte loads a step"
    print("\n# the prompt's flash attention on sm_90 (bf16, sinks, G = 8, d = 64)\n")
    print("| tile (queries, keys, warps, stages) | registers | spilled bytes | tensor-core multiplies | "
          "loop instructions |")
    print("|---|---:|---:|---:|---:|")
    code, regs, local = prompt_attention_sass(at.PREFILL_TILE)
    hgmma = len(re.findall(r"\bHGMMA\.", code))
    print(f"| {tuple(at.PREFILL_TILE)} | {regs} | {local} | {hgmma} | {loop_instructions(code)} |")
    if args.check:
        assert hgmma and local == 0, f"prompt attention: {hgmma} HGMMA, {local} bytes spilled"
        # control: the other orientation takes its weights through shared memory (x W^T) or registers (W x^T)
        assert fed[other] != fed[default], "both orientations feed the weights alike"
        # control: the elementwise one-program kernel at 32 slots a step ([8, 32, 64] float32 products) spills,
        # which the check above would catch
        assert spilled[False, False] > 0, "the control did not spill"
        # control: without the JIT's alignment facts the same kernel reads the weights a 4-byte word a load (what the
        # check above catches; the scales, 90 a row, come a byte a load either way)
        code, _, _ = sass(mxfp4_triton.TILE_UP, True, specialised=False)
        assert re.search(r"LDG(STS)?\.E(\.BYPASS)?\s", code) and not re.search(WIDE_LOAD, code), \
            "the control read its weights vectorised"
        # control: if Triton cannot assume a 16-byte aligned head stride, the attention kernel reads k and v 2 bytes
        # a load (what the checks above catch); at run time the JIT sees d = 64 and specialises
        code, _, _ = attention_sass(False, True, at.BLOCK_S, unaligned=("sk_h", "sv_h"))
        assert narrow_loads(code) > 0, "the control read k and v 16 bytes a load"
        print("\nvectorised, tensor cores, weights from registers, no spills")
    return 0


if __name__ == "__main__":
    sys.exit(main())
