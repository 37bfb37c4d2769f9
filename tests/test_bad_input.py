"""Bad checkpoints, bad configs and bad call arguments: every failure must be a GptOssError subclass whose message
names the file / tensor / argument and says what was expected -- never a bare numpy / KeyError / IndexError.

The checkpoints are tiny random Hugging Face models written by transformers' save_pretrained (one per layout,
built once per session); each test corrupts a private copy.
"""

import itertools
import os
import pickle
import sys

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(__file__))  # the shared helper module next to this file

import gptoss_np  # noqa: E402
from checkpoints import (  # noqa: E402
    INDEX, LAYOUTS, SINGLE, VOCAB, build_tiny, clone, edit_config, edit_tensors, quantize_experts, read_config,
    read_tensors, round_experts_to_mxfp4, shard, write_tensors,
)
from gptoss_np import CheckpointError, ConfigError, GptOssError, InputError  # noqa: E402

TOKENS = np.arange(8)


# ---- fixtures ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """layout -> directory of a good tiny checkpoint (never modified: tests corrupt clones)."""
    root = tmp_path_factory.mktemp("tiny")
    return {layout: build_tiny(layout, root / layout) for layout in LAYOUTS}


@pytest.fixture(scope="session")
def models(tiny):
    """layout -> Model loaded from the good tiny checkpoint."""
    return {layout: gptoss_np.load_model(d, progress=False) for layout, d in tiny.items()}


@pytest.fixture
def copy_of(tiny, tmp_path):
    """copy_of(layout or directory) -> a fresh private copy of that checkpoint for this test to corrupt."""
    counter = itertools.count()

    def make(src):
        src = tiny.get(src, src)
        return clone(src, tmp_path / f"ckpt{next(counter)}")

    return make


@pytest.fixture(scope="session")
def oss_mxfp4(tiny, tmp_path_factory):
    """The gpt-oss checkpoint three ways: 'rounded' (float experts replaced by their MXFP4 values), 'mxfp4'
    (experts as _blocks/_scales of the same values, with quantization_config) and 'mxfp4_noqc' (same tensors,
    config.json without quantization_config)."""
    root = tmp_path_factory.mktemp("mxfp4")
    src = tiny["gpt_oss"]
    out = {}
    rounded = read_tensors(src)
    round_experts_to_mxfp4(rounded)
    out["rounded"] = clone(src, root / "rounded")
    write_tensors(out["rounded"], rounded)
    packed = read_tensors(src)  # encode the originals: decode(encode(w)) is exactly what 'rounded' holds
    quantize_experts(packed)
    out["mxfp4_noqc"] = clone(src, root / "mxfp4_noqc")
    write_tensors(out["mxfp4_noqc"], packed)
    assert "quantization_config" not in read_config(out["mxfp4_noqc"])
    out["mxfp4"] = clone(out["mxfp4_noqc"], root / "mxfp4")
    edit_config(out["mxfp4"], quantization_config={"quant_method": "mxfp4"})
    return out


def load(path):
    return gptoss_np.load_model(path, progress=False)


def expect(exc_type, fn, *fragments):
    """fn() must raise exc_type (a GptOssError) whose message contains every fragment; returns the message."""
    assert issubclass(exc_type, GptOssError)
    with pytest.raises(exc_type) as info:
        fn()
    msg = str(info.value)
    for frag in fragments:
        assert str(frag) in msg, f"{frag!r} not in error message: {msg}"
    return msg


def load_and_run(path):
    return load(path)(TOKENS)


# ---- sanity: the good checkpoints ----------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
def test_good_checkpoint_loads_and_runs(models, layout):
    logits = models[layout](TOKENS)
    assert logits.shape == (8, VOCAB)
    assert np.isfinite(logits).all()


def test_error_classes():
    for cls in (CheckpointError, ConfigError, InputError):
        assert issubclass(cls, GptOssError) and issubclass(cls, ValueError)


# ---- missing / extra tensors -------------------------------------------------------------------------------

@pytest.mark.parametrize("layout, name", [
    ("gpt2", "transformer.h.1.mlp.c_fc.weight"),
    ("gpt2", "transformer.h.0.attn.c_attn.weight"),  # fused q|k|v: read through a different path
    ("gpt2", "transformer.ln_f.bias"),
    ("gpt_oss", "model.layers.1.self_attn.sinks"),
    ("gpt_oss", "model.layers.0.mlp.experts.gate_up_proj"),
    ("gpt_oss", "model.layers.0.mlp.experts.down_proj_bias"),
    ("gpt_oss", "lm_head.weight"),
    ("qwen3_moe", "model.layers.1.mlp.experts.3.up_proj.weight"),  # one expert of a per-expert stack
    ("qwen3_moe", "model.layers.0.self_attn.q_norm.weight"),
    ("qwen3_moe", "model.norm.weight"),
])
def test_missing_tensor_is_named(copy_of, layout, name):
    d = copy_of(layout)
    edit_tensors(d, lambda t: t.pop(name))
    msg = expect(CheckpointError, lambda: load(d), name)
    assert d in msg


def test_missing_gpt2_embedding_is_named(copy_of):
    d = copy_of("gpt2")
    edit_tensors(d, lambda t: t.pop("transformer.wte.weight"))
    expect(CheckpointError, lambda: load(d), "wte.weight", d)


@pytest.mark.parametrize("layout, name, shape", [
    ("gpt2", "transformer.h.5.ln_1.weight", (64,)),
    ("gpt_oss", "model.layers.0.self_attn.extra_proj.weight", (4, 64)),
    ("qwen3_moe", "model.layers.0.mlp.experts.4.up_proj.weight", (32, 64)),  # a 5th expert for a 4-expert config
])
def test_unexpected_tensor_is_named(copy_of, layout, name, shape):
    d = copy_of(layout)

    def add(t):
        t[name] = np.zeros(shape, np.float32)

    edit_tensors(d, add)
    expect(CheckpointError, lambda: load(d), name, "disagree", d)


# ---- wrong shapes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("layout, name, cut, canonical, got, want", [
    ("gpt_oss", "model.layers.0.self_attn.q_proj.weight", lambda a: a[:-1], "layers.0.attn.q.weight",
     (63, 64), (64, 64)),
    ("gpt_oss", "model.layers.1.self_attn.k_proj.bias", lambda a: a[:-1], "layers.1.attn.k.bias", (31,), (32,)),
    ("gpt_oss", "model.layers.0.mlp.experts.gate_up_proj", lambda a: a[:, :, :-2], "layers.0.mlp.experts.up.weight",
     (4, 62, 64), (4, 64, 64)),
    ("gpt_oss", "model.layers.1.mlp.router.weight", lambda a: a[:3], "layers.1.mlp.router.weight", (3, 64), (4, 64)),
    ("gpt2", "transformer.h.0.mlp.c_fc.weight", lambda a: a[:, :-1], "layers.0.mlp.up.weight", (255, 64), (256, 64)),
    ("gpt2", "transformer.wpe.weight", lambda a: a[:-1], "pos_embed.weight", (31, 64), (32, 64)),
    ("qwen3_moe", "model.layers.0.self_attn.q_proj.weight", lambda a: a[:-1], "layers.0.attn.q.weight",
     (63, 64), (64, 64)),
    ("qwen3_moe", "model.layers.1.self_attn.k_norm.weight", lambda a: a[:-1], "layers.1.attn.k_norm.weight",
     (15,), (16,)),
    ("qwen3_moe", "lm_head.weight", lambda a: a[:-1], "unembed.weight", (99, 64), (100, 64)),
])
def test_wrong_shape_names_tensor_and_both_shapes(copy_of, layout, name, cut, canonical, got, want):
    d = copy_of(layout)

    def edit(t):
        t[name] = np.ascontiguousarray(cut(t[name]))

    edit_tensors(d, edit)
    msg = expect(CheckpointError, lambda: load(d), str(got), str(want))
    assert canonical in msg or name in msg, msg


def test_qwen_expert_with_wrong_input_width_is_named(copy_of):
    d = copy_of("qwen3_moe")
    name = "model.layers.0.mlp.experts.2.down_proj.weight"  # [D, F] = (64, 32)

    def edit(t):
        t[name] = np.ascontiguousarray(t[name][:, :-1])

    edit_tensors(d, edit)
    expect(CheckpointError, lambda: load(d), name, "(64, 31)", "32")


@pytest.mark.parametrize("name", ["model.layers.0.mlp.experts.1.gate_proj.weight",
                                  "model.layers.0.mlp.experts.1.down_proj.weight"])
def test_qwen_expert_with_wrong_row_count_is_named(copy_of, name):
    d = copy_of("qwen3_moe")

    def edit(t):
        t[name] = np.ascontiguousarray(t[name][:-1])

    edit_tensors(d, edit)
    expect(CheckpointError, lambda: load_and_run(d), name)


# ---- wrong dtypes ------------------------------------------------------------------------------------------



@pytest.mark.parametrize("layout, name, canonical", [
    ("gpt_oss", "model.layers.0.self_attn.q_proj.weight", "layers.0.attn.q.weight"),
    ("gpt2", "transformer.h.1.attn.c_attn.weight", "layers.1.attn.q.weight"),
    ("gpt_oss", "model.layers.1.mlp.experts.down_proj", "layers.1.mlp.experts.down.weight"),
    ("qwen3_moe", "model.layers.0.mlp.experts.0.gate_proj.weight", "layers.0.mlp.experts.up.weight"),
    ("qwen3_moe", "model.layers.0.mlp.experts.1.up_proj.weight", "layers.0.mlp.experts.up.weight"),
])
def test_int32_where_float_weight_expected(copy_of, layout, name, canonical):
    d = copy_of(layout)

    def edit(t):
        t[name] = np.ones(t[name].shape, np.int32)

    edit_tensors(d, edit)
    msg = expect(CheckpointError, lambda: load_and_run(d), "int32")
    assert canonical in msg or name in msg, msg


def test_int32_embedding_rejected(copy_of):
    d = copy_of("gpt_oss")

    def edit(t):
        t["model.embed_tokens.weight"] = np.ones((VOCAB, 64), np.int32)

    edit_tensors(d, edit)
    expect(CheckpointError, lambda: load(d), "embedding", "I32", "F32", d)


@pytest.mark.parametrize("suffix, canonical", [("gate_up_proj_blocks", "layers.0.mlp.experts.up.blocks"),
                                               ("down_proj_scales", "layers.0.mlp.experts.down.scales")])
def test_mxfp4_tensor_stored_as_float(copy_of, oss_mxfp4, suffix, canonical):
    d = copy_of(oss_mxfp4["mxfp4"])
    name = f"model.layers.0.mlp.experts.{suffix}"

    def edit(t):
        t[name] = t[name].astype(np.float32)

    edit_tensors(d, edit)
    expect(CheckpointError, lambda: load(d), canonical, "float32", "uint8")


def test_mxfp4_blocks_wrong_shape(copy_of, oss_mxfp4):
    d = copy_of(oss_mxfp4["mxfp4"])
    name = "model.layers.1.mlp.experts.gate_up_proj_blocks"  # [E, 2F, D/32, 16] = (4, 64, 2, 16)

    def edit(t):
        t[name] = np.ascontiguousarray(t[name][:, :, :1])

    edit_tensors(d, edit)
    expect(CheckpointError, lambda: load(d), "layers.1.mlp.experts.up.blocks", "(4, 64, 1, 16)", "(4, 64, 2, 16)")


# ---- damaged files -----------------------------------------------------------------------------------------

def test_truncated_safetensors(copy_of):
    d = copy_of("gpt_oss")
    path = os.path.join(d, SINGLE)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 100)
    expect(CheckpointError, lambda: load(d), "truncated", path)


def test_safetensors_cut_inside_header(copy_of):
    d = copy_of("gpt2")
    path = os.path.join(d, SINGLE)
    with open(path, "r+b") as f:
        f.truncate(40)
    expect(CheckpointError, lambda: load(d), "truncated", path)


def test_sharded_checkpoint_loads_like_single_file(copy_of, models):
    d = copy_of("gpt_oss")
    shard(d)
    assert not os.path.exists(os.path.join(d, SINGLE))
    np.testing.assert_array_equal(load_and_run(d), models["gpt_oss"](TOKENS))


def test_sharded_index_names_missing_shard(copy_of):
    d = copy_of("qwen3_moe")
    names = shard(d)
    os.remove(os.path.join(d, names[1]))
    expect(CheckpointError, lambda: load(d), names[1], INDEX, "does not exist")


def test_sharded_index_invalid_json(copy_of):
    d = copy_of("qwen3_moe")
    shard(d)
    with open(os.path.join(d, INDEX), "w") as f:
        f.write('{"weight_map": ')
    expect(CheckpointError, lambda: load(d), os.path.join(d, INDEX))


# ---- config.json -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_type", ["llama", None])
def test_unknown_layout_lists_expected(copy_of, model_type):
    d = copy_of("gpt_oss")
    if model_type is None:
        edit_config(d, drop=["model_type"])
    else:
        edit_config(d, model_type=model_type)
    expect(CheckpointError, lambda: load(d), os.path.join(d, "config.json"), repr(model_type), "'gpt2'",
           "'gpt_oss'", "'qwen3_moe'")


@pytest.mark.parametrize("layout, field", [("gpt2", "n_layer"), ("qwen3_moe", "num_hidden_layers")])
def test_config_says_more_layers_than_weights(copy_of, layout, field):
    d = copy_of(layout)
    edit_config(d, **{field: 3})
    layer2 = "transformer.h.2." if layout == "gpt2" else "model.layers.2."
    expect(CheckpointError, lambda: load(d), "missing tensor", layer2, "layers.2.")


def test_gpt_oss_config_says_more_layers_than_weights(copy_of):
    d = copy_of("gpt_oss")
    edit_config(d, num_hidden_layers=3, layer_types=read_config(d)["layer_types"] + ["sliding_attention"])
    expect(CheckpointError, lambda: load(d), "missing tensor", "model.layers.2.", "layers.2.")


def test_gpt_oss_num_layers_disagrees_with_layer_types(copy_of):
    d = copy_of("gpt_oss")
    edit_config(d, num_hidden_layers=3)
    expect(GptOssError, lambda: load(d), "config.json", "layer_types", "num_hidden_layers")


@pytest.mark.parametrize("layout, field", [("gpt2", "n_embd"), ("gpt_oss", "hidden_size"),
                                           ("qwen3_moe", "hidden_size")])
def test_config_hidden_size_disagrees_with_weights(copy_of, layout, field):
    d = copy_of(layout)
    edit_config(d, **{field: 128})
    expect(CheckpointError, lambda: load(d), "embed.weight", "(100, 64)", "(100, 128)", d)


def test_config_json_absent(copy_of):
    d = copy_of("gpt2")
    os.remove(os.path.join(d, "config.json"))
    expect(CheckpointError, lambda: load(d), d, "config.json")


@pytest.mark.parametrize("text", ["{not json", "", '{"model_type": "gpt2",}'])
def test_config_json_invalid(copy_of, text):
    d = copy_of("gpt2")
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write(text)
    expect(CheckpointError, lambda: load(d), os.path.join(d, "config.json"), "not valid JSON")


def test_config_json_not_utf8(copy_of):
    d = copy_of("gpt2")
    with open(os.path.join(d, "config.json"), "wb") as f:
        f.write(b'\xff\xfe{"model_type": "gpt2"}')
    expect(CheckpointError, lambda: load(d), os.path.join(d, "config.json"))


def test_config_json_not_an_object(copy_of):
    d = copy_of("gpt2")
    with open(os.path.join(d, "config.json"), "w") as f:
        f.write("[1, 2]")
    expect(CheckpointError, lambda: load(d), os.path.join(d, "config.json"), "object")


@pytest.mark.parametrize("layout, field", [("gpt2", "n_positions"), ("gpt_oss", "vocab_size"),
                                           ("qwen3_moe", "num_experts_per_tok")])
def test_config_json_missing_required_field(copy_of, layout, field):
    d = copy_of(layout)
    edit_config(d, drop=[field])
    expect(CheckpointError, lambda: load(d), "config.json", field)


def test_path_not_a_directory(tiny, tmp_path):
    f = os.path.join(tiny["gpt2"], SINGLE)
    expect(CheckpointError, lambda: load(f), f, "not a directory")
    missing = str(tmp_path / "no-such-checkpoint")
    expect(CheckpointError, lambda: load(missing), missing, "directory")


# ---- pickle refused ----------------------------------------------------------------------------------------

def test_pickle_checkpoint_refused_without_unpickling(copy_of, monkeypatch):
    d = copy_of("gpt2")
    state = {k: torch.from_numpy(v) for k, v in read_tensors(d).items()}
    os.remove(os.path.join(d, SINGLE))
    torch.save(state, os.path.join(d, "pytorch_model.bin"))

    def refuse(*args, **kwargs):
        raise AssertionError("the loader tried to unpickle a checkpoint")

    for mod, attr in ((pickle, "load"), (pickle, "loads"), (torch, "load"), (np, "load")):
        monkeypatch.setattr(mod, attr, refuse)
    expect(CheckpointError, lambda: load(d), "safetensors only", "pytorch_model.bin", d)


def test_directory_without_any_weights(copy_of):
    d = copy_of("gpt2")
    os.remove(os.path.join(d, SINGLE))
    expect(CheckpointError, lambda: load(d), d, "no safetensors files", SINGLE)


# ---- MXFP4 -------------------------------------------------------------------------------------------------

def test_mxfp4_blocks_without_quantization_config_refused(oss_mxfp4):
    d = oss_mxfp4["mxfp4_noqc"]
    msg = expect(CheckpointError, lambda: load(d), "quantization_config", "model.layers.0.mlp.experts.gate_up_proj")
    assert "mxfp4" in msg.lower()


def test_mxfp4_with_quantization_config_matches_rounded_float(oss_mxfp4, models):
    packed = load(oss_mxfp4["mxfp4"])
    assert packed.cfg.expert_quant == "mxfp4"
    logits = packed(TOKENS)
    reference = load(oss_mxfp4["rounded"])(TOKENS)
    np.testing.assert_allclose(logits, reference, rtol=0, atol=1e-4)
    # the control has teeth: rounding the experts to MXFP4 moved the logits well beyond the tolerance
    assert np.abs(reference - models["gpt_oss"](TOKENS)).max() > 1e-3


def test_float_experts_with_mxfp4_quantization_config(copy_of):
    d = copy_of("gpt_oss")
    edit_config(d, quantization_config={"quant_method": "mxfp4"})
    expect(CheckpointError, lambda: load(d), "model.layers.0.mlp.experts.gate_up_proj_blocks")


def test_mxfp4_nan_scale_raises(copy_of, oss_mxfp4):
    d = copy_of(oss_mxfp4["mxfp4"])

    def edit(t):
        t["model.layers.0.mlp.experts.gate_up_proj_scales"][:, 5, 1] = 255  # in every expert: any routing hits it

    edit_tensors(d, edit)
    expect(CheckpointError, lambda: load_and_run(d), "255", "NaN", "layers.0.mlp.experts.up")


def test_mxfp4_nan_scale_in_unrouted_expert_caught_early(copy_of, oss_mxfp4):
    tokens = np.arange(1)
    _, trace = load(oss_mxfp4["mxfp4"])(tokens, trace=True)
    unused = sorted(set(range(4)) - set(trace["layers.0.router.experts"].ravel().tolist()))
    assert unused, "top-2 of 4 experts for one token leaves two unused"
    d = copy_of(oss_mxfp4["mxfp4"])

    def edit(t):
        t["model.layers.0.mlp.experts.down_proj_scales"][unused[0], 0, 0] = 255

    edit_tensors(d, edit)
    expect(CheckpointError, lambda: load(d)(tokens), "255", "NaN")


# ---- call arguments: tokens --------------------------------------------------------------------------------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("bad", [VOCAB, -1, 10 ** 6])
def test_token_id_out_of_range(models, layout, bad):
    tokens = np.array([1, 2, 3, bad])
    expect(InputError, lambda: models[layout](tokens), "tokens[3]", str(bad), "vocab_size", str(VOCAB))


@pytest.mark.parametrize("tokens, fragments", [
    (np.arange(8.0), ("tokens", "integer", "float64")),
    ([1.5, 2.0], ("tokens", "integer")),
    (np.arange(8).reshape(2, 4), ("tokens", "1-D", "(2, 4)")),
    (np.array([], dtype=np.int64), ("tokens", "non-empty", "(0,)")),
    ([], ("tokens", "non-empty")),
    (np.int64(3), ("tokens", "1-D", "()")),
    (np.array([True, False]), ("tokens", "integer", "bool")),
    (["a", "b"], ("tokens", "integer")),
])
def test_tokens_wrong_kind(models, tokens, fragments):
    expect(InputError, lambda: models["gpt2"](tokens), *fragments)


def test_prompt_longer_than_context(models):
    m = models["gpt2"]
    assert m.cfg.context_length == 32
    assert m(np.arange(32) % VOCAB).shape == (32, VOCAB)
    expect(InputError, lambda: m(np.arange(33) % VOCAB), "tokens", "33", "context_length=32")


def test_kv_cache_past_context(models):
    m = models["gpt2"]
    cache = m.new_cache()
    m(np.arange(30), cache=cache)
    expect(InputError, lambda: m(np.arange(3), cache=cache), "30 cached", "3 new", "context_length=32")
    assert cache.length == 30, "a refused call must not advance the cache"
    assert m(np.arange(2), cache=cache).shape == (2, VOCAB)
    assert cache.length == 32
    expect(InputError, lambda: m(np.arange(1), cache=cache), "32 cached", "context_length=32")


# ---- configs -----------------------------------------------------------------------------------------------

def test_config_kv_heads_not_dividing_heads():
    expect(ConfigError, lambda: gptoss_np.ModelConfig(n_kv_heads=7), "n_kv_heads=7", "n_heads=25")
    expect(ConfigError, lambda: gptoss_np.get_config("gpt-oss-20b").replace(n_kv_heads=7), "n_kv_heads=7",
           "divisor of n_heads=64")


@pytest.mark.parametrize("changes, field", [
    (dict(vocab_size=0), "vocab_size"), (dict(n_heads=-4), "n_heads"), (dict(norm="batchnorm"), "norm"),
    (dict(dropout=1.0), "dropout"), (dict(top_k=33), "top_k"), (dict(layer_windows=(128,)), "layer_windows"),
])
def test_config_field_errors_name_the_field(changes, field):
    expect(ConfigError, lambda: gptoss_np.get_config("gpt-oss-20b").replace(**changes), f"{field}=", "expected")


def test_unknown_config_name_lists_known():
    expect(ConfigError, lambda: gptoss_np.get_config("llama-7b"), "'llama-7b'", "gpt2-xl", "gpt-oss-20b",
           "gpt-oss-120b", "qwen3-30b-a3b")


def test_config_from_dict_unknown_field():
    d = gptoss_np.get_config("gpt2-xl").to_dict()
    d["n_embd"] = 1600
    expect(ConfigError, lambda: gptoss_np.ModelConfig.from_dict(d), "n_embd")
