"""Chunked prefill: a long prompt runs through the KV cache a chunk of queries at a time, so the attention
temporaries stay under gptoss_torch.model.ATTN_TEMP_BYTES at any length, and gives every trace point of the NumPy
oracle's one-shot forward (float64, past the sliding window, with sinks). And the decode step's attention scores
are float32 even when the model is bf16."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gptoss_np
from gptoss_np import get_config, scale_down
from gptoss_torch import model as model_module
from gptoss_torch.attention import attention_mask, decode_attention
from gptoss_torch.model import Model

TOKENS = (np.arange(23) * 37 + 5) % 256  # 23 tokens: several times the tiny window of 4


def twins(name="gpt-oss-20b", seed=1):
    cfg = scale_down(get_config(name), window=4)
    w = gptoss_np.init_weights(cfg, seed=seed)
    assert np.abs(w["layers.0.attn.sinks"]).min() > 0 if cfg.sinks else True  # the sinks really take part
    return gptoss_np.Model(cfg, w, dtype="float64"), Model.from_numpy(cfg, w, dtype=torch.float64)


def worst(ref, test):
    """max over trace points of max |test - ref| / max |ref|."""
    assert set(ref) == set(test), set(ref) ^ set(test)
    errs = {}
    for name, a in ref.items():
        b = test[name].numpy()
        if np.issubdtype(a.dtype, np.integer):  # router.experts: the same set per token
            errs[name] = float((np.sort(a, -1) != np.sort(b, -1)).sum())
        else:
            errs[name] = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
    return max(errs.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("name,chunk", [("gpt-oss-20b", 1), ("gpt-oss-20b", 5), ("gpt-oss-20b", 22),
                                        ("qwen3-30b-a3b", 7)])
def test_chunked_prefill_gives_every_trace_point_of_the_oracle(name, chunk):
    oracle, twin = twins(name)
    _, ref = oracle(TOKENS, trace=True)
    logits, trace = twin(torch.as_tensor(TOKENS), trace=True, prefill_chunk=chunk)
    assert worst(ref, trace)[1] <= 1e-12, worst(ref, trace)
    assert logits.shape == (len(TOKENS), twin.cfg.vocab_size)


@pytest.mark.parametrize("rows", [None, 3])
def test_a_prompt_longer_than_prefill_tokens_passes_in_pieces(monkeypatch, rows):
    """Past PREFILL_TOKENS the prompt goes through the layers a piece at a time via the KV cache (each MoE call sees
    one piece, so each expert is decoded once per piece, not once per query chunk): every trace point still equals
    the oracle's one-shot forward, with and without a cache of the caller's."""
    oracle, twin = twins()
    monkeypatch.setattr(model_module, "PREFILL_TOKENS", 7)
    _, ref = oracle(TOKENS, trace=True)
    moe_tokens = []
    hook = twin.layers[0].mlp.register_forward_hook(lambda m, args, out: moe_tokens.append(args[0].shape[0]))
    try:
        _, trace = twin(torch.as_tensor(TOKENS), trace=True, prefill_chunk=rows)
        assert worst(ref, trace)[1] <= 1e-12, worst(ref, trace)
        assert moe_tokens == [7, 7, 7, 2]
        cache = twin.new_cache(32)
        last = twin(torch.as_tensor(TOKENS), cache=cache, last_only=True, prefill_chunk=rows)
        assert cache.length == len(TOKENS) and np.abs(last.numpy() - ref["logits"][-1:]).max() <= 1e-12
    finally:
        hook.remove()


def test_chunked_prefill_into_a_cache_then_decode():
    """A prompt prefilled in chunks after a first turn, then decoded token by token: the full forward's logits."""
    oracle, twin = twins()
    full = oracle(TOKENS)
    cache = twin.new_cache(32)
    parts = [twin(torch.as_tensor(TOKENS[:3]), cache=cache),
             twin(torch.as_tensor(TOKENS[3:17]), cache=cache, prefill_chunk=4)]
    parts += [twin(torch.as_tensor(TOKENS[i:i + 1]), cache=cache) for i in range(17, len(TOKENS))]
    assert cache.length == len(TOKENS)
    assert np.abs(torch.cat(parts).numpy() - full).max() <= 1e-12 * np.abs(full).max()


@pytest.mark.parametrize("chunk", [None, 5])
def test_last_only_gives_the_last_row_of_the_oracle(chunk):
    """What generation asks of a prefill: the last position's logits, equal to the oracle's last row, one-shot or
    chunked, with or without a cache, unbatched [1, V] and batched [B, 1, V]."""
    oracle, twin = twins()
    last = oracle(TOKENS)[-1:]  # [1, V]
    for cache in (None, twin.new_cache(32)):
        got = twin(torch.as_tensor(TOKENS), cache=cache, last_only=True, prefill_chunk=chunk)
        assert got.shape == (1, twin.cfg.vocab_size)
        assert np.abs(got.numpy() - last).max() <= 1e-12 * np.abs(last).max()
    both = twin(torch.as_tensor(np.stack([TOKENS, TOKENS])), last_only=True, prefill_chunk=chunk)
    assert both.shape == (2, 1, twin.cfg.vocab_size) and np.abs(both[1].numpy() - last).max() <= 1e-12 * np.abs(last).max()


@pytest.fixture
def sdpa_calls(monkeypatch):
    """Every attention call's (query rows, score bytes, additive mask bytes), by a spy on SDPA."""
    seen = []
    sdpa = F.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kw):  # q [B, Hq, T, d], k [B, Hkv, S, d], float mask [Hq, T, S]
        seen.append((q.shape[2], q.shape[0] * q.shape[1] * q.shape[2] * k.shape[2] * q.element_size(),
                     attn_mask.nbytes))
        return sdpa(q, k, v, attn_mask=attn_mask, **kw)

    monkeypatch.setattr(F, "scaled_dot_product_attention", spy)
    return seen


def test_last_only_with_a_trace_is_refused():
    """A trace's final_norm and logits hold every position; asking for both would give a trace of another shape."""
    from gptoss_np import InputError
    _, twin = twins()
    with pytest.raises(InputError, match="last_only"):
        twin(torch.as_tensor(TOKENS), trace=True, last_only=True)


def test_attention_temporaries_stay_under_the_budget(monkeypatch, sdpa_calls):
    """With a budget of a few score rows the prompt is split on its own; every attention call's score tensor and
    additive mask stay under it, and the logits are the one-shot ones."""
    oracle, twin = twins()
    budget = 6 * twin.cfg.n_heads * 2 * (len(TOKENS) + 1) * 8  # about 6 float64 query rows over 2x the keys
    seen = sdpa_calls
    monkeypatch.setattr(model_module, "ATTN_TEMP_BYTES", budget)
    logits = twin(torch.as_tensor(TOKENS))
    rows = max(r for r, _, _ in seen)
    assert 1 < rows < len(TOKENS)  # it was chunked, and not one query at a time
    assert max(max(s, m) for _, s, m in seen) <= budget
    full = oracle(TOKENS)
    assert np.abs(logits.numpy() - full).max() <= 1e-12 * np.abs(full).max()
    seen.clear()
    monkeypatch.setattr(model_module, "ATTN_TEMP_BYTES", 1 << 28)
    twin(torch.as_tensor(TOKENS))
    assert [r for r, _, _ in seen] == [len(TOKENS)] * twin.cfg.n_layers  # a short prompt still runs in one shot


def test_a_prompt_in_pieces_without_a_cache_stays_under_the_budget(monkeypatch, sdpa_calls):
    """Past PREFILL_TOKENS with no cache of the caller's, the temporary cache holds the whole prompt, so a full
    layer's queries see len(TOKENS) keys in every piece: the query chunks are sized for those, not for a piece."""
    oracle, twin = twins()
    monkeypatch.setattr(model_module, "PREFILL_TOKENS", 7)
    budget = 3 * twin.cfg.n_heads * (len(TOKENS) + 4 + 1) * 8  # 3 float64 query rows over every key, window, sink
    monkeypatch.setattr(model_module, "ATTN_TEMP_BYTES", budget)
    logits = twin(torch.as_tensor(TOKENS))
    assert max(max(s, m) for _, s, m in sdpa_calls) <= budget
    full = oracle(TOKENS)
    assert np.abs(logits.numpy() - full).max() <= 1e-12 * np.abs(full).max()


def test_full_size_prefill_rows_bound_the_scores():
    """gpt-oss-20b's shapes: at any prompt length one chunk's float32 scores stay under 256 MiB."""
    cfg = get_config("gpt-oss-20b")
    with torch.device("meta"):
        model = Model(cfg)
    for slots in (2048, 4096, 32768, 131072):
        rows = model.prefill_rows(1, slots)
        assert rows >= 1 and rows * cfg.n_heads * (slots + 128 + 1) * 4 <= model_module.ATTN_TEMP_BYTES


def test_decode_scores_are_float32_in_a_bf16_model():
    """Near-equal large scores and a sink: float32 scores keep the softmax to bf16's output rounding, bf16 scores
    (spacing 0.5 at 100) would not. Reference: float64 on the same bf16 inputs."""
    g = torch.Generator().manual_seed(0)
    B, S, Hq, Hkv, d = 1, 300, 4, 2, 16
    q = torch.full((B, 1, Hq, d), 2.5, dtype=torch.float64)
    k = (2.5 + 0.02 * torch.randn(B, S, Hkv, d, generator=g, dtype=torch.float64))  # scores ~ 100 +- 1
    v = torch.randn(B, S, Hkv, d, generator=g, dtype=torch.float64)
    sinks = torch.tensor([99.9, 100.3, 98.7, 100.05], dtype=torch.float64)
    allowed = attention_mask(torch.tensor([S - 1]), torch.arange(S), None)
    q16, k16, v16, s16 = (t.to(torch.bfloat16) for t in (q, k, v, sinks))
    scale = 1.0  # q . k = 2.5 * 2.5 * 16 = 100 before the noise: the scores are near 100

    def reference(score_dtype):
        qf, kf, vf = (t.double() for t in (q16, k16, v16))
        s = torch.einsum("bhd,bshd->bhs", qf[:, 0], kf.repeat_interleave(Hq // Hkv, dim=2)) * scale
        s = torch.cat([s, s16.double().view(1, Hq, 1).expand(B, Hq, 1)], -1).to(score_dtype).double()
        p = torch.softmax(s, -1)[..., :S]
        return torch.einsum("bhs,bshd->bhd", p, vf.repeat_interleave(Hq // Hkv, dim=2))

    ref = reference(torch.float64)
    out = decode_attention(q16, k16, v16, allowed, s16, scale)
    assert out.dtype == torch.bfloat16
    assert (out[:, 0].double() - ref).abs().max() <= 2 ** -8 * ref.abs().max()
    assert (reference(torch.bfloat16) - ref).abs().max() > 4 * 2 ** -8 * ref.abs().max()  # what bf16 scores cost
