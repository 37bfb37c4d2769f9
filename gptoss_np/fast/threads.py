"""The oracle's worker threads: a small pool that runs the big products (MXFP4 experts, large dense matmuls) on all
cores. NumPy releases the GIL inside its loops and BLAS, so two threads run two NumPy calls at once.

Measured on a 2-core VM with full-size gpt-oss-20b (benchmarks/np_20b_cpu.md): one future per worker pulling jobs
from a shared iterator, not one per job (the caller otherwise wakes, and takes the GIL, once per job); OpenBLAS on
one thread everywhere (its own idle threads busy-wait after a call and take a core from the workers); splitting the
unembedding's rows over two workers (once OpenBLAS is on one thread) reads it in 70 ms instead of 110 ms.
"""

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

THREADS = min(2, os.cpu_count() or 1)  # worker threads used when a caller does not say
_POOL = {}  # threads -> ThreadPoolExecutor, made on first use

# Once the workers exist, OpenBLAS runs on one thread (see blas_single_threaded). From then on `linear` gives dense
# products at least this big (weight bytes) to the workers instead: the attention projections q and o (47 MB each in
# gpt-oss-20b) and the unembedding (2.3 GB). Before that (a model without MXFP4 experts never starts the workers),
# OpenBLAS's own threads do the job, which is better for the many mid-sized products of a prefill.
PARALLEL_BYTES = 16 << 20
_BLAS_PINNED = threading.Event()  # set once a worker has pinned OpenBLAS to one thread (process-wide, see below)


def blas_single_threaded():
    """Pool initializer: make OpenBLAS calls from this worker thread single-threaded. The pool already splits the
    work, and an inner OpenBLAS team per small call only adds synchronisation (with the cores busy, up to 4x slower).
    Best effort: needs OpenBLAS >= 0.3.27 (openblas_set_num_threads_local), otherwise nothing changes.
    NumPy's OpenBLAS (0.3.31) applies this count process-wide, so the main thread's own matmuls run on one core too.
    We measured giving it two back around each pool run: a decode step got slower (experts 1.6 -> 2.7 s, twice the
    CPU time), because OpenBLAS's idle threads busy-wait after a call and take a core from the workers. One BLAS
    thread everywhere, with the big products split by this pool instead, is the better trade."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "openblas" in line.lower()}
        for path in libs:
            fn = getattr(ctypes.CDLL(path), "openblas_set_num_threads_local", None)
            if fn is not None:
                fn(1)
                _BLAS_PINNED.set()
    except OSError:
        pass


def split_dense(weight):
    """Whether `linear` should split x @ W.T over the workers: W is big and OpenBLAS has been pinned to one thread."""
    return _BLAS_PINNED.is_set() and weight.nbytes >= PARALLEL_BYTES


def pool(threads):
    """The pool of `threads` workers (made once, kept for the life of the process), every worker started and past its
    initializer before it is returned: a worker the executor started late would otherwise pin OpenBLAS, and so change
    split_dense's answer, part-way through a forward pass (its products then split or not by timing)."""
    if threads not in _POOL:
        workers = ThreadPoolExecutor(threads, thread_name_prefix="gptoss_np", initializer=blas_single_threaded)
        # `threads` jobs that wait for each other need `threads` workers at once, each initialised before its job
        ready = threading.Barrier(threads, timeout=60)
        for future in [workers.submit(ready.wait) for _ in range(threads)]:
            future.result()
        _POOL[threads] = workers
    return _POOL[threads]


def run_jobs(jobs, threads=None):
    """Run jobs [(fn, args), ...] on `threads` workers (default THREADS, at most one per job) and wait for all of them.

    Each worker takes the next job from one shared iterator until none is left, so nobody waits on a laggard, and
    there is one future per worker, not per job. Even one thread is a pool thread (single-threaded BLAS), so the
    arithmetic of a job never depends on `threads`. An exception in a job is raised here."""
    threads = max(1, min(THREADS if threads is None else threads, len(jobs)))
    queue = iter(jobs)  # next() on a list iterator is atomic under the GIL: each job runs once

    def worker():
        for fn, args in queue:
            fn(*args)

    for future in [pool(threads).submit(worker) for _ in range(threads)]:
        future.result()


def matmul_rows(x, weight, threads=None):
    """x @ W.T with W's rows split over the workers, one contiguous part each: x [T, in], W [out, in] -> [T, out]."""
    threads = THREADS if threads is None else threads
    out = np.empty((x.shape[0], weight.shape[0]), np.result_type(x, weight))  # [T, out]
    step = -(-weight.shape[0] // threads)
    run_jobs([(np.matmul, (x, weight[a:a + step].T, out[:, a:a + step]))
              for a in range(0, weight.shape[0], step)], threads)
    return out
