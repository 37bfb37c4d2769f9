"""The checkpoint layouts as data: one table per layout from our canonical weight names (params.py) to the
names a checkpoint stores, plus which tensors are transposed, fused or ignored. The loader and the writer both read
these tables, so a name is spelled in one place."""


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
        **{f"layers.{{i}}.attn.{a}.{t}": f"model.layers.{{i}}.self_attn.{a}_proj.{t}"
           for a in "qkvo" for t in ("weight", "bias")},  # biases: attention_bias=true
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


class IdentityNames(dict):
    """The canonical layout's table: every canonical name is stored under itself."""

    def __missing__(self, key):
        return key

    def __contains__(self, key):
        return True


# This project's own layout, for configs no published layout can hold (chain steps 01-07 trained by the ladder):
# canonical tensor names (params.py) and a config.json of ModelConfig's fields under this model_type.
CANONICAL_MODEL_TYPE = "gptoss_from_scratch"
NAMES["canonical"] = IdentityNames()
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




def _layer_key(name):
    """('layers.{i}.attn.q.weight', '3') for 'layers.3.attn.q.weight'; (name, None) outside the layers."""
    parts = name.split(".")
    if parts[0] != "layers":
        return name, None
    return ".".join(["layers", "{i}"] + parts[2:]), parts[1]
