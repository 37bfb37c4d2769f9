"""OpenAI's original gpt-oss layout (the `original/` directory of a download): its config fields, its tensor names
(fused qkv split into views), layout auto-detection, and named errors. The same weights written in the HF and the
original layout must give identical logits.

The published original config.json of gpt-oss-20b (a verbatim copy of the Hub file, field for field) is a constant
below; the HF-layout side is checked against transformers in test_make_checkpoint.py.
"""

import json
import os
import shutil

import numpy as np
import pytest

import gptoss_np
from gptoss_np import CheckpointError, ConfigError
from gptoss_np.config import GPT_OSS_20B, get_config, scale_down
from gptoss_np.formats.config_json import config_from_original, detect_layout
from gptoss_np.formats.loader import _map_tensors, load_weights
from gptoss_np.formats.writer import original_config, write_checkpoint
from gptoss_np.formats.safetensors_io import TensorStore, save_file

TOKENS = np.array([5, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4])  # 20 tokens > window 4

# openai/gpt-oss-20b original/config.json (copy of the Hub file)
GB20_ORIGINAL_CONFIG = {
    "num_hidden_layers": 24, "num_experts": 32, "experts_per_token": 4, "vocab_size": 201088, "hidden_size": 2880,
    "intermediate_size": 2880, "swiglu_limit": 7.0, "head_dim": 64, "num_attention_heads": 64,
    "num_key_value_heads": 8, "sliding_window": 128, "initial_context_length": 4096, "rope_theta": 150000,
    "rope_scaling_factor": 32.0, "rope_ntk_alpha": 1, "rope_ntk_beta": 32,
}

TINY = scale_down(GPT_OSS_20B, n_layers=3)


@pytest.fixture(scope="module")
def download(tmp_path_factory):
    """A tiny "download": the HF layout at the root and the same weights in the original layout beneath."""
    root = tmp_path_factory.mktemp("gpt-oss-tiny")
    write_checkpoint(TINY, root, layout="hf", seed=11, progress=False)
    write_checkpoint(TINY, root / "original", layout="original", seed=11, progress=False)
    return root


@pytest.fixture
def original_copy(download, tmp_path):
    return shutil.copytree(download / "original", tmp_path / "original")


def load(path):
    return gptoss_np.load_model(path, progress=False)


def rewrite(directory, edit):
    """Read every tensor of a single-file checkpoint, edit the dict, write it back."""
    store = TensorStore(directory)
    tensors = {k: np.array(store.get(k)) for k in store.keys()}
    del store
    edit(tensors)
    save_file(os.path.join(directory, "model.safetensors"), tensors)


def expect(fn, *fragments, exc=CheckpointError):
    with pytest.raises(exc) as info:
        fn()
    for frag in fragments:
        assert str(frag) in str(info.value), f"{frag!r} not in: {info.value}"
    return str(info.value)


# ---- config -------------------------------------------------------------------------------------------------

def test_published_original_config_is_the_20b_preset():
    cfg = config_from_original(GB20_ORIGINAL_CONFIG)
    assert cfg == GPT_OSS_20B  # context = 4096 * 32, even layers slide, eps 1e-5, YaRN without truncation
    assert cfg.context_length == 131072 and cfg.layer_windows[:3] == (128, None, 128)
    assert detect_layout(GB20_ORIGINAL_CONFIG) == "original"
    written = original_config(GPT_OSS_20B)
    assert written == GB20_ORIGINAL_CONFIG and list(written) == list(GB20_ORIGINAL_CONFIG)
    assert json.dumps(written["rope_theta"]) == "150000" and json.dumps(written["rope_ntk_beta"]) == "32"


def test_original_config_errors_are_named():
    bad = dict(GB20_ORIGINAL_CONFIG)
    del bad["rope_ntk_beta"]
    expect(lambda: config_from_original(bad), "rope_ntk_beta", "missing")
    expect(lambda: config_from_original(dict(GB20_ORIGINAL_CONFIG, rms_norm_eps=1e-5)), "rms_norm_eps", "unknown")
    expect(lambda: config_from_original(dict(GB20_ORIGINAL_CONFIG, num_key_value_heads=7)), "n_kv_heads")
    # a Hugging Face config without model_type is neither layout
    hf = json.loads(json.dumps({"hidden_size": 2880, "num_local_experts": 32, "experts_per_token": 4}))
    expect(lambda: detect_layout(hf, "x/config.json"), "x/config.json", "model_type=None", "'gpt_oss'", "original")
    expect(lambda: detect_layout({"model_type": "llama"}), "'llama'", "'qwen3_moe'")


# ---- the two layouts of one download -----------------------------------------------------------------------

def test_root_loads_hf_and_original_beneath_loads_original_with_identical_logits(download):
    hf, orig = load(download), load(download / "original")
    assert hf.cfg == orig.cfg == TINY
    assert orig.cfg.name.endswith("/original")
    assert detect_layout(json.loads((download / "config.json").read_text())) == "gpt_oss"
    assert detect_layout(json.loads((download / "original" / "config.json").read_text())) == "original"
    a, trace = hf(TOKENS, trace=True)
    np.testing.assert_array_equal(a, orig(TOKENS))
    assert np.isfinite(a).all()
    assert TINY.layer_windows[0] < len(TOKENS) and np.unique(trace["layers.0.router.experts"]).size > TINY.top_k


def test_original_qkv_is_split_into_views(download):
    cfg, _ = load_weights(download / "original")
    store = TensorStore(download / "original")
    weights = _map_tensors(store, cfg, "original")
    fused = store.get("block.1.attn.qkv.weight")
    q, k, v = (weights[f"layers.1.attn.{p}.weight"] for p in "qkv")
    assert (q.shape, k.shape, v.shape) == ((cfg.q_dim, cfg.d_model), (cfg.kv_dim, cfg.d_model),
                                           (cfg.kv_dim, cfg.d_model))
    assert all(np.shares_memory(x, fused) for x in (q, k, v))
    np.testing.assert_array_equal(np.concatenate([q, k, v]), fused)
    bias = store.get("block.1.attn.qkv.bias")
    assert np.shares_memory(weights["layers.1.attn.k.bias"], bias)
    np.testing.assert_array_equal(weights["layers.1.attn.v.bias"], bias[cfg.q_dim + cfg.kv_dim:])


def test_float_experts_in_both_layouts(tmp_path):
    """OpenAI's loader also reads plain (unquantised) mlp1_weight / mlp2_weight; HF keeps them [E, in, out]."""
    cfg = TINY.replace(expert_quant="none")
    write_checkpoint(cfg, tmp_path / "hf", seed=2, progress=False)
    write_checkpoint(cfg, tmp_path / "orig", layout="original", seed=2, progress=False)
    assert "block.0.mlp.mlp1_weight" in TensorStore(tmp_path / "orig")
    hf, orig = load(tmp_path / "hf"), load(tmp_path / "orig")
    assert hf.cfg == orig.cfg == cfg
    assert sorted(hf.params) == sorted(orig.params)
    for name in hf.params:  # the same values under the canonical names; the experts are views of other strides
        np.testing.assert_array_equal(np.asarray(hf.params[name]), np.asarray(orig.params[name]), err_msg=name)
    # BLAS sums a transposed view in another order, so the logits agree to float32 rounding, not bit for bit
    np.testing.assert_allclose(hf(TOKENS), orig(TOKENS), rtol=1e-5, atol=1e-5)


# ---- dtypes.json ----------------------------------------------------------------------------------------------

def test_dtypes_json_is_optional(original_copy, download):
    """OpenAI's own loader never reads dtypes.json (the safetensors headers carry the dtypes), so we don't need it."""
    table = json.loads((original_copy / "dtypes.json").read_text())
    assert table["block.0.mlp.mlp1_weight.blocks"] == "FP4" and table["block.0.mlp.mlp1_weight.scales"] == "UE8"
    assert table["embedding.weight"] == "BF16" and len(table) == 3 + 15 * TINY.n_layers
    os.remove(original_copy / "dtypes.json")
    np.testing.assert_array_equal(load(original_copy)(TOKENS), load(download)(TOKENS))


def test_dtypes_json_that_disagrees_is_named(original_copy):
    path = original_copy / "dtypes.json"
    table = json.loads(path.read_text())
    path.write_text(json.dumps(dict(table, **{"block.2.attn.sinks": "FP4"})))
    expect(lambda: load(original_copy), "dtypes.json", "block.2.attn.sinks", "FP4", "BF16")
    path.write_text(json.dumps(dict(table, **{"block.9.attn.sinks": "BF16"})))
    expect(lambda: load(original_copy), "dtypes.json", "block.9.attn.sinks")


# ---- damaged original checkpoints ------------------------------------------------------------------------------

def test_scales_that_do_not_match_blocks_are_named(original_copy):
    name = "block.1.mlp.mlp1_weight.scales"  # [E, 2F, D/32] = (8, 64, 2)

    def cut(t):
        t[name] = np.ascontiguousarray(t[name][:, :, :1])

    rewrite(original_copy, cut)
    expect(lambda: load(original_copy), name, "layers.1.mlp.experts.up.scales", "(8, 64, 1)", "(8, 64, 2)",
           str(original_copy))


def test_fused_qkv_of_the_wrong_height_is_named(original_copy):
    name = "block.0.attn.qkv.weight"

    def cut(t):
        t[name] = np.ascontiguousarray(t[name][:-1])

    rewrite(original_copy, cut)
    expect(lambda: load(original_copy), name, "(255, 64)", "(256, 64)", "q | k | v")


def test_missing_original_tensor_is_named(original_copy):
    rewrite(original_copy, lambda t: t.pop("block.2.attn.sinks"))
    os.remove(original_copy / "dtypes.json")
    expect(lambda: load(original_copy), "block.2.attn.sinks", "layers.2.attn.sinks")


# ---- wrong layout guesses ---------------------------------------------------------------------------------------

def test_original_config_over_hf_tensors_is_named(download, tmp_path):
    d = shutil.copytree(download, tmp_path / "mixed", ignore=shutil.ignore_patterns("original"))
    shutil.copy(download / "original" / "config.json", d / "config.json")
    expect(lambda: load(d), "embedding.weight", "Hugging Face layout", "original format")


def test_hf_config_over_original_tensors_is_named(download, tmp_path):
    d = shutil.copytree(download / "original", tmp_path / "mixed")
    shutil.copy(download / "config.json", d / "config.json")
    expect(lambda: load(d), "model.embed_tokens.weight", "original layout")


def test_download_root_without_root_config_points_at_original(download, tmp_path):
    d = tmp_path / "partial"
    shutil.copytree(download / "original", d / "original")
    expect(lambda: load(d), "no config.json", os.path.join(str(d), "original"))


def test_index_naming_a_missing_shard_is_named(tmp_path):
    write_checkpoint(TINY, tmp_path, seed=1, progress=False, max_shard_bytes=40_000)
    shards = sorted(n for n in os.listdir(tmp_path) if n.endswith(".safetensors"))
    n = len(shards)
    assert n > 2 and shards == [f"model-{k:05d}-of-{n - 1:05d}.safetensors" for k in range(n)]
    assert np.isfinite(load(tmp_path)(TOKENS)).all()
    os.remove(tmp_path / shards[1])
    expect(lambda: load(tmp_path), shards[1], "model.safetensors.index.json", "does not exist")


def test_writer_refuses_what_the_original_format_cannot_say():
    with pytest.raises(ConfigError, match="norm_eps"):
        original_config(TINY.replace(norm_eps=1e-6))
    with pytest.raises(ConfigError, match="context_length"):
        original_config(TINY.replace(context_length=4096))
    with pytest.raises(ConfigError, match="original"):
        original_config(get_config("gpt2-xl"))


def test_same_shaped_tensors_sit_under_their_published_original_names(download):
    """The writer and the loader share one name table, so a swap of two same-shaped names in it (the attention and
    MLP norm scales, the embedding and the unembedding) would round-trip unnoticed. Here the original files are read
    with the `safetensors` package and each such tensor is found equal to its Hugging Face twin, whose names the
    transformers comparisons pin; the pairs are written out from OpenAI's gpt_oss/torch/weights.py and model.py and
    transformers' convert_gpt_oss_weights_to_hf.py, not taken from gptoss_np."""
    from safetensors.numpy import load_file

    def tensors(directory):
        out = {}
        for name in sorted(os.listdir(directory)):
            if name.endswith(".safetensors"):
                out.update(load_file(os.path.join(directory, name)))
        return out

    hf, original = tensors(download), tensors(download / "original")
    pairs = {"model.embed_tokens.weight": "embedding.weight", "lm_head.weight": "unembedding.weight",
             "model.norm.weight": "norm.scale"}
    for i in range(TINY.n_layers):
        pairs.update({f"model.layers.{i}.input_layernorm.weight": f"block.{i}.attn.norm.scale",
                      f"model.layers.{i}.post_attention_layernorm.weight": f"block.{i}.mlp.norm.scale",
                      f"model.layers.{i}.self_attn.o_proj.bias": f"block.{i}.attn.out.bias",
                      f"model.layers.{i}.self_attn.sinks": f"block.{i}.attn.sinks",
                      f"model.layers.{i}.mlp.router.bias": f"block.{i}.mlp.gate.bias"})
    for hf_name, original_name in pairs.items():
        a, b = hf[hf_name], original[original_name]
        assert a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b), (hf_name, original_name)
    norms = [pairs[f"model.layers.0.{n}.weight"] for n in ("input_layernorm", "post_attention_layernorm")]
    assert not np.array_equal(original[norms[0]], original[norms[1]])  # distinct values: a swap would show
