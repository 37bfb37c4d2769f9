"""The config object, its presets (real published values), the chain and scale_down."""

import dataclasses

import numpy as np
import pytest

import gptoss_np
from gptoss_np import ConfigError, chain, get_config, scale_down
from gptoss_np.config import ModelConfig, chain_changes


def test_presets_hold_the_published_values():
    # sources: HF config.json of openai-community/gpt2-xl, openai/gpt-oss-20b, openai/gpt-oss-120b and
    # Qwen/Qwen3-30B-A3B (copies quoted in shared/reference/architectures.md sections 1.1, 2.1, 4.1)
    g = get_config("gpt2-xl")
    assert (g.n_layers, g.d_model, g.n_heads, g.head_dim, g.ffn_hidden, g.vocab_size, g.context_length) == \
        (48, 1600, 25, 64, 6400, 50257, 1024)
    assert g.norm == "layernorm" and g.positions == "learned" and g.tie_embeddings and g.dropout == 0.1
    o = get_config("gpt-oss-20b")
    assert (o.n_layers, o.d_model, o.n_heads, o.n_kv_heads, o.head_dim, o.ffn_hidden, o.vocab_size) == \
        (24, 2880, 64, 8, 64, 2880, 201088)
    assert (o.n_experts, o.top_k, o.rope_theta, o.context_length, o.norm_eps) == (32, 4, 150000.0, 131072, 1e-5)
    assert o.rope_scaling.factor == 32 and o.rope_scaling.original_context == 4096 and not o.rope_scaling.truncate
    assert (o.rope_scaling.beta_fast, o.rope_scaling.beta_slow) == (32.0, 1.0)
    assert o.layer_windows[:4] == (128, None, 128, None) and len(o.layer_windows) == 24  # even layers slide
    assert o.sinks and o.attn_bias and not o.tie_embeddings and o.expert_quant == "mxfp4"
    assert (o.swiglu_alpha, o.swiglu_limit) == (1.702, 7.0)
    b = get_config("gpt-oss-120b")
    assert (b.n_layers, b.n_experts, b.top_k) == (36, 128, 4)
    q = get_config("qwen3-30b-a3b")
    assert (q.n_layers, q.d_model, q.n_heads, q.n_kv_heads, q.head_dim, q.ffn_hidden, q.vocab_size) == \
        (48, 2048, 32, 4, 128, 768, 151936)
    assert (q.n_experts, q.top_k, q.rope_theta, q.norm_eps) == (128, 8, 1e6, 1e-6)
    assert q.qk_norm and not q.sinks and not q.attn_bias and q.router == "softmax_topk"
    # bf16 RMSNorm: gpt-oss rounds after the weight, Qwen3 before it (GptOssRMSNorm / Qwen3MoeRMSNorm in transformers)
    assert (o.norm_cast, q.norm_cast, g.norm_cast) == ("after_weight", "before_weight", "after_weight")


def test_chain_starts_at_gpt2_xl_and_ends_exactly_at_gpt_oss_20b():
    steps = chain()
    assert steps[0][1] == get_config("gpt2-xl")
    assert steps[-1][1] == get_config("gpt-oss-20b")
    assert [s for s, _ in steps] == list(chain_changes())
    assert len({s for s, _ in steps}) == len(steps)


def test_each_chain_step_changes_something():
    steps = chain()
    fields = [f.name for f in dataclasses.fields(ModelConfig) if f.compare]
    for (_, prev), (name, cfg) in zip(steps, steps[1:]):
        changed = [f for f in fields if getattr(prev, f) != getattr(cfg, f)]
        assert changed, f"step {name} changes nothing"


@pytest.mark.parametrize("name,cfg", chain() + [("qwen3-30b-a3b", get_config("qwen3-30b-a3b")),
                                                 ("gpt-oss-120b", get_config("gpt-oss-120b"))])
def test_scale_down_keeps_every_structural_feature(name, cfg):
    small = scale_down(cfg)
    for f in ("norm", "positions", "rope_scaling", "activation", "ffn", "router", "sinks", "attn_bias", "mlp_bias",
              "qk_norm", "tie_embeddings", "expert_quant", "weight_dtype", "dropout"):
        assert getattr(small, f) == getattr(cfg, f), f
    assert (small.n_kv_heads < small.n_heads) == (cfg.n_kv_heads < cfg.n_heads)  # GQA stays GQA
    assert (small.q_dim != small.d_model) == (cfg.q_dim != cfg.d_model)  # Qwen3's wide attention stays wide
    assert any(w is not None for w in small.layer_windows) == any(w is not None for w in cfg.layer_windows)
    if cfg.ffn == "moe":
        assert small.n_experts > small.top_k
    # and it runs
    logits = gptoss_np.build_model(small)(np.arange(10))
    assert logits.shape == (10, small.vocab_size) and np.isfinite(logits).all()


def test_config_round_trips_through_a_dict():
    for name in ("gpt2-xl", "gpt-oss-20b", "qwen3-30b-a3b"):
        cfg = get_config(name)
        assert ModelConfig.from_dict(cfg.to_dict()) == cfg


def test_get_config_accepts_chain_step_names():
    assert get_config("05-gqa").n_kv_heads == 5


@pytest.mark.parametrize("change,field", [(dict(n_kv_heads=7), "n_kv_heads"), (dict(norm="batchnorm"), "norm"),
                                          (dict(layer_windows=(128,)), "layer_windows"), (dict(top_k=40), "top_k"),
                                          (dict(d_model=0), "d_model"), (dict(norm_cast="never"), "norm_cast"),
                                          (dict(norm="layernorm", norm_cast="before_weight"), "norm_cast")])
def test_invalid_config_names_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        get_config("gpt-oss-20b").replace(**change)
