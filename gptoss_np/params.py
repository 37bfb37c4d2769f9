"""The canonical weight dict: one name and one shape per parameter, derived from the config alone.

Every loader translates a checkpoint into these names, the models read only these names, and the accounting
counts these shapes, so a renamed or mis-shaped weight fails here, with its name, not inside a matmul.

    embed.weight            [V, D]        token embedding
    pos_embed.weight        [ctx, D]      learned absolute positions (positions == "learned")
    layers.{i}.attn_norm.weight/.bias     [D]  (bias: LayerNorm only)
    layers.{i}.attn.{q,k,v}.weight/.bias  [Hq*d | Hkv*d, D]   nn.Linear layout [out, in]
    layers.{i}.attn.o.weight/.bias        [D, Hq*d]
    layers.{i}.attn.sinks                 [Hq]  (sinks)
    layers.{i}.attn.{q,k}_norm.weight     [d]   (qk_norm)
    layers.{i}.ffn_norm.weight/.bias      [D]
    layers.{i}.mlp.up.weight/.bias        [F or 2F, D]  dense; GLU halves: swiglu [gate | up], swiglu_oss interleaved
    layers.{i}.mlp.down.weight/.bias      [D, F]
    layers.{i}.mlp.router.weight/.bias    [E, D]        (moe)
    layers.{i}.mlp.experts.up.weight      [E, 2F, D]    or .blocks [E, 2F, D/32, 16] u8 + .scales [E, 2F, D/32] u8
    layers.{i}.mlp.experts.up.bias        [E, 2F]
    layers.{i}.mlp.experts.down.weight    [E, D, F]     or .blocks [E, D, F/32, 16] + .scales [E, D, F/32]
    layers.{i}.mlp.experts.down.bias      [E, D]
    final_norm.weight/.bias               [D]
    unembed.weight          [V, D]        absent when tie_embeddings (the head reuses embed.weight)
"""

import numpy as np

from .errors import CheckpointError
from .mxfp4 import mxfp4_encode

EXPERT_MATRICES = ("mlp.experts.up", "mlp.experts.down")


def _norm(prefix, cfg, D):
    """{prefix}.weight [D], plus {prefix}.bias [D] for LayerNorm."""
    shapes = {f"{prefix}.weight": (D,)}
    if cfg.norm == "layernorm":
        shapes[f"{prefix}.bias"] = (D,)
    return shapes


def param_shapes(cfg):
    """Every parameter's logical shape (experts as float [E, out, in] whatever their storage), in model order."""
    D, F, V = cfg.d_model, cfg.ffn_hidden, cfg.vocab_size
    up_rows = 2 * F if cfg.glu else F
    s = {"embed.weight": (V, D)}
    if cfg.positions == "learned":
        s["pos_embed.weight"] = (cfg.context_length, D)
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        s.update({p + k: v for k, v in _norm("attn_norm", cfg, D).items()})
        for name, rows in (("q", cfg.q_dim), ("k", cfg.kv_dim), ("v", cfg.kv_dim)):
            s[p + f"attn.{name}.weight"] = (rows, D)
            if cfg.attn_bias:
                s[p + f"attn.{name}.bias"] = (rows,)
        if cfg.qk_norm:
            s[p + "attn.q_norm.weight"] = (cfg.head_dim,)
            s[p + "attn.k_norm.weight"] = (cfg.head_dim,)
        s[p + "attn.o.weight"] = (D, cfg.q_dim)
        if cfg.attn_bias:
            s[p + "attn.o.bias"] = (D,)
        if cfg.sinks:
            s[p + "attn.sinks"] = (cfg.n_heads,)
        s.update({p + k: v for k, v in _norm("ffn_norm", cfg, D).items()})
        if cfg.ffn == "dense":
            s[p + "mlp.up.weight"] = (up_rows, D)
            s[p + "mlp.down.weight"] = (D, F)
            if cfg.mlp_bias:
                s[p + "mlp.up.bias"] = (up_rows,)
                s[p + "mlp.down.bias"] = (D,)
        else:
            E = cfg.n_experts
            s[p + "mlp.router.weight"] = (E, D)
            s[p + "mlp.experts.up.weight"] = (E, up_rows, D)
            s[p + "mlp.experts.down.weight"] = (E, D, F)
            if cfg.mlp_bias:
                s[p + "mlp.router.bias"] = (E,)
                s[p + "mlp.experts.up.bias"] = (E, up_rows)
                s[p + "mlp.experts.down.bias"] = (E, D)
    s.update(_norm("final_norm", cfg, D))
    if not cfg.tie_embeddings:
        s["unembed.weight"] = (V, D)
    return s


def is_expert_matrix(name):
    """name = <prefix>mlp.experts.{up,down}.weight: a stacked expert matrix [E, out, in] (MXFP4-packable)."""
    return name.endswith(".weight") and name[: -len(".weight")].endswith(EXPERT_MATRICES)


def storage_shapes(cfg):
    """Parameter name -> (shape, storage dtype) as the model holds them: MXFP4 experts as blocks + scales."""
    out = {}
    for name, shape in param_shapes(cfg).items():
        if cfg.expert_quant == "mxfp4" and is_expert_matrix(name):
            base = name[: -len(".weight")]
            E, rows, cols = shape
            out[base + ".blocks"] = ((E, rows, cols // 32, 16), "uint8")
            out[base + ".scales"] = ((E, rows, cols // 32), "uint8")
        else:
            out[name] = (shape, "float")
    return out


def check_weights(cfg, weights, source="weights"):
    """Raise CheckpointError if `weights` lacks a tensor, has an extra one, or one has the wrong shape/dtype."""
    expected = storage_shapes(cfg)
    missing = [n for n in expected if n not in weights]
    extra = [n for n in weights if n not in expected]
    if missing:
        raise CheckpointError(f"{source}: missing {len(missing)} tensor(s) for config {cfg.name!r}, e.g. "
                              f"{missing[:5]}")
    if extra:
        raise CheckpointError(f"{source}: {len(extra)} unexpected tensor(s) for config {cfg.name!r}, e.g. "
                              f"{extra[:5]}")
    for name, (shape, kind) in expected.items():
        w = weights[name]
        if tuple(w.shape) != tuple(shape):
            raise CheckpointError(f"{source}: tensor {name!r} has shape {tuple(w.shape)}; config {cfg.name!r} "
                                  f"expects {tuple(shape)}")
        if kind == "uint8" and w.dtype != np.uint8:
            raise CheckpointError(f"{source}: tensor {name!r} has dtype {w.dtype}; MXFP4 expects uint8")
        if kind == "float" and not np.issubdtype(np.dtype(w.dtype), np.floating) and w.dtype.name != "bfloat16":
            raise CheckpointError(f"{source}: tensor {name!r} has dtype {w.dtype}; expected a float dtype")


def init_weights(cfg, seed=0, std=0.02):
    """Random weights for `cfg` (small configs): N(0, std) matrices, norms near 1, small biases, sinks ~ N(0, 1);
    MXFP4 experts are drawn in float and then encoded, so they are exactly what the packed model decodes."""
    rng = np.random.default_rng(seed)
    w = {}
    for name, shape in param_shapes(cfg).items():
        if ".norm" in name or "_norm" in name or name.startswith("final_norm"):
            arr = (1.0 + 0.1 * rng.standard_normal(shape)) if name.endswith("weight") else \
                0.1 * rng.standard_normal(shape)
        elif name.endswith("sinks"):
            arr = rng.standard_normal(shape)
        elif name.endswith("bias"):
            arr = 0.02 * rng.standard_normal(shape)
        else:
            arr = std * rng.standard_normal(shape)
        arr = arr.astype(np.float32)
        if cfg.expert_quant == "mxfp4" and is_expert_matrix(name):
            base = name[: -len(".weight")]
            w[base + ".blocks"], w[base + ".scales"] = mxfp4_encode(arr, name=name)
        else:
            w[name] = arr
    return w
