"""The speed paths (gptoss_np/fast) compute what the plain definitions (gptoss_np/kernels.py) compute: the whole
forward of every chain step and of Qwen3, and a cached decode, with the fast products and without them."""

import numpy as np
import pytest

import gptoss_np
from gptoss_np import fast, kernels
from gptoss_np.fast import threads

STEPS = [name for name, _ in gptoss_np.chain()] + ["qwen3-30b-a3b"]


def forward(model, tokens):
    logits, trace = model(tokens, trace=True)
    cache = model.new_cache()
    decoded = np.concatenate([model(tokens[i:i + 1], cache=cache) for i in range(len(tokens))])
    return logits, trace, decoded


@pytest.mark.parametrize("step", STEPS)
def test_fast_and_plain_forward_agree(step, monkeypatch):
    cfg = gptoss_np.scale_down(gptoss_np.get_config(step))
    model = gptoss_np.build_model(cfg, seed=3)
    tokens = np.random.default_rng(0).integers(0, cfg.vocab_size, 12)
    monkeypatch.setattr(threads, "PARALLEL_BYTES", 1)  # every dense product takes the split path once BLAS is pinned
    assert kernels.active() is not None  # importing gptoss_np enables the fast paths
    fast_logits, fast_trace, fast_decoded = forward(model, tokens)
    with fast.disabled():
        assert kernels.active() is None
        logits, trace, decoded = forward(model, tokens)
    assert kernels.active() is not None
    scale = np.abs(logits).max()
    for name in trace:
        np.testing.assert_allclose(fast_trace[name], trace[name], rtol=1e-5, atol=1e-5 * np.abs(trace[name]).max(),
                                   err_msg=f"{step}: {name}")
    np.testing.assert_allclose(fast_logits, logits, atol=1e-5 * scale)
    np.testing.assert_allclose(fast_decoded, decoded, atol=1e-5 * scale)


def test_the_seam_really_switches(monkeypatch):
    """The comparison above can fail: a wrong fast product is seen by the forward."""
    class Wrong:
        @staticmethod
        def dense_matmul(x, weight):
            return x @ weight.T * 1.001

        @staticmethod
        def expert_matmuls(experts, es, xs):
            return [x @ experts.matrix(e, x.dtype).T for e, x in zip(es, xs)]

    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"))
    model = gptoss_np.build_model(cfg, seed=3)
    tokens = np.arange(5)
    previous = kernels.use(Wrong)
    try:
        wrong = model(tokens)
    finally:
        kernels.use(previous)
    assert not np.allclose(wrong, model(tokens), rtol=1e-5, atol=1e-6)
