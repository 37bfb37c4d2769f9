"""The layer math (norms, activations, RoPE/YaRN, masks, sinks, GQA attention, routers, MoE, dtypes) checked against
references that do not come from gptoss_np: torch / transformers functions, the math written another way, or the
published numbers in the architecture spec."""

import math
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from gptoss_np import Model, build_model, chain, get_config, init_weights, scale_down, trace_names
from gptoss_np.attention import attention, causal_mask, sliding_window_mask, softmax_with_sink
from gptoss_np.ffn import gelu_tanh, sigmoid, silu, swiglu, swiglu_oss
from gptoss_np.moe import ExpertWeights, moe, moe_dense, router_softmax_topk, router_topk_softmax
from gptoss_np.mxfp4 import mxfp4_decode
from gptoss_np.norms import layer_norm, rms_norm
from gptoss_np.rope import apply_rope, rope_cos_sin, rope_inv_freq, yarn_inv_freq

transformers = pytest.importorskip("transformers")
from transformers import GptOssConfig, Qwen3MoeConfig  # noqa: E402
from transformers.masking_utils import causal_mask_function, sliding_window_causal_mask_function  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402
from transformers.models.gpt_oss import modeling_gpt_oss as hf_oss  # noqa: E402
from transformers.models.qwen3_moe import modeling_qwen3_moe as hf_qwen  # noqa: E402

STEPS = dict(chain())


def rng(seed=0):
    return np.random.default_rng(seed)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def tiny_oss_hf_config(**kw):
    base = dict(hidden_size=64, intermediate_size=32, num_local_experts=8, num_experts_per_tok=4,
                num_attention_heads=4, num_key_value_heads=2, head_dim=64, num_hidden_layers=1)
    base.update(kw)
    c = GptOssConfig(**base)
    c._experts_implementation = "eager"
    return c


# ---- norms ------------------------------------------------------------------------------------------------------

def test_layer_norm_matches_torch_with_biased_variance():
    x = 3.0 + 2.0 * rng(1).standard_normal((4, 5, 33))  # non-zero mean, so the mean subtraction matters
    w, b = rng(2).standard_normal(33), rng(3).standard_normal(33)
    got = layer_norm(x, w, b, eps=1e-5)
    ref = F.layer_norm(t(x), (33,), t(w), t(b), eps=1e-5).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # an unbiased (ddof=1) variance would be off by ~1/(2D) relative: far above the tolerance above
    unbiased = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, ddof=1, keepdims=True) + 1e-5) * w + b
    assert np.abs(unbiased - ref).max() > 1e-3


def test_rms_norm_is_root_mean_square_without_mean_subtraction():
    x = 5.0 + rng(4).standard_normal((6, 48))  # large mean: a LayerNorm-like mean subtraction would be obvious
    w = 1.0 + 0.1 * rng(5).standard_normal(48)
    got = rms_norm(x, w, eps=1e-5)
    rms = np.sqrt(np.linalg.norm(x, axis=-1, keepdims=True) ** 2 / x.shape[-1] + 1e-5)
    np.testing.assert_allclose(got, w * (x / rms), rtol=1e-13)
    assert np.abs(got - layer_norm(x, w, np.zeros(48), eps=1e-5)).max() > 0.5


def test_rms_norm_eps_is_inside_the_square_root_for_small_inputs():
    x = 1e-3 * rng(6).standard_normal((3, 40))  # mean(x^2) ~ 1e-6 < eps: eps dominates
    w = np.ones(40)
    got = rms_norm(x, w, eps=1e-5)
    ref = (t(x) * torch.rsqrt(t(x).pow(2).mean(-1, keepdim=True) + 1e-5)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert np.abs(got - x / (np.sqrt((x * x).mean(-1, keepdims=True)) + 1e-5)).max() > 0.1 * np.abs(got).max()


@pytest.mark.parametrize("module_cls,eps,shape", [
    (hf_oss.GptOssRMSNorm, 1e-5, (7, 96)),          # gpt-oss: hidden-state norm
    (hf_qwen.Qwen3MoeRMSNorm, 1e-6, (7, 96)),       # Qwen3: hidden-state norm
    (hf_qwen.Qwen3MoeRMSNorm, 1e-6, (7, 4, 32)),    # Qwen3 QK-norm: per head over head_dim, one weight for all heads
])
def test_rms_norm_matches_transformers_modules_in_float32(module_cls, eps, shape):
    x = (2.0 * rng(7).standard_normal(shape) + 0.5).astype(np.float32)
    w = (1.0 + 0.2 * rng(8).standard_normal(shape[-1])).astype(np.float32)
    mod = module_cls(shape[-1], eps=eps)
    with torch.no_grad():
        mod.weight.copy_(t(w))
        ref = mod(t(x)).numpy()
    got = rms_norm(x, w, eps=eps)
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("module_cls,cast,shape", [
    (hf_oss.GptOssRMSNorm, "after_weight", (7, 96)),        # gpt-oss: (w * x_normed) rounded once
    (hf_qwen.Qwen3MoeRMSNorm, "before_weight", (7, 96)),    # Qwen3: w * round(x_normed), in bf16
    (hf_qwen.Qwen3MoeRMSNorm, "before_weight", (7, 4, 32)),  # Qwen3 QK-norm
])
def test_torch_rms_norm_in_bfloat16_rounds_as_transformers_modules(module_cls, cast, shape):
    from gptoss_torch.norms import Norm, rms_norm as torch_rms_norm
    x = t((3.0 * rng(9).standard_normal(shape)).astype(np.float32)).bfloat16()
    w = t((1.0 + 0.5 * rng(10).standard_normal(shape[-1])).astype(np.float32)).bfloat16()
    mod = module_cls(shape[-1], eps=1e-6).bfloat16()
    norm = Norm(shape[-1], "rmsnorm", 1e-6, dtype=torch.bfloat16, cast=cast)
    with torch.no_grad():
        mod.weight.copy_(w)
        norm.weight.copy_(w)
        ref = mod(x)
        assert torch.equal(norm(x), ref) and torch.equal(norm.one_op(x), ref)  # bit-equal, both paths
        other = "before_weight" if cast == "after_weight" else "after_weight"
        assert (torch_rms_norm(x, w, 1e-6, other) != ref).float().mean() > 0.05  # the switch is what matches


# ---- activations ------------------------------------------------------------------------------------------------

def test_gelu_tanh_matches_torch_tanh_approximation_not_erf():
    x = np.linspace(-12, 12, 2001)
    got = gelu_tanh(x)
    np.testing.assert_allclose(got, F.gelu(t(x), approximate="tanh").numpy(), rtol=1e-12, atol=1e-14)
    assert np.abs(got - F.gelu(t(x)).numpy()).max() > 1e-4  # the exact erf GELU is a different function


def test_silu_matches_torch_and_keeps_float32():
    x = np.linspace(-60, 60, 1201)
    np.testing.assert_allclose(silu(x), F.silu(t(x)).numpy(), rtol=1e-12, atol=1e-300)
    x32 = x.astype(np.float32)
    assert silu(x32).dtype == np.float32
    np.testing.assert_allclose(silu(x32), F.silu(t(x32)).numpy(), rtol=2e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sigmoid_at_plus_minus_1000_has_no_overflow(dtype):
    x = np.array([-1000.0, -100.0, -1.0, 0.0, 1.0, 100.0, 1000.0], dtype=dtype)
    # exp(-1000) underflowing to 0 is harmless; an overflow (exp(+1000)) or inf/inf would not be
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        got = sigmoid(x)
    assert got.dtype == dtype
    assert np.all(np.isfinite(got))
    assert got[0] == 0.0 and got[-1] == 1.0 and got[3] == 0.5
    exact = np.array([1.0 / (1.0 + math.exp(-float(v))) for v in x[1:-1]])  # python floats, no overflow here
    np.testing.assert_allclose(got[1:-1], exact, rtol=1e-6, atol=1e-44)
    xs = np.linspace(-40, 40, 801)
    np.testing.assert_allclose(sigmoid(xs), torch.sigmoid(t(xs)).numpy(), rtol=1e-13)


# ---- SwiGLU variants --------------------------------------------------------------------------------------------

def test_swiglu_oss_matches_transformers_apply_gate_interleaved_clamped():
    experts = hf_oss.GptOssExperts(tiny_oss_hf_config(hidden_size=32, intermediate_size=16, num_local_experts=2))
    h = rng(9).uniform(-20, 20, (50, 32))
    h[0, :8] = [7.0, 7.0, -7.0, -7.0, 7.0001, -7.0001, -20.0, 20.0]  # values at and just past the clamp limits
    with torch.no_grad():
        ref = experts._apply_gate(t(h)).numpy()
    got = swiglu_oss(h, alpha=1.702, limit=7.0)
    assert got.shape == (50, 16)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # trap: a [gate | linear] halves split is a different function on the same data
    halves = np.concatenate([h[:, :16], h[:, 16:]], axis=-1).reshape(50, 2, 16).transpose(0, 2, 1).reshape(50, 32)
    assert np.abs(swiglu_oss(halves) - ref).max() > 1.0


def test_swiglu_oss_hand_values_gate_clamped_above_only_linear_both_sides():
    def one(gate, lin):
        return float(swiglu_oss(np.array([gate, lin], dtype=np.float64))[0])

    # gate = 1, linear = 1: 1 * sigma(1.702) * (1 + 1)
    assert one(1.0, 1.0) == pytest.approx(2.0 / (1.0 + math.exp(-1.702)), rel=1e-14)
    # gate = 10 is clamped to 7: 7 * sigma(11.914) * (0 + 1)
    assert one(10.0, 0.0) == pytest.approx(7.0 / (1.0 + math.exp(-7 * 1.702)), rel=1e-14)
    assert one(10.0, 0.0) == one(7.0, 0.0)
    # a negative gate is NOT clamped from below: -10 differs from -7
    assert one(-10.0, 0.0) == pytest.approx(-10.0 / (1.0 + math.exp(10 * 1.702)), rel=1e-12)
    assert one(-10.0, 0.0) != one(-7.0, 0.0)
    # the linear part is clipped on both sides, and the +1 is added after the clip
    assert one(2.0, 10.0) == one(2.0, 7.0) == pytest.approx(2.0 / (1 + math.exp(-3.404)) * 8.0, rel=1e-14)
    assert one(2.0, -10.0) == one(2.0, -7.0) == pytest.approx(2.0 / (1 + math.exp(-3.404)) * -6.0, rel=1e-14)
    # the +1 means linear = -1 switches the unit off, linear = 0 does not
    assert one(3.0, -1.0) == 0.0 and one(3.0, 0.0) != 0.0


def test_swiglu_qwen_is_silu_of_first_half_times_second_half():
    h = rng(10).uniform(-20, 20, (9, 2 * 24))
    ref = (F.silu(t(h[:, :24])) * t(h[:, 24:])).numpy()
    np.testing.assert_allclose(swiglu(h), ref, rtol=1e-12, atol=1e-12)
    interleaved = (F.silu(t(h[:, 0::2])) * t(h[:, 1::2])).numpy()
    assert np.abs(swiglu(h) - interleaved).max() > 1.0


# ---- RoPE and YaRN ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("head_dim,theta", [(64, 150000.0), (128, 1_000_000.0), (16, 10000.0)])
def test_rope_inv_freq_is_theta_to_the_minus_2i_over_d(head_dim, theta):
    i = np.arange(head_dim // 2)
    ref = np.exp(-(2.0 * i / head_dim) * math.log(theta))
    np.testing.assert_allclose(rope_inv_freq(head_dim, theta), ref, rtol=1e-13)


# §2.4 of the architecture spec: gpt-oss YaRN omega_i (fp32, 8 significant digits) and mask_i (5 digits)
PUBLISHED_OMEGA = {0: 1.0, 1: 6.8904430e-01, 2: 4.7478205e-01, 8: 5.0813273e-02, 9: 3.1705696e-02,
                   10: 1.9335002e-02, 12: 6.7949593e-03, 14: 2.0937927e-03, 16: 4.5648392e-04, 17: 1.2931869e-04,
                   18: 3.8308812e-05, 20: 1.8188337e-05, 24: 4.0999785e-06, 28: 9.2420896e-07, 31: 3.0235114e-07}
PUBLISHED_MASK = {0: 1.0, 8: 1.0, 9: 0.90250, 10: 0.79504, 12: 0.58011, 14: 0.36517, 16: 0.15024, 17: 0.04277,
                  18: 0.0, 31: 0.0}
PUBLISHED_CONC = 1.3465735902799727
PUBLISHED_COS_P1 = [0.72755682, 1.03935821, 1.19763228]
PUBLISHED_SIN_P1 = [1.13310261, 0.85615124, 0.61557887]


def oss_yarn(truncate=False, head_dim=64):
    return yarn_inv_freq(head_dim, 150000.0, 32.0, 4096, 32.0, 1.0, truncate=truncate)


def test_yarn_gpt_oss_matches_published_omega_table():
    inv, conc = oss_yarn()
    assert inv.shape == (32,)
    for i, w in PUBLISHED_OMEGA.items():
        assert inv[i] == pytest.approx(w, rel=3e-7), i
    assert conc == pytest.approx(PUBLISHED_CONC, rel=1e-15)
    # mask_i recovered from omega: omega = extrap * mask + extrap / s * (1 - mask)
    extrap = 150000.0 ** (-np.arange(0, 64, 2) / 64.0)
    mask = (inv - extrap / 32.0) / (extrap - extrap / 32.0)
    for i, m in PUBLISHED_MASK.items():
        assert mask[i] == pytest.approx(m, abs=1e-5), i


def test_yarn_gpt_oss_cos_sin_at_position_1_match_published_spot_check():
    inv, conc = oss_yarn()
    cos, sin = rope_cos_sin(np.array([1]), inv, conc, dtype=np.float64)
    np.testing.assert_allclose(cos[0, :3], PUBLISHED_COS_P1, atol=1e-8)
    np.testing.assert_allclose(sin[0, :3], PUBLISHED_SIN_P1, atol=1e-8)
    cos32, _ = rope_cos_sin(np.array([1]), inv, conc)  # default: cast to float32 after the float64 angles
    assert cos32.dtype == np.float32


def hf_yarn(head_dim, truncate):
    cfg = tiny_oss_hf_config(head_dim=head_dim, rope_parameters={
        "rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0, "truncate": truncate,
        "original_max_position_embeddings": 4096, "rope_theta": 150000.0})
    assert cfg.rope_parameters["truncate"] is truncate
    inv, factor = ROPE_INIT_FUNCTIONS["yarn"](cfg)
    return inv.double().numpy(), factor


@pytest.mark.parametrize("head_dim", [64, 16])
@pytest.mark.parametrize("truncate", [False, True])
def test_yarn_matches_transformers_yarn_init_function(head_dim, truncate):
    ref, ref_factor = hf_yarn(head_dim, truncate)  # transformers computes in float32
    got, factor = oss_yarn(truncate, head_dim)
    np.testing.assert_allclose(got, ref, rtol=1e-6)
    assert factor == pytest.approx(ref_factor, rel=1e-12)


def test_yarn_truncate_true_floors_and_ceils_the_ramp_so_it_differs_from_gpt_oss():
    frac, _ = oss_yarn(truncate=False)
    trunc, _ = oss_yarn(truncate=True)
    extrap = rope_inv_freq(64, 150000.0)
    mask_t = (trunc - extrap / 32) / (extrap - extrap / 32)
    # truncated ramp runs from 8 to 18: mask_i = 1 - (i - 8) / 10
    np.testing.assert_allclose(mask_t[8:19], 1 - (np.arange(8, 19) - 8) / 10.0, atol=1e-12)
    assert abs(mask_t[9] - PUBLISHED_MASK[9]) > 1e-3  # 0.9 vs the fractional 0.9025
    assert np.abs(frac / trunc - 1).max() > 0.01
    np.testing.assert_array_equal(frac[:9], trunc[:9])  # both keep the fast pairs untouched
    ref_t, _ = hf_yarn(64, True)
    ref_f, _ = hf_yarn(64, False)
    assert np.array_equal(np.abs(ref_t / ref_f - 1) > 1e-4, np.abs(trunc / frac - 1) > 1e-4)


def hf_rope(x, positions, inv_freq, factor):
    """transformers (Qwen3) form: cos/sin duplicated to the full width, x*cos + rotate_half(x)*sin. x [T, H, d]."""
    freqs = torch.tensor(np.asarray(positions, np.float64))[:, None] * t(inv_freq)[None, :]  # [T, d/2]
    emb = torch.cat([freqs, freqs], dim=-1)  # [T, d]
    cos, sin = (emb.cos() * factor)[None], (emb.sin() * factor)[None]  # [1, T, d]
    q = t(x).permute(1, 0, 2)[None]  # [1, H, T, d]
    out, _ = hf_qwen.apply_rotary_pos_emb(q, q, cos, sin, unsqueeze_dim=1)
    return out[0].permute(1, 0, 2).numpy()


@pytest.mark.parametrize("yarn", [False, True])
def test_apply_rope_is_half_split_like_transformers_rotate_half(yarn):
    x = rng(11).standard_normal((9, 3, 64))
    positions = np.array([0, 1, 2, 7, 100, 4095, 4096, 65536, 131071])
    inv, factor = oss_yarn() if yarn else (rope_inv_freq(64, 150000.0), 1.0)
    cos, sin = rope_cos_sin(positions, inv, factor, dtype=np.float64)
    got = apply_rope(x, cos, sin)
    np.testing.assert_allclose(got, hf_rope(x, positions, inv, factor), rtol=1e-12, atol=1e-12)


def test_apply_rope_interleaved_pairs_would_give_a_different_answer():
    x = rng(12).standard_normal((5, 2, 16))
    positions = np.arange(1, 6)
    inv = rope_inv_freq(16, 10000.0)
    cos, sin = rope_cos_sin(positions, inv, 1.0, dtype=np.float64)
    got = apply_rope(x, cos, sin)
    a, b = x[..., 0::2], x[..., 1::2]  # GPT-J / Meta style: rotate (x_2i, x_2i+1)
    c, s = cos[:, None, :], sin[:, None, :]
    inter = np.empty_like(x)
    inter[..., 0::2], inter[..., 1::2] = a * c - b * s, b * c + a * s
    assert np.abs(got - inter).max() > 0.1
    # both are rotations (norm-preserving), so only the pairing tells them apart
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), np.linalg.norm(x, axis=-1), rtol=1e-12)


def test_rope_scores_depend_only_on_relative_position():
    inv = rope_inv_freq(32, 10000.0)
    q, k = rng(13).standard_normal((1, 1, 32)), rng(14).standard_normal((1, 1, 32))

    def score(pq, pk):
        cq, sq = rope_cos_sin([pq], inv, dtype=np.float64)
        ck, sk = rope_cos_sin([pk], inv, dtype=np.float64)
        return float((apply_rope(q, cq, sq) * apply_rope(k, ck, sk)).sum())

    assert score(10, 3) == pytest.approx(score(1007, 1000), rel=1e-9)
    assert score(10, 3) != pytest.approx(score(10, 4), rel=1e-3)


# ---- masks ------------------------------------------------------------------------------------------------------

def test_sliding_window_of_128_includes_current_token():
    pos = np.arange(300)
    m = sliding_window_mask(pos, pos, 128)
    assert m.dtype == bool and m.shape == (300, 300)
    np.testing.assert_array_equal(m.sum(axis=1), np.minimum(pos + 1, 128))
    assert m[pos, pos].all()  # the query sees itself
    for q in (128, 129, 200, 299):
        assert not m[q, q - 128] and m[q, q - 127]
    assert not np.triu(m, 1).any()  # never the future
    ref = sliding_window_causal_mask_function(128)(0, 0, torch.arange(300)[:, None], torch.arange(300)[None, :])
    np.testing.assert_array_equal(m, ref.numpy())


def test_sliding_window_mask_for_a_decode_step_sees_the_last_128_cached_positions():
    m = sliding_window_mask(np.array([299]), np.arange(300), 128)
    np.testing.assert_array_equal(np.flatnonzero(m[0]), np.arange(172, 300))


def test_causal_mask_is_lower_triangular_with_offsets():
    pos = np.arange(40)
    np.testing.assert_array_equal(causal_mask(pos, pos), np.tril(np.ones((40, 40), bool)))
    np.testing.assert_array_equal(causal_mask(np.arange(30, 35), pos), np.tril(np.ones((5, 40), bool), k=30))
    ref = causal_mask_function(0, 0, torch.arange(40)[:, None], torch.arange(40)[None, :]).numpy()
    np.testing.assert_array_equal(causal_mask(pos, pos), ref)


# ---- softmax with a sink ------------------------------------------------------------------------------------------

def concat_sink_softmax(scores, sink):
    """The OAI/HF formulation: append the sink as an extra column, softmax, drop the column. scores [H, T, S]."""
    s = t(scores)
    col = t(np.broadcast_to(np.asarray(sink, np.float64).reshape(-1, 1, 1), scores.shape[:-1] + (1,)).copy())
    return torch.softmax(torch.cat([s, col], dim=-1), dim=-1)[..., :-1].numpy()


def test_softmax_with_sink_equals_concat_then_drop_column():
    scores = 3.0 * rng(15).standard_normal((4, 6, 9))
    sink = rng(16).standard_normal(4)
    got = softmax_with_sink(scores, sink.reshape(4, 1, 1))
    np.testing.assert_allclose(got, concat_sink_softmax(scores, sink), rtol=1e-13, atol=1e-16)
    rows = got.sum(-1)
    assert np.all(rows < 1.0) and np.all(rows > 0.0)
    # what is missing from each row is exactly the sink's share
    p_sink = np.exp(sink[:, None]) / (np.exp(scores).sum(-1) + np.exp(sink[:, None]))
    np.testing.assert_allclose(1.0 - rows, p_sink, rtol=1e-11)


def test_softmax_with_sink_minus_inf_is_plain_softmax_and_a_large_sink_absorbs_mass():
    scores = rng(17).standard_normal((2, 3, 7))
    got = softmax_with_sink(scores, np.full((2, 1, 1), -np.inf))
    np.testing.assert_allclose(got, torch.softmax(t(scores), -1).numpy(), rtol=1e-13)
    big = softmax_with_sink(scores, np.full((2, 1, 1), scores.max() + 50.0))
    assert np.all(big.sum(-1) < 1e-20)
    np.testing.assert_allclose(big / big.sum(-1, keepdims=True), got, rtol=1e-10)  # the shape of the row is kept


def test_softmax_with_sink_is_stable_for_scores_near_1000():
    scores = 1000.0 + rng(18).standard_normal((2, 4, 5))
    masked = scores.copy()
    masked[..., -2:] = -np.inf  # masked keys, as attention() passes them
    for sink_value in (1000.5, 0.0, 2000.0):  # sink near, far below, far above the scores
        sink = np.full((2, 1, 1), sink_value)
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            got = softmax_with_sink(masked, sink)
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, concat_sink_softmax(masked, sink[:, 0, 0]), rtol=1e-12, atol=1e-300)
    # the unshifted formula is the same math but overflows here: this is what the test guards against
    with np.errstate(all="ignore"):
        naive = np.exp(scores) / (np.exp(scores).sum(-1, keepdims=True) + np.exp(1000.5))
    assert not np.all(np.isfinite(naive))


# ---- attention ----------------------------------------------------------------------------------------------------

def sdpa_reference(q, k, v, allowed):
    """torch SDPA on GQA expanded by repeat_interleave: query head h reads kv head h // G. q [T, Hq, d]."""
    G = q.shape[1] // k.shape[1]
    qt = t(q).permute(1, 0, 2)[None]
    kt = t(k).permute(1, 0, 2)[None].repeat_interleave(G, dim=1)
    vt = t(v).permute(1, 0, 2)[None].repeat_interleave(G, dim=1)
    out = F.scaled_dot_product_attention(qt, kt, vt, attn_mask=torch.from_numpy(allowed))
    return out[0].permute(1, 0, 2).numpy()


def qkv(T, S, Hq=8, Hkv=2, d=16, seed=19):
    r = rng(seed)
    return r.standard_normal((T, Hq, d)), r.standard_normal((S, Hkv, d)), r.standard_normal((S, Hkv, d))


@pytest.mark.parametrize("case", ["causal", "sliding", "decode_sliding"])
def test_gqa_attention_matches_torch_sdpa_with_repeat_interleave(case):
    if case == "decode_sliding":  # two new queries at 10, 11 against 12 cached keys, window 4
        q_pos, k_pos = np.array([10, 11]), np.arange(12)
    else:
        q_pos = k_pos = np.arange(12)
    allowed = causal_mask(q_pos, k_pos) if case == "causal" else sliding_window_mask(q_pos, k_pos, 4)
    q, k, v = qkv(len(q_pos), len(k_pos))
    got = attention(q, k, v, allowed)
    ref = sdpa_reference(q, k, v, allowed)
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
    # trap: tiling kv heads (query head h reads kv head h % Hkv) is a different grouping
    G = 4
    tiled = F.scaled_dot_product_attention(
        t(q).permute(1, 0, 2)[None], t(k).permute(1, 0, 2)[None].repeat(1, G, 1, 1),
        t(v).permute(1, 0, 2)[None].repeat(1, G, 1, 1), attn_mask=torch.from_numpy(allowed))[0].permute(1, 0, 2)
    assert np.abs(tiled.numpy() - got).max() > 0.1


def test_attention_scale_argument_is_applied_to_scores():
    q, k, v = qkv(6, 6, seed=20)
    allowed = causal_mask(np.arange(6), np.arange(6))
    np.testing.assert_allclose(attention(q, k, v, allowed, scale=0.3), attention(q * 0.3 * 4.0, k, v, allowed),
                               rtol=1e-12)  # default scale is 1/sqrt(16) = 1/4


@pytest.mark.parametrize("window", [None, 3])
def test_attention_with_sinks_matches_transformers_gpt_oss_eager(window):
    q_pos = k_pos = np.arange(10)
    allowed = causal_mask(q_pos, k_pos) if window is None else sliding_window_mask(q_pos, k_pos, window)
    q, k, v = qkv(10, 10, seed=21)
    sinks = 2.0 * rng(22).standard_normal(8)
    got = attention(q, k, v, allowed, sinks=sinks)
    module = SimpleNamespace(sinks=t(sinks), num_key_value_groups=4, training=False)
    add_mask = torch.zeros(allowed.shape, dtype=torch.float64)  # HF style: finfo.min added where not allowed
    add_mask[~torch.from_numpy(allowed)] = torch.finfo(torch.float64).min
    ref, _ = hf_oss.eager_attention_forward(module, t(q).permute(1, 0, 2)[None], t(k).permute(1, 0, 2)[None],
                                            t(v).permute(1, 0, 2)[None], add_mask[None, None], scaling=0.25)
    np.testing.assert_allclose(got, ref[0].numpy(), rtol=1e-12, atol=1e-12)
    assert np.abs(got - attention(q, k, v, allowed)).max() > 1e-3  # the sinks do change the output


def test_attention_sinks_are_per_query_head_not_per_kv_head():
    q, k, v = qkv(5, 5, seed=23)
    allowed = causal_mask(np.arange(5), np.arange(5))
    sinks = np.zeros(8)
    sinks[5] = 30.0  # only query head 5 (kv head 1, member 1) is silenced
    out = attention(q, k, v, allowed, sinks=sinks)
    assert np.abs(out[:, 5]).max() < 1e-10
    base = attention(q, k, v, allowed, sinks=np.zeros(8))
    np.testing.assert_allclose(np.delete(out, 5, axis=1), np.delete(base, 5, axis=1), rtol=1e-13)


# ---- routers ------------------------------------------------------------------------------------------------------

def test_gpt_oss_router_is_topk_then_softmax_over_the_k():
    logits = 2.0 * rng(24).standard_normal((20, 32))
    idx, w = router_topk_softmax(logits, 4)
    vals, ref_idx = torch.topk(t(logits), 4, dim=-1)
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    np.testing.assert_allclose(w, torch.softmax(vals, -1).numpy(), rtol=1e-13)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-14)
    assert np.all(np.diff(w, axis=-1) <= 0)  # best first
    full = torch.softmax(t(logits), -1).numpy()  # trap: softmax over all E without renormalising
    assert np.abs(np.take_along_axis(full, idx, -1) - w).max() > 0.05


def test_qwen_router_is_softmax_over_all_then_topk_renormalised():
    logits = 2.0 * rng(25).standard_normal((20, 128))
    idx, w = router_softmax_topk(logits, 8)
    probs = torch.softmax(t(logits), -1)
    vals, ref_idx = torch.topk(probs, 8, dim=-1)
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    np.testing.assert_allclose(w, (vals / vals.sum(-1, keepdim=True)).numpy(), rtol=1e-13)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-14)


def test_qwen_router_equals_softmax_over_topk_logits_identity():
    logits = 3.0 * rng(26).standard_normal((15, 64))
    idx, w = router_softmax_topk(logits, 8)
    sel = np.take_along_axis(logits, idx, -1)
    e = np.exp(sel - sel.max(-1, keepdims=True))
    np.testing.assert_allclose(w, e / e.sum(-1, keepdims=True), rtol=1e-12)
    idx2, w2 = router_topk_softmax(logits, 8)
    np.testing.assert_array_equal(idx, idx2)
    np.testing.assert_allclose(w, w2, rtol=1e-12)


# ---- MoE ----------------------------------------------------------------------------------------------------------

MOE_CONFIGS = {
    "gpt-oss-float": lambda: scale_down(STEPS["08-moe"], n_experts=16),
    "gpt-oss-mxfp4": lambda: scale_down(STEPS["09-mxfp4"], n_experts=16),
    "gpt-oss-20b-preset": lambda: scale_down(get_config("gpt-oss-20b")),
    "qwen3": lambda: scale_down(get_config("qwen3-30b-a3b"), n_experts=16),
}


def moe_args(model, layer=0):
    p, pre = model.params, f"layers.{layer}.mlp."
    return (p[pre + "router.weight"], p.get(pre + "router.bias"), model.experts[pre + "experts.up"],
            p.get(pre + "experts.up.bias"), model.experts[pre + "experts.down"], p.get(pre + "experts.down.bias"))


@pytest.mark.parametrize("name", sorted(MOE_CONFIGS))
@pytest.mark.parametrize("T", [1, 3, 17])
def test_moe_routed_equals_dense_mixture_with_unhit_experts(name, T):
    cfg = MOE_CONFIGS[name]()
    assert cfg.n_experts > cfg.top_k
    model = Model(cfg, init_weights(cfg, seed=3), dtype=np.float64)
    args = moe_args(model)
    x = rng(27 + T).standard_normal((T, cfg.d_model))
    # sharpen the router so that the selection is far from ties
    args = (args[0] * 50.0,) + args[1:]
    y, logits, experts, weights = moe(x, cfg, *args)
    y_d, logits_d, experts_d, weights_d = moe_dense(x, cfg, *args)
    np.testing.assert_array_equal(experts, experts_d)
    np.testing.assert_allclose(weights, weights_d, rtol=1e-14)
    np.testing.assert_allclose(y, y_d, rtol=1e-10, atol=1e-13)
    assert y.dtype == np.float64 and np.abs(y).max() > 0
    if T <= 3:
        assert len(np.unique(experts)) < cfg.n_experts  # some experts are never hit


def test_moe_mxfp4_packed_equals_moe_on_decoded_float_experts():
    cfg = MOE_CONFIGS["gpt-oss-mxfp4"]()
    model = Model(cfg, init_weights(cfg, seed=4), dtype=np.float64)
    router_w, router_b, up, up_b, down, down_b = moe_args(model)
    assert up.packed and down.packed
    up_f = ExpertWeights(mxfp4_decode(up.blocks, up.scales, dtype=np.float64))
    down_f = ExpertWeights(mxfp4_decode(down.blocks, down.scales, dtype=np.float64))
    x = rng(28).standard_normal((6, cfg.d_model))
    y, *_ = moe(x, cfg, router_w, router_b, up, up_b, down, down_b)
    y_f, *_ = moe_dense(x, cfg, router_w, router_b, up_f, up_b, down_f, down_b)
    np.testing.assert_allclose(y, y_f, rtol=1e-10, atol=1e-13)


def test_moe_gpt_oss_matches_transformers_gpt_oss_mlp():
    cfg = MOE_CONFIGS["gpt-oss-float"]()
    model = Model(cfg, init_weights(cfg, seed=5), dtype=np.float64)
    router_w, router_b, up, up_b, down, down_b = moe_args(model)
    router_w = router_w * 50.0
    hc = tiny_oss_hf_config(hidden_size=cfg.d_model, intermediate_size=cfg.ffn_hidden,
                            num_local_experts=cfg.n_experts, num_experts_per_tok=cfg.top_k)
    block = hf_oss.GptOssMLP(hc).double()
    with torch.no_grad():  # HF stores experts transposed: x @ W with W [E, in, out]
        block.router.weight.copy_(t(router_w))
        block.router.bias.copy_(t(router_b))
        block.experts.gate_up_proj.copy_(t(up.take(np.arange(cfg.n_experts), np.float64).transpose(0, 2, 1)))
        block.experts.gate_up_proj_bias.copy_(t(up_b))
        block.experts.down_proj.copy_(t(down.take(np.arange(cfg.n_experts), np.float64).transpose(0, 2, 1)))
        block.experts.down_proj_bias.copy_(t(down_b))
        x = rng(29).standard_normal((7, cfg.d_model))
        ref, _ = block(t(x)[None])
    y, *_ = moe(x, cfg, router_w, router_b, up, up_b, down, down_b)
    np.testing.assert_allclose(y, ref[0].numpy(), rtol=1e-10, atol=1e-13)


def test_moe_qwen3_matches_transformers_sparse_moe_block():
    cfg = MOE_CONFIGS["qwen3"]()
    model = Model(cfg, init_weights(cfg, seed=6), dtype=np.float64)
    router_w, router_b, up, up_b, down, down_b = moe_args(model)
    assert router_b is None and up_b is None and down_b is None
    router_w = router_w * 50.0
    hc = Qwen3MoeConfig(hidden_size=cfg.d_model, moe_intermediate_size=cfg.ffn_hidden, num_experts=cfg.n_experts,
                        num_experts_per_tok=cfg.top_k, norm_topk_prob=True, num_attention_heads=4,
                        num_key_value_heads=2, num_hidden_layers=1)
    hc._experts_implementation = "eager"
    block = hf_qwen.Qwen3MoeSparseMoeBlock(hc).double()
    with torch.no_grad():  # same [E, 2F, D] layout with [gate | up] halves
        block.gate.weight.copy_(t(router_w))
        block.experts.gate_up_proj.copy_(t(up.take(np.arange(cfg.n_experts), np.float64)))
        block.experts.down_proj.copy_(t(down.take(np.arange(cfg.n_experts), np.float64)))
        x = rng(30).standard_normal((7, cfg.d_model))
        ref = block(t(x)[None])
    y, *_ = moe(x, cfg, router_w, None, up, None, down, None)
    # transformers runs the Qwen router softmax in float32, so agreement is at float32 level
    np.testing.assert_allclose(y, ref[0].numpy(), rtol=1e-5, atol=1e-8)


# ---- dtype discipline over the chain ----------------------------------------------------------------------------

DTYPE_CONFIGS = [(name, scale_down(cfg)) for name, cfg in chain()] + [
    ("qwen3-30b-a3b", scale_down(get_config("qwen3-30b-a3b")))]


@pytest.mark.parametrize("name,cfg", DTYPE_CONFIGS, ids=[n for n, _ in DTYPE_CONFIGS])
def test_forward_dtype_float32_stays_float32_and_agrees_with_float64(name, cfg):
    tokens = rng(31).integers(0, cfg.vocab_size, 9)  # longer than the tiny window of 4
    out = {}
    for dtype in (np.float32, np.float64):
        model = build_model(cfg, seed=7, dtype=np.dtype(dtype).name)
        logits, tr = model(tokens, trace=True)
        assert logits.dtype == dtype and logits.shape == (9, cfg.vocab_size)
        assert list(tr) == trace_names(cfg)
        for key, val in tr.items():
            if np.issubdtype(val.dtype, np.floating):
                assert val.dtype == dtype, (name, key, val.dtype)
            else:
                assert key.endswith("router.experts"), (name, key, val.dtype)
        out[dtype] = logits
    l32, l64 = out[np.float32], out[np.float64]
    assert np.abs(l32 - l64).max() <= 1e-5 * np.abs(l64).max()


def test_sigmoid_of_integers_is_not_truncated():
    from gptoss_np.ffn import sigmoid as _sigmoid
    np.testing.assert_allclose(_sigmoid(np.array([1, 2, -3])), 1 / (1 + np.exp(-np.array([1.0, 2.0, -3.0]))))
