"""config.json <-> ModelConfig: read a checkpoint's config (Hugging Face model types gpt2 / gpt_oss / qwen3_moe,
or OpenAI's original gpt-oss fields), detect its layout, and build a checked ModelConfig from it."""

import dataclasses
import json
import os

from ..config import ModelConfig, YarnScaling, alternating_windows
from ..errors import CheckpointError, ConfigError
from .layouts import CANONICAL_MODEL_TYPE, NAMES, ORIGINAL_FIELDS, ORIGINAL_ONLY



def _get(hf, *keys, default=KeyError, where="config.json"):
    for k in keys:
        if k in hf:
            return hf[k]
    if default is KeyError:
        raise CheckpointError(f"{where}: missing field {' / '.join(keys)}")
    return default


def _rope(hf, where):
    """(theta, YarnScaling | None) from either rope_scaling + rope_theta (older files) or rope_parameters (newer)."""
    params = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    theta = float(params.get("rope_theta", hf.get("rope_theta", 10000.0)))
    kind = params.get("rope_type", params.get("type", "default"))
    if kind in ("default", None):
        return theta, None
    if kind != "yarn":
        raise CheckpointError(f"{where}: rope_type {kind!r} is not supported; expected 'default' or 'yarn'")
    return theta, YarnScaling(factor=float(params["factor"]),
                              original_context=int(params.get("original_max_position_embeddings", 4096)),
                              beta_fast=float(params.get("beta_fast", 32.0)),
                              beta_slow=float(params.get("beta_slow", 1.0)),
                              truncate=bool(params.get("truncate", True)))


def config_from_hf(hf, weight_dtype="float32", name="checkpoint", where="config.json"):
    """A ModelConfig from a Hugging Face config.json dict (gpt2, gpt_oss or qwen3_moe)."""
    try:
        return _config_from_hf(hf, weight_dtype, name, where)
    except KeyError as e:
        raise CheckpointError(f"{where}: missing field {e.args[0]!r} (needed for model_type "
                              f"{hf.get('model_type')!r})") from None
    except ConfigError as e:
        raise CheckpointError(f"{where}: the fields give an invalid model: {e}") from None


def _config_from_hf(hf, weight_dtype, name, where):
    kind = hf.get("model_type")
    if kind == "gpt2":
        if hf.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
            raise CheckpointError(f"{where}: activation_function {hf['activation_function']!r}; expected gelu_new")
        D = hf["n_embd"]
        return ModelConfig(
            name=name, vocab_size=hf["vocab_size"], context_length=hf["n_positions"], d_model=D,
            n_layers=hf["n_layer"], n_heads=hf["n_head"], n_kv_heads=hf["n_head"], head_dim=D // hf["n_head"],
            ffn_hidden=hf.get("n_inner") or 4 * D, norm="layernorm", norm_eps=hf.get("layer_norm_epsilon", 1e-5),
            positions="learned", activation="gelu_tanh", ffn="dense", attn_bias=True, mlp_bias=True,
            tie_embeddings=True, dropout=float(hf.get("resid_pdrop", 0.1)), weight_dtype=weight_dtype)
    if kind == "gpt_oss":
        L = hf["num_hidden_layers"]
        theta, yarn = _rope(hf, where)
        types = hf.get("layer_types")
        window = hf.get("sliding_window") or 128
        if types is not None and len(types) != L:
            raise CheckpointError(f"{where}: layer_types has {len(types)} entries but num_hidden_layers is {L}; "
                                  "expected one entry per layer")
        windows = tuple(window if t == "sliding_attention" else None for t in types) if types else \
            alternating_windows(L, window)
        quant = hf.get("quantization_config") or {}
        return ModelConfig(
            name=name, vocab_size=hf["vocab_size"], context_length=hf.get("max_position_embeddings", 131072),
            d_model=hf["hidden_size"], n_layers=L, n_heads=hf["num_attention_heads"],
            n_kv_heads=hf["num_key_value_heads"], head_dim=hf.get("head_dim", 64),
            ffn_hidden=hf["intermediate_size"], norm="rmsnorm", norm_eps=hf.get("rms_norm_eps", 1e-5),
            positions="rope", rope_theta=theta, rope_scaling=yarn, layer_windows=windows, sinks=True,
            attn_bias=hf.get("attention_bias", True), activation="swiglu_oss",
            swiglu_alpha=hf.get("swiglu_alpha", 1.702), swiglu_limit=hf.get("swiglu_limit", 7.0), ffn="moe",
            n_experts=_get(hf, "num_local_experts", "num_experts"),
            top_k=_get(hf, "num_experts_per_tok", "experts_per_token"), router="topk_softmax", mlp_bias=True,
            tie_embeddings=hf.get("tie_word_embeddings", False), dropout=0.0, weight_dtype=weight_dtype,
            expert_quant="mxfp4" if quant.get("quant_method") == "mxfp4" else "none")
    if kind == "qwen3_moe":
        L = hf["num_hidden_layers"]
        if hf.get("mlp_only_layers") or hf.get("decoder_sparse_step", 1) != 1:
            raise CheckpointError(f"{where}: dense layers in a Qwen3-MoE (mlp_only_layers / decoder_sparse_step) "
                                  "are not supported; expected every layer to be MoE as in Qwen3-30B-A3B")
        if not hf.get("norm_topk_prob", True):
            raise CheckpointError(f"{where}: norm_topk_prob=false is not supported; expected true (Qwen3-30B-A3B)")
        if hf.get("use_sliding_window"):
            raise CheckpointError(f"{where}: use_sliding_window=true is not supported; expected false")
        theta, yarn = _rope(hf, where)
        return ModelConfig(
            name=name, vocab_size=hf["vocab_size"], context_length=hf.get("max_position_embeddings", 40960),
            d_model=hf["hidden_size"], n_layers=L, n_heads=hf["num_attention_heads"],
            n_kv_heads=hf["num_key_value_heads"], head_dim=hf.get("head_dim") or
            hf["hidden_size"] // hf["num_attention_heads"], ffn_hidden=hf["moe_intermediate_size"], norm="rmsnorm",
            norm_eps=hf.get("rms_norm_eps", 1e-6), qk_norm=True, positions="rope", rope_theta=theta,
            rope_scaling=yarn, sinks=False, attn_bias=hf.get("attention_bias", False), activation="swiglu",
            ffn="moe", n_experts=_get(hf, "num_experts", "num_local_experts"), top_k=hf["num_experts_per_tok"],
            router="softmax_topk", mlp_bias=False, tie_embeddings=hf.get("tie_word_embeddings", False),
            dropout=0.0, weight_dtype=weight_dtype)
    raise CheckpointError(f"{where}: unknown layout: model_type={kind!r}; expected one of 'gpt2', 'gpt_oss', "
                          "'qwen3_moe' (Hugging Face config.json)")


def read_config(path):
    """(config.json dict, its path) from a checkpoint directory."""
    path = os.fspath(path)
    cpath = os.path.join(path, "config.json")
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: does not exist; expected a checkpoint directory with config.json")
    if not os.path.isdir(path):
        raise CheckpointError(f"{path}: not a directory; expected a checkpoint directory with config.json")
    if not os.path.exists(cpath):
        hint = ""
        if os.path.exists(os.path.join(path, "original", "config.json")):
            hint = (f" (it has original/config.json: pass {os.path.join(path, 'original')} to load OpenAI's original "
                    "layout)")
        raise CheckpointError(f"{path}: no config.json; expected a Hugging Face checkpoint directory or OpenAI's "
                              f"original gpt-oss layout{hint}")
    try:
        with open(cpath, encoding="utf-8") as f:
            hf = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cpath}: not valid JSON ({e})") from None
    if not isinstance(hf, dict):
        raise CheckpointError(f"{cpath}: expected a JSON object of config fields, found {type(hf).__name__}")
    return hf, cpath


def detect_layout(config, where="config.json"):
    """'gpt2' | 'gpt_oss' | 'qwen3_moe' (Hugging Face config.json, by model_type) or 'original' (OpenAI's gpt-oss
    config.json: no model_type, the fields of ORIGINAL_FIELDS)."""
    kind = config.get("model_type")
    if kind is None and any(f in config for f in ORIGINAL_ONLY):
        return "original"
    if kind == CANONICAL_MODEL_TYPE:
        return "canonical"
    if kind in NAMES and kind != "original":
        return kind
    raise CheckpointError(f"{where}: unknown layout: model_type={kind!r}; expected one of 'gpt2', 'gpt_oss', "
                          "'qwen3_moe' (Hugging Face config.json) or no model_type with OpenAI's original gpt-oss "
                          f"fields ({', '.join(ORIGINAL_ONLY)}, ...)")


def config_from_original(oc, weight_dtype="bfloat16", expert_quant="mxfp4", name="original",
                         where="original/config.json"):
    """A ModelConfig from OpenAI's original gpt-oss config.json (the fields of ORIGINAL_FIELDS, all required)."""
    missing = [f for f in ORIGINAL_FIELDS if f not in oc]
    if missing:
        raise CheckpointError(f"{where}: missing field(s) {missing} of OpenAI's original gpt-oss config; expected "
                              f"all of {list(ORIGINAL_FIELDS)}")
    unknown = sorted(set(oc) - set(ORIGINAL_FIELDS))
    if unknown:  # OpenAI's ModelConfig(**json) refuses them too
        raise CheckpointError(f"{where}: unknown field(s) {unknown} for OpenAI's original gpt-oss config; expected "
                              f"only {list(ORIGINAL_FIELDS)}")
    try:
        L, ctx0, factor = oc["num_hidden_layers"], oc["initial_context_length"], oc["rope_scaling_factor"]
        context = ctx0 * factor
        if not isinstance(L, int) or not float(context).is_integer():
            raise ConfigError(f"num_hidden_layers={L!r}, initial_context_length * rope_scaling_factor={context!r}; "
                              "expected integers")
        return ModelConfig(
            name=name, vocab_size=oc["vocab_size"], context_length=int(context), d_model=oc["hidden_size"],
            n_layers=L, n_heads=oc["num_attention_heads"], n_kv_heads=oc["num_key_value_heads"],
            head_dim=oc["head_dim"], ffn_hidden=oc["intermediate_size"], norm="rmsnorm", norm_eps=1e-5,
            positions="rope", rope_theta=float(oc["rope_theta"]),
            rope_scaling=YarnScaling(factor=float(factor), original_context=int(ctx0),
                                     beta_fast=float(oc["rope_ntk_beta"]), beta_slow=float(oc["rope_ntk_alpha"]),
                                     truncate=False),
            layer_windows=alternating_windows(L, oc["sliding_window"]), sinks=True, attn_bias=True,
            activation="swiglu_oss", swiglu_alpha=1.702, swiglu_limit=float(oc["swiglu_limit"]), ffn="moe",
            n_experts=oc["num_experts"], top_k=oc["experts_per_token"], router="topk_softmax", mlp_bias=True,
            tie_embeddings=False, dropout=0.0, weight_dtype=weight_dtype, expert_quant=expert_quant)
    except (ConfigError, TypeError, ValueError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{where}: the fields give an invalid model: {e}") from None


def canonical_config_json(cfg):
    """config.json of this project's canonical layout: every ModelConfig field, under model_type
    CANONICAL_MODEL_TYPE (for configs that no published layout can hold)."""
    fields = dataclasses.asdict(cfg)
    fields["layer_windows"] = list(cfg.layer_windows)
    return {"model_type": CANONICAL_MODEL_TYPE, "config": fields}


def config_from_canonical(d, where="config.json"):
    """The ModelConfig a canonical config.json describes (the inverse of canonical_config_json)."""
    fields = d.get("config")
    if not isinstance(fields, dict):
        raise CheckpointError(f"{where}: model_type {CANONICAL_MODEL_TYPE!r} needs a 'config' object of ModelConfig "
                              "fields")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise CheckpointError(f"{where}: unknown ModelConfig field(s) {unknown}; expected some of {sorted(known)}")
    fields = dict(fields)
    if fields.get("rope_scaling") is not None:
        if not isinstance(fields["rope_scaling"], dict):
            raise CheckpointError(f"{where}: config.rope_scaling must be an object of YarnScaling fields or null")
        fields["rope_scaling"] = YarnScaling(**fields["rope_scaling"])
    if "layer_windows" in fields:
        fields["layer_windows"] = tuple(fields["layer_windows"])
    try:
        return ModelConfig(**fields)
    except (ConfigError, TypeError) as e:
        raise CheckpointError(f"{where}: the fields give an invalid model: {e}") from None
