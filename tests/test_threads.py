"""The worker pool (gptoss_np.fast.threads): every job runs exactly once, errors surface, and splitting a product over the
workers gives the product that NumPy computes in one call."""

import threading
import time

import numpy as np
import pytest

from gptoss_np.fast import threads
from gptoss_np.ffn import linear


@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_run_jobs_runs_each_job_once(n_threads):
    seen, lock = [], threading.Lock()

    def job(i):
        with lock:
            seen.append(i)

    threads.run_jobs([(job, (i,)) for i in range(50)], n_threads)
    assert sorted(seen) == list(range(50))


def test_run_jobs_raises_a_jobs_error():
    def bad():
        raise ValueError("job 3 failed")

    with pytest.raises(ValueError, match="job 3 failed"):
        threads.run_jobs([(lambda: None, ())] * 3 + [(bad, ())], 2)


def test_a_pool_comes_back_with_every_worker_initialised(monkeypatch):
    """A worker whose initializer (pinning OpenBLAS) ran after pool() returned would flip split_dense part-way through a
    forward pass; this one takes its time, and all five must have run it before pool(5) returns."""
    started = []

    def slow_init():
        time.sleep(0.05)
        started.append(threading.get_ident())

    monkeypatch.setattr(threads, "blas_single_threaded", slow_init)
    monkeypatch.setattr(threads, "_POOL", {})
    workers = threads.pool(5)
    try:
        assert len(set(started)) == 5
        assert threads.pool(5) is workers  # made once
    finally:
        workers.shutdown()


@pytest.mark.parametrize("T", [1, 4])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_matmul_rows_equals_one_matmul(T, n_threads):
    rng = np.random.default_rng(T)
    x, w = rng.standard_normal((T, 48)), rng.standard_normal((37, 48))  # 37 rows: uneven parts
    np.testing.assert_allclose(threads.matmul_rows(x, w, n_threads), x @ w.T, rtol=1e-13, atol=1e-13)


def test_linear_splits_only_big_matrices_once_blas_is_pinned(monkeypatch):
    calls = []
    real = threads.matmul_rows
    monkeypatch.setattr(threads, "matmul_rows", lambda x, w: calls.append(w.shape) or real(x, w))
    monkeypatch.setattr(threads, "PARALLEL_BYTES", 30 * 16 * 8)
    monkeypatch.setattr(threads, "_BLAS_PINNED", threading.Event())
    rng = np.random.default_rng(0)
    x, big = rng.standard_normal((3, 16)), rng.standard_normal((30, 16))
    assert np.array_equal(linear(x, big), x @ big.T) and calls == []  # OpenBLAS not pinned yet: its own threads
    threads._BLAS_PINNED.set()
    rng = np.random.default_rng(0)
    x, b = rng.standard_normal((3, 16)), rng.standard_normal(30)
    small, big = rng.standard_normal((29, 16)), rng.standard_normal((30, 16))
    assert np.array_equal(linear(x, small), x @ small.T) and calls == []
    np.testing.assert_allclose(linear(x, big, b), x @ big.T + b, rtol=1e-13, atol=1e-13)
    assert calls == [(30, 16)]
