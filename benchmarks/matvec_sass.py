"""The decode matvec's machine code for Hopper (sm_90), read on any machine with Triton (its compiler, bundled ptxas
and cuobjdump; no GPU): compiled as Triton's JIT specialises it at gpt-oss-20b's shapes, per projection and tile,
its registers, spills, how its packed weights are loaded and the instructions its main loop issues per weight.

    python benchmarks/matvec_sass.py            # the table
    python benchmarks/matvec_sass.py --check    # fail unless the weights come 16 bytes a load with no spills
                                                # (tests/test_triton_compile.py runs this)
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

from gptoss_torch.fast import mxfp4_triton  # noqa: E402

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
I32 = dict.fromkeys(["R", "G", "chunk", "stride_be", "stride_br", "stride_se", "stride_sr", "stride_xn", "stride_bias",
                     "stride_on"], "i32")
# what Triton's JIT specialises at gpt-oss-20b's shapes: pointers 16-byte aligned, integers divisible by 16 (not
# G = 90 blocks, nor the scales' row stride 90)
DIV16 = ["blocks_ptr", "scales_ptr", "ids_ptr", "x_ptr", "bias_ptr", "w_ptr", "out_ptr", "R", "stride_be",
         "stride_br", "stride_se", "stride_xn", "stride_bias", "stride_on"]
WIDE_LOAD = r"LDG(STS)?\.E(\.BYPASS)?\.128"


def cuobjdump(cubin, flag):
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        return subprocess.run([os.path.join(BIN, "cuobjdump"), flag, f.name], capture_output=True, text=True,
                              check=True).stdout
    finally:
        os.unlink(f.name)


def sass(tile, up, specialised=True):
    """(SASS text, registers, local-memory bytes) of the matvec: the up projection (bf16 input, SwiGLU epilogue) or
    the down one (float32 input, bias and router weight), tile = (rows, blocks, stages, warps)."""
    fn = mxfp4_triton._mxfp4_matvec_kernel
    types = dict(I32, blocks_ptr="*u8", scales_ptr="*u8", ids_ptr="*i64", out_ptr="*fp32", alpha="fp32",
                 limit="fp32", x_ptr="*bf16" if up else "*fp32", bias_ptr="*bf16", w_ptr="*fp32")
    sig = {n: types.get(n, "constexpr") for n in fn.arg_names}
    const = dict(BLOCK_R=tile[0], BLOCK_G=tile[1], NUM_STAGES=tile[2], TOPK=4 if up else 1, SWIGLU=up,
                 HAS_BIAS=True, HAS_W=not up, SPLITS=tile[4] if len(tile) > 4 else 1)
    attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in DIV16} if specialised else {}
    src = ASTSource(fn, sig, constexprs={(fn.arg_names.index(k),): v for k, v in const.items()}, attrs=attrs)
    cubin = triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=tile[3])).asm["cubin"]
    res = cuobjdump(cubin, "-res-usage")
    return (cuobjdump(cubin, "-sass"), int(re.search(r"REG:(\d+)", res).group(1)),
            int(re.search(r"LOCAL:(\d+)", res).group(1)))


def loop_instructions(code):
    """Instructions of the longest loop: from a backward branch's target to the branch, by their addresses."""
    best = 0
    for m in re.finditer(r"/\*([0-9a-f]{4})\*/\s+(?:@!?U?P\w+\s+)?BRA\s+0x([0-9a-f]+)", code):
        at, target = int(m.group(1), 16), int(m.group(2), 16)
        if target < at:
            best = max(best, (at - target) // 16 + 1)  # one 16-byte instruction each
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="assert 16-byte weight loads and no spills")
    args = ap.parse_args(argv)
    print(f"# the MXFP4 matvec on sm_90, Triton {triton.__version__}\n")
    print("| projection | tile (rows, blocks, stages, warps) | registers | spilled bytes | 16-byte loads | "
          "loop instructions | per weight |")
    print("|---|---|---:|---:|---|---:|---:|")
    for name, tile, up in (("up", mxfp4_triton.TILE_UP, True), ("down", mxfp4_triton.TILE_DOWN, False)):
        code, regs, local = sass(tile, up)
        wide = bool(re.search(WIDE_LOAD, code))
        n = loop_instructions(code)
        per_thread = tile[0] * tile[1] * 32 // (32 * tile[3])  # weights a thread takes a loop step
        print(f"| {name} | {tuple(tile)} | {regs} | {local} | {'yes' if wide else 'no'} | {n} | "
              f"{n / per_thread:.1f} |")
        if args.check:
            assert wide, f"{name}: the packed weights are not read 16 bytes a load"
            assert local == 0, f"{name}: {local} bytes of local memory: registers spilled"
    if args.check:
        # control: without the JIT's alignment facts the same kernel reads the weights a byte a load (what the check
        # above catches; the scales, 90 a row, come a byte a load either way)
        code, _, _ = sass(mxfp4_triton.TILE_UP, True, specialised=False)
        assert "LDG.E.U8" in code and not re.search(WIDE_LOAD, code), "the control read its weights vectorised"
        print("\nvectorised")
    return 0


if __name__ == "__main__":
    sys.exit(main())
