"""The MoE fast path: packed experts multiplied straight from MXFP4 bytes (mxfp4_matmul) inside moe() and the model,
against the obvious twins (moe_dense, decode-then-matmul, float experts), and the bounded mapping of expert pages."""

import os

import numpy as np
import pytest

import gptoss_np
from gptoss_np import Model, get_config, init_weights, scale_down
from gptoss_np.fast import kernels as fast_kernels
from gptoss_np.moe import ExpertWeights, moe, moe_dense
from gptoss_np.mxfp4 import mxfp4_decode
from gptoss_np.formats.safetensors_io import TensorStore, save_file


def mxfp4_cfg(**kw):
    return scale_down(get_config("gpt-oss-20b"), n_experts=8, **kw)


def float_twin(ew, dtype):
    """The same experts decoded once into a float array: the route the fast path replaces."""
    return ExpertWeights(mxfp4_decode(ew.blocks, ew.scales, dtype=dtype))


def layer_args(model, i=0):
    p, pre = model.params, f"layers.{i}.mlp."
    return (p[pre + "router.weight"], p[pre + "router.bias"], model.experts[pre + "experts.up"],
            p[pre + "experts.up.bias"], model.experts[pre + "experts.down"], p[pre + "experts.down.bias"])


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("T", [1, 2, 9])
def test_routed_packed_equals_dense_on_decoded_experts(dtype, rtol, T):
    cfg = mxfp4_cfg()
    model = Model(cfg, init_weights(cfg, seed=13), dtype=dtype)
    rw, rb, up, ub, down, db = layer_args(model)
    assert up.packed and down.packed
    rw = rw * 50.0  # far from routing ties
    x = np.random.default_rng(14 + T).standard_normal((T, cfg.d_model)).astype(dtype)
    y, logits, experts, weights = moe(x, cfg, rw, rb, up, ub, down, db)
    y_d, logits_d, experts_d, weights_d = moe_dense(x, cfg, rw, rb, float_twin(up, dtype), ub,
                                                    float_twin(down, dtype), db)
    np.testing.assert_array_equal(experts, experts_d)
    assert y.dtype == dtype and np.abs(y).max() > 0
    # to float rounding: the packed route sums each 32-block first (one token) or runs BLAS on decoded chunks
    np.testing.assert_allclose(y, y_d, rtol=rtol, atol=rtol * np.abs(y_d).max())


def test_expert_matmul_packed_equals_float_twin():
    cfg = mxfp4_cfg()
    model = Model(cfg, init_weights(cfg, seed=15), dtype=np.float64)
    up = model.experts["layers.1.mlp.experts.up"]
    twin = float_twin(up, np.float64)
    x = np.random.default_rng(16).standard_normal((3, cfg.d_model))
    for e in range(cfg.n_experts):
        np.testing.assert_allclose(up.matmul(e, x), twin.matmul(e, x), rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(up.matmul(e, x[:1]), x[:1] @ twin.matrix(e, np.float64).T, rtol=1e-13,
                                   atol=1e-15)


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 1e-4)])
def test_model_decode_with_packed_experts_equals_float_experts(dtype, rtol):
    cfg = mxfp4_cfg()
    model = Model(cfg, init_weights(cfg, seed=17), dtype=dtype)
    twin = Model(cfg, init_weights(cfg, seed=17), dtype=dtype)
    twin.experts = {k: float_twin(v, dtype) for k, v in twin.experts.items()}
    tokens = np.random.default_rng(18).integers(0, cfg.vocab_size, 7)
    outs = []
    for m in (model, twin):
        cache = m.new_cache()
        logits = [m(tokens[:4], cache=cache)]  # prefill: several tokens per expert
        logits += [m(tokens[i:i + 1], cache=cache) for i in range(4, 7)]  # decode: one token per expert
        outs.append(np.concatenate(logits))
    np.testing.assert_allclose(outs[0], outs[1], rtol=rtol, atol=rtol * np.abs(outs[1]).max())


def rss_file():
    for line in open("/proc/self/status"):
        if line.startswith("RssFile:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no RssFile in /proc/self/status")


def test_mapped_expert_pages_are_released_beyond_the_budget(tmp_path, monkeypatch):
    E, R, G = 4, 1024, 64  # 1 MiB of blocks per expert
    rng = np.random.default_rng(19)
    blocks = rng.integers(0, 256, (E, R, G, 16), dtype=np.uint8)
    scales = rng.integers(120, 130, (E, R, G), dtype=np.uint8)
    save_file(tmp_path / "model.safetensors", {"b": blocks, "s": scales})
    store = TensorStore(tmp_path)
    ew = ExpertWeights(blocks=store.get("b"), scales=store.get("s"), name="experts")
    monkeypatch.setattr(fast_kernels, "MAPPED_BUDGET", 3 << 20)  # room for two experts (blocks + scales)
    monkeypatch.setattr(fast_kernels, "MAPPED", type(fast_kernels.MAPPED)())
    x = rng.standard_normal((1, G * 32)).astype(np.float32)
    want = [x.astype(np.float64) @ mxfp4_decode(blocks[e], scales[e], np.float64).T for e in range(E)]
    tol = dict(rtol=1e-5, atol=1e-5 * max(np.abs(w).max() for w in want))
    ExpertWeights(blocks=blocks, scales=scales).matmul(0, x)  # warm-up: fault in NumPy/BLAS code pages first
    before = rss_file()
    for e in range(E):
        np.testing.assert_allclose(ew.matmul(e, x), want[e], **tol)
    assert len(fast_kernels.MAPPED) == 2  # experts 0 and 1 were unmapped when 2 and 3 came in
    grown = rss_file() - before
    assert grown < 2.5 * (1 << 20) + (1 << 20)  # ~2 experts' pages stay mapped, not all 4 (4.25 MiB)
    for e in range(E):  # unmapped pages read back from the page cache: same bytes, same results
        np.testing.assert_allclose(ew.matmul(e, x), want[e], **tol)


def test_in_memory_experts_are_not_tracked(monkeypatch):
    monkeypatch.setattr(fast_kernels, "MAPPED", type(fast_kernels.MAPPED)())
    rng = np.random.default_rng(20)
    ew = ExpertWeights(blocks=rng.integers(0, 256, (2, 8, 2, 16), dtype=np.uint8),
                       scales=np.full((2, 8, 2), 127, np.uint8))
    ew.matmul(1, rng.standard_normal((1, 64)))
    assert len(fast_kernels.MAPPED) == 0


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RssFile from Linux's /proc")
def test_loader_drops_the_bf16_pages_it_converted(tmp_path):
    """load_model converts bf16 tensors to float32 once; the file pages it read for that must leave RSS (they
    would otherwise double the dense weights' footprint: 3.6 GB of 13.4 GB at full 20b size)."""
    from gptoss_np.formats.writer import write_checkpoint
    from gptoss_np.formats.safetensors_io import TensorStore
    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), d_model=256, vocab_size=32768)
    write_checkpoint(cfg, tmp_path, layout="hf", progress=False)
    store = TensorStore(tmp_path)
    bf16 = sum(store.get(k).nbytes for k in store.keys() if store.dtype(k) == "BF16")

    def rss_file():
        return next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("RssFile"))

    before = rss_file()
    model = gptoss_np.load_model(tmp_path, progress=False)
    grown = rss_file() - before
    assert bf16 > 16 << 20
    assert grown < 0.25 * bf16, f"file-backed RSS grew by {grown / 2**20:.1f} MiB for {bf16 / 2**20:.1f} MiB of bf16"
    assert np.isfinite(model(np.arange(4))).all()
