"""Checkpoint loading: read a checkpoint directory (config.json + safetensors, single or sharded), turn its config
into a ModelConfig and its tensors into the canonical weight dict (see params.py), lazily.

Layouts, detected from config.json: Hugging Face ("model_type" gpt2 / gpt_oss / qwen3_moe) and OpenAI's original
gpt-oss format (the `original/` directory of a gpt-oss download: no model_type, the field set of ORIGINAL_FIELDS).
A real download has the HF layout at its root and the original one beneath, so pointing at the root loads the HF
layout and pointing at `original/` loads the original one.

Name translation lives in one table per layout (NAMES below). Tensors are memory-mapped: float tensors are
converted to the compute dtype once, with a progress bar; MXFP4 expert blocks/scales stay packed and mapped, and
float experts are converted only for the experts a token is routed to.
"""

import json
import os

import numpy as np

from .config import ModelConfig, YarnScaling, alternating_windows
from .errors import CheckpointError, ConfigError
from .model import Model
from .params import check_weights, storage_shapes
from .safetensors_io import TensorStore, release_pages

ST_DTYPES = {"F32": "float32", "BF16": "bfloat16"}
FLOAT_DTYPES = ("F32", "BF16", "F16", "F64")

# canonical name (per layer: {i}) -> checkpoint name. Fused q | k | v tensors (FUSED_QKV) appear three times, once
# per part; the loader slices each part out as a view and a writer concatenates them.
NAMES = {
    "gpt2": {
        "embed.weight": "wte.weight", "pos_embed.weight": "wpe.weight",
        "layers.{i}.attn_norm.weight": "h.{i}.ln_1.weight", "layers.{i}.attn_norm.bias": "h.{i}.ln_1.bias",
        "layers.{i}.ffn_norm.weight": "h.{i}.ln_2.weight", "layers.{i}.ffn_norm.bias": "h.{i}.ln_2.bias",
        "layers.{i}.attn.o.bias": "h.{i}.attn.c_proj.bias",
        "layers.{i}.mlp.up.bias": "h.{i}.mlp.c_fc.bias", "layers.{i}.mlp.down.bias": "h.{i}.mlp.c_proj.bias",
        "final_norm.weight": "ln_f.weight", "final_norm.bias": "ln_f.bias",
        # fused c_attn, Conv1D [D, 3D]: columns q | k | v
        **{f"layers.{{i}}.attn.{a}.{t}": f"h.{{i}}.attn.c_attn.{t}" for a in "qkv" for t in ("weight", "bias")},
        # Conv1D stores [in, out]: these (and c_attn's q, k, v) are transposed views (TRANSPOSED)
        "layers.{i}.attn.o.weight": "h.{i}.attn.c_proj.weight", "layers.{i}.mlp.up.weight": "h.{i}.mlp.c_fc.weight",
        "layers.{i}.mlp.down.weight": "h.{i}.mlp.c_proj.weight",
    },
    "gpt_oss": {
        "embed.weight": "model.embed_tokens.weight", "unembed.weight": "lm_head.weight",
        "final_norm.weight": "model.norm.weight",
        "layers.{i}.attn_norm.weight": "model.layers.{i}.input_layernorm.weight",
        "layers.{i}.ffn_norm.weight": "model.layers.{i}.post_attention_layernorm.weight",
        **{f"layers.{{i}}.attn.{a}.{t}": f"model.layers.{{i}}.self_attn.{a}_proj.{t}"
           for a in "qkvo" for t in ("weight", "bias")},
        "layers.{i}.attn.sinks": "model.layers.{i}.self_attn.sinks",
        "layers.{i}.mlp.router.weight": "model.layers.{i}.mlp.router.weight",
        "layers.{i}.mlp.router.bias": "model.layers.{i}.mlp.router.bias",
        "layers.{i}.mlp.experts.up.bias": "model.layers.{i}.mlp.experts.gate_up_proj_bias",
        "layers.{i}.mlp.experts.down.bias": "model.layers.{i}.mlp.experts.down_proj_bias",
        # MXFP4: blocks/scales are stored [E, out, in/32, ...] exactly as we hold them
        "layers.{i}.mlp.experts.up.blocks": "model.layers.{i}.mlp.experts.gate_up_proj_blocks",
        "layers.{i}.mlp.experts.up.scales": "model.layers.{i}.mlp.experts.gate_up_proj_scales",
        "layers.{i}.mlp.experts.down.blocks": "model.layers.{i}.mlp.experts.down_proj_blocks",
        "layers.{i}.mlp.experts.down.scales": "model.layers.{i}.mlp.experts.down_proj_scales",
        # unquantised (save_pretrained of a float model): transformers keeps [E, in, out]; transposed views
        "layers.{i}.mlp.experts.up.weight": "model.layers.{i}.mlp.experts.gate_up_proj",
        "layers.{i}.mlp.experts.down.weight": "model.layers.{i}.mlp.experts.down_proj",
    },
    "qwen3_moe": {
        "embed.weight": "model.embed_tokens.weight", "unembed.weight": "lm_head.weight",
        "final_norm.weight": "model.norm.weight",
        "layers.{i}.attn_norm.weight": "model.layers.{i}.input_layernorm.weight",
        "layers.{i}.ffn_norm.weight": "model.layers.{i}.post_attention_layernorm.weight",
        **{f"layers.{{i}}.attn.{a}.weight": f"model.layers.{{i}}.self_attn.{a}_proj.weight" for a in "qkvo"},
        "layers.{i}.attn.q_norm.weight": "model.layers.{i}.self_attn.q_norm.weight",
        "layers.{i}.attn.k_norm.weight": "model.layers.{i}.self_attn.k_norm.weight",
        "layers.{i}.mlp.router.weight": "model.layers.{i}.mlp.gate.weight",
        # experts are stored one by one: see StackedExperts
        "layers.{i}.mlp.experts.up.weight": "model.layers.{i}.mlp.experts.{e}.{gate,up}_proj.weight",
        "layers.{i}.mlp.experts.down.weight": "model.layers.{i}.mlp.experts.{e}.down_proj.weight",
    },
    # OpenAI's original gpt-oss layout (gpt_oss/torch/weights.py): every matrix [out, in], no transposes
    "original": {
        "embed.weight": "embedding.weight", "unembed.weight": "unembedding.weight", "final_norm.weight": "norm.scale",
        "layers.{i}.attn_norm.weight": "block.{i}.attn.norm.scale",
        "layers.{i}.ffn_norm.weight": "block.{i}.mlp.norm.scale",
        # fused qkv [q_dim + 2 kv_dim, D]: rows q | k | v
        **{f"layers.{{i}}.attn.{a}.{t}": f"block.{{i}}.attn.qkv.{t}" for a in "qkv" for t in ("weight", "bias")},
        "layers.{i}.attn.o.weight": "block.{i}.attn.out.weight", "layers.{i}.attn.o.bias": "block.{i}.attn.out.bias",
        "layers.{i}.attn.sinks": "block.{i}.attn.sinks",
        "layers.{i}.mlp.router.weight": "block.{i}.mlp.gate.weight",
        "layers.{i}.mlp.router.bias": "block.{i}.mlp.gate.bias",
        "layers.{i}.mlp.experts.up.bias": "block.{i}.mlp.mlp1_bias",
        "layers.{i}.mlp.experts.down.bias": "block.{i}.mlp.mlp2_bias",
        "layers.{i}.mlp.experts.up.blocks": "block.{i}.mlp.mlp1_weight.blocks",
        "layers.{i}.mlp.experts.up.scales": "block.{i}.mlp.mlp1_weight.scales",
        "layers.{i}.mlp.experts.down.blocks": "block.{i}.mlp.mlp2_weight.blocks",
        "layers.{i}.mlp.experts.down.scales": "block.{i}.mlp.mlp2_weight.scales",
        # float experts (OpenAI's loader reads a plain tensor when there is no .blocks): [E, out, in] as we hold them
        "layers.{i}.mlp.experts.up.weight": "block.{i}.mlp.mlp1_weight",
        "layers.{i}.mlp.experts.down.weight": "block.{i}.mlp.mlp2_weight",
    },
}
HF_NAMES = NAMES  # the name it had when every layout was a Hugging Face one
# checkpoint tensors that are not parameters, or duplicates of one (tied head)
IGNORED = {"gpt2": ("attn.bias", "attn.masked_bias", "lm_head.weight")}
TRANSPOSED = {"gpt2": ("attn.o.weight", "mlp.up.weight", "mlp.down.weight", "attn.q.weight", "attn.k.weight",
                       "attn.v.weight"),
              "gpt_oss": ("mlp.experts.up.weight", "mlp.experts.down.weight")}
# layouts whose q, k and v live in one tensor, concatenated along the output axis (rows of [out, in]; for the
# transposed Conv1D [in, out] that axis is the columns)
FUSED_QKV = ("gpt2", "original")
QKV_KEYS = tuple(f"layers.{{i}}.attn.{a}.{t}" for a in "qkv" for t in ("weight", "bias"))

# OpenAI's original config.json: exactly the fields of gpt_oss/torch/model.py's ModelConfig (no model_type). RMSNorm
# eps (1e-5) and the SwiGLU alpha (1.702) are hard-coded there; sliding-window layers are the even ones.
ORIGINAL_FIELDS = ("num_hidden_layers", "num_experts", "experts_per_token", "vocab_size", "hidden_size",
                   "intermediate_size", "swiglu_limit", "head_dim", "num_attention_heads", "num_key_value_heads",
                   "sliding_window", "initial_context_length", "rope_theta", "rope_scaling_factor", "rope_ntk_alpha",
                   "rope_ntk_beta")
# fields no Hugging Face config has: any of them (and no model_type) means the original layout
ORIGINAL_ONLY = ("rope_scaling_factor", "rope_ntk_alpha", "rope_ntk_beta")
# dtypes.json (beside the original config) -> the safetensors dtype it describes
ORIGINAL_DTYPES = {"BF16": "BF16", "FP4": "U8", "UE8": "U8", "FP32": "F32"}


# ---- config.json -> ModelConfig --------------------------------------------------------------------------

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


# ---- tensors -> canonical weights ------------------------------------------------------------------------

class StackedExperts:
    """Qwen3 stores each expert as its own tensors; this presents them as one [E, rows, cols] array whose
    indexing reads only the experts asked for (and concatenates [gate | up] for the fused up projection)."""

    def __init__(self, store, names_per_expert):
        self.store, self.names = store, names_per_expert  # [E] lists of tensor names, concatenated on rows
        self._cache = {}
        shapes = [store.shape(n) for n in names_per_expert[0]]
        self.shape = (len(names_per_expert), sum(s[0] for s in shapes), shapes[0][1])
        self.dtype = store.get(names_per_expert[0][0]).dtype
        for names in names_per_expert:
            for n, want in zip(names, shapes):
                if store.shape(n) != want:
                    raise CheckpointError(f"{store.directory}: tensor {n!r} has shape {store.shape(n)}; expected "
                                          f"{want} like expert 0")
                if store.dtype(n) not in FLOAT_DTYPES:
                    raise CheckpointError(f"{store.directory}: tensor {n!r} has dtype {store.dtype(n)}; expected a "
                                          f"float dtype ({', '.join(FLOAT_DTYPES)})")

    CACHE_BYTES = 1 << 30  # fused [gate | up] copies kept for reuse, up to 1 GiB per stack

    def __getitem__(self, ids):
        if np.ndim(ids) == 0:  # one expert: [rows, cols]
            e = int(ids)
            if e in self._cache:
                return self._cache[e]
            fused = np.concatenate([self.store.get(n) for n in self.names[e]])
            if (len(self._cache) + 1) * fused.nbytes <= self.CACHE_BYTES:
                self._cache[e] = fused
            return fused
        return np.stack([self[e] for e in ids])  # [n, rows, cols]


def _layer_key(name):
    """('layers.{i}.attn.q.weight', '3') for 'layers.3.attn.q.weight'; (name, None) outside the layers."""
    parts = name.split(".")
    if parts[0] != "layers":
        return name, None
    return ".".join(["layers", "{i}"] + parts[2:]), parts[1]


def _other_layout_hint(store, layout):
    """A hint when the tensors belong to the other gpt-oss layout than the one config.json describes."""
    if layout == "original" and "model.embed_tokens.weight" in store:
        return (" — the tensors are in the Hugging Face layout (model.embed_tokens.weight, model.layers.N...) but "
                "config.json is OpenAI's original format; the two do not belong together")
    if layout != "original" and "embedding.weight" in store and "block.0.attn.qkv.weight" in store:
        return (" — the tensors are in OpenAI's original layout (embedding.weight, block.N...) but config.json is a "
                f"Hugging Face {layout!r} config; use the original config.json (the original/ directory of a download)")
    return ""


def _fused_qkv(store, src, key, cfg, layout):
    """One of q, k, v as a view into the fused tensor `src` (rows q | k | v of [out, in]; gpt2's Conv1D [in, out]
    holds them as columns), after checking the fused tensor's shape."""
    part, kind = key.split(".")[3], key.split(".")[4]
    sizes = (cfg.q_dim, cfg.kv_dim, cfg.kv_dim)
    total, D = sum(sizes), cfg.d_model
    cols = kind == "weight" and any(key.endswith(t) for t in TRANSPOSED.get(layout, ()))
    want = (total,) if kind == "bias" else ((D, total) if cols else (total, D))
    got = tuple(store.shape(src))
    if got != want:
        raise CheckpointError(f"{store.directory}: tensor {src!r} has shape {got}; config {cfg.name!r} expects {want}"
                              f" (q | k | v {'columns' if cols else 'rows'} of {sizes[0]}, {sizes[1]}, {sizes[2]})")
    t = store.get(src)
    lo = sum(sizes[:"qkv".index(part)])
    hi = lo + sizes["qkv".index(part)]
    return t[:, lo:hi].T if cols else t[lo:hi]


def _map_tensors(store, cfg, layout):
    """canonical name -> array (or lazy expert stack) for every parameter the config expects."""
    table = NAMES[layout]
    prefix = ""
    if layout == "gpt2" and "transformer.wte.weight" in store:  # save_pretrained adds it; the Hub file has none
        prefix = "transformer."
    weights, used = {}, set()
    expected = storage_shapes(cfg)
    for name, (want, _kind) in expected.items():
        key, i = _layer_key(name)
        if key not in table:
            raise CheckpointError(f"{store.directory}: no {layout} checkpoint tensor maps to {name!r}")
        src = table[key].replace("{i}", str(i))
        if layout == "qwen3_moe" and "{e}" in src:
            names = [[src.replace("{e}", str(e)).replace("{gate,up}", part) for part in
                      (("gate", "up") if "{gate,up}" in src else ("",))] for e in range(cfg.n_experts)]
            names = [[n.replace("..", ".") for n in ns] for ns in names]
            for ns in names:
                for n in ns:
                    if n not in store:
                        store.get(n)  # raises a CheckpointError naming the missing tensor and close matches
                    used.add(n)
            weights[name] = StackedExperts(store, names)
            continue
        src = prefix + src
        if src not in store:
            hint = ""
            if name.endswith(".weight") and ".experts." in name and (src + "_blocks") in store:
                hint = (" — the checkpoint has MXFP4 '_blocks'/'_scales' experts but config.json has no "
                        "quantization_config {quant_method: mxfp4}; refusing to guess")
            if name.endswith((".blocks", ".scales")) and src.rsplit("_", 1)[0] in store:
                hint = (" — config.json's quantization_config says mxfp4 but the checkpoint holds float experts "
                        f"({src.rsplit('_', 1)[0]!r}); remove quantization_config or quantise the experts")
            hint = hint or _other_layout_hint(store, layout)
            raise CheckpointError(f"{store.directory}: missing tensor {src!r} (for {name!r}){hint}")
        used.add(src)
        if layout in FUSED_QKV and key in QKV_KEYS:
            weights[name] = _fused_qkv(store, src, key, cfg, layout)
            continue
        arr = store.get(src)
        transposed = any(key.endswith(t) for t in TRANSPOSED.get(layout, ()))
        if transposed:
            arr = arr.T if arr.ndim == 2 else arr.transpose(0, 2, 1)
        if tuple(arr.shape) != tuple(want):
            stored = f" (stored transposed as {tuple(store.shape(src))})" if transposed else ""
            raise CheckpointError(f"{store.directory}: tensor {src!r} read as {name!r} has shape {tuple(arr.shape)}"
                                  f"{stored}; config {cfg.name!r} expects {tuple(want)}")
        weights[name] = arr
    ignored = IGNORED.get(layout, ())
    extra = [k for k in store.keys() if k not in used and not k.endswith(ignored)]
    if extra:
        raise CheckpointError(f"{store.directory}: {len(extra)} tensor(s) not used by config {cfg.name!r} "
                              f"(layout {layout}), e.g. {extra[:5]}; config.json and the weights disagree")
    return weights


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


def check_dtypes_json(path, store):
    """dtypes.json beside an original config is optional (OpenAI's loader never reads it: the safetensors headers
    carry the dtypes); when present it must agree with them, so a mixed-up download is caught by name."""
    dpath = os.path.join(os.fspath(path), "dtypes.json")
    if not os.path.exists(dpath):
        return
    try:
        with open(dpath, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{dpath}: not valid JSON ({e})") from None
    if not isinstance(table, dict):
        raise CheckpointError(f"{dpath}: expected a JSON object of tensor name -> dtype, found {type(table).__name__}")
    for name, kind in table.items():
        if kind not in ORIGINAL_DTYPES:
            raise CheckpointError(f"{dpath}: tensor {name!r} has dtype {kind!r}; expected one of "
                                  f"{sorted(ORIGINAL_DTYPES)}")
        if name not in store:
            raise CheckpointError(f"{dpath}: lists tensor {name!r}, which the safetensors files do not hold")
        if store.dtype(name) != ORIGINAL_DTYPES[kind]:
            raise CheckpointError(f"{dpath}: tensor {name!r} is {kind} here but {store.dtype(name)} in "
                                  f"{store.file_of(name)}; expected safetensors dtype {ORIGINAL_DTYPES[kind]}")


def load_weights(path):
    """(ModelConfig, canonical weight dict of lazy arrays) for a checkpoint directory."""
    hf, cpath = read_config(path)
    layout = detect_layout(hf, cpath)
    store = TensorStore(path)
    probe = {"gpt2": ["wte.weight", "transformer.wte.weight"], "original": ["embedding.weight"]}.get(
        layout, ["model.embed_tokens.weight"])
    st = next((store.dtype(p) for p in probe if p in store), None)
    if st is not None and st not in ST_DTYPES:
        raise CheckpointError(f"{path}: embedding dtype {st}; expected one of {sorted(ST_DTYPES)}")
    name = os.path.basename(os.path.normpath(path))
    if layout == "original":
        if name == "original":  # a download's original/ directory: name it after the download
            name = os.path.basename(os.path.dirname(os.path.normpath(os.path.abspath(path)))) + "/original"
        check_dtypes_json(path, store)
        quant = "mxfp4" if "block.0.mlp.mlp1_weight.blocks" in store else "none"
        cfg = config_from_original(hf, weight_dtype=ST_DTYPES.get(st, "bfloat16"), expert_quant=quant, name=name,
                                   where=cpath)
    else:
        cfg = config_from_hf(hf, weight_dtype=ST_DTYPES.get(st, "float32"), name=name, where=cpath)
    return cfg, _map_tensors(store, cfg, layout)


def check_mxfp4_scales(weights, source):
    """E8M0 255 is NaN: scan every MXFP4 scale once at load (they are 1/16 of the blocks' bytes), so a corrupt
    expert fails here rather than in the middle of a generation that happens to route to it."""
    for name, w in weights.items():
        if name.endswith(".scales"):
            bad = np.flatnonzero(np.asarray(w).reshape(-1) == 255)
            if bad.size:
                where = tuple(int(i) for i in np.unravel_index(bad[0], w.shape))
                raise CheckpointError(f"{source}: MXFP4 scales {name!r} hold {bad.size} byte(s) of 255 (NaN in E8M0),"
                                      f" first at index {where}; expected exponents 0..254")


def load_model(path, dtype="float32", progress=True):
    """Model for a checkpoint directory; float tensors converted to `dtype` once (with a progress bar)."""
    cfg, weights = load_weights(path)
    check_weights(cfg, weights, source=str(path))  # names, shapes, dtypes: before anything is converted
    check_mxfp4_scales(weights, source=str(path))
    dtype = np.dtype(dtype)
    names = [n for n in weights if not n.endswith((".blocks", ".scales")) and ".mlp.experts." not in n or
             n.endswith(".bias")]
    if not cfg.tie_embeddings:  # the model converts only the rows it looks up (see Model._lookup_only)
        names.remove("embed.weight")
    try:
        from tqdm.auto import tqdm
        it = tqdm(names, desc=f"loading {cfg.name}", unit="tensor", disable=not progress or len(names) < 50)
    except ImportError:  # pragma: no cover
        it = names
    for n in it:
        src = weights[n]
        weights[n] = np.asarray(src, dtype=dtype)
        if weights[n] is not src and not np.shares_memory(weights[n], src):
            release_pages(src)  # the bf16 pages were read once for the copy: drop them from RSS (page cache keeps them)
    return Model(cfg, weights, dtype=dtype, source=str(path))
