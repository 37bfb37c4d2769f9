"""config.json as one validated schema: every bad value of every layout's config.json ends in a ConfigError naming
the file and the field and what was expected, in both gptoss_np.load_model and gptoss_torch.load_model; a missing
field takes the value transformers takes (read from transformers itself here), or is an error.

Each case edits config.json of a private copy of a tiny checkpoint: the Hugging Face ones are written by
transformers' save_pretrained (tests/checkpoints.py), the original and canonical ones by our writer.
"""

import json
import os
import sys
import time
import tracemalloc

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

sys.path.insert(0, os.path.dirname(__file__))

import transformers as tf  # noqa: E402
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS  # noqa: E402

import gptoss_np  # noqa: E402
import gptoss_torch  # noqa: E402
from checkpoints import LAYOUTS, build_tiny, clone, edit_tensors  # noqa: E402
from gptoss_np import CheckpointError, ConfigError  # noqa: E402
from gptoss_np.formats.config_json import (  # noqa: E402
    HF_FIELDS, REQUIRED, ROPE_DEFAULTS, ROPE_THETA, config_from_hf,
)
from gptoss_np.formats.writer import write_checkpoint  # noqa: E402
from gptoss_np.rope import rope_frequencies  # noqa: E402

DROP = object()  # a mutation that deletes the field
OSS_TINY = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), n_layers=2, d_model=64, vocab_size=64)
CANONICAL_TINY = gptoss_np.scale_down(gptoss_np.get_config("05-gqa"), n_layers=2, d_model=32, vocab_size=64)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """layout -> directory of a good tiny checkpoint (tests edit copies)."""
    root = tmp_path_factory.mktemp("tiny_cfg")
    out = {layout: build_tiny(layout, root / layout) for layout in LAYOUTS}
    out["original"] = write_checkpoint(OSS_TINY, root / "original", layout="original", progress=False)
    out["canonical"] = write_checkpoint(CANONICAL_TINY, root / "canonical", layout="canonical", progress=False)
    return {k: str(v) for k, v in out.items()}


def edited(tiny, tmp_path, layout, changes):
    """A copy of the tiny `layout` checkpoint whose config.json has `changes` ({dotted key: value or DROP})."""
    d = clone(tiny[layout], tmp_path / "ckpt")
    path = os.path.join(d, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    for key, value in changes.items():
        *parents, last = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        if value is DROP:
            node.pop(last, None)
        else:
            node[last] = value
    with open(path, "w") as f:
        json.dump(cfg, f)  # NaN and Infinity are written as JSON's common extension, which json.load reads
    return d


LOADERS = {"numpy": lambda d: gptoss_np.load_model(d, progress=False),
           "torch": lambda d: gptoss_torch.load_model(d, device="cpu", progress=False)}

NAN, INF = float("nan"), float("inf")
ROPE = "rope_parameters"
CASES = [
    # (layout, changes, the field the message must name)
    ("gpt2", {"n_embd": 0}, "n_embd"),
    ("gpt2", {"n_embd": -64}, "n_embd"),
    ("gpt2", {"n_embd": "64"}, "n_embd"),
    ("gpt2", {"n_embd": 64.0}, "n_embd"),
    ("gpt2", {"n_embd": True}, "n_embd"),
    ("gpt2", {"n_embd": 2**40}, "n_embd"),
    ("gpt2", {"n_head": 0}, "n_head"),
    ("gpt2", {"n_head": 5}, "n_head"),  # 64 is no multiple of 5
    ("gpt2", {"n_layer": 100_000_000}, "n_layer"),
    ("gpt2", {"n_layer": [2]}, "n_layer"),
    ("gpt2", {"vocab_size": 2**31 - 1, "n_embd": 2**16, "n_head": 2**10}, "vocab_size"),  # 1.4e14 parameters
    ("gpt2", {"n_positions": None}, "n_positions"),
    ("gpt2", {"n_positions": DROP}, "n_positions"),
    ("gpt2", {"n_inner": 0}, "n_inner"),
    ("gpt2", {"layer_norm_epsilon": NAN}, "layer_norm_epsilon"),
    ("gpt2", {"layer_norm_epsilon": -1e-5}, "layer_norm_epsilon"),
    ("gpt2", {"layer_norm_epsilon": "1e-5"}, "layer_norm_epsilon"),
    ("gpt2", {"activation_function": "relu"}, "activation_function"),
    ("gpt2", {"activation_function": ["gelu_new"]}, "activation_function"),
    ("gpt2", {"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ("gpt2", {"scale_attn_weights": False}, "scale_attn_weights"),
    ("gpt2", {"add_cross_attention": True}, "add_cross_attention"),
    ("gpt2", {"tie_word_embeddings": False}, "tie_word_embeddings"),
    ("gpt2", {"reorder_and_upcast_attn": "yes"}, "reorder_and_upcast_attn"),
    ("gpt2", {"attn_pdrop": 0.2}, "attn_pdrop"),
    ("gpt2", {"resid_pdrop": 1.0, "embd_pdrop": 1.0, "attn_pdrop": 1.0}, "resid_pdrop"),
    ("gpt2", {"quantization_config": {"quant_method": "bitsandbytes"}}, "quantization_config"),
    ("gpt_oss", {"num_hidden_layers": 100_000_000}, "num_hidden_layers"),
    ("gpt_oss", {"hidden_size": None}, "hidden_size"),
    ("gpt_oss", {"vocab_size": DROP}, "vocab_size"),
    ("gpt_oss", {"num_key_value_heads": 3}, "num_key_value_heads"),
    ("gpt_oss", {"head_dim": 15}, "head_dim"),
    ("gpt_oss", {"head_dim": "16"}, "head_dim"),
    ("gpt_oss", {"head_dim": None}, "head_dim"),  # transformers' GptOssConfig refuses null too
    ("gpt_oss", {"intermediate_size": -32}, "intermediate_size"),
    ("gpt_oss", {"max_position_embeddings": 0}, "max_position_embeddings"),
    ("gpt_oss", {"num_local_experts": 0}, "num_local_experts"),
    ("gpt_oss", {"num_experts": 8}, "num_experts"),  # disagrees with num_local_experts=4
    ("gpt_oss", {"num_experts_per_tok": 5}, "num_experts_per_tok"),
    ("gpt_oss", {"num_experts_per_tok": 1.5}, "num_experts_per_tok"),
    ("gpt_oss", {"experts_per_token": 3}, "experts_per_token"),  # disagrees with num_experts_per_tok=2
    ("gpt_oss", {"rms_norm_eps": INF}, "rms_norm_eps"),
    ("gpt_oss", {"rms_norm_eps": 0}, "rms_norm_eps"),
    ("gpt_oss", {"swiglu_limit": INF}, "swiglu_limit"),
    ("gpt_oss", {"swiglu_limit": -7.0}, "swiglu_limit"),
    ("gpt_oss", {"swiglu_limit": "7"}, "swiglu_limit"),
    ("gpt_oss", {"swiglu_alpha": NAN}, "swiglu_alpha"),
    ("gpt_oss", {"attention_bias": 1}, "attention_bias"),
    ("gpt_oss", {"tie_word_embeddings": "false"}, "tie_word_embeddings"),
    ("gpt_oss", {"sliding_window": 0}, "sliding_window"),
    ("gpt_oss", {"sliding_window": None}, "sliding_window"),
    ("gpt_oss", {"sliding_window": True}, "sliding_window"),
    ("gpt_oss", {"sliding_window": 4.5}, "sliding_window"),
    ("gpt_oss", {"layer_types": ["sliding_attn", "full_attention"]}, "layer_types[0]"),
    ("gpt_oss", {"layer_types": ["sliding_attention", ["full_attention"]]}, "layer_types[1]"),
    ("gpt_oss", {"layer_types": "sliding_attention"}, "layer_types"),
    ("gpt_oss", {"layer_types": ["sliding_attention"]}, "layer_types"),
    ("gpt_oss", {f"{ROPE}.rope_theta": -1.0}, f"{ROPE}.rope_theta"),
    ("gpt_oss", {f"{ROPE}.rope_theta": NAN}, f"{ROPE}.rope_theta"),
    ("gpt_oss", {f"{ROPE}.rope_theta": False}, f"{ROPE}.rope_theta"),
    ("gpt_oss", {f"{ROPE}.rope_type": "linear"}, f"{ROPE}.rope_type"),
    ("gpt_oss", {f"{ROPE}.factor": 0.5}, f"{ROPE}.factor"),
    ("gpt_oss", {f"{ROPE}.factor": "32"}, f"{ROPE}.factor"),
    ("gpt_oss", {f"{ROPE}.factor": DROP}, f"{ROPE}.factor"),
    ("gpt_oss", {f"{ROPE}.beta_slow": 0}, f"{ROPE}.beta_slow"),
    ("gpt_oss", {f"{ROPE}.beta_fast": 0.5}, f"{ROPE}.beta_fast"),  # below beta_slow = 1: an inverted ramp
    ("gpt_oss", {f"{ROPE}.beta_fast": 1e308}, f"{ROPE}.beta_fast"),  # log(0) in the ramp's ends
    ("gpt_oss", {f"{ROPE}.truncate": "no"}, f"{ROPE}.truncate"),
    ("gpt_oss", {f"{ROPE}.original_max_position_embeddings": 0}, f"{ROPE}.original_max_position_embeddings"),
    ("gpt_oss", {f"{ROPE}.mscale": 1.0}, f"{ROPE}.mscale"),
    ("gpt_oss", {ROPE: [32.0]}, ROPE),
    ("gpt_oss", {"rope_scaling": {"rope_type": "default"}}, "rope_scaling"),  # disagrees with rope_parameters
    ("gpt_oss", {"quantization_config": {"quant_method": "fp8"}}, "quantization_config"),
    ("gpt_oss", {"model_type": ["gpt_oss"]}, "model_type"),
    ("qwen3_moe", {"norm_topk_prob": DROP}, "norm_topk_prob"),  # transformers' default is false: not implemented
    ("qwen3_moe", {"norm_topk_prob": False}, "norm_topk_prob"),
    ("qwen3_moe", {"hidden_act": "gelu"}, "hidden_act"),
    ("qwen3_moe", {"use_sliding_window": True}, "use_sliding_window"),
    ("qwen3_moe", {"decoder_sparse_step": 2}, "decoder_sparse_step"),
    ("qwen3_moe", {"mlp_only_layers": [0]}, "mlp_only_layers"),
    ("qwen3_moe", {"moe_intermediate_size": 0}, "moe_intermediate_size"),
    ("qwen3_moe", {"num_experts_per_tok": 0}, "num_experts_per_tok"),
    ("qwen3_moe", {"head_dim": None}, "head_dim"),
    ("qwen3_moe", {"rms_norm_eps": 1e308 * 10}, "rms_norm_eps"),
    ("qwen3_moe", {f"{ROPE}.rope_theta": 0.5}, f"{ROPE}.rope_theta"),
    ("qwen3_moe", {"num_hidden_layers": 10**7, "num_local_experts": 1000, "num_experts_per_tok": 2},
     "num_hidden_layers"),
    ("original", {"num_hidden_layers": 0}, "num_hidden_layers"),
    ("original", {"sliding_window": 0}, "sliding_window"),
    ("original", {"sliding_window": None}, "sliding_window"),
    ("original", {"rope_theta": "150000"}, "rope_theta"),
    ("original", {"rope_scaling_factor": 0.1}, "rope_scaling_factor"),
    ("original", {"rope_scaling_factor": "32"}, "rope_scaling_factor"),
    ("original", {"rope_ntk_beta": INF}, "rope_ntk_beta"),
    ("original", {"swiglu_limit": NAN}, "swiglu_limit"),
    ("original", {"experts_per_token": 0}, "experts_per_token"),
    ("original", {"head_dim": DROP}, "head_dim"),
    ("original", {"rms_norm_eps": 1e-5}, "rms_norm_eps"),
    ("canonical", {"config.d_model": 0}, "config.d_model"),
    ("canonical", {"config.norm": "batchnorm"}, "config.norm"),
    ("canonical", {"config.layer_windows": [0, None]}, "config.layer_windows"),
    ("canonical", {"config.rope_scaling.beta_slow": -1.0}, "config.rope_scaling.beta_slow"),
    ("canonical", {"config.rope_scaling.mscale": 1.0}, "mscale"),
    ("canonical", {"config.n_embd": 32}, "n_embd"),
    ("canonical", {"config": [1]}, "config"),
    ("canonical", {"config.norm_eps": DROP}, "config.norm_eps"),
    ("canonical", {"config.rope_scaling.truncate": DROP}, "config.rope_scaling.truncate"),
]


@pytest.mark.parametrize("layout", list(LAYOUTS) + ["original", "canonical"])
def test_the_unedited_checkpoints_load(tiny, layout):  # so that each case below fails by its edit alone
    for load in LOADERS.values():
        assert load(tiny[layout]).cfg.n_layers == 2


@pytest.mark.parametrize("layout, changes, field", CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1])}-{i}" for i, c in enumerate(CASES)])
def test_bad_config_is_a_config_error_naming_file_and_field(tiny, tmp_path, layout, changes, field):
    d = edited(tiny, tmp_path, layout, changes)
    for name, load in LOADERS.items():
        with pytest.raises(ConfigError) as info:
            load(d)
        msg = str(info.value)
        assert os.path.join(d, "config.json") in msg and field in msg and "expected" in msg, f"{name}: {msg}"
        assert isinstance(info.value, CheckpointError)  # also what callers of the loader caught before
        assert len(msg) < 2000


def test_huge_sizes_are_refused_before_any_allocation(tiny, tmp_path):
    d = edited(tiny, tmp_path, "gpt_oss", {"num_hidden_layers": 10**8, "layer_types": DROP})
    tracemalloc.start()
    t0 = time.perf_counter()
    try:
        with pytest.raises(ConfigError, match="num_hidden_layers=100000000.*expected a model of at most"):
            gptoss_np.load_model(d, progress=False)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak < 16 * 2**20 and time.perf_counter() - t0 < 2.0


# ---- defaults: transformers' own --------------------------------------------------------------------------

TF_CONFIGS = {"gpt2": tf.GPT2Config, "gpt_oss": tf.GptOssConfig, "qwen3_moe": tf.Qwen3MoeConfig}


@pytest.mark.parametrize("kind", list(TF_CONFIGS))
def test_defaults_are_transformers_defaults(kind):
    ref = TF_CONFIGS[kind]()
    for key, ours in HF_FIELDS[kind].items():
        if ours is REQUIRED or key in ("layer_types", "quantization_config"):  # derived / not a config attribute
            continue
        assert getattr(ref, key) == ours and type(getattr(ref, key)) is type(ours), key
    if kind != "gpt2":
        rope = dict(ref.rope_parameters)
        assert rope.pop("rope_theta") == ROPE_THETA[kind]
        assert rope == ROPE_DEFAULTS[kind]


MINIMAL = {  # only the sizes: everything else from the defaults
    "gpt_oss": dict(model_type="gpt_oss", vocab_size=100, hidden_size=64, intermediate_size=32, num_hidden_layers=3,
                    num_attention_heads=4, num_key_value_heads=2, num_local_experts=4, num_experts_per_tok=2),
    "qwen3_moe": dict(model_type="qwen3_moe", vocab_size=100, hidden_size=64, moe_intermediate_size=32,
                      num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, num_experts=4,
                      num_experts_per_tok=2, norm_topk_prob=True),
    "gpt2": dict(model_type="gpt2", vocab_size=100, n_positions=32, n_embd=64, n_layer=3, n_head=4),
}
ROPE_EDITS = [{}, {"rope_theta": 5000.0}, {"rope_scaling": {"rope_type": "yarn", "factor": 4.0}},
              {"max_position_embeddings": 8192, "rope_parameters": {"rope_type": "yarn", "factor": 2.0,
                                                                    "rope_theta": 1000.0}},
              {"rope_scaling": {"rope_type": "default"}, "rope_theta": 20000}]


@pytest.mark.parametrize("kind, extra", [(k, e) for k in ("gpt_oss", "qwen3_moe") for e in ROPE_EDITS] +
                         [("qwen3_moe", {"head_dim": 32}), ("qwen3_moe", {"hidden_size": 128}), ("gpt2", {})])
def test_a_sparse_config_reads_as_transformers_reads_it(kind, extra):
    hf = {**MINIMAL[kind], **extra}
    ours = config_from_hf(json.loads(json.dumps(hf)))
    ref = TF_CONFIGS[kind].from_dict(json.loads(json.dumps(hf)))
    if kind == "gpt2":
        assert (ours.context_length, ours.norm_eps, ours.ffn_hidden, ours.dropout) == \
            (ref.n_positions, ref.layer_norm_epsilon, 4 * ref.n_embd, ref.resid_pdrop)
        return
    head_dim = getattr(ref, "head_dim", None) or ref.hidden_size // ref.num_attention_heads
    assert (ours.context_length, ours.norm_eps, ours.head_dim, ours.attn_bias, ours.tie_embeddings) == \
        (ref.max_position_embeddings, ref.rms_norm_eps, head_dim, ref.attention_bias, ref.tie_word_embeddings)
    if kind == "gpt_oss":
        assert (ours.swiglu_alpha, ours.swiglu_limit) == (ref.swiglu_alpha, ref.swiglu_limit)
        want = tuple(ref.sliding_window if t == "sliding_attention" else None for t in ref.layer_types)
        assert ours.layer_windows == want
    # RoPE: the frequencies and attention factor transformers computes from its config, against ours
    rope_type = ref.rope_parameters["rope_type"]
    assert (ours.rope_scaling is None) == (rope_type == "default")
    inv_freq, factor = ROPE_INIT_FUNCTIONS[rope_type](ref, "cpu") if rope_type != "default" \
        else (1.0 / ref.rope_parameters["rope_theta"] ** (torch.arange(0, head_dim, 2).double() / head_dim), 1.0)
    ours_freq, ours_factor = rope_frequencies(ours)
    np.testing.assert_allclose(ours_freq, inv_freq.double().numpy(), rtol=1e-6)
    assert ours_factor == pytest.approx(factor)


# ---- what a field asks for is honoured or refused -----------------------------------------------------------

def test_qwen3_gate_and_up_each_have_their_own_shape(tiny, tmp_path):
    d = clone(tiny["qwen3_moe"], tmp_path / "ckpt")

    def shift_rows(t):  # gate [F + 8, D] and up [F - 8, D]: their sum is still [2F, D]
        for k in [k for k in t if k.endswith("gate_proj.weight") and ".experts." in k]:
            up = k.replace("gate_proj", "up_proj")
            both = np.concatenate([t[k], t[up]])
            t[k], t[up] = both[:40], both[40:]

    edit_tensors(d, shift_rows)
    with pytest.raises(CheckpointError, match=r"gate_proj.weight.*\(40, 64\).*\(32, 64\)"):
        gptoss_np.load_model(d, progress=False)


def test_qwen3_attention_bias_is_honoured_not_ignored(tiny, tmp_path):
    d = edited(tiny, tmp_path, "qwen3_moe", {"attention_bias": True})
    with pytest.raises(CheckpointError, match="self_attn.q_proj.bias"):  # the biases it asks for are read
        gptoss_np.load_model(d, progress=False)
