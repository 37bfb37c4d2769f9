"""The Triton kernels' machine code for Hopper (sm_90), read on any machine with Triton (its compiler, bundled ptxas
and cuobjdump; no GPU): each kernel compiled as Triton's JIT specialises the launch its Python wrapper makes at
gpt-oss-20b's shapes (the launch is recorded on the CPU, not run: argument types, which integers and addresses are
multiples of 16, constexprs, warps and stages), their registers, spills and the instructions their main loops
issue. The decode MXFP4 matvec per projection and tile: how its packed weights are loaded, whether each step loads
the next step's scales (a byte each, too narrow for the pipeline's asynchronous copies), loop instructions per
weight. Decode attention (G = 8 query heads a kv head, d = 64, bf16): the tensor-core kernels (HMMA) against the
elementwise ones runs 1 to 3 measured, loop instructions per slot. The prompt's grouped MoE kernel in both
orientations: whether the decoded weights feed the tensor cores from registers, and whether a multiply stays in
flight while the next tile decodes (Triton 3.9 keeps one for W x^T; 3.6, what the H200 has, waits for each either
way; loading the scales a step ahead, as the matvec does, cost 3.9 that multiply in flight: 309 loop instructions
became 334). For both, the bf16 loads in the loop that read 2 bytes a load. The one-launch
dequantisation (the prefill's float experts): whether it reads the blocks and writes the values 16 bytes at a time,
and its instructions a value. The one-token GEMV (opt-in): whether its weights come 16 bytes a load.

    python benchmarks/kernel_sass.py            # the tables
    python benchmarks/kernel_sass.py --tiles    # the matvec and the dequantisation at every tile gpu_check.py's
                                                # sweeps time
    python benchmarks/kernel_sass.py --check    # fail unless the weights come 16 bytes a load and the scales a
                                                # step ahead, the attention kernels use the tensor cores, the
                                                # grouped kernel's weights go from registers, no loop reads bf16
                                                # 2 bytes a load, the dequantisation reads and writes 16 bytes at
                                                # a time, nothing spills (tests/test_triton_compile.py)
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

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from gptoss_torch.fast import attention_triton as at, gemv_triton, mxfp4_triton  # noqa: E402

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
WIDE_LOAD = r"LDG(STS)?\.E(\.BYPASS)?\.128"


def cuobjdump(cubin, flag):
    with tempfile.NamedTemporaryFile(suffix=".cubin", delete=False) as f:
        f.write(cubin)
    try:
        return subprocess.run([os.path.join(BIN, "cuobjdump"), flag, f.name], capture_output=True, text=True,
                              check=True).stdout
    finally:
        os.unlink(f.name)


def compile_kernel(fn, types, const, warps, aligned=(), stages=3):
    """`fn` compiled for sm_90 (Triton's compiled-kernel object: .asm, .metadata): `types` for its runtime arguments,
    `const` its constexprs, `aligned` the arguments the JIT would find divisible by 16."""
    sig = {n: types.get(n, "constexpr") for n in fn.arg_names}
    attrs = {(fn.arg_names.index(n),): [["tt.divisibility", 16]] for n in aligned}
    src = ASTSource(fn, sig, constexprs={(fn.arg_names.index(k),): v for k, v in const.items()}, attrs=attrs)
    return triton.compile(src, target=GPUTarget("cuda", 90, 32), options=dict(num_warps=warps, num_stages=stages))


def compile_sass(fn, types, const, warps, aligned=(), stages=3):
    """(SASS text, registers, spilled bytes) of `fn` compiled for sm_90 (compile_kernel). Spills are the per-thread
    stack plus local memory (cuobjdump's STACK and LOCAL: registers spilled by ptxas land on the stack)."""
    cubin = compile_kernel(fn, types, const, warps, aligned, stages).asm["cubin"]
    res = cuobjdump(cubin, "-res-usage")
    return (cuobjdump(cubin, "-sass"), int(re.search(r"REG:(\d+)", res).group(1)),
            int(re.search(r"STACK:(\d+)", res).group(1)) + int(re.search(r"LOCAL:(\d+)", res).group(1)))


TYPES = {torch.bfloat16: "*bf16", torch.float16: "*fp16", torch.float32: "*fp32", torch.int64: "*i64",
         torch.int32: "*i32", torch.uint8: "*u8"}


def recorded(module, name, call):
    """The launches call() makes of the Triton kernel module.<name>, recorded instead of run, as is every other
    kernel of the module it launches (no GPU needed): [(arguments by parameter name, launch options)]."""
    seen = []
    kernels = {n: k for n, k in vars(module).items() if isinstance(k, triton.runtime.jit.JITFunction)}

    class Launch:
        def __init__(self, fn):
            self.fn = fn

        def __getitem__(self, grid):
            def launch(*args, **kw):
                if self.fn is kernels[name]:
                    named = dict(zip(self.fn.arg_names, args))
                    named.update({k: v for k, v in kw.items() if k in self.fn.arg_names})
                    seen.append((named, {k: v for k, v in kw.items() if k not in self.fn.arg_names}))
            return launch

    for n, k in kernels.items():
        setattr(module, n, Launch(k))
    try:
        call()
    finally:
        for n, k in kernels.items():
            setattr(module, n, k)
    return seen


def launch_signature(module, name, call, unaligned=()):
    """(kernel, types, constexprs, warps, aligned, stages) of the first launch call() makes of module.<name>, as
    Triton's JIT specialises its arguments: a tensor by its dtype, 16-byte aligned if its address is; an integer as
    i32 or i64 by its value, divisible by 16 if it is, the constant 1 if it is 1; a float as fp32; None and the
    constexpr parameters as constants. `unaligned`: arguments to take as if not divisible by 16."""
    fn = getattr(module, name)
    args, options = recorded(module, name, call)[0]
    constexpr = {p.name for p in fn.params if p.is_constexpr}
    types, const, aligned = {}, {}, []
    for n in fn.arg_names:
        v = args[n]
        if n in constexpr or v is None or (isinstance(v, int) and not isinstance(v, bool) and v == 1):
            const[n] = v
        elif isinstance(v, torch.Tensor):
            types[n] = TYPES[v.dtype]
            if v.data_ptr() % 16 == 0:
                aligned.append(n)
        elif isinstance(v, bool):
            types[n] = "i1"
        elif isinstance(v, int):
            types[n] = "i32" if -2 ** 31 <= v < 2 ** 31 else "i64"
            if v % 16 == 0:
                aligned.append(n)
        else:
            types[n] = "fp32"
    aligned = [n for n in aligned if n not in unaligned]
    return fn, types, const, options.get("num_warps", 4), aligned, options.get("num_stages", 3)


def compile_launch(module, name, call):
    """The first launch call() makes of module.<name>, compiled for sm_90 as the JIT would (launch_signature)."""
    return compile_kernel(*launch_signature(module, name, call))


def sass_of_launch(module, name, call, unaligned=()):
    """(SASS, registers, spilled bytes) of the first launch call() makes of module.<name>, compiled for sm_90 as the
    JIT would (launch_signature)."""
    return compile_sass(*launch_signature(module, name, call, unaligned))


def sass(tile, up, specialised=True, scaled=True):
    """(SASS text, registers, spilled bytes) of the matvec at gpt-oss-20b (32 experts, 90 blocks a row), launched by
    mxfp4_matvec: the up projection (5760 rows, routing in its prologue, SwiGLU epilogue, its output times 2^64) or
    the down one (2880 rows, float32 input, bias and router weight), tile = (rows, blocks, stages, warps[, splits]).
    scaled: the input float32 times 2^64, as a decode step passes it (else the up projection's input is bf16 and the
    down one's unscaled, as Model.run's few-token MoE passes them). specialised=False: no argument known divisible
    by 16 (a control)."""
    R, n = (5760, 4) if up else (2880, 4)
    blocks, scales = torch.empty(32, R, 90, 16, dtype=torch.uint8), torch.empty(32, R, 90, dtype=torch.uint8)
    bias = torch.empty(32, R, dtype=torch.bfloat16)
    ids, w = torch.zeros(n, dtype=torch.long), torch.empty(n)
    if up:
        x = torch.empty(1, 2880) if scaled else torch.empty(1, 2880, dtype=torch.bfloat16)
        kw = dict(bias=bias, weights=w, topk=n, swiglu=(1.702, 7.0), logits=torch.empty(1, 32, dtype=torch.bfloat16),
                  out_scaled=True)
    else:
        x, kw = torch.empty(n, 2880), dict(bias=bias, weights=w)
    call = lambda: mxfp4_triton.mxfp4_matvec(blocks, scales, ids, x, tile=tile, x_scaled=scaled, **kw)  # noqa: E731
    fn = mxfp4_triton._mxfp4_matvec_kernel
    return sass_of_launch(mxfp4_triton, "_mxfp4_matvec_kernel", call, () if specialised else fn.arg_names)


def attention_sass(split, mma, unaligned=()):
    """(SASS, registers, spilled bytes) of a decode attention kernel at gpt-oss-20b (64 query heads, 8 kv heads,
    d = 64, bf16, sinks), launched by decode_attention_triton as a decode step does: the one-program kernel on a
    sliding layer's ring of 128 slots, or the split kernel's first half on a full layer of 4096; products on the
    tensor cores (mma) or elementwise."""
    S = 4096 if split else 128
    q = torch.empty(1, 1, 64, 64, dtype=torch.bfloat16)
    k, v = (torch.empty(1, S, 8, 64, dtype=torch.bfloat16) for _ in range(2))
    k_pos, pos, sinks = torch.arange(S), torch.tensor([S - 1]), torch.empty(64)
    call = lambda: at.decode_attention_triton(q, k, v, k_pos, pos, None if split else 128, sinks, 0.125,  # noqa: E731
                                              ring=not split, mma=mma)
    name = "_decode_attention_split_kernel" if split else "_decode_attention_kernel"
    return sass_of_launch(at, name, call, unaligned)


def grouped_sass(tile, up=True):
    """(SASS, registers, spilled bytes) of the prompt's grouped MoE kernel in bf16 at gpt-oss-20b (a 64-token
    prompt's pairs, up: 5760 rows, SwiGLU epilogue; down: 2880 rows, router weight), launched by mxfp4_grouped,
    tile = (pairs, rows, 32-value blocks, warps, stages, swap)."""
    R, T = (5760, 64) if up else (2880, 64)
    blocks, scales = torch.empty(32, R, 90, 16, dtype=torch.uint8), torch.empty(32, R, 90, dtype=torch.uint8)
    ids = torch.arange(T * 4) % 32
    slots, block_expert = mxfp4_triton.group_pairs(ids, 32, tile[0])
    x = torch.empty(T, 2880, dtype=torch.bfloat16) if up else torch.empty(T * 4, 2880, dtype=torch.bfloat16)
    kw = dict(topk=4, swiglu=(1.702, 7.0)) if up else dict(weights=torch.empty(T * 4))
    call = lambda: mxfp4_triton.mxfp4_grouped(blocks, scales, slots, block_expert, x,  # noqa: E731
                                              torch.empty(32, R, dtype=torch.bfloat16), tile=tile, **kw)
    return sass_of_launch(mxfp4_triton, "_mxfp4_grouped_kernel", call)


def dequant_sass(tile, dtype=torch.bfloat16, specialised=True):
    """(SASS, registers, spilled bytes) of the one-launch dequantisation of every expert of gpt-oss-20b's up
    projection (32 x 5760 rows, 90 blocks), as the grouped-product prefill calls it, tile = (rows, blocks, warps).
    specialised=False: no argument known divisible by 16 (a control)."""
    blocks, scales = torch.empty(32 * 5760, 90, 16, dtype=torch.uint8), torch.empty(32 * 5760, 90, dtype=torch.uint8)
    call = lambda: mxfp4_triton.mxfp4_dequantize(blocks, scales, dtype, tile=tile)  # noqa: E731
    fn = mxfp4_triton._mxfp4_dequant_kernel
    return sass_of_launch(mxfp4_triton, "_mxfp4_dequant_kernel", call, () if specialised else fn.arg_names)


def gemv_sass(N, K, tile):
    """(SASS, registers, spilled bytes) of the one-token GEMV (fast/gemv_triton.py) at N x K in bf16 with a bias,
    launched by gemv, tile = (rows, inputs a step, warps, stages)."""
    call = lambda: gemv_triton.gemv(torch.empty(1, K, dtype=torch.bfloat16),  # noqa: E731
                                    torch.empty(N, K, dtype=torch.bfloat16), torch.empty(N, dtype=torch.bfloat16),
                                    tile=tile)
    return sass_of_launch(gemv_triton, "_gemv_kernel", call)


def instructions(code):
    """Every instruction of a kernel (one 16-byte SASS instruction an address)."""
    return len(re.findall(INSTRUCTION + r"[A-Z]", code))


def prompt_attention_sass(tile):
    """(SASS, registers, spilled bytes) of the prompt's flash attention at gpt-oss-20b (bf16, sinks, a 2048-token
    prompt), launched by prefill_attention_triton, tile = (queries, keys a step, warps, stages)."""
    T = 2048
    q = torch.empty(1, T, 64, 64, dtype=torch.bfloat16)
    k, v = (torch.empty(1, T, 8, 64, dtype=torch.bfloat16) for _ in range(2))
    call = lambda: at.prefill_attention_triton(q, k, v, torch.arange(T), torch.arange(T), None,  # noqa: E731
                                               torch.empty(64, dtype=torch.bfloat16), 0.125, tile=tile)
    return sass_of_launch(at, "_prefill_attention_kernel", call)


INSTRUCTION = r"/\*([0-9a-f]{4})\*/\s+(?:@!?U?P\w+\s+)?"  # a SASS line's address, then any predicate


def longest_loop(code):
    """(first, last) address of the longest loop: a backward branch's target and the branch; None if none."""
    best = None
    for m in re.finditer(INSTRUCTION + r"BRA\s+0x([0-9a-f]+)", code):
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
    return sum(1 for m in re.finditer(INSTRUCTION + r"LDG\S*\.U16\b", code)
               if loop and loop[0] <= int(m.group(1), 16) <= loop[1])


def byte_load_lead(code):
    """For the 1-byte loads in the longest loop (the MXFP4 scales, too narrow for the pipeline's asynchronous
    copies): the fewest instructions from one to the first instruction that reads its register, going round the
    loop, and whether every such read lies in the next step (before the load in the loop's order); (None, False)
    with no 1-byte load in the loop."""
    loop = longest_loop(code)
    body = [(int(m.group(1), 16), m.group(2)) for m in re.finditer(r"/\*([0-9a-f]{4})\*/\s+([^;]*);", code)
            if loop and loop[0] <= int(m.group(1), 16) <= loop[1]]
    leads, ahead = [], True
    for i, (at, text) in enumerate(body):
        m = re.search(r"LDG\.E\.U8\S*\s+(R\d+),", text)
        if not m:
            continue
        for k in range(1, len(body)):
            j = (i + k) % len(body)
            if re.search(r"[ ,]" + m.group(1) + r"\b", body[j][1]):
                leads.append(k)
                ahead &= j < i
                break
    return (min(leads), ahead) if leads else (None, False)


@triton.jit
def _same_step_bytes(p, out, n, B: tl.constexpr):
    """A control for byte_load_lead: a loop that reads bytes and uses them in the same step."""
    acc = tl.zeros([B], dtype=tl.int32)
    for i in tl.range(0, n, B):
        acc += tl.load(p + i + tl.arange(0, B)).to(tl.int32) * 3
    tl.store(out + tl.arange(0, B), acc)


def matvec_per_weight(code, tile):
    """The matvec's loop instructions a weight: over the weights a thread takes a loop step at `tile`."""
    return loop_instructions(code) / (tile[0] * tile[1] * 32 // (32 * tile[3]))


def tile_table():
    """The matvec at each tile gpu_check.py's sweep times, as a decode step calls it: registers, spills and loop
    instructions a weight for the up and down projections."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from gpu_check import DOWN_SPLIT_TILES, MATVEC_TILES
    print(f"# the MXFP4 matvec at gpu_check.py's tiles on sm_90, Triton {triton.__version__} "
          "(a decode step's inputs)\n")
    print("| tile (rows, blocks, stages, warps[, splits]) | up: registers, spilled, per weight | "
          "down: registers, spilled, per weight |")
    print("|---|---|---|")
    for tile in MATVEC_TILES + DOWN_SPLIT_TILES:
        cells = []
        for up in (True, False):
            if up and len(tile) > 4:  # split-K: the down projection only
                cells.append("-")
                continue
            code, regs, spilled = sass(tile, up)
            cells.append(f"{regs}, {spilled}, {matvec_per_weight(code, tile):.1f}")
        print(f"| {tuple(tile)} | {cells[0]} | {cells[1]} |")
    from gpu_check import DEQUANT_TILES
    print("\n# the dequantisation at gpu_check.py's tiles on sm_90 (bf16 out)\n")
    print("| tile (rows, blocks, warps) | registers | spilled bytes | instructions a value |")
    print("|---|---:|---:|---:|")
    for tile in DEQUANT_TILES:
        code, regs, spilled = dequant_sass(tile)
        print(f"| {tuple(tile)} | {regs} | {spilled} | {instructions(code) / (tile[0] * tile[1] / tile[2]):.1f} |")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", action="store_true",
                    help="only the matvec, at every tile benchmarks/gpu_check.py sweeps (to set beside its timings)")
    ap.add_argument("--check", action="store_true",
                    help="assert 16-byte weight loads, scales a step ahead, tensor cores, register-fed grouped "
                         "weights, no 2-byte bf16 loads in a loop and no spills")
    args = ap.parse_args(argv)
    if args.tiles:
        return tile_table()
    print(f"# the MXFP4 matvec on sm_90, Triton {triton.__version__}\n")
    print("| projection | input | tile (rows, blocks, stages, warps) | registers | spilled bytes | 16-byte loads | "
          "scales a step ahead (instructions to use) | loop instructions | per weight |")
    print("|---|---|---|---:|---:|---|---|---:|---:|")
    for name, tile, up, scaled in (("up", mxfp4_triton.TILE_UP, True, True),
                                   ("down", mxfp4_triton.TILE_DOWN, False, True),
                                   ("up", mxfp4_triton.TILE_UP, True, False),
                                   ("down", mxfp4_triton.TILE_DOWN, False, False)):
        code, regs, local = sass(tile, up, scaled=scaled)
        wide = bool(re.search(WIDE_LOAD, code))
        given = "float32 x 2^64 (a decode step)" if scaled else "bf16" if up else "float32"
        lead, ahead = byte_load_lead(code)
        print(f"| {name} | {given} | {tuple(tile)} | {regs} | {local} | {'yes' if wide else 'no'} | "
              f"{'yes' if ahead else 'no'} ({lead}) | {loop_instructions(code)} | "
              f"{matvec_per_weight(code, tile):.1f} |")
        if args.check:
            assert wide, f"{name}: the packed weights are not read 16 bytes a load"
            assert ahead, f"{name}: a scale's load is read in its own loop step ({lead} instructions later)"
            assert local == 0, f"{name}: {local} bytes spilled (stack + local memory)"
    print("\n# decode attention on sm_90 (G = 8, d = 64, bf16)\n")
    print("| kernel | products | slots a step | warps | registers | spilled bytes | HMMA | warp shuffles | "
          "2-byte loads a step | loop instructions | per slot |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    rows = [(False, True, at.BLOCK_S), (True, True, at.SPLIT_BLOCK_S)]  # the defaults, then runs 1-3's kernels
    rows += [(False, False, at.ELEMENTWISE_BLOCK_S[0]), (True, False, at.ELEMENTWISE_BLOCK_S[1])]
    spilled = {}
    for split, mma, block_s in rows:
        code, regs, local = attention_sass(split, mma)
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
          "multiplies in flight | 2-byte loads a step | scales a step ahead (instructions to use) | "
          "loop instructions | per weight |")
    print("|---|---:|---:|---|---:|---:|---|---:|---:|")
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
        lead, ahead = byte_load_lead(code)
        print(f"| {tuple(tile)} | {regs} | {local} | {'yes' if reg_a else 'no'} | {flight[tile]} | {narrow} | "
              f"{'yes' if ahead else 'no'} ({lead}) | {n} | {n / per_thread:.1f} |")
        fed[tile] = reg_a
        if args.check and tile == default:
            assert local == 0, f"grouped {tile}: {local} bytes spilled"
            assert reg_a == bool(tile[5]), f"grouped {tile}: weights not fed as its orientation says"
            assert n and not narrow, f"grouped {tile}: {narrow} 2-byte loads a step"
    print("\n# the one-launch dequantisation on sm_90 (every expert of the up projection, 32 x 5760 x 90 blocks)\n")
    print("| tile (rows, blocks, warps) | output | registers | spilled bytes | 16-byte loads | 16-byte stores | "
          "instructions | per value |")
    print("|---|---|---:|---:|---|---|---:|---:|")
    for dtype in (torch.bfloat16, torch.float32):
        tile = mxfp4_triton.DEQUANT_TILE
        code, regs, local = dequant_sass(tile, dtype)
        wide_in, wide_out = bool(re.search(WIDE_LOAD, code)), bool(re.search(r"STG\.E\.128", code))
        narrow_out = re.findall(r"STG\.E(\.U16|\.64)?\s", code)  # stores of under 16 bytes
        n = instructions(code)
        per_value = n / (tile[0] * tile[1] * 32 / (32 * tile[2]))  # values a thread writes
        print(f"| {tuple(tile)} | {str(dtype)[6:]} | {regs} | {local} | {'yes' if wide_in else 'no'} | "
              f"{'yes' if wide_out and not narrow_out else 'no'} | {n} | {per_value:.1f} |")
        if args.check:
            assert wide_in and wide_out and not narrow_out, f"dequantise {tile} {dtype}: not 16 bytes a load/store"
            assert local == 0, f"dequantise {tile} {dtype}: {local} bytes spilled"
    print("\n# the one-token GEMV on sm_90 (bf16, a bias; opt-in: gemv_triton.ON)\n")
    print("| product | tile (rows, inputs a step, warps, stages) | registers | spilled bytes | 16-byte loads | "
          "loop instructions | per weight |")
    print("|---|---|---:|---:|---|---:|---:|")
    for what, N, K in (("q/k/v", 5120, 2880), ("output", 2880, 4096)):
        tile = gemv_triton.GEMV_TILE
        code, regs, local = gemv_sass(N, K, tile)
        wide, n = bool(re.search(WIDE_LOAD, code)), loop_instructions(code)
        print(f"| {what} {N} x {K} | {tuple(tile)} | {regs} | {local} | {'yes' if wide else 'no'} | {n} | "
              f"{n / (tile[0] * tile[1] / (32 * tile[2])):.1f} |")
        if args.check:
            assert wide and local == 0 and n, f"GEMV {what} {tile}: 16-byte loads {wide}, {local} bytes spilled"
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
        code, _, _ = attention_sass(False, True, unaligned=("sk_h", "sv_h"))
        assert narrow_loads(code) > 0, "the control read k and v 16 bytes a load"
        # control: without them the dequantisation neither reads nor writes 16 bytes at a time
        code, _, _ = dequant_sass(mxfp4_triton.DEQUANT_TILE, specialised=False)
        assert not re.search(WIDE_LOAD, code) and not re.search(r"STG\.E\.128", code), \
            "the dequantisation control was vectorised"
        # control: a loop that uses the bytes it loads in the same step is seen as such
        code, _, _ = compile_sass(_same_step_bytes, {"p": "*u8", "out": "*i32", "n": "i32"}, {"B": 32}, 1)
        assert byte_load_lead(code)[1] is False and byte_load_lead(code)[0], "the same-step control read ahead"
        print("\nvectorised, tensor cores, weights from registers, scales a step ahead, no spills")
    return 0


if __name__ == "__main__":
    sys.exit(main())
