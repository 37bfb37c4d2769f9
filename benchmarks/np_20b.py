"""gpt-oss-20b at full size in NumPy on this CPU: the MXFP4 kernels, then load + prefill + decode of the real shapes.

    python benchmarks/np_20b.py micro                        # MXFP4 matvec approaches on one full-size expert matrix
    python benchmarks/np_20b.py run --ckpt /tmp/gptoss-20b   # write the checkpoint if absent, load, prefill, decode
        [--prompt 16] [--decode 8] [--threads 2] [--mapped-budget-gb 2] [--delete]
    python benchmarks/np_20b.py check-cost --ckpt /tmp/gptoss-20b   # what the load-time NaN/inf/scale check costs
    python benchmarks/np_20b.py alternate --ckpt /tmp/gptoss-20b --variant THREADS=2 --variant THREADS=3
        # decode steps alternating between settings of gptoss_np.fast.mxfp4_matmul / .threads, one median per setting

`run` writes a random full-size gpt-oss-20b checkpoint in the Hugging Face layout (3 shards, MXFP4 experts, 13.8 GB;
gptoss_np.formats.writer.write_checkpoint) unless --ckpt already holds one, loads it with gptoss_np.load_model
(float tensors -> float32 once; experts stay packed and memory-mapped), runs a prompt of random token ids and a few
greedy decode steps with the KV cache, and prints load time, memory (peak RSS, anonymous vs file-backed), prefill and
decode tok/s, and decode speed as a percentage of this machine's memory-bandwidth ceiling: the bytes a decode step must
read (every float weight it multiplies, the routed experts' packed bytes, the KV cache) over a bandwidth measured here
with a large NumPy copy. Results of a run are in benchmarks/np_20b_cpu.md. This is a benchmark, not a test.
"""

import argparse
import datetime
import os
import platform
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from gptoss_np.fast import threads as threads_mod  # noqa: E402
from gptoss_np.fast import mxfp4_matmul as mxfp4  # noqa: E402
from gptoss_np.fast.mxfp4_matmul import mxfp4_decode_fast as mxfp4_decode, mxfp4_matmul  # noqa: E402
from gptoss_np.cli import at_least  # noqa: E402
from gptoss_np.errors import GptOssError  # noqa: E402
from gptoss_np.mxfp4 import FP4_VALUES  # noqa: E402

GB = 1e9


# ---- the machine ------------------------------------------------------------------------------------------------

def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal")) * 1024
    return (f"{cpu}, {os.cpu_count()} cores, {mem / 2**30:.1f} GiB RAM, Python {platform.python_version()}, "
            f"NumPy {np.__version__}; load average at start {os.getloadavg()[0]:.2f}")


def memory():
    """VmRSS / VmHWM (peak) / RssAnon / RssFile of this process, bytes."""
    out = {}
    for line in open("/proc/self/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[k] = int(v.split()[0]) * 1024
    return out


def faults():
    """(minor, major) page faults of this process so far: major ones read the disk (file not in the page cache)."""
    f = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
    return int(f[7]), int(f[9])


def fmt_mem(m):
    return (f"RSS {m['VmRSS'] / GB:.2f} GB (anon {m['RssAnon'] / GB:.2f}, file-backed {m['RssFile'] / GB:.2f}), "
            f"peak {m['VmHWM'] / GB:.2f} GB")


def bandwidth(nbytes=1 << 29, reps=5):
    """Memory bandwidth, best of `reps`, with one thread and one per core (NumPy copies and BLAS release the GIL):
    'copy': a large np.copyto, counting bytes read + bytes written; 'read': a BLAS matvec over a large float32 matrix
    (what a decode step does to the dense weights), counting the matrix bytes. Returns {(kind, threads): bytes/s}."""
    n = os.cpu_count() or 1
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    mat = src.reshape(-1, 4096)
    vec = np.ones(4096, np.float32)
    res = {}
    for threads in sorted({1, n}):
        rows = -(-len(mat) // threads)
        spans = [(a, min(a + rows, len(mat))) for a in range(0, len(mat), rows)]
        copy = lambda s: np.copyto(dst.reshape(mat.shape)[s[0]:s[1]], mat[s[0]:s[1]])  # noqa: E731
        read = lambda s: mat[s[0]:s[1]] @ vec  # noqa: E731
        for kind, fn, moved in (("copy", copy, 2 * src.nbytes), ("read", read, src.nbytes)):
            best = float("inf")
            for _ in range(reps):
                t = time.perf_counter()
                threads_mod.run_jobs([(fn, (span,)) for span in spans], threads)  # the oracle's own worker pool
                best = min(best, time.perf_counter() - t)
            res[kind, threads] = moved / best
    return res


def reset_peak_rss():
    """Start VmHWM afresh (Linux: writing 5 to clear_refs), so the peak is the model's, not the bandwidth test's."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


# ---- MXFP4 micro-benchmarks -------------------------------------------------------------------------------------

def decode_v0(blocks, scales):
    """The decoder before this benchmark: fancy-index gather of a [256, 2] table, then ldexp (float32)."""
    *lead, G, _ = blocks.shape
    w = mxfp4._BYTE_LUT.astype(np.float32)[blocks].reshape(*lead, G, 32)
    np.ldexp(w, scales[..., None].astype(np.int32) - 127, out=w)
    return w.reshape(*lead, G * 32)


def ptable_matvec(x, blocks, scales, rows=128):
    """The per-token table idea: P[g, j, byte] = lo(byte) x[32g+2j] + hi(byte) x[32g+2j+1], then
    y[r] = sum_g 2**(s-127) sum_j P[g, j, blocks[r, g, j]]: one gather per byte, no weight ever decoded."""
    R, G, _ = blocks.shape
    lut = mxfp4._BYTE_LUT.astype(np.float32)
    xr = x.reshape(G, 16, 2)
    P = (xr[:, :, 0, None] * lut[:, 0] + xr[:, :, 1, None] * lut[:, 1]).reshape(-1)  # [G*16*256]
    off = (np.arange(G * 16) * 256).reshape(G, 16)
    idx = np.empty((rows, G, 16), np.intp)
    vals = np.empty((rows, G, 16), np.float32)
    z = np.empty((rows * G), np.float32)
    ones = np.ones(16, np.float32)
    y = np.empty(R, np.float32)
    for a in range(0, R, rows):
        b = min(a + rows, R)
        n = b - a
        np.add(blocks[a:b], off, out=idx[:n], casting="unsafe")
        np.take(P, idx[:n], out=vals[:n], mode="wrap")
        np.matmul(vals[:n].reshape(n * G, 16), ones, out=z[:n * G])
        y[a:b] = (mxfp4._SCALE[np.float32][scales[a:b]] * z[:n * G].reshape(n, G)).sum(1)
    return y


def pair16_matvec(x, blocks, scales, rows=128):
    """The 65536-entry table idea: each uint16 (two bytes) gathers four float32 (16 bytes) at once; then the exact
    scale multiply and a BLAS matvec per chunk of rows."""
    R, G, _ = blocks.shape
    codes = np.arange(65536)
    lut = np.stack([FP4_VALUES[(codes >> s) & 15] for s in (0, 4, 8, 12)], -1).astype(np.float32)
    lut = lut.view(np.complex128).reshape(-1)
    b16 = blocks.view(np.uint16)  # [R, G, 8]
    buf = np.empty((rows, G, 8), np.complex128)
    y = np.empty(R, np.float32)
    for a in range(0, R, rows):
        b = min(a + rows, R)
        n = b - a
        np.take(lut, b16[a:b], out=buf[:n], mode="wrap")
        w = buf[:n].view(np.float32).reshape(n, G, 32)
        np.multiply(w, mxfp4._SCALE[np.float32][scales[a:b]][..., None], out=w)
        np.matmul(w.reshape(n, G * 32), x, out=y[a:b])
    return y


def exact_chunks(x, blocks, scales):
    """mxfp4_matmul's several-token route (exact chunk decode + BLAS) forced for one token."""
    step = mxfp4._chunk_rows(blocks.shape[1] * 32, 4)
    out = np.empty((len(blocks), 1), np.float32)
    threads_mod.pool(1).submit(mxfp4._matmul_rows, x.reshape(-1, 1), blocks, scales, out, step).result()  # BLAS: 1 thread
    return out[:, 0]


def timed(fn, reps):
    """(best wall seconds, best CPU seconds of this process) over reps runs after one warm-up."""
    fn()
    wall = cpu = float("inf")
    for _ in range(reps):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def micro(args):
    print(f"# MXFP4 matvec on one gpt-oss-20b expert matrix\n\nmachine: {machine()}\n")
    rng = np.random.default_rng(0)
    R, G = 5760, 90  # mlp1 (gate_up) of one expert: [5760, 2880]
    blocks = rng.integers(0, 256, (R, G, 16), dtype=np.uint8)
    scales = rng.integers(118, 126, (R, G), dtype=np.uint8)
    N = R * G * 32
    x = rng.standard_normal(G * 32).astype(np.float32)
    X4 = rng.standard_normal((4, G * 32)).astype(np.float32)
    W = mxfp4_decode(blocks, scales)
    truth = x.astype(np.float64) @ mxfp4_decode(blocks, scales, np.float64).T
    ref = W @ x
    cases = [
        ("v0: [256,2] fancy gather + ldexp, then W @ x", lambda: decode_v0(blocks, scales) @ x),
        ("mxfp4_decode (16-byte-item table take + scale multiply), then W @ x",
         lambda: mxfp4_decode(blocks, scales) @ x),
        ("per-token table P[g,j,byte], one gather per byte", lambda: ptable_matvec(x, blocks, scales)),
        ("65536-entry uint16 table (16 B/gather) + scale + BLAS, 128-row chunks",
         lambda: pair16_matvec(x, blocks, scales)),
        ("exact 2 MB chunk decode + BLAS matvec (1 thread)", lambda: exact_chunks(x, blocks, scales)),
        ("mxfp4_matmul, 1 token, blockwise, 1 thread", lambda: mxfp4_matmul(x, blocks, scales, threads=1)),
        ("mxfp4_matmul, 1 token, blockwise, 2 threads", lambda: mxfp4_matmul(x, blocks, scales, threads=2)),
        ("4 tokens: mxfp4_decode then X @ W.T", lambda: X4 @ mxfp4_decode(blocks, scales).T),
        ("4 tokens: mxfp4_matmul (exact chunks), 1 thread", lambda: mxfp4_matmul(X4, blocks, scales, threads=1)),
        ("4 tokens: mxfp4_matmul (exact chunks), 2 threads", lambda: mxfp4_matmul(X4, blocks, scales, threads=2)),
    ]
    print("| approach | wall ms | M values/s (wall) | CPU ms | max abs err vs float64 (decode+BLAS: "
          f"{np.abs(ref - truth).max():.2g}) |\n|---|---:|---:|---:|---:|")
    for name, fn in cases:
        reps = 2 if name.startswith("v0") else args.reps
        wall, cpu = timed(fn, reps)
        y = fn()
        err = "n/a (4 tokens)" if y.ndim == 2 else (
            "bit-identical to decode+BLAS" if np.array_equal(y, ref) else f"{np.abs(y - truth).max():.2g}")
        print(f"| {name} | {wall * 1e3:.1f} | {N / wall / 1e6:.0f} | {cpu * 1e3:.1f} | {err} |", flush=True)


# ---- the full-size run ------------------------------------------------------------------------------------------

def decode_bytes_per_token(model, context):
    """Bytes one decode step must read: every float weight the token is multiplied by (all attention and router
    matrices, norms, biases, the unembedding; one embedding row), the packed bytes of top_k experts per layer (and
    their bias rows), and the KV cache of `context` positions. As the loader holds them: float weights in the model
    dtype."""
    cfg, p = model.cfg, model.params
    total = 0
    for name, w in p.items():
        if name.endswith((".blocks", ".scales")):
            total += w.nbytes // cfg.n_experts * cfg.top_k
        elif ".mlp.experts." in name:  # expert biases: top_k rows
            total += w.nbytes // cfg.n_experts * cfg.top_k
        elif name == "embed.weight" and not cfg.tie_embeddings:
            total += w.nbytes // w.shape[0]
        else:
            total += w.nbytes
    for i in range(cfg.n_layers):
        window = cfg.layer_windows[i]
        s = context if window is None else min(context, window)
        total += 2 * s * cfg.kv_dim * model.dtype.itemsize
    return total


def write_checkpoint_20b(path, seed):
    from gptoss_np.config import get_config
    from gptoss_np.formats.writer import write_checkpoint
    write_checkpoint(get_config("gpt-oss-20b"), path, layout="hf", seed=seed)


def run(args):
    from gptoss_np import load_model
    from gptoss_np.fast import kernels as fast_kernels

    print(f"# gpt-oss-20b, full size, NumPy\n\nmachine: {machine()}\ndate: {datetime.date.today()}\n")
    threads_mod.THREADS = args.threads
    fast_kernels.MAPPED_BUDGET = int(args.mapped_budget_gb * GB)
    bw = bandwidth()
    print("bandwidth: " + ", ".join(f"{k} {t} thread(s) {b / GB:.1f} GB/s" for (k, t), b in bw.items()))
    reset_peak_rss()
    if not os.path.exists(os.path.join(args.ckpt, "config.json")):
        t = time.perf_counter()
        write_checkpoint_20b(args.ckpt, args.seed)
        print(f"wrote checkpoint to {args.ckpt} in {time.perf_counter() - t:.0f} s")
    size = sum(os.path.getsize(os.path.join(args.ckpt, f)) for f in os.listdir(args.ckpt))
    print(f"checkpoint: {size / GB:.2f} GB in {args.ckpt}")
    m0 = memory()

    t = time.perf_counter()
    model = load_model(args.ckpt)
    t_load = time.perf_counter() - t
    m_load = memory()
    print(f"load: {t_load:.1f} s; {fmt_mem(m_load)}", flush=True)

    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(0, model.cfg.vocab_size, args.prompt)
    cache = model.new_cache()
    t = time.perf_counter()
    logits = model(prompt, cache=cache)
    t_prefill = time.perf_counter() - t
    m_prefill = memory()
    print(f"prefill {args.prompt} tokens: {t_prefill:.1f} s ({args.prompt / t_prefill:.2f} tok/s); "
          f"{fmt_mem(m_prefill)}", flush=True)

    steps, tokens = [], []
    for _ in range(args.decode):
        tok = int(np.argmax(logits[-1]))
        tokens.append(tok)
        f0, t = faults(), time.perf_counter()
        logits = model(np.array([tok]), cache=cache)
        steps.append(time.perf_counter() - t)
        (minor, major), load = [b - a for a, b in zip(f0, faults())], os.getloadavg()[0]
        print(f"  decode step {len(steps)}: {steps[-1]:.2f} s; page faults {minor} minor, {major} major (disk); "
              f"load average {load:.2f}; {fmt_mem(memory())}", flush=True)
    m_end = memory()
    assert np.isfinite(logits).all()
    decode_tps = len(steps) / sum(steps)
    per_token = decode_bytes_per_token(model, args.prompt + args.decode)
    best_bw = max(bw.values())  # the fastest measured: the ceiling is not understated
    ceiling = best_bw / per_token
    print(f"greedy tokens: {tokens}")
    print(f"bytes read per decode token: {per_token / GB:.2f} GB -> ceiling {ceiling:.2f} tok/s at "
          f"{best_bw / GB:.1f} GB/s\n")
    rows = [
        ("load (float tensors -> float32, experts mapped)", f"{t_load:.1f} s"),
        ("peak RSS (VmHWM)", f"{m_end['VmHWM'] / GB:.2f} GB"),
        ("RSS after load: anon / file-backed", f"{m_load['RssAnon'] / GB:.2f} / {m_load['RssFile'] / GB:.2f} GB"),
        ("RSS after decode: anon / file-backed", f"{m_end['RssAnon'] / GB:.2f} / {m_end['RssFile'] / GB:.2f} GB"),
        (f"prefill ({args.prompt} tokens)", f"{args.prompt / t_prefill:.2f} tok/s"),
        (f"decode ({args.decode} tokens, median step {np.median(steps):.2f} s)", f"{decode_tps:.2f} tok/s"),
        ("bytes read per decode token", f"{per_token / GB:.2f} GB"),
        ("memory bandwidth: copy (read+write) 1 / 2 threads; BLAS read 1 / 2 threads",
         f"{bw['copy', 1] / GB:.1f} / {bw['copy', max(k[1] for k in bw)] / GB:.1f}; "
         f"{bw['read', 1] / GB:.1f} / {bw['read', max(k[1] for k in bw)] / GB:.1f} GB/s"),
        (f"bandwidth ceiling (bytes per token / {best_bw / GB:.1f} GB/s)", f"{ceiling:.2f} tok/s"),
        ("decode as % of the ceiling", f"{100 * decode_tps / ceiling:.0f} %"),
    ]
    print("| measure | value |\n|---|---:|")
    for k, v in rows:
        print(f"| {k} | {v} |")
    del m0
    if args.delete:
        shutil.rmtree(args.ckpt)
        print(f"\ndeleted {args.ckpt}")


def alternate(args):
    """Decode steps alternating between variants of settings of gptoss_np.mxfp4 / gptoss_np.fast.threads, in one process on one model, so the
    host's load hits every variant alike; prints each variant's median step."""
    from gptoss_np import load_model

    if any("=" not in kv for v in args.variant for kv in v.split(",")):
        raise SystemExit(f"--variant {args.variant}: expected NAME=VALUE[,NAME=VALUE] each")
    variants = [dict(kv.split("=", 1) for kv in v.split(",")) for v in args.variant]
    home = {}  # setting -> the module that has it
    for v in variants:
        for k, val in v.items():
            home[k] = next((m for m in (mxfp4, threads_mod) if hasattr(m, k)), None)
            if home[k] is None:
                raise SystemExit(f"--variant: neither gptoss_np.mxfp4 nor gptoss_np.fast.threads has a setting {k!r}")
            kind = type(getattr(home[k], k))
            try:
                kind(val)
            except ValueError:
                raise SystemExit(f"--variant {k}={val}: expected a value of type {kind.__name__}, as {k} has") from None
    print(f"machine: {machine()}\ndate: {datetime.date.today()}")
    try:
        model = load_model(args.ckpt)
    except GptOssError as e:
        raise SystemExit(f"--ckpt {args.ckpt}: {e}") from None
    rng = np.random.default_rng(args.seed)
    cache = model.new_cache()
    logits = model(rng.integers(0, model.cfg.vocab_size, args.prompt), cache=cache)
    steps = [[] for _ in variants]
    for _ in range(args.rounds):
        for v, times in zip(variants, steps):
            for k, val in v.items():
                setattr(home[k], k, type(getattr(home[k], k))(val))
            t = time.perf_counter()
            logits = model(np.array([int(np.argmax(logits[-1]))]), cache=cache)
            times.append(time.perf_counter() - t)
    print("| variant | median step | steps |\n|---|---:|---|")
    for v, times in zip(args.variant, steps):
        print(f"| {v} | {np.median(times):.2f} s | {' '.join(f'{t:.2f}' for t in times)} |")


def check_cost(args):
    """What the load-time value check (NaN/inf floats, MXFP4 scales) costs on the full-size checkpoint: the check
    alone, and the rest of loading (config, headers, names, shapes: load_weights without the check), each timed
    `--reps` times on a warm page cache, and once on a cold one if this process may drop the page cache."""
    from gptoss_np.formats import loader
    from gptoss_np.formats.safetensors_io import TensorStore

    print(f"# gpt-oss-20b: the cost of the load-time value check\n\nmachine: {machine()}\ndate: {datetime.date.today()}\n")
    if not os.path.exists(os.path.join(args.ckpt, "config.json")):
        t = time.perf_counter()
        write_checkpoint_20b(args.ckpt, args.seed)
        print(f"wrote checkpoint to {args.ckpt} in {time.perf_counter() - t:.0f} s")
    store = TensorStore(args.ckpt)
    checked = sum(store.get(k).nbytes for k in store.keys()
                  if store.dtype(k) != "U8" or k.endswith("_scales"))  # floats and scales; not the FP4 blocks
    print(f"bytes the check reads: {checked / GB:.2f} GB (every float tensor and every MXFP4 scale)\n")

    def cold():
        try:
            os.sync()
            with open("/proc/sys/vm/drop_caches", "w") as f:
                f.write("1")
            return True
        except OSError:
            return False

    real, off = loader.check_values, (lambda store, weights: None)
    rows = []  # load_weights with and without the check, alternating; the check's cost is the difference
    for rep in range(-1, args.reps):
        if rep == -1:
            if cold():
                t = time.perf_counter()
                loader.load_weights(args.ckpt)
                print(f"cold page cache: load_weights with the check {time.perf_counter() - t:.2f} s "
                      f"(the check reads its 4 GB from disk)")
            else:
                loader.load_weights(args.ckpt)  # no cold run possible here: warm the cache instead
            continue
        times = {}
        for name, fn in (("without", off), ("with", real)):
            loader.check_values = fn
            t = time.perf_counter()
            loader.load_weights(args.ckpt)
            times[name] = time.perf_counter() - t
        loader.check_values = real
        rows.append(times)
        check = times["with"] - times["without"]
        print(f"warm: load_weights {times['without']:.2f} s without the check, {times['with']:.2f} s with it: "
              f"the check {check:.2f} s ({checked / GB / check:.1f} GB/s)", flush=True)
    check = float(np.median([r["with"] - r["without"] for r in rows]))
    print(f"\nwarm median: the check {check:.2f} s ({checked / GB / check:.1f} GB/s); load_weights without it "
          f"{np.median([r['without'] for r in rows]):.2f} s")
    if args.delete:
        shutil.rmtree(args.ckpt)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("micro", help="MXFP4 kernels on one full-size expert matrix")
    m.add_argument("--reps", type=at_least(1), default=10)
    r = sub.add_parser("run", help="full-size checkpoint: write if absent, load, prefill, decode")
    r.add_argument("--ckpt", default="/tmp/gptoss-20b", help="checkpoint directory (written if it has no config.json)")
    r.add_argument("--prompt", type=at_least(1), default=16, help="prompt length (random token ids)")
    r.add_argument("--decode", type=at_least(1), default=8, help="greedy decode steps")
    r.add_argument("--threads", type=at_least(1), default=threads_mod.THREADS,
                   help="worker threads (gptoss_np.fast.threads)")
    r.add_argument("--mapped-budget-gb", type=at_least(0, float), default=2.0,
                   help="mapped expert pages kept (gptoss_np.fast.kernels)")
    r.add_argument("--seed", type=at_least(0), default=0)
    r.add_argument("--delete", action="store_true", help="delete the checkpoint directory at the end")
    a = sub.add_parser("alternate", help="decode steps alternating between settings of gptoss_np.fast.mxfp4_matmul / .threads")
    a.add_argument("--ckpt", default="/tmp/gptoss-20b", help="an existing checkpoint directory")
    a.add_argument("--variant", action="append", required=True, metavar="NAME=VALUE[,NAME=VALUE]",
                   help="e.g. THREADS=2 (give two or more)")
    a.add_argument("--rounds", type=at_least(1), default=6, help="decode steps per variant")
    a.add_argument("--prompt", type=at_least(1), default=16)
    a.add_argument("--seed", type=at_least(0), default=0)
    c = sub.add_parser("check-cost", help="the load-time value check (NaN/inf, MXFP4 scales) on the full-size checkpoint")
    c.add_argument("--ckpt", default="/tmp/gptoss-20b", help="checkpoint directory (written if it has no config.json)")
    c.add_argument("--reps", type=at_least(1), default=5)
    c.add_argument("--seed", type=at_least(0), default=0)
    c.add_argument("--delete", action="store_true", help="delete the checkpoint directory at the end")
    args = ap.parse_args()
    try:
        {"micro": micro, "run": run, "alternate": alternate, "check-cost": check_cost}[args.cmd](args)
    except GptOssError as e:  # a checkpoint or setting the package refuses: its one line, not a traceback
        ap.error(str(e))


if __name__ == "__main__":
    main()
