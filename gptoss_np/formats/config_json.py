"""config.json <-> ModelConfig: read a checkpoint's config (Hugging Face model types gpt2 / gpt_oss / qwen3_moe,
OpenAI's original gpt-oss fields, or this project's canonical layout), detect its layout, and build a ModelConfig.

One schema, one place: every value goes through ModelConfig.validate, which checks its type and range, and a
failure comes back as a ConfigFieldError naming the file and the config.json field. A field config.json lacks takes
the value transformers takes for that model type (HF_FIELDS, ROPE_DEFAULTS: checked against transformers' own
config classes in tests/test_bad_config.py) or, for the sizes, is an error. A field that changes the model in a way
this implementation does not follow is refused, never ignored.
"""

import dataclasses
import os

from ..config import ModelConfig, YarnScaling, alternating_windows, short_repr
from ..errors import CheckpointError, ConfigError
from .json_io import read_json
from .layouts import CANONICAL_MODEL_TYPE, NAMES, ORIGINAL_FIELDS, ORIGINAL_ONLY


class ConfigFieldError(ConfigError, CheckpointError):
    """A config.json field is missing, mistyped, out of range or unsupported: a ConfigError (the value is wrong)
    that is also a CheckpointError (a checkpoint's file holds it)."""


REQUIRED = object()  # no default: the sizes that make a model what it is
# The fields read for each Hugging Face model type, with the value transformers takes when config.json lacks one
# (the defaults of GPT2Config, GptOssConfig and Qwen3MoeConfig).
HF_FIELDS = {
    "gpt2": {
        "vocab_size": REQUIRED, "n_positions": REQUIRED, "n_embd": REQUIRED, "n_layer": REQUIRED, "n_head": REQUIRED,
        "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1,
        "embd_pdrop": 0.1, "attn_pdrop": 0.1, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "add_cross_attention": False, "tie_word_embeddings": True,
    },
    "gpt_oss": {
        "vocab_size": REQUIRED, "hidden_size": REQUIRED, "intermediate_size": REQUIRED, "num_hidden_layers": REQUIRED,
        "num_attention_heads": REQUIRED, "num_key_value_heads": REQUIRED, "num_local_experts": REQUIRED,
        "num_experts_per_tok": REQUIRED, "head_dim": 64, "layer_types": None, "sliding_window": 128,
        "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "swiglu_alpha": 1.702, "swiglu_limit": 7.0,
        "attention_bias": True, "tie_word_embeddings": False, "quantization_config": None,
    },
    "qwen3_moe": {
        "vocab_size": REQUIRED, "hidden_size": REQUIRED, "moe_intermediate_size": REQUIRED,
        "num_hidden_layers": REQUIRED, "num_attention_heads": REQUIRED, "num_key_value_heads": REQUIRED,
        "num_experts": REQUIRED, "num_experts_per_tok": REQUIRED, "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6, "attention_bias": False, "tie_word_embeddings": False, "hidden_act": "silu",
        "norm_topk_prob": False, "use_sliding_window": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
    },
}
# other names config.json may use for a field: transformers' attribute_map, and OpenAI's experts_per_token that
# the published gpt-oss config.json carries beside num_experts_per_tok
ALIASES = {"gpt_oss": {"num_local_experts": ("num_experts",), "num_experts_per_tok": ("experts_per_token",)},
           "qwen3_moe": {"num_experts": ("num_local_experts",)}}
# RoPE when config.json has neither rope_parameters nor rope_scaling (or both null), and the base when it names none
ROPE_DEFAULTS = {"gpt_oss": {"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                             "truncate": False, "original_max_position_embeddings": 4096},
                 "qwen3_moe": {"rope_type": "default"}}
ROPE_THETA = {"gpt_oss": 150000.0, "qwen3_moe": 10000.0}
# YaRN keys a rope dict may omit (transformers' _compute_yarn_parameters); original_max_position_embeddings
# defaults to max_position_embeddings
YARN_DEFAULTS = {"beta_fast": 32.0, "beta_slow": 1.0, "truncate": True}
# YaRN variants transformers reads and this implementation does not (its attention factor is 0.1 ln(factor) + 1)
YARN_UNSUPPORTED = ("attention_factor", "mscale", "mscale_all_dim")
LAYER_TYPES = {"sliding_attention", "full_attention"}


def _size(v):
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def _derived(fn, *sizes):
    """fn() when every input is a positive int, else None: ModelConfig.validate then names the bad input field
    itself (it checks the sizes in order, before the derived ones)."""
    return fn() if all(_size(s) for s in sizes) else None


class _Fields:
    """One config.json read for one model type. get() gives a field's value (or the transformers default, or an
    error for a missing size); `src` remembers which key and value each ModelConfig field came from, so that an
    invalid value is reported under its config.json name."""

    def __init__(self, hf, kind, where):
        self.hf, self.kind, self.where, self.src = hf, kind, where, {}

    def fail(self, key, value, expected):
        raise ConfigFieldError(f"{self.where}: {key}={short_repr(value)}; expected {expected}")

    def get(self, key, *model_fields):
        names = [k for k in (key, *ALIASES.get(self.kind, {}).get(key, ())) if k in self.hf]
        if len({repr(self.hf[k]) for k in names}) > 1:
            self.fail(" / ".join(names), [self.hf[k] for k in names], "one value (they name the same field)")
        if names:
            label, value = names[0], self.hf[names[0]]
        else:
            value = HF_FIELDS.get(self.kind, {}).get(key, REQUIRED)
            if value is REQUIRED:
                raise ConfigFieldError(f"{self.where}: missing field {key!r} (needed for model_type "
                                       f"{self.hf.get('model_type')!r}); expected it to give the model's "
                                       f"{' / '.join(model_fields) or key}")
            label = f"{key} (absent: transformers' default)"
        for f in model_fields:
            self.src[f] = (label, value)
        return value

    def require(self, key, supported, why):
        """The field must hold `supported` (exactly, type included): anything else would be ignored."""
        value = self.get(key)
        if type(value) is not type(supported) or value != supported:
            self.fail(key if key in self.hf else f"{key} (absent: transformers' default)", value,
                      f"{supported!r}: {why}")
        return value

    def checked(self, fn, **fields):
        """fn(**fields) (ModelConfig or a replace of one); a ConfigError names the config.json field."""
        try:
            return fn(**fields)
        except ConfigError as e:
            field = getattr(e, "field", None)
            if field is None:
                raise ConfigFieldError(f"{self.where}: the fields give an invalid model: {e}") from None
            label, value = self.src.get(field) or self.src.get(field.split(".")[0]) or (field, e.value)
            raise ConfigFieldError(f"{self.where}: {label}={short_repr(value)} (the model's {field}); expected "
                                   f"{e.expected}") from None


# ---- Hugging Face config.json -----------------------------------------------------------------------------

def config_from_hf(hf, weight_dtype="float32", name="checkpoint", where="config.json"):
    """A ModelConfig from a Hugging Face config.json dict (gpt2, gpt_oss or qwen3_moe)."""
    kind = hf.get("model_type")
    build = {"gpt2": _gpt2, "gpt_oss": _gpt_oss, "qwen3_moe": _qwen3_moe}.get(kind) if isinstance(kind, str) else None
    if build is None:
        raise ConfigFieldError(f"{where}: unknown layout: model_type={short_repr(kind)}; expected one of 'gpt2', "
                               "'gpt_oss', 'qwen3_moe' (Hugging Face config.json)")
    f = _Fields(hf, kind, where)
    if kind != "gpt_oss" and hf.get("quantization_config") is not None:
        f.fail("quantization_config", hf["quantization_config"], f"null: {kind} checkpoints are read unquantised")
    return build(f, name, weight_dtype)


def _gpt2(f, name, weight_dtype):
    act = f.get("activation_function")
    if act not in ("gelu_new", "gelu_pytorch_tanh"):
        f.fail("activation_function", act, "'gelu_new' or 'gelu_pytorch_tanh' (GPT-2's tanh GELU)")
    f.require("scale_attn_weights", True, "scores divided by sqrt(head_dim), as GPT-2 does")
    f.require("scale_attn_by_inverse_layer_idx", False, "scaling scores by 1/(layer+1) is not implemented")
    f.require("add_cross_attention", False, "a decoder-only model has no cross-attention")
    f.require("tie_word_embeddings", True, "the output head reuses wte.weight; an untied lm_head.weight is not read")
    upcast = f.get("reorder_and_upcast_attn")  # either is followed: scores are computed in the compute dtype
    if not isinstance(upcast, bool):
        f.fail("reorder_and_upcast_attn", upcast, "true or false")
    drops = {k: f.get(k) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    if len({repr(v) for v in drops.values()}) > 1:
        f.fail(" / ".join(drops), list(drops.values()), "one value (the model has one dropout p for all sites)")
    D, H = f.get("n_embd", "d_model"), f.get("n_head", "n_heads", "n_kv_heads")
    if _size(D) and _size(H) and D % H:
        f.fail("n_embd", D, f"a multiple of n_head={H} (head_dim = n_embd / n_head)")
    f.src["head_dim"] = ("n_embd / n_head", _derived(lambda: D // H, D, H))
    inner = f.get("n_inner", "ffn_hidden")
    return f.checked(
        ModelConfig, name=name, vocab_size=f.get("vocab_size", "vocab_size"),
        context_length=f.get("n_positions", "context_length"), d_model=D, n_layers=f.get("n_layer", "n_layers"),
        n_heads=H, n_kv_heads=H, head_dim=_derived(lambda: D // H, D, H),
        ffn_hidden=inner if inner is not None else _derived(lambda: 4 * D, D), norm="layernorm",
        norm_eps=f.get("layer_norm_epsilon", "norm_eps"), positions="learned", activation="gelu_tanh", ffn="dense",
        attn_bias=True, mlp_bias=True, tie_embeddings=True, dropout=f.get("resid_pdrop", "dropout"),
        weight_dtype=weight_dtype)


def _gpt_oss(f, name, weight_dtype):
    D, H = f.get("hidden_size", "d_model"), f.get("num_attention_heads", "n_heads")
    theta, yarn = _rope(f)
    quant = f.get("quantization_config")
    if quant is not None and (not isinstance(quant, dict) or quant.get("quant_method") != "mxfp4"):
        f.fail("quantization_config", quant, "null or an object with quant_method 'mxfp4' (the only quantisation "
               "of gpt-oss checkpoints)")
    fields = dict(
        name=name, vocab_size=f.get("vocab_size", "vocab_size"),
        context_length=f.get("max_position_embeddings", "context_length"), d_model=D,
        n_layers=f.get("num_hidden_layers", "n_layers"), n_heads=H,
        n_kv_heads=f.get("num_key_value_heads", "n_kv_heads"), head_dim=f.get("head_dim", "head_dim"),
        ffn_hidden=f.get("intermediate_size", "ffn_hidden"), norm="rmsnorm", norm_eps=f.get("rms_norm_eps", "norm_eps"),
        positions="rope", rope_theta=theta, rope_scaling=yarn, sinks=True,
        attn_bias=f.get("attention_bias", "attn_bias"), activation="swiglu_oss",
        swiglu_alpha=f.get("swiglu_alpha", "swiglu_alpha"), swiglu_limit=f.get("swiglu_limit", "swiglu_limit"),
        ffn="moe", n_experts=f.get("num_local_experts", "n_experts"), top_k=f.get("num_experts_per_tok", "top_k"),
        router="topk_softmax", mlp_bias=True, tie_embeddings=f.get("tie_word_embeddings", "tie_embeddings"),
        dropout=0.0, weight_dtype=weight_dtype, expert_quant="mxfp4" if quant else "none")
    cfg = f.checked(ModelConfig, **fields)  # sizes checked (and bounded) before a per-layer list is built
    return f.checked(cfg.replace, layer_windows=_gpt_oss_windows(f, cfg.n_layers))


def _gpt_oss_windows(f, n_layers):
    """Per-layer windows from layer_types and sliding_window; without layer_types, transformers' pattern (even
    layers slide)."""
    types = f.get("layer_types")
    window = f.get("sliding_window", "layer_windows")
    if types is None:
        types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(n_layers)]
    elif not isinstance(types, list) or len(types) != n_layers:
        f.fail("layer_types", types, f"a list of {n_layers} entries, one per layer (num_hidden_layers={n_layers})")
    for i, t in enumerate(types):
        if not isinstance(t, str) or t not in LAYER_TYPES:
            f.fail(f"layer_types[{i}]", t, f"one of {sorted(LAYER_TYPES)}")
    if window is None and "sliding_attention" in types:
        f.fail("sliding_window", window, "a positive int: layer_types has sliding_attention layers")
    return tuple(window if t == "sliding_attention" else None for t in types)


def _qwen3_moe(f, name, weight_dtype):
    f.require("hidden_act", "silu", "Qwen3's experts compute silu(gate) * up")
    f.require("norm_topk_prob", True, "the top-k router probabilities renormalised (Qwen3-30B-A3B); without it "
              "(transformers' default) they are not, which is not implemented")
    f.require("use_sliding_window", False, "Qwen3-MoE attends to the whole context")
    f.require("decoder_sparse_step", 1, "every layer MoE, as in Qwen3-30B-A3B; dense layers are not implemented")
    dense = f.get("mlp_only_layers")
    if dense not in (None, []):
        f.fail("mlp_only_layers", dense, "[] (every layer MoE, as in Qwen3-30B-A3B; dense layers are not "
               "implemented)")
    D, H = f.get("hidden_size", "d_model"), f.get("num_attention_heads", "n_heads")
    if "head_dim" in f.hf:
        head_dim = f.get("head_dim", "head_dim")
    else:  # transformers' Qwen3MoeAttention: getattr(config, "head_dim", hidden_size // num_attention_heads)
        head_dim = _derived(lambda: D // H, D, H)
        f.src["head_dim"] = ("hidden_size / num_attention_heads", head_dim)
    theta, yarn = _rope(f)
    return f.checked(
        ModelConfig, name=name, vocab_size=f.get("vocab_size", "vocab_size"),
        context_length=f.get("max_position_embeddings", "context_length"), d_model=D,
        n_layers=f.get("num_hidden_layers", "n_layers"), n_heads=H,
        n_kv_heads=f.get("num_key_value_heads", "n_kv_heads"), head_dim=head_dim,
        ffn_hidden=f.get("moe_intermediate_size", "ffn_hidden"), norm="rmsnorm",
        norm_eps=f.get("rms_norm_eps", "norm_eps"), norm_cast="before_weight", qk_norm=True, positions="rope",
        rope_theta=theta, rope_scaling=yarn, sinks=False, attn_bias=f.get("attention_bias", "attn_bias"),
        activation="swiglu", ffn="moe", n_experts=f.get("num_experts", "n_experts"),
        top_k=f.get("num_experts_per_tok", "top_k"), router="softmax_topk", mlp_bias=False,
        tie_embeddings=f.get("tie_word_embeddings", "tie_embeddings"), dropout=0.0, weight_dtype=weight_dtype)


def _rope(f):
    """(theta, YarnScaling | None) from rope_parameters (transformers 5) or rope_scaling + rope_theta (older
    files), read as transformers reads them."""
    hf = f.hf
    present = [k for k in ("rope_parameters", "rope_scaling") if hf.get(k) is not None]
    if len(present) == 2 and hf["rope_parameters"] != hf["rope_scaling"]:
        f.fail("rope_parameters / rope_scaling", [hf[k] for k in present], "one of them (two names of one setting)")
    key = present[0] if present else "rope_parameters (absent: transformers' default)"
    params = hf[present[0]] if present else ROPE_DEFAULTS[f.kind]
    if not isinstance(params, dict):
        f.fail(key, params, "an object of RoPE parameters, or null")
    if "rope_theta" in params:
        f.src["rope_theta"] = (f"{key}.rope_theta", params["rope_theta"])
        theta = params["rope_theta"]
    elif "rope_theta" in hf:
        theta = f.get("rope_theta", "rope_theta")
    else:
        theta = ROPE_THETA[f.kind]
        f.src["rope_theta"] = ("rope_theta (absent: transformers' default)", theta)
    kinds = {params[k] for k in ("rope_type", "type") if k in params and isinstance(params[k], str)}
    kind = params.get("rope_type", params.get("type", "default"))
    if len(kinds) > 1 or kind not in ("default", "yarn"):
        f.fail(f"{key}.rope_type", kind, "'default' or 'yarn' (the RoPE variants implemented)")
    if kind == "default":
        return theta, None
    for extra in YARN_UNSUPPORTED:
        if params.get(extra) is not None:
            f.fail(f"{key}.{extra}", params[extra], "absent: YaRN's attention factor is 0.1 ln(factor) + 1 here")
    if params.get("partial_rotary_factor", 1.0) != 1.0:
        f.fail(f"{key}.partial_rotary_factor", params["partial_rotary_factor"], "1.0 (RoPE on the whole head)")
    original = params.get("original_max_position_embeddings")
    if original is None:  # transformers' standardize_rope_params
        original = f.get("max_position_embeddings")
    values = dict(factor=params.get("factor"), original_context=original,
                  **{k: YARN_DEFAULTS[k] if params.get(k) is None else params[k] for k in YARN_DEFAULTS})
    for sub, json_key in (("factor", "factor"), ("original_context", "original_max_position_embeddings"),
                          ("beta_fast", "beta_fast"), ("beta_slow", "beta_slow"), ("truncate", "truncate")):
        f.src[f"rope_scaling.{sub}"] = (f"{key}.{json_key}", params.get(json_key, values[sub]))
    return theta, YarnScaling(**values)


# ---- files and layouts --------------------------------------------------------------------------------------

def read_config(path):
    """(config.json dict, its path) from a checkpoint directory."""
    path = os.fspath(path)
    cpath = os.path.join(path, "config.json")
    if not path:
        raise CheckpointError("checkpoint path '' (empty): expected a checkpoint directory with config.json")
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
    hf = read_json(cpath, "config.json")
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
    if isinstance(kind, str) and kind in NAMES and kind != "original":
        return kind
    raise ConfigFieldError(f"{where}: unknown layout: model_type={short_repr(kind)}; expected one of 'gpt2', "
                           "'gpt_oss', 'qwen3_moe' (Hugging Face config.json) or no model_type with OpenAI's original "
                           f"gpt-oss fields ({', '.join(ORIGINAL_ONLY)}, ...)")


def config_from_original(oc, weight_dtype="bfloat16", expert_quant="mxfp4", name="original",
                         where="original/config.json"):
    """A ModelConfig from OpenAI's original gpt-oss config.json (the fields of ORIGINAL_FIELDS, all required)."""
    missing = [f for f in ORIGINAL_FIELDS if f not in oc]
    if missing:
        raise ConfigFieldError(f"{where}: missing field(s) {missing} of OpenAI's original gpt-oss config; expected "
                               f"all of {list(ORIGINAL_FIELDS)}")
    unknown = sorted(set(oc) - set(ORIGINAL_FIELDS))
    if unknown:  # OpenAI's ModelConfig(**json) refuses them too
        raise ConfigFieldError(f"{where}: unknown field(s) {unknown} for OpenAI's original gpt-oss config; "
                               f"expected only {list(ORIGINAL_FIELDS)}")
    f = _Fields(oc, "original", where)
    ctx0, factor = f.get("initial_context_length"), f.get("rope_scaling_factor")
    context = _derived(lambda: ctx0 * factor, ctx0) if isinstance(factor, (int, float)) and \
        not isinstance(factor, bool) and abs(factor) < float("inf") else None
    if context is not None and not float(context).is_integer():
        f.fail("initial_context_length * rope_scaling_factor", context, "an integer (the context length)")
    f.src["context_length"] = ("initial_context_length * rope_scaling_factor", context)
    yarn = YarnScaling(factor=factor, original_context=ctx0, beta_fast=f.get("rope_ntk_beta"),
                       beta_slow=f.get("rope_ntk_alpha"), truncate=False)
    for sub, key in (("factor", "rope_scaling_factor"), ("original_context", "initial_context_length"),
                     ("beta_fast", "rope_ntk_beta"), ("beta_slow", "rope_ntk_alpha")):
        f.src[f"rope_scaling.{sub}"] = (key, oc[key])
    cfg = f.checked(
        ModelConfig, name=name, vocab_size=f.get("vocab_size", "vocab_size"),
        context_length=int(context) if context is not None else None, d_model=f.get("hidden_size", "d_model"),
        n_layers=f.get("num_hidden_layers", "n_layers"), n_heads=f.get("num_attention_heads", "n_heads"),
        n_kv_heads=f.get("num_key_value_heads", "n_kv_heads"), head_dim=f.get("head_dim", "head_dim"),
        ffn_hidden=f.get("intermediate_size", "ffn_hidden"), norm="rmsnorm", norm_eps=1e-5, positions="rope",
        rope_theta=f.get("rope_theta", "rope_theta"), rope_scaling=yarn, sinks=True, attn_bias=True,
        activation="swiglu_oss", swiglu_alpha=1.702, swiglu_limit=f.get("swiglu_limit", "swiglu_limit"), ffn="moe",
        n_experts=f.get("num_experts", "n_experts"), top_k=f.get("experts_per_token", "top_k"),
        router="topk_softmax", mlp_bias=True, tie_embeddings=False, dropout=0.0, weight_dtype=weight_dtype,
        expert_quant=expert_quant)
    window = f.get("sliding_window", "layer_windows")
    if window is None:  # alternating_windows would make every layer full
        f.fail("sliding_window", window, "a positive int: the window of the even layers")
    return f.checked(cfg.replace, layer_windows=alternating_windows(cfg.n_layers, window))


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
        raise ConfigFieldError(f"{where}: config={short_repr(fields)}; expected an object of ModelConfig fields "
                               f"(model_type {CANONICAL_MODEL_TYPE!r})")
    f = _Fields(fields, "canonical", where)
    f.src = {k: (f"config.{k}", v) for k, v in fields.items()}
    y = fields.get("rope_scaling")
    if isinstance(y, dict):
        f.src.update({f"rope_scaling.{k}": (f"config.rope_scaling.{k}", v) for k, v in y.items()})
    elif y is not None:
        f.fail("config.rope_scaling", y, "an object of YarnScaling fields, or null")
    # we write every field: a missing one would silently take ModelConfig's default (GPT-2 XL's)
    for prefix, cls, given in (("config.", ModelConfig, fields), ("config.rope_scaling.", YarnScaling, y or None)):
        missing = [x.name for x in dataclasses.fields(cls) if x.compare and given is not None and x.name not in given]
        if missing:
            raise ConfigFieldError(f"{where}: missing field(s) {[prefix + m for m in missing]}; expected every "
                                   f"{cls.__name__} field (canonical_config_json writes them all)")
    return f.checked(ModelConfig.from_dict, d=fields)
