"""Incremental decoding with the KV cache gives the full forward's logits, also past the sliding window.

Not bitwise: the cached path multiplies a [1, d] query by [S, d] keys where the full forward multiplies [T, d] by
[T, d], so BLAS sums in another order; float64 agrees to ~1e-15, float32 to ~1e-6.
"""

import numpy as np
import pytest

import gptoss_np
from gptoss_np import chain, get_config, scale_down

CONFIGS = chain() + [("qwen3-30b-a3b", get_config("qwen3-30b-a3b")), ("gpt-oss-120b", get_config("gpt-oss-120b"))]
TOKENS = (np.arange(23) * 37 + 5) % 256  # 23 tokens: several times the tiny window of 4


def decode_in_chunks(model, tokens, chunks):
    cache, out, i = model.new_cache(), [], 0
    for n in chunks:
        out.append(model(tokens[i:i + n], cache=cache))
        i += n
    assert i == len(tokens)
    return np.concatenate(out), cache


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=[n for n, _ in CONFIGS])
def test_cached_decoding_equals_full_forward(name, cfg):
    small = scale_down(cfg, window=4)
    model = gptoss_np.build_model(small, seed=1, dtype="float64")
    full = model(TOKENS)
    one_by_one, cache = decode_in_chunks(model, TOKENS, [1] * len(TOKENS))
    chunked, _ = decode_in_chunks(model, TOKENS, [6, 1, 1, 5, 1, 9])  # prefill, then mixed steps
    np.testing.assert_allclose(one_by_one, full, rtol=0, atol=1e-12)
    np.testing.assert_allclose(chunked, full, rtol=0, atol=1e-12)
    assert cache.length == len(TOKENS)
    for w, stored in zip(small.layer_windows, cache.stored_tokens()):
        assert stored == (len(TOKENS) if w is None else w - 1)  # sliding layers keep only their window


def test_cached_decoding_float32_tolerance():
    small = scale_down(get_config("gpt-oss-20b"), window=4)
    model = gptoss_np.build_model(small, seed=2)
    full = model(TOKENS)
    inc, _ = decode_in_chunks(model, TOKENS, [1] * len(TOKENS))
    assert np.abs(inc - full).max() <= 1e-5 * np.abs(full).max()


def test_a_cache_that_forgot_the_window_would_be_caught():
    """Control: attending to every cached key on a sliding layer changes the logits past the window."""
    small = scale_down(get_config("gpt-oss-20b"), window=4)
    full_attention = small.replace(layer_windows=(None,) * small.n_layers)
    w = gptoss_np.init_weights(small, seed=3)
    a = gptoss_np.Model(small, w, dtype="float64")(TOKENS)
    b = gptoss_np.Model(full_attention, w, dtype="float64")(TOKENS)
    assert np.abs(a[:4] - b[:4]).max() < 1e-12  # within the window the two agree...
    assert np.abs(a[4:] - b[4:]).max() > 1e-6  # ...past it they must not
