"""One GPU check of the torch twin, under 8 minutes on an H100/H200 (runs 1 to 3 on an H200: about a minute), in
this order:

1. versions and the GPU;
2. the Triton kernels against the pure-torch code: the MXFP4 matvec on odd shapes and gpt-oss-20b's real ones
   (2880 x 90 blocks, 5760 x 90 blocks), with and without its SwiGLU epilogue; the one-launch dequantisation bit for
   bit at every code and scale; sweeps, each setting's output checked before it is timed by CUDA-graph replay (on
   inputs taken in turn from more bytes than the L2 holds, as the model reads them from memory): the matvec's tiles
   for the up and the down projection (the down one also split-K), the decode attention's settings
   (one program per kv head or split over programs; tensor cores or elementwise), the prompt kernels' tiles
   (grouped MoE in both orientations, flash attention), the dequantisation's and the one-token GEMV's (q/k/v and
   output projections, against F.linear), whose best the later timings take;
3. a tiny gpt-oss on the GPU in float32 and bfloat16 against the float64 CPU twin: full forward, token by token,
   chunked prefill, CUDA-graph replay (also with other tiles and split attention, with programmatic dependent
   launch, with the Triton GEMV), and decode steps and a prompt through the prompt kernels under
   torch.cuda.set_sync_debug_mode("error"); then the shipped trained gpt-oss-shakespeare read by the real loader
   onto the GPU: its first 32 greedy tokens (graph replay, fused kernels) equal to the CPU float32 twin's in float32
   (bfloat16's agreement reported);
4. the full-size random gpt-oss-20b built directly in GPU memory (nothing written to disk): held bytes =
   gptoss_np.accounting.weight_bytes (13.76 GB);
5. prefill tok/s at 2k and 4k (at 2k through the prompt kernels, with the MoE on torch's grouped product, and
   through the per-expert path), batch-1 decode tok/s at 1k and 4k context (eager; graphed with the shipped settings
   and with the best ones of stage 2; without a host sync; with programmatic dependent launch, which lets each
   Triton kernel of a step be scheduled while the one before it finishes; with the projections by the Triton GEMV,
   and with both), peak memory including prefill, % of the bandwidth ceiling (measured copy bandwidth / bytes a
   token reads);
6. the profiler on one eager decode step (kernel count, summed kernel time, top kernels) and on a 2k prefill;
7. where transformers is installed, the same decode on transformers' GptOssForCausalLM (bf16, same config) in the
   same run, for a side-by-side ratio.

It writes a markdown table naming the GPU and the date (benchmarks/gpu_check_<gpu>.md unless --out is given),
rewritten after every stage (a run killed half way still leaves the stages it finished), lists the checks that could
not run on this machine under the table, prints the table at the end, and exits 1 if a correctness check failed.
Each stage runs inside a guard, and so do the CUDA-only pieces within one (graph capture and replay, each decode
timing, each profiled step): an exception becomes a FAIL row naming it and the run goes on; a stage that would start
after --budget seconds (default 420) is recorded as not run, and past 45 % of the budget a sweep times only its
default tile (each tile compiles kernels of its own; the timings after the sweeps keep their time).

    python benchmarks/gpu_check.py                               # on a CUDA machine
    python benchmarks/gpu_check.py --smoke --out /tmp/smoke.md   # every stage on the CPU, tiny model (tests run it)
"""

import argparse
import datetime
import gc
import os
import platform
import re
import resource
import sys
import time
import traceback

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
if "--smoke" in sys.argv:  # before anything imports Triton: the CPU rehearsal runs the kernels in its interpreter
    os.environ.setdefault("TRITON_INTERPRET", "1")
import gptoss_np  # noqa: E402
from gptoss_np.accounting import decode_bytes_per_token, weight_bytes  # noqa: E402
from gptoss_np.cli import at_least  # noqa: E402
from gptoss_torch.fast import enable as enable_fast  # noqa: E402
from gptoss_torch.fast import gemv_triton, moe_glue_triton, moe_grouped  # noqa: E402
from gptoss_torch.fast.cuda_graphs import GraphedDecoder  # noqa: E402
from gptoss_torch.fast.decode import FastDecoder  # noqa: E402
from gptoss_torch.fast.dispatch_count import count_ops  # noqa: E402
from gptoss_torch.model import Model  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_bench import copy_bandwidth, sync  # noqa: E402  (benchmarks/torch_bench.py)
from gptoss_torch.mxfp4 import mxfp4_decode  # noqa: E402

# max |x - ref| / max |ref| against the float64 CPU twin, by dtype: float32 rounding over a few layers; bf16 keeps
# 8 mantissa bits (~5e-3 here), and where rounding flips a near-tied routing decision one position's logits move by
# up to ~20 %, so bf16 is judged at the median position (the worst one is reported beside it).
TOL = {torch.float32: 1e-4, torch.bfloat16: 2e-2}


class Report:
    """Rows of the markdown table; a failed check makes the exit status 1; skip() records a check that could not
    run here."""

    def __init__(self, sweep_until=float("inf")):
        self.rows, self.failed, self.not_run, self.t0 = [], [], [], time.perf_counter()
        self.sweep_until = sweep_until  # seconds into the run after which a sweep tries no further tile

    def elapsed(self):
        """Seconds since the run began."""
        return time.perf_counter() - self.t0

    def add(self, stage, what, result, target="", ok=None):
        status = "" if ok is None else ("ok" if ok else "FAIL")
        self.rows.append((stage, what, result, target, status))
        if ok is False:
            self.failed.append(f"{stage}: {what}")
        print(f"[{self.elapsed():6.1f} s] {stage:<10} {what:<44} {result:<28} {target} {status}",
              flush=True)

    def skip(self, stage, what, why):
        self.rows.append((stage, what, why, "", "not run"))
        self.not_run.append(f"{stage}: {what}: {why}")
        print(f"[{self.elapsed():6.1f} s] {stage:<10} {what:<44} not run: {why}", flush=True)


def attempt(rep, stage, what, fn, device=None):
    """fn() -> its result, synchronised on `device` so an asynchronous CUDA error is charged here; an exception
    becomes a FAIL row `what` (traceback on stderr) and None, so the checks after it still run."""
    try:
        result = fn()
        if device is not None:
            sync(device)
        return result
    except Exception as e:  # any failure, Triton's compile errors and CUDA's out-of-memory included
        traceback.print_exc()
        sys.stderr.flush()
        msg = str(e).strip().splitlines()[0][:100] if str(e).strip() else ""
        rep.add(stage, what, f"{type(e).__name__}: {msg}", "see stderr", False)
        return None


def run_stage(rep, stage, device, fn):
    """One stage inside attempt(): a failure is a row, then the next stage and the markdown file still happen."""
    print(f"[{rep.elapsed():6.1f} s] -- stage {stage}", flush=True)
    return attempt(rep, stage, "stage stopped by an error", fn, device)


def rel_err(x, ref, per_position=False):
    """max |x - ref| / max |ref|; per_position: that max per row [T], over the same denominator."""
    x, ref = x.detach().double().cpu(), ref.detach().double().cpu()
    err = (x - ref).abs()
    return err.amax(-1) / ref.abs().max() if per_position else float(err.max() / ref.abs().max())


# ---- 1. versions -----------------------------------------------------------------------------------------------
def versions(rep, device):
    import numpy
    libs = [f"python {platform.python_version()}", f"torch {torch.__version__}", f"numpy {numpy.__version__}"]
    for mod in ("triton", "transformers"):
        try:
            libs.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            libs.append(f"{mod} absent")
    rep.add("versions", "libraries", ", ".join(libs))
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        rep.add("versions", "GPU", f"{p.name}, sm_{p.major}{p.minor}, {p.total_memory / 2**30:.0f} GiB, "
                                   f"CUDA {torch.version.cuda}")
    else:
        rep.add("versions", "device", f"CPU ({platform.machine()}, {os.cpu_count()} cores): smoke run")


# ---- 2. the Triton kernel ----------------------------------------------------------------------------------------
def gpu_time(device, fn, reps=20):
    """Seconds a call of fn takes on the device: on CUDA, reps calls captured in one CUDA graph and replayed (no
    launch overhead, as in the graphed decode); elsewhere one plain call."""
    if device.type != "cuda":
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        fn()  # compile, allocate
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(reps):
            fn()
    graph.replay()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(5):
        graph.replay()
    sync(device)
    return (time.perf_counter() - t0) / (5 * reps)


# more bytes than the H100's and H200's 50 MB L2: a kernel timed on inputs it read a moment ago is timed from the cache,
# while in the model every layer reads its own weights and KV cache from memory (about 150 MB of other weights pass
# between two reads of the same layer)
L2_BYTES = 64 << 20


def cold_copies(device, tensors):
    """[tensors, copy, copy, ...]: on CUDA as many copies as make more than L2_BYTES together, so that timed calls
    that take them in turn read each from memory, as the model does (one on the CPU)."""
    size = sum(t.numel() * t.element_size() for t in tensors)
    n = -(-L2_BYTES // size) if device.type == "cuda" else 1
    return [tuple(tensors)] + [tuple(t.clone() for t in tensors) for _ in range(n - 1)]


class InTurn:
    """Inputs taken from a list in turn, each next() the following one; `last` is the index of the latest."""

    def __init__(self, items):
        self.items, self.last = items, -1

    def next(self):
        self.last = (self.last + 1) % len(self.items)
        return self.items[self.last]


def kernel_check(rep, device, smoke, state):
    from gptoss_torch.fast import mxfp4_triton
    if not mxfp4_triton.available(device):
        rep.skip("kernel", "Triton MXFP4 matvec and decode attention", "Triton is not installed")
        return
    # (experts, rows, 32-value blocks per row, routed pairs); the real shapes keep K = 90 blocks = 2880 inputs
    shapes = [(3, 37, 5, 5), (5, 23, 7, 3)]
    shapes += [(2, 6, 90, 2), (2, 8, 90, 2)] if smoke else [(32, 2880, 90, 4), (32, 5760, 90, 4)]
    g = torch.Generator(device=device).manual_seed(0)
    for E, R, G, n in shapes:
        blocks = torch.randint(0, 256, (E, R, G, 16), dtype=torch.uint8, device=device, generator=g)
        scales = torch.randint(118, 130, (E, R, G), dtype=torch.uint8, device=device, generator=g)
        ids = torch.randint(0, E, (n,), device=device, generator=g)
        x = torch.randn(n, G * 32, device=device, generator=g)
        ref = torch.einsum("nrk,nk->nr", mxfp4_decode(blocks[ids], scales[ids], torch.float64), x.double())
        err = rel_err(mxfp4_triton.mxfp4_matvec(blocks, scales, ids, x), ref)
        rep.add("kernel", f"matvec E={E} R={R} G={G} ({n} routed)", f"rel err {err:.1e}", "< 1e-5", err < 1e-5)
        if R % 2 == 0:  # the up projection's epilogue: SwiGLU of (gate, linear) row pairs
            from gptoss_torch.ffn import swiglu_oss
            err = rel_err(mxfp4_triton.mxfp4_matvec(blocks, scales, ids, x, swiglu=(1.702, 7.0)), swiglu_oss(ref))
            rep.add("kernel", f"matvec + SwiGLU E={E} R={R} G={G}", f"rel err {err:.1e}", "< 1e-5", err < 1e-5)
    # a decode step's residual add + RMSNorm, the MoE's four float32 rows summed, in bf16 at gpt-oss-20b's width
    from gptoss_torch.fast.norm_triton import add_rms_norm
    from gptoss_torch.norms import rms_norm
    D = 64 if smoke else 2880
    x, delta = torch.randn(1, D, device=device, generator=g).bfloat16(), torch.randn(4, D, device=device, generator=g)
    wn = (1 + torch.randn(D, device=device, generator=g)).bfloat16()
    x_new, h = add_rms_norm(x, delta, wn, 1e-5)
    x_ref = x + delta.sum(0, keepdim=True).bfloat16()
    # Triton's CPU interpreter truncates float32 to bf16 where a GPU rounds (twice here): there, within two ulps
    bound = 2 ** -6 * (x.float().abs() + delta.sum(0).abs())  # two ulps of the larger term
    same = torch.equal(x_new, x_ref) if device.type == "cuda" else bool(((x_new - x_ref).abs() <= bound).all())
    err = rel_err(h, rms_norm(x_ref.double(), wn.double(), 1e-5))
    agree = ("bit-equal" if device.type == "cuda" else "within two ulps") if same else "differs"
    rep.add("kernel", "residual add + RMSNorm, bf16, 4 MoE rows", f"x + delta {agree}; norm rel err {err:.1e}",
            "bit-equal; < 8e-3", same and err < 8e-3)
    # every byte under scales 0..252 (subnormals included), float32 and bf16: the prefill's dequantisation, bit for bit
    b = torch.arange(256, dtype=torch.uint8, device=device).reshape(16, 1, 16).repeat(253, 1, 1)  # [253*16, 1, 16]
    sc = torch.arange(253, dtype=torch.uint8, device=device).repeat_interleave(16)[:, None]
    for dt in (torch.float32, torch.bfloat16):
        # Triton's CPU interpreter flushes float32 subnormals when it rounds to bf16 (scales 0 and 1 make them)
        lo = 2 if dt == torch.bfloat16 and device.type != "cuda" else 0
        same = torch.equal(mxfp4_triton.mxfp4_dequantize(b[16 * lo:], sc[16 * lo:], dt),
                           mxfp4_decode(b[16 * lo:], sc[16 * lo:], dt))
        rep.add("kernel", f"dequantize every code x scales {lo}..252, {str(dt)[6:]}",
                "bit-equal" if same else "differs", "mxfp4_decode", same)
    # tile sweep on the two real shapes, 4 routed experts, as a decode step calls them (up: the add + norm kernel's
    # float32 copy of the bf16 input times 2^64, SwiGLU epilogue, output times 2^64; down: that output, bias and router
    # weight): packed bytes read per second, kernel time from graph replays. Each call routes the next 4 experts of the
    # 32 (8 disjoint sets, 282 MB of up projections), so that the weights come from memory as in the model: runs 1 to
    # 3 routed the same 4 every call, 35 MB that the 50 MB L2 can partly hold, so their 1,226 GB/s may owe some of
    # its speed to the cache
    tiles = [mxfp4_triton.TILE_UP] if smoke else MATVEC_TILES
    best = {}
    for proj, R in (("up", 64 if smoke else 5760), ("down", 32 if smoke else 2880)):
        E, G, n = (2, 90, 2) if smoke else (32, 90, 4)
        blocks = torch.randint(0, 256, (E, R, G, 16), dtype=torch.uint8, device=device, generator=g)
        scales = torch.randint(118, 130, (E, R, G), dtype=torch.uint8, device=device, generator=g)
        routed = InTurn([torch.arange(i * n, (i + 1) * n, device=device) % E for i in range(max(E // n, 1))])
        bias, w = torch.randn(E, R, device=device, generator=g).bfloat16(), torch.rand(n, device=device, generator=g)
        if proj == "up":
            x = torch.randn(1, G * 32, device=device, generator=g).bfloat16().float() * 2.0 ** 64
            kw = dict(bias=bias, topk=n, swiglu=(1.702, 7.0), x_scaled=True, out_scaled=True)
        else:
            x = torch.randn(n, G * 32, device=device, generator=g) * 2.0 ** 64
            kw = dict(bias=bias, weights=w, x_scaled=True)
        default = mxfp4_triton.TILE_UP if proj == "up" else mxfp4_triton.TILE_DOWN

        def call(tile, ids=None):
            return mxfp4_triton.mxfp4_matvec(blocks, scales, routed.next() if ids is None else ids, x, tile=tile, **kw)

        def summed(out):  # the pairs' outputs, split-K parts summed
            return out.view(n, -1, out.shape[-1]).sum(1)
        wants = [summed(call(default, ids)).double() for ids in routed.items]  # each set's, by the default tile
        times = sweep(rep, device, f"matvec {proj} tiles (rows, blocks, stages, warps[, splits]), {n} x {R} x {G}",
                      [default] + [t for t in tiles + (DOWN_SPLIT_TILES[:1 if smoke else None] if proj == "down"
                                                       else []) if t != default],
                      call, lambda out: rel_err(summed(out), wants[routed.last]) <= 1e-5,
                      lambda t: f"{n * R * G * 17 / t / 1e9:,.0f} GB/s", reps=20)  # 16 bytes + 1 scale a block
        best[proj] = min(times, key=times.get) if times else default
    state["best_tiles"] = best
    # the dequantisation's tiles on every expert of the up projection in one launch, as the grouped-product prefill
    # decodes them (32 x 5760 rows: 282 MB read, 1.06 GB written in bf16), each tile's output equal to the default's
    # (whose every code and scale was checked above); bytes read + written per second. The prefill timings take the
    # best (runs 1 to 3: 1,411 GB/s on one expert, by the former kernel)
    E, R, G = (2, 64, 90) if smoke else (32, 5760, 90)
    blocks = torch.randint(0, 256, (E * R, G, 16), dtype=torch.uint8, device=device, generator=g)
    scales = torch.randint(118, 130, (E * R, G), dtype=torch.uint8, device=device, generator=g)

    def dequant(tile):
        return mxfp4_triton.mxfp4_dequantize(blocks, scales, torch.bfloat16, tile=tile)
    default = mxfp4_triton.DEQUANT_TILE
    want = dequant(default)
    times = sweep(rep, device, f"dequantize tiles (rows, blocks, warps), {E} x {R} x {G * 32} to bf16",
                  [default] + [t for t in (DEQUANT_TILES[:1] if smoke else DEQUANT_TILES) if t != default], dequant,
                  lambda out: torch.equal(out, want), lambda t: f"{E * R * G * (17 + 64) / t / 1e9:,.0f} GB/s read "
                                                            "+ written", reps=5)
    state["best_dequant"] = min(times, key=times.get) if times else default
    attempt(rep, "kernel", "one-token GEMV", lambda: gemv_sweep(rep, device, smoke, g, state), device)
    from gptoss_torch.attention import attention_mask, decode_attention
    from gptoss_torch.fast.attention_triton import decode_attention_triton
    # decode attention, gpt-oss-20b's heads (64 q / 8 kv, d = 64) in bf16: a full layer of 4096 slots and a sliding
    # ring of 128, one program per kv head (slots a loop step) or split over programs of `split` slots; products on
    # the tensor cores (the default) or elementwise (runs 1 to 3); kernel time from graph replays. Triton's CPU
    # interpreter multiplies bf16 matrices wrongly: there float16 stands in on the tensor-core path. The timed calls
    # take KV caches in turn (cold_copies), as each layer of the model reads its own from memory
    ring_slots = 16 if smoke else 128
    if smoke:
        cases = [(64, None, 40, 0, 32, mma) for mma in (True, False)] + [(64, None, 40, 16, 16, True),
                                                                         (16, 8, 29, 0, 32, True),
                                                                         (16, 8, 29, 0, 32, False)]
    else:
        cases = []
        for mma, blocks in ((True, (64, 32)), (False, (32, 16))):
            cases += [(4096, None, 3000, split, blocks[0], mma) for split in (0, 64, 128, 256)]
            cases += [(4096, None, 3000, 0, blocks[1], mma), (128, 128, 3000, 64, blocks[0], mma)]
            cases += [(128, 128, 3000, 0, b, mma) for b in blocks]
    times = {}
    for slots, window, p, split, block_s, mma in cases:
        dt = torch.bfloat16 if device.type == "cuda" or not mma else torch.float16
        q, k, v = (torch.randn(1, n, h, 64, device=device, generator=g).to(dt)
                   for n, h in ((1, 64), (slots, 8), (slots, 8)))
        kpos = torch.tensor([p - (p - s) % slots if window else s for s in range(slots)], device=device)
        kpos[(kpos < 0) | (kpos > p)] = -1
        sinks, pos = torch.randn(64, device=device, generator=g), torch.tensor([p], device=device)
        ref = decode_attention(q.double(), k.double(), v.double(), attention_mask(pos, kpos, window), sinks.double())

        caches = InTurn(cold_copies(device, (k, v)))

        def call(kv=None):
            kk, vv = kv or caches.next()
            return decode_attention_triton(q, kk, vv, kpos, pos, window, sinks, ring=window is not None,
                                           block_s=block_s, split_slots=split, mma=mma)
        how = f"split {split}" if split else f"one program per kv head, {block_s} a step"
        what = f"decode attention, {slots} slots, window {window}, {how}, {'tensor cores' if mma else 'elementwise'}"
        timed = attempt(rep, "kernel", what, lambda: (  # a failure is this setting's row; the others still run
            rel_err(call((k, v)), ref), gpu_time(device, call, reps=max(20, len(caches.items))) * 1e6), device)
        if timed is None:
            continue
        err, us = timed
        if err < 8e-3:  # a setting that fails its check is never the one the decode timings take
            times[window is not None, split, block_s, mma] = us
        rep.add("kernel", what, f"rel err {err:.1e}, {us:,.1f} us", f"< 8e-3 ({str(dt)[6:]})", err < 8e-3)
    # one setting serves both kinds of layer (gpt-oss-20b alternates them): the least time for a full layer plus a
    # sliding one (a ring is not split at its own size or more); a split kernel's slots a step are fixed
    both = {}
    for (ring, sp, bs, mma), us in times.items():
        if not ring:
            other = times.get((True, sp if sp < ring_slots else 0, bs, mma))
            if other is not None:
                both[sp, bs, mma] = us + other
    state["best_attention"] = min(both, key=both.get) if both else ATTENTION_DEFAULT
    sp, bs, mma = state["best_attention"]
    rep.add("kernel", "attention for a full + a sliding layer (split, slots a step, tensor cores)",
            f"{sp or 'none'}, {bs}, {mma}: {both.get((sp, bs, mma), 0):,.1f} us",
            f"runs 1-3's elementwise (none, 32): {both.get((0, 32, False), 0):,.1f} us")
    attempt(rep, "kernel", "prompt kernels", lambda: prompt_kernels(rep, device, smoke, g, state), device)


def gemv_sweep(rep, device, smoke, g, state):
    """One token's dense products, gpt-oss-20b's q/k/v (5120 x 2880) and output projection (2880 x 4096) in bf16 with
    a bias: the Triton GEMV at its tiles against F.linear (cuBLAS), weights taken in turn from copies the L2 cannot
    hold; bf16 weights read per second. The decode timings with the GEMV take the tile best on both."""
    gemv_times = {}
    for what, (N, K) in ((("tiny", (40, 96)),) if smoke else (("q/k/v", (5120, 2880)), ("output", (2880, 4096)))):
        w0 = torch.randn(N, K, device=device, generator=g).bfloat16()
        b0, x = torch.randn(N, device=device, generator=g).bfloat16(), torch.randn(1, K, device=device, generator=g)
        x = x.bfloat16()
        mats = InTurn(cold_copies(device, (w0, b0)))
        want = x.double() @ w0.double().T + b0.double()

        def product(tile):  # tile None: F.linear
            w, b = mats.next()
            return torch.nn.functional.linear(x, w, b) if tile is None else gemv_triton.gemv(x, w, b, tile=tile)

        def unit(t):
            return f"{N * K * 2 / t / 1e9:,.0f} GB/s"
        t_ref = gpu_time(device, lambda: product(None), reps=max(20, len(mats.items)))
        tiles = [gemv_triton.GEMV_TILE] + [t for t in (GEMV_TILES[:1] if smoke else GEMV_TILES)
                                           if t != gemv_triton.GEMV_TILE]
        times = sweep(rep, device, f"GEMV {what} tiles (rows, inputs a step, warps, stages), {N} x {K}, bf16",
                      tiles, product, lambda out: rel_err(out, want) < 1e-2, unit, reps=max(20, len(mats.items)))
        rep.add("kernel", f"F.linear (cuBLAS), the same {what} product", unit(t_ref),
                f"GEMV best: {unit(min(times.values()))}" if times else "")
        for tile, t in times.items():
            gemv_times.setdefault(tile, []).append(t)
    state["best_gemv"] = least(gemv_times, gemv_triton.GEMV_TILE) if not smoke else gemv_triton.GEMV_TILE


# the matvec tiles the sweep tries on both projections (rows, blocks, stages, warps); benchmarks/kernel_sass.py
# --tiles reads each one's machine code on the CPU. The last four keep more bytes in flight a warp (deeper pipelines,
# 8 blocks a step): the profiled decode step of run 3 read the experts at ~600 GB/s on average over both projections,
# far under the copy bandwidth
MATVEC_TILES = [(16, 4, 3, 1), (8, 4, 3, 1), (8, 8, 3, 1), (16, 8, 3, 1), (16, 2, 3, 1), (16, 4, 4, 1), (32, 4, 3, 1),
                (16, 4, 3, 2), (32, 4, 3, 2), (8, 4, 3, 2), (4, 8, 3, 1), (8, 2, 3, 1),
                (16, 4, 5, 1), (16, 4, 8, 1), (16, 8, 4, 1), (8, 8, 5, 1)]
# the down projection's split-K tiles (rows, blocks, stages, warps, splits): its 2880 rows make half the programs of
# the up projection's 5760, too few to keep the H200 busy at batch 1
DOWN_SPLIT_TILES = [(16, 4, 3, 1, 2), (8, 4, 3, 1, 2), (16, 4, 3, 1, 3), (16, 2, 3, 1, 2), (32, 4, 3, 1, 2),
                    (16, 4, 5, 1, 2), (16, 8, 4, 1, 2)]
# the one-token GEMV's tiles (rows, inputs a loop step, warps, stages)
GEMV_TILES = [(8, 256, 4, 3), (4, 512, 4, 3), (16, 256, 4, 3), (8, 512, 4, 4), (4, 256, 2, 4), (2, 512, 2, 4)]
# the dequantisation's tiles (rows, 32-value blocks, warps); benchmarks/kernel_sass.py reads their machine code
DEQUANT_TILES = [(64, 2, 4), (128, 2, 4), (64, 2, 2), (16, 8, 4), (16, 16, 4), (32, 8, 4), (128, 2, 8)]
# tiles the prompt kernels' sweeps try: the grouped MoE's (pairs, rows, 32-value blocks, warps, stages, swap) and flash
# attention's (queries, keys a step, warps, stages); the first of each is the shipped default
GROUP_TILES = [(64, 64, 2, 4, 3, True), (64, 64, 2, 4, 3, False), (64, 128, 2, 4, 3, True),
               (128, 128, 2, 8, 3, True), (128, 128, 2, 8, 3, False), (128, 64, 2, 4, 3, True),
               (64, 128, 4, 4, 3, True), (128, 256, 2, 8, 3, False)]
PREFILL_TILES = [(64, 64, 4, 3), (128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (64, 32, 4, 3), (64, 128, 4, 3)]


SWEEP_SHARE = 0.45  # of --budget: the sweeps' tiles beyond each default are tried only this far into the run


def sweep(rep, device, label, tiles, call, check, unit, reps=5):
    """Time call(tile) (by graph replays of `reps` calls) for each tile whose output passes check(out), the first
    being the default -> {tile: seconds}, and one row `label`: the best and the default, in unit(seconds); a tile
    the compiler refuses or whose output fails is named in the row, not timed. Past rep.sweep_until seconds into the
    run only the default is tried (each tile compiles its own kernels: the stages after the sweeps keep their time),
    and the row counts the tiles left untried."""
    times, refused, untried = {}, [], 0
    for tile in tiles:
        if tile != tiles[0] and rep.elapsed() > rep.sweep_until:
            untried += 1
            continue
        try:  # a tile the compiler refuses (registers, shared memory) is reported, not fatal
            if not check(call(tile)):
                refused.append(f"{tile} wrong")
                continue
            times[tile] = gpu_time(device, lambda: call(tile), reps=reps if device.type == "cuda" else 1)
        except Exception as e:  # Triton's OutOfResources / CompilationError
            refused.append(f"{tile} {type(e).__name__}")
    if untried:
        refused.append(f"{untried} tiles untried: past {rep.sweep_until:.0f} s of the run")
    if times:
        best = min(times, key=times.get)
        rep.add("kernel", label, f"best {best}: {unit(times[best])}",
                f"default {tiles[0]}: {unit(times[tiles[0]]) if tiles[0] in times else '-'}"
                + (f"; not timed: {', '.join(refused)}" if refused else ""))
    else:
        rep.add("kernel", label, "none ran: " + ", ".join(refused), "", False)
    return times


def least(times, default):
    """The tile of least summed time among those timed twice (both cases), else default."""
    both = {tile: sum(ts) for tile, ts in times.items() if len(ts) == 2}
    return min(both, key=both.get) if both else default


def prompt_kernels(rep, device, smoke, g, state):
    """The prompt's kernels (not yet on by default): the grouped MXFP4 MoE and flash attention with sinks, against
    float64 references in float32 and bf16, their speed at a 2k prompt (kernel time from graph replays) and a sweep
    of their tiles (the best go into state for the prefill timings)."""
    from gptoss_torch.attention import attention, attention_mask
    from gptoss_torch.fast import mxfp4_triton
    from gptoss_torch.fast.attention_triton import prefill_attention_triton
    from gptoss_torch.ffn import swiglu_oss
    E, G, T, k = (4, 3, 40, 4) if smoke else (32, 90, 2048, 4)
    # Triton's CPU interpreter multiplies bf16 matrices wrongly (it works on their bits); there float16 stands in
    # for the same tensor-core path
    narrow = torch.bfloat16 if device.type == "cuda" else torch.float16
    nname = str(narrow)[6:]
    group_times, attention_times = {}, {}  # a tile's times for up and down / the full and the sliding layer
    for proj, R in (("up", 64 if smoke else 5760), ("down", 32 if smoke else 2880)):
        blocks = torch.randint(0, 256, (E, R, G, 16), dtype=torch.uint8, device=device, generator=g)
        scales = torch.randint(118, 130, (E, R, G), dtype=torch.uint8, device=device, generator=g)
        bias = torch.randn(E, R, device=device, generator=g)
        ids = torch.randint(0, E, (T * k,), device=device, generator=g)
        slots, block_expert = mxfp4_triton.group_pairs(ids, E, mxfp4_triton.GROUP_TILE[0])
        n_in = T if proj == "up" else T * k
        x = torch.randn(n_in, G * 32, device=device, generator=g)
        check = slice(0, 64 if proj == "up" else 256)  # the float64 reference for the first pairs only
        pairs = torch.arange(T * k, device=device)[check]
        xs = x.double()[pairs // k if proj == "up" else pairs]
        ref = torch.empty(len(pairs), R, dtype=torch.float64, device=device)
        for e in ids[check].unique().tolist():  # each expert decoded once (every pair's own copy: 17 GB at 256 pairs)
            hit = ids[check] == e
            ref[hit] = xs[hit] @ mxfp4_decode(blocks[e], scales[e], torch.float64).T  # [pairs of e, R]
        ref = ref + bias[ids[check]].double()
        if proj == "up":
            ref = swiglu_oss(ref)
        kw = dict(topk=k, swiglu=(1.702, 7.0)) if proj == "up" else {}
        for dt, tol in ((torch.float32, 1e-5), (narrow, 1e-2)):
            out = mxfp4_triton.mxfp4_grouped(blocks, scales, slots, block_expert, x.to(dt), bias.to(dt), **kw)
            err = rel_err(out[check], ref)
            rep.add("kernel", f"grouped MoE {proj}, {str(dt)[6:]}, {T} tokens x {k} over {E} experts",
                    f"rel err {err:.1e}", f"< {tol:g}", err < tol)
        xb, bb = x.to(narrow), bias.to(narrow)
        flop = 2 * T * k * R * G * 32

        def grouped(tile):
            sl, be = mxfp4_triton.group_pairs(ids, E, tile[0])
            return mxfp4_triton.mxfp4_grouped(blocks, scales, sl, be, xb, bb, tile=tile, **kw)
        tiles = GROUP_TILES if not smoke else GROUP_TILES[:1]
        for tile, t in sweep(rep, device, f"grouped MoE {proj}, {nname}, {T} tokens tiles", tiles, grouped,
                             lambda out: rel_err(out[check], ref) < 1e-2,
                             lambda t: f"{t * 1e3:,.2f} ms, {flop / t / 1e12:,.0f} TFLOP/s").items():
            group_times.setdefault(tile, []).append(t)
    # flash attention for a prompt: gpt-oss-20b's heads, full and sliding (window 128), sinks
    T = 48 if smoke else 2048
    q = torch.randn(1, T, 64, 64, device=device, generator=g)
    kk, v = (torch.randn(1, T, 8, 64, device=device, generator=g) for _ in range(2))
    sinks, pos = torch.randn(64, device=device, generator=g), torch.arange(T, device=device)
    for window in (None, 128 if not smoke else 16):
        check = slice(T - 64, T)  # the float64 reference for the last 64 queries
        ref = attention(q[:, check].double(), kk.double(), v.double(), attention_mask(pos[check], pos, window),
                        sinks.double())
        for dt, tol in ((torch.float32, 1e-5), (narrow, 2e-2)):
            out = prefill_attention_triton(q.to(dt), kk.to(dt), v.to(dt), pos, pos, window, sinks)
            err = rel_err(out[:, check], ref)
            rep.add("kernel", f"prompt attention, {str(dt)[6:]}, {T} tokens, window {window}", f"rel err {err:.1e}",
                    f"< {tol:g}", err < tol)
        qb, kb, vb = q.to(narrow), kk.to(narrow), v.to(narrow)
        flops = 4 * 64 * T * (T if window is None else min(T, window)) * 64 / (2 if window is None else 1)
        tiles = PREFILL_TILES if not smoke else PREFILL_TILES[:1]
        def unit(t):
            return f"{t * 1e3:,.2f} ms, {flops / t / 1e12:,.0f} TFLOP/s of the causal work"
        for tile, t in sweep(rep, device, f"prompt attention, {nname}, {T} tokens, window {window} tiles", tiles,
                             lambda tile: prefill_attention_triton(qb, kb, vb, pos, pos, window, sinks, tile=tile),
                             lambda out: rel_err(out[:, check], ref) < 2e-2, unit).items():
            attention_times.setdefault(tile, []).append(t)
    # of the tiles that ran for both projections / both kinds of layer, the least time summed
    state["best_prompt_tiles"] = (least(group_times, GROUP_TILES[0]), least(attention_times, PREFILL_TILES[0]))
    rep.add("kernel", "prompt tiles for the prefill timings (grouped MoE; attention)",
            f"{state['best_prompt_tiles'][0]}; {state['best_prompt_tiles'][1]}")


# ---- 3. a tiny model against the float64 CPU twin ----------------------------------------------------------------
def tiny_checks(rep, device):
    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), window=4)
    w = gptoss_np.init_weights(cfg, seed=1)
    tokens = torch.arange(23) * 37 % cfg.vocab_size
    ref = Model.from_numpy(cfg, w, "cpu", torch.float64)(tokens)  # [T, V]
    for dtype in (torch.float32, torch.bfloat16):
        name, tol = str(dtype).replace("torch.", ""), TOL[dtype]
        m = Model.from_numpy(cfg, w, device, dtype)
        if device.type == "cuda":  # the interpreter would take minutes; stage 2 checked the kernels
            enable_fast(m)
        else:
            rep.skip(f"tiny {name}", "the model with its fused MXFP4, routing and attention kernels",
                     "needs CUDA (the kernel stage ran them in Triton's interpreter)")
        toks = tokens.to(device)
        results = {"full forward": m(toks)}
        if device.type == "cuda":  # the prompt kernels (grouped MoE: 23 and 17 tokens x 4 pairs; flash attention)
            m2 = Model.from_numpy(cfg, w, device, dtype)
            on = ", ".join(k for k, v in enable_fast(m2, prefill=True).items() if v)
            results[f"full forward ({on})"] = attempt(rep, f"tiny {name}", "prompt kernels", lambda: m2(toks), device)
            cache2 = m2.new_cache(32)
            results[f"two prompts into a cache ({on})"] = attempt(
                rep, f"tiny {name}", "prompt kernels into a cache",
                lambda: torch.cat([m2(toks[:17], cache=cache2), m2(toks[17:], cache=cache2)]), device)
            if moe_grouped.available(device, dtype):  # the other candidate: the MoE on torch's grouped product
                m3 = Model.from_numpy(cfg, w, device, dtype)
                enable_fast(m3, prefill=True, prefill_moe="grouped_mm")
                results["full forward (MoE on torch's grouped product, prompt attention)"] = attempt(
                    rep, f"tiny {name}", "MoE on torch's grouped product", lambda: m3(toks), device)
            results = {k: v for k, v in results.items() if v is not None}
        cache = m.new_cache(32)
        results["token by token"] = torch.cat([m(toks[i:i + 1], cache=cache) for i in range(len(toks))])
        results["chunked prefill (5 a chunk)"] = m(toks, prefill_chunk=5)
        cache = m.new_cache(32)
        first = m(toks[:5], cache=cache)
        dec = attempt(rep, f"tiny {name}", "CUDA-graph capture", lambda: GraphedDecoder(m, cache), device)
        if dec is not None:
            replay = "graph replay" if dec.graph is not None else "graph-capturable step (eager here)"
            steps = attempt(rep, f"tiny {name}", replay, lambda: torch.stack([dec.step(t) for t in toks[5:]]), device)
            if steps is not None:
                results[replay] = torch.cat([first, steps])
            if dec.graph is None:
                rep.skip(f"tiny {name}", "CUDA-graph capture and replay", "needs CUDA (the same step ran eagerly)")
        if device.type == "cuda":  # other tiles (the down projection split-K), attention split 16 slots a program;
            # then the shipped settings with programmatic dependent launch
            shipped = current_kernels()
            for what, kernels in (("graph replay, other tiles + split attention", OTHER_KERNELS),
                                  ("graph replay, programmatic dependent launch", variant(shipped, pdl=True)),
                                  ("graph replay, Triton GEMV", variant(shipped, gemv=True)),
                                  ("graph replay, Triton GEMV + programmatic dependent launch",
                                   variant(shipped, pdl=True, gemv=True))):
                configure(kernels)
                try:
                    cache = m.new_cache(32)
                    first = m(toks[:5], cache=cache)
                    dec = attempt(rep, f"tiny {name}", what, lambda: GraphedDecoder(m, cache), device)
                    steps = dec and attempt(rep, f"tiny {name}", what,
                                            lambda: torch.stack([dec.step(t) for t in toks[5:]]), device)
                    if steps is not None:
                        results[what] = torch.cat([first, steps])
                finally:
                    configure(shipped)
        for what, out in results.items():
            errs = rel_err(out, ref, per_position=True)
            if dtype == torch.float32:
                err = float(errs.max())
                rep.add(f"tiny {name}", what, f"rel err {err:.1e}", f"< {tol:g}", err <= tol)
            else:
                err = float(errs.median())
                rep.add(f"tiny {name}", what, f"rel err {err:.1e} (worst position {float(errs.max()):.1e})",
                        f"median < {tol:g}", err <= tol)
        if device.type == "cuda":
            cache = m.new_cache(32)
            m(toks[:5], cache=cache)
            pos, fast = torch.tensor([5], device=device), FastDecoder(m, 32)
            prompt_pos = torch.arange(6, 6 + 20, device=device)

            def prompt_step(moe):  # a 20-token prompt (80 pairs: past the decode kernel's few), prompt kernels
                enable_fast(m, prefill=True, prefill_moe=moe)
                try:
                    m.run(toks[:20][None], prompt_pos, cache)
                finally:
                    enable_fast(m, prefill_moe=moe)
            steps = [("Model.run", lambda: m.run(toks[5:6][None], pos, cache)),
                     ("FastDecoder.step", lambda: fast.step(toks[5:6][None], pos, cache)),
                     ("a prompt through the prompt kernels", lambda: prompt_step("triton"))]
            if moe_grouped.available(device, dtype):
                steps.append(("a prompt with the MoE on torch's grouped product", lambda: prompt_step("grouped_mm")))
            for label, step in steps:
                torch.cuda.set_sync_debug_mode("error")
                try:
                    step()
                    sync_ok, msg = True, "no host sync"
                except Exception as e:  # RuntimeError: called a synchronizing CUDA operation
                    sync_ok, msg = False, f"{type(e).__name__}: {str(e).strip()[:60]}"
                finally:
                    torch.cuda.set_sync_debug_mode(0)
                rep.add(f"tiny {name}", f"{label} under sync_debug_mode('error')", msg, "", sync_ok)
        else:
            rep.skip(f"tiny {name}", "decode steps under sync_debug_mode('error')", "needs CUDA")


# ---- 3b. the shipped trained model: the real loader, greedy tokens on the device against the CPU float32 twin -----
@torch.no_grad()
def greedy_tokens(model, prompt, n, decoder=None):
    """n greedy tokens after `prompt` (a host list): the plain forward into a cache, then one token at a time, through
    `decoder` (a GraphedDecoder on the same model) when given -> (tokens, per-step logits [n, V] on the CPU)."""
    device = model.device
    toks = torch.tensor(prompt, device=device)
    if decoder is None:
        cache = model.new_cache(len(prompt) + n)
        logits = model(toks, cache=cache, last_only=True)[-1]  # [V]
    else:
        logits = decoder.prefill(toks)[-1]
    out, steps = [], []
    for _ in range(n):
        steps.append(logits.float().cpu())
        out.append(int(logits.argmax()))
        nxt = torch.tensor([out[-1]], device=device)
        logits = decoder.step(out[-1]) if decoder is not None else model(nxt, cache=cache)[-1]
    return out, torch.stack(steps)


def shipped_checks(rep, device, n=32):
    from gptoss_np import default_checkpoint
    from gptoss_np.text.chat import chat_prompt, chat_tokenizer
    from gptoss_torch import load_model
    ckpt = default_checkpoint()
    tokenizer = chat_tokenizer(ckpt)
    prompt = chat_prompt(tokenizer, "What light through yonder window breaks?", "low")
    ref, ref_logits = greedy_tokens(load_model(ckpt, "cpu", torch.float32, progress=False), prompt, n)
    for dtype in (torch.float32, torch.bfloat16):
        name = str(dtype).replace("torch.", "")
        m = load_model(ckpt, device, dtype, progress=False)
        fused = device.type == "cuda" and enable_fast(m)["mxfp4"]
        how = ("graph replay" if device.type == "cuda" else "eager step") + (", fused MXFP4" if fused else "")
        what = f"gpt-oss-shakespeare {name}: greedy tokens ({how})"
        out = attempt(rep, f"shipped {name}", what, lambda: greedy_tokens(  # a failure is a row, not the stage's end
            m, prompt, n, GraphedDecoder(m, m.new_cache(len(prompt) + n + 1))), device)
        if out is not None:  # (else its FAIL row; the variants below still run)
            got, logits = out
            same = next((i for i, (a, b) in enumerate(zip(got, ref)) if a != b), n)
            result = f"{same}/{n} equal the CPU float32 twin's" + (
                f"; logits rel err {rel_err(logits, ref_logits):.1e}" if same == n else f"; first differs at {same}")
            # fp32 must agree token for token (the target); bf16 rounding may flip a near-tie: reported only
            rep.add(f"shipped {name}", what, result, f"{n}/{n}" if dtype == torch.float32 else "",
                    same == n if dtype == torch.float32 else None)
        if device.type == "cuda" and dtype == torch.float32:  # other tiles, attention split 16 slots a program; PDL
            shipped = current_kernels()
            for what, kernels in (("the same, other tiles + split attention", OTHER_KERNELS),
                                  ("the same, programmatic dependent launch", variant(shipped, pdl=True)),
                                  ("the same, Triton GEMV + programmatic dependent launch",
                                   variant(shipped, pdl=True, gemv=True))):
                configure(kernels)
                try:
                    got = attempt(rep, f"shipped {name}", what, lambda: greedy_tokens(
                        m, prompt, n, GraphedDecoder(m, m.new_cache(len(prompt) + n + 1)))[0], device)
                finally:
                    configure(shipped)
                if got is not None:
                    same = next((i for i, (a, b) in enumerate(zip(got, ref)) if a != b), n)
                    rep.add(f"shipped {name}", what, f"{same}/{n} equal", f"{n}/{n}", same == n)
            on = ", ".join(k for k, v in enable_fast(m, prefill=True).items() if v)
            what = f"the same, prompt kernels ({on}; {len(prompt)}-token prompt)"
            got = attempt(rep, f"shipped {name}", what, lambda: greedy_tokens(
                m, prompt, n, GraphedDecoder(m, m.new_cache(len(prompt) + n + 1)))[0], device)
            if got is not None:
                same = next((i for i, (a, b) in enumerate(zip(got, ref)) if a != b), n)
                rep.add(f"shipped {name}", what, f"{same}/{n} equal", f"{n}/{n}", same == n)
    rep.add("shipped", f"the CPU twin's {n} greedy tokens", repr(tokenizer.decode(ref))[:90])


# ---- 4. the full-size random model, built on the device ----------------------------------------------------------
@torch.no_grad()
def random_model(cfg, device, dtype, seed=0):
    """A random inference model allocated directly on `device`: matrices N(0, 0.02), norms 1, sinks N(0, 1), MXFP4
    experts uniform bytes with scales 2^-8..2^-4 (values of order 0.03)."""
    torch.manual_seed(seed)
    model = Model(cfg, device=device, dtype=dtype)
    for name, p in model.named_parameters():
        if "norm" in name:
            p.fill_(1.0)
        elif name.endswith("sinks"):
            p.normal_()
        else:
            p.normal_(0.0, 0.02)
    for name, b in model.named_buffers():
        b.random_(0, 256) if name.endswith("blocks") else b.random_(119, 124)
    return model.eval().requires_grad_(False)


def build_full(rep, device, cfg, state):
    t0 = time.perf_counter()
    model = random_model(cfg, device, torch.bfloat16)
    sync(device)
    held = sum(t.nbytes for t in list(model.parameters()) + list(model.buffers()))
    want = weight_bytes(cfg)["total"]
    rep.add("build", f"random {cfg.name} on {device.type} (bf16, MXFP4 experts)",
            f"{time.perf_counter() - t0:.1f} s")
    rep.add("build", "held bytes = weight_bytes", f"{held / 1e9:.3f} GB", f"{want / 1e9:.3f} GB", held == want)
    fused = enable_fast(model, prefill=True) if device.type == "cuda" else {}
    rep.add("build", "fused kernels enabled", ", ".join(f"{k}: {v}" for k, v in fused.items()) or "none (CPU)")
    state["prompt_kernels"] = bool(fused.get("prefill moe") and fused.get("prefill attention"))
    if device.type != "cuda":
        rep.skip("build", "speed and profile with the fused kernels", "needs CUDA (the pure-torch MoE runs here)")
    return model


# ---- 5. speed ----------------------------------------------------------------------------------------------------
def set_prompt_kernels(model, on, moe="triton"):
    """The prompt kernels (grouped MoE, flash attention) on or off, as gptoss_torch.fast.enable sets them, on CUDA
    (the CPU rehearsal keeps its plain paths but for the MoE on torch's grouped product, which runs there too);
    moe: the prompt's MoE on the Triton grouped kernel or on torch's grouped product ("grouped_mm")."""
    if model.device.type == "cuda":
        enable_fast(model, prefill=on, prefill_moe=moe)
    else:
        moe_grouped.enable(model, on and moe == "grouped_mm")


def prompt_tiles(tiles=None):
    """The prompt kernels' tiles (grouped MoE, flash attention) now, after setting them to `tiles` if given."""
    from gptoss_torch.fast import attention_triton, mxfp4_triton
    if tiles is not None:
        mxfp4_triton.GROUP_TILE, attention_triton.PREFILL_TILE = tiles
    return mxfp4_triton.GROUP_TILE, attention_triton.PREFILL_TILE


# the graph-replay checks' other settings: up and down tiles (the down split-K in two), attention split over programs
# of 16 slots, elementwise (a tiny model's cache is too short for the tensor-core kernel's 32-slot splits); no
# programmatic dependent launch and no Triton GEMV (checks of their own: variant)
OTHER_KERNELS = ((8, 4, 3, 2), (32, 4, 3, 1, 2), (16, 16, False), False, False)
ATTENTION_DEFAULT = (128, 64, True)  # (split slots, slots a step, tensor cores): attention_triton's defaults


def configure(kernels):
    """Set the fast paths' module switches: (up tile, down tile, (attention split slots, slots a step of the
    one-program kernel, tensor cores), programmatic dependent launch, a token's q/k/v and output projections by the
    Triton GEMV)."""
    from gptoss_torch.fast import attention_triton as at, mxfp4_triton
    (mxfp4_triton.TILE_UP, mxfp4_triton.TILE_DOWN, (at.SPLIT_SLOTS, block_s, at.MMA), mxfp4_triton.PDL,
     gemv_triton.ON) = kernels
    if at.MMA:
        at.BLOCK_S = block_s
    else:
        at.ELEMENTWISE_BLOCK_S = (block_s, at.ELEMENTWISE_BLOCK_S[1])


def current_kernels():
    """The fast paths' switches now, as configure() takes them."""
    from gptoss_torch.fast import attention_triton as at, mxfp4_triton
    return (mxfp4_triton.TILE_UP, mxfp4_triton.TILE_DOWN,
            (at.SPLIT_SLOTS, at.BLOCK_S if at.MMA else at.ELEMENTWISE_BLOCK_S[0], at.MMA), mxfp4_triton.PDL,
            gemv_triton.ON)


def variant(kernels, pdl=None, gemv=None):
    """The same settings with programmatic dependent launch and the Triton GEMV as given (None: as they were)."""
    up, down, attn, was_pdl, was_gemv = kernels
    return up, down, attn, was_pdl if pdl is None else pdl, was_gemv if gemv is None else gemv


def describe(kernels):
    up, down, (split, block_s, mma), pdl, gemv = kernels
    return (f"up {up}, down {down}, attention split {split or 'none'}, {block_s} a step, "
            f"{'tensor cores' if mma else 'elementwise'}" + (", programmatic dependent launch" if pdl else "")
            + (", Triton GEMV" if gemv else ""))


def decode_rate(model, context, n_tokens, graphed, host_sync=True):
    """Prefill `context` tokens into a cache, then time n_tokens greedy single-token steps: with host_sync each
    token is read back (as a chat does), else the argmax stays on the device and feeds the next replay."""
    device = model.device
    cache = model.new_cache(context + n_tokens + 4)
    model(torch.randint(0, model.cfg.vocab_size, (context,), device=device), cache=cache, last_only=True)
    dec = GraphedDecoder(model, cache) if graphed else None
    tok = 0
    for i in range(n_tokens + 2):  # two untimed steps first
        if i == 2:
            sync(device)
            t0 = time.perf_counter()
        logits = dec.step(tok) if graphed else model(torch.tensor([tok], device=device), cache=cache)[0]
        tok = int(logits.argmax()) if host_sync else logits.argmax()
    sync(device)
    return n_tokens / (time.perf_counter() - t0)


def speed(rep, model, device, smoke, state):
    from gptoss_torch.fast import mxfp4_triton
    cfg = model.cfg
    prompts, contexts, n_dec = ([16, 32], [8, 24], 3) if smoke else ([2048, 4096], [1024, 4096], 48)
    # the copy test's two buffers (2 GiB) come and go before the peak-memory count starts: the first H200 runs
    # counted them in (15.14 GiB)
    bw = copy_bandwidth(device, (1 << 24) if smoke else (1 << 31))
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model(torch.zeros(32, dtype=torch.long, device=device), last_only=True)  # warm-up: 32 x top-k pairs take
    # the prefill's per-expert MoE path (8 tokens would take the decode one), so the first timed prompt is warm
    experts = [(b.mlp.experts.up, b.mlp.experts.down) for b in model.layers]
    fast_dequant = experts[0][0].dequantize
    prompt_kernels = state.get("prompt_kernels", False)  # the grouped MoE and flash attention were enabled
    shipped_prompt = prompt_tiles()
    # (what, experts through the dequantisation kernel, prompt kernels' tiles or False, the prompt's MoE)
    mxfp4_triton.DEQUANT_TILE = state.get("best_dequant", mxfp4_triton.DEQUANT_TILE)  # every variant decodes by it
    variants = [(f"experts dequantised by the kernel {mxfp4_triton.DEQUANT_TILE}", True, False, "triton"),
                ("experts decoded in torch", False, False, "triton")]
    best = state.get("best_prompt_tiles", shipped_prompt)
    if moe_grouped.available(device, model.dtype):
        glue = ", its glue in Triton" if moe_glue_triton.available(device) else ""
        variants[:0] = [(f"MoE on torch's grouped product (each projection's experts dequantised whole{glue})"
                         + (f", flash attention {best[1]}" if device.type == "cuda" else ""), True, best,
                         "grouped_mm")]
    if prompt_kernels:
        variants[:0] = [(f"prompt kernels (grouped MoE {best[0]}, flash attention {best[1]})", True, best,
                         "triton")] + (
            [(f"prompt kernels, shipped tiles ({shipped_prompt[0]}; {shipped_prompt[1]})", True, shipped_prompt,
              "triton")] if best != shipped_prompt else [])
    floor = 0  # the peak before the grouped product's variant, whose decoded experts have a row of their own
    for T in prompts:
        for how, dequant, kernels, moe in (variants if T == prompts[0] else variants[:1]):
            if kernels:
                prompt_tiles(kernels)
            # first: enabling sets the kernel dequantisation
            set_prompt_kernels(model, bool(kernels) and (prompt_kernels or moe == "grouped_mm"), moe)
            for up, down in experts:
                up.dequantize = down.dequantize = fast_dequant if dequant else None
            what = f"prefill, {T}-token prompt, {how}"
            own = moe == "grouped_mm" and device.type == "cuda"
            if own:
                floor = max(floor, torch.cuda.max_memory_allocated())
                torch.cuda.reset_peak_memory_stats()
            rate = attempt(rep, "speed", what, lambda: prefill_rate(model, T), device)
            note = ">= 50,000 tok/s at 2k"
            if own:
                note += f"; its own peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (not in the peak row)"
                torch.cuda.reset_peak_memory_stats()
            if rate is not None:
                rep.add("speed", what, f"{rate:,.0f} tok/s", note)
    set_prompt_kernels(model, False)  # decode's own prompt goes the measured way (the profile stage turns them on);
    # on CUDA that also gives the experts back the kernel dequantisation (on the CPU they never had it)
    rep.add("speed", "device copy bandwidth", f"{bw / 1e9:,.0f} GB/s")
    shipped = current_kernels()
    tiles, attn = state.get("best_tiles"), state.get("best_attention")
    tuned = (tiles["up"], tiles["down"], attn, False, False) if tiles and attn else None
    gemv_triton.GEMV_TILE = state.get("best_gemv", gemv_triton.GEMV_TILE)
    configs = [("shipped", shipped)] + ([("tuned", tuned)] if tuned and tuned != shipped else [])
    fastest = configs[-1]
    rates = {}
    for ctx in contexts:
        need = decode_bytes_per_token(cfg, ctx, kv_dtype_bytes=2)
        ceiling = bw / need
        runs = [("eager", False, True, shipped)]
        runs += [(f"graphed, {label} ({describe(k)})", True, True, k) for label, k in configs]
        runs += [(f"graphed, no host sync, {fastest[0]}", True, False, fastest[1])]
        runs += [(f"graphed, {fastest[0]} + {how}", True, True, variant(fastest[1], pdl=p, gemv=gv))
                 for how, p, gv in (("programmatic dependent launch", True, False),
                                    (f"Triton GEMV {gemv_triton.GEMV_TILE}", False, True),
                                    (f"Triton GEMV {gemv_triton.GEMV_TILE} + programmatic dependent launch", True,
                                     True))]
        for how, graphed, host_sync, kernels in runs:
            what = f"decode bs1 at {ctx} context, {how}"
            if graphed and device.type != "cuda":
                rep.skip("speed", what, "CUDA graphs need CUDA")
                continue
            configure(kernels)
            rate = attempt(rep, "speed", what, lambda: decode_rate(model, ctx, n_dec, graphed, host_sync), device)
            if rate is None:
                continue
            rates[ctx, how] = rate
            rep.add("speed", what, f"{rate:,.1f} tok/s", f"{100 * rate / ceiling:.1f} % of {ceiling:,.0f} tok/s "
                                          f"({need / 1e9:.2f} GB/token)")
    configure(fastest[1])  # the profile stage looks at the tuned configuration
    if device.type == "cuda":
        held = max(torch.cuda.max_memory_allocated(), floor)
        peak = f"{held / 2**30:.2f} GiB allocated ({held / 1e9:.2f} GB)"
    else:
        peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB process RSS"
    rep.add("speed", "peak memory, prefill included", peak, "<= 16 GB")
    prompt_tiles(state.get("best_prompt_tiles", shipped_prompt))  # the profile stage's prefill: the fastest tiles
    set_prompt_kernels(model, prompt_kernels)
    return rates


def prefill_rate(model, T):
    """A T-token prompt into its KV cache, as a generation prefills (the last position's logits only) -> tok/s."""
    device = model.device
    prompt = torch.randint(0, model.cfg.vocab_size, (T,), device=device)
    model(prompt[:64], cache=model.new_cache(64), last_only=True)  # warm (compiles a kernel used first here)
    cache = model.new_cache(T)
    sync(device)
    t0 = time.perf_counter()
    model(prompt, cache=cache, last_only=True)
    sync(device)
    return T / (time.perf_counter() - t0)


# ---- 6. the profiler on one eager decode step --------------------------------------------------------------------
def profile_step(rep, model, device):
    cache = model.new_cache(64)
    model(torch.arange(8, device=device), cache=cache)
    pos, tok = torch.tensor([8], device=device), torch.tensor([[3]], device=device)
    n_layers = model.cfg.n_layers
    fast = FastDecoder(model, cache.max_tokens)
    for name, step in (("Model.run", lambda: model.run(tok, pos, cache)),
                       ("FastDecoder.step", lambda: fast.step(tok, pos, cache))):
        if device.type == "cuda":
            from torch.profiler import ProfilerActivity, profile

            def profiled(step=step):
                with torch.no_grad():
                    step()  # warm (autotuning, allocator)
                    sync(device)
                    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
                        step()
                        sync(device)
                return prof.events()

            events = attempt(rep, "profile", f"profiler on one eager decode step, {name}", profiled, device)
            if events is None:
                continue
            kernels = [e for e in events if e.device_type == torch.autograd.DeviceType.CUDA]
            if not kernels:
                rep.skip("profile", f"GPU kernels in one eager decode step, {name}",
                         "the profiler recorded no GPU activity (CUPTI unavailable?)")
                continue
            total, count = {}, {}
            for e in kernels:
                total[e.name] = total.get(e.name, 0.0) + e.device_time
                count[e.name] = count.get(e.name, 0) + 1
            rep.add("profile", f"GPU kernels + copies in one eager decode step, {name}",
                    f"{len(kernels)} ({len(kernels) / n_layers:.1f} per layer)",
                    f"their time summed: {sum(total.values()):,.0f} us")
            for kname, us in sorted(total.items(), key=lambda kv: -kv[1])[:8]:
                rep.add("profile", "top kernel", f"{us:,.0f} us in {count[kname]} launches",
                        re.sub(r"[|\n]", " ", kname)[:70])
        else:
            rep.skip("profile", f"CUDA profiler on {name}", "needs CUDA (aten ops counted instead)")
            counter = count_ops(model, step)
            n = counter.total()
            rep.add("profile", f"aten ops in one eager decode step, {name}", f"{n} ({n / n_layers:.1f} per layer)")
            for op, k in counter.ops.most_common(4):
                rep.add("profile", "top op", f"{k}", op)


def profile_prefill(rep, model, device, T):
    """The profiler on one T-token prefill into a cache: wall time, summed kernel time, the top kernels."""
    if device.type != "cuda":
        rep.skip("profile", f"CUDA profiler on a {T}-token prefill", "needs CUDA")
        return
    from torch.profiler import ProfilerActivity, profile
    prompt = torch.randint(0, model.cfg.vocab_size, (T,), device=device)
    with torch.no_grad():
        model(prompt, cache=model.new_cache(T), last_only=True)  # warm
        sync(device)
        cache = model.new_cache(T)
        t0 = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            model(prompt, cache=cache, last_only=True)
            sync(device)
        wall = time.perf_counter() - t0
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total, count = {}, {}
    for e in kernels:
        total[e.name] = total.get(e.name, 0.0) + e.device_time
        count[e.name] = count.get(e.name, 0) + 1
    rep.add("profile", f"a {T}-token prefill under the profiler", f"{wall * 1e3:,.0f} ms wall, {len(kernels)} kernels",
            f"their time summed: {sum(total.values()) / 1e3:,.0f} ms")
    for kname, us in sorted(total.items(), key=lambda kv: -kv[1])[:8]:
        rep.add("profile", "top prefill kernel", f"{us / 1e3:,.1f} ms in {count[kname]} launches",
                re.sub(r"[|\n]", " ", kname)[:70])


# ---- 7. transformers, same config, same run ------------------------------------------------------------------------
@torch.no_grad()
def transformers_side_by_side(rep, cfg, device, context, n_tokens, ours):
    try:
        import transformers
    except ImportError:
        rep.skip("transformers", "side by side", "transformers is not installed")
        return
    from gptoss_np.formats.writer import hf_config
    conf = dict(hf_config(cfg)[0])
    conf.pop("quantization_config", None)  # bf16 experts: transformers without downloaded MXFP4 kernels
    if device.type == "cuda":
        rep.add("transformers", "GPU memory free before building it", f"{torch.cuda.mem_get_info()[0] / 2**30:.1f} GiB",
                "its bf16 experts take ~41 GB at full size")
    config = transformers.GptOssConfig(**conf)
    with torch.device(device):
        try:  # `dtype` since transformers 4.56; `torch_dtype` before (a deprecated alias after)
            hf = transformers.GptOssForCausalLM._from_config(config, dtype=torch.bfloat16)
        except TypeError:
            hf = transformers.GptOssForCausalLM._from_config(config, torch_dtype=torch.bfloat16)
    hf.eval()
    ids = torch.randint(0, cfg.vocab_size, (1, context), device=device)
    out = hf(input_ids=ids, use_cache=True)
    past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
    timed = 0
    for i in range(n_tokens + 2):
        if i == 2:
            sync(device)
            t0 = time.perf_counter()
        out = hf(input_ids=tok, past_key_values=past, use_cache=True)
        past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
        int(tok)  # a host sync per token, as in ours
        timed += i >= 2
        if timed and time.perf_counter() - t0 > 60:  # a slow path is timed on fewer tokens, not waited for
            break
    sync(device)
    rate = timed / (time.perf_counter() - t0)
    rep.add("transformers", f"decode bs1 at {context} context (bf16 experts), {timed} tokens", f"{rate:,.1f} tok/s",
            f"ours {ours:,.1f} tok/s: {ours / rate:.2f}x transformers" if ours else "ours not measured")
    del hf, past, out


def write_markdown(rep, path, device_name, smoke, after=None):
    """The table so far; `after`: the last stage finished, for a file written before the run's end."""
    def cell(text):
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = [f"# gpu_check: gptoss_torch on {device_name}, {datetime.date.today()}", "",
             "Made by `python benchmarks/gpu_check.py" + (" --smoke" if smoke else "") + "` (see its docstring); "
             "random weights at full size, so speeds are real and logits meaningless.", ""]
    if after:
        lines += [f"**INCOMPLETE**: written after stage `{after}`; the run had not finished (killed, or still "
                  "running).", ""]
    lines += ["| stage | check | result | target / note | status |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rep.rows]
    lines += ["", f"Total time {rep.elapsed():.0f} s; "
                  + (f"FAILED: {'; '.join(rep.failed)}" if rep.failed else "every check passed") + ".", "",
              "Checks that could not run on this machine:" if rep.not_run else "Every check ran."]
    lines += [f"- {cell(n)}" for n in rep.not_run]
    text = "\n".join(lines) + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return text


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="every stage on the CPU with a tiny model (seconds)")
    ap.add_argument("--out", default=None, help="markdown file (default benchmarks/gpu_check_<gpu>.md)")
    ap.add_argument("--no-transformers", action="store_true", help="skip the transformers side by side")
    ap.add_argument("--budget", type=at_least(0.0, float), default=420.0,
                    help="seconds after which no further stage starts")
    args = ap.parse_args(argv)
    if args.smoke:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        ap.error("no CUDA device: run with --smoke for the CPU rehearsal")
    else:
        device = torch.device("cuda")
    torch.manual_seed(0)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU {platform.machine()} (smoke)"
    out = args.out or os.path.join(ROOT, "benchmarks", "gpu_check_" + re.sub(r"\W+", "_", name).strip("_").lower()
                                   + ".md")
    rep = Report(sweep_until=SWEEP_SHARE * args.budget)
    full = gptoss_np.get_config("gpt-oss-20b")
    cfg = gptoss_np.scale_down(full, d_model=128, n_layers=4, vocab_size=512) if args.smoke else full
    state = {}

    def stage(label, fn, needs_model=False):
        if needs_model and state.get("model") is None:
            rep.skip(label, "whole stage", "no model: the build stage did not finish")
        elif rep.elapsed() > args.budget:
            rep.skip(label, "whole stage", f"the time budget of {args.budget:.0f} s was spent")
        else:
            state[label] = run_stage(rep, label, device, fn)
        write_markdown(rep, out, name, args.smoke, after=label)

    stage("versions", lambda: versions(rep, device))
    stage("kernel", lambda: kernel_check(rep, device, args.smoke, state))
    stage("tiny", lambda: tiny_checks(rep, device))
    stage("shipped", lambda: shipped_checks(rep, device))
    gc.collect()
    stage("build", lambda: build_full(rep, device, cfg, state))
    state["model"] = state.pop("build", None)
    stage("speed", lambda: speed(rep, state["model"], device, args.smoke, state), needs_model=True)
    stage("profile", lambda: profile_step(rep, state["model"], device), needs_model=True)
    stage("prefill profile", lambda: profile_prefill(rep, state["model"], device, 32 if args.smoke else 2048),
          needs_model=True)
    state.pop("model")  # ours is freed before transformers builds its (much larger) bf16 model
    gc.collect()
    if device.type == "cuda":  # after a sticky CUDA error this raises too: a row, and the table is still written
        attempt(rep, "build", "the freed model's memory returned to the GPU", torch.cuda.empty_cache)
    if args.no_transformers:
        rep.skip("transformers", "side by side", "--no-transformers")
    else:
        rates = state.get("speed") or {}
        ctx = min((c for c, _ in rates), default=8 if args.smoke else 1024)
        ours = max((r for (c, how), r in rates.items() if c == ctx and "no host sync" not in how), default=None)
        stage("transformers", lambda: transformers_side_by_side(rep, cfg, device, ctx, 3 if args.smoke else 24,
                                                                ours))
    print(write_markdown(rep, out, name, args.smoke), flush=True)
    print(f"wrote {out}", flush=True)
    return 1 if rep.failed else 0


if __name__ == "__main__":
    sys.exit(main())
