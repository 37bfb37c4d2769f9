"""Counting from the config alone: parameters (total, active), stored bytes per dtype, KV-cache bytes, FLOPs.

Conventions follow the gpt-oss model card: "active" parameters are those a token touches, counting the output
head (unembedding) and the router but not the embedding table (a lookup reads one row), nor learned positions.
"""

import math

from .mxfp4 import mxfp4_bytes
from .params import is_expert_matrix, param_shapes

DTYPE_BYTES = {"float32": 4, "bfloat16": 2}


def _category(name):
    if name in ("embed.weight", "unembed.weight", "pos_embed.weight"):
        return "embedding"
    if name.startswith("final_norm"):
        return "final_norm"
    return "attention" if (".attn" in name) else "mlp"  # attn_norm is attention's; ffn_norm and router, mlp's


def count_params(cfg):
    """{'total', 'active', 'embedding', 'attention', 'mlp', 'experts', 'final_norm', 'non_embedding',
    'active_with_embedding'} in parameters, from the config's shapes."""
    shapes = param_shapes(cfg)
    out = {"embedding": 0, "attention": 0, "mlp": 0, "final_norm": 0, "experts": 0}
    for name, shape in shapes.items():
        n = math.prod(shape)
        out[_category(name)] += n
        if ".mlp.experts." in name:  # the expert matrices and their biases: only top_k of n_experts are active
            out["experts"] += n
    total = out["embedding"] + out["attention"] + out["mlp"] + out["final_norm"]
    lookup_only = math.prod(shapes["pos_embed.weight"]) if "pos_embed.weight" in shapes else 0
    if not cfg.tie_embeddings:  # an untied input table is a lookup; a tied one is also the output head
        lookup_only += math.prod(shapes["embed.weight"])
    idle_experts = out["experts"] * (cfg.n_experts - cfg.top_k) // cfg.n_experts if cfg.ffn == "moe" else 0
    active = total - lookup_only - idle_experts
    out.update(total=total, active=active, active_with_embedding=active + lookup_only,
               non_embedding=total - out["embedding"])
    return out


def weight_bytes(cfg):
    """Stored checkpoint bytes by storage format: {'float32' | 'bfloat16': ..., 'mxfp4': ..., 'total': ...}."""
    out = {}
    for name, shape in param_shapes(cfg).items():
        n = math.prod(shape)
        if cfg.expert_quant == "mxfp4" and is_expert_matrix(name):
            out["mxfp4"] = out.get("mxfp4", 0) + mxfp4_bytes(n)
        else:
            out[cfg.weight_dtype] = out.get(cfg.weight_dtype, 0) + n * DTYPE_BYTES[cfg.weight_dtype]
    out["total"] = sum(out.values())
    return out


def kv_cache_bytes(cfg, n_tokens, dtype_bytes=None):
    """Bytes of keys + values held after n_tokens: full layers hold n, sliding layers min(n, window)."""
    b = DTYPE_BYTES[cfg.weight_dtype] if dtype_bytes is None else dtype_bytes
    per_token_layer = 2 * cfg.n_kv_heads * cfg.head_dim * b  # k and v
    return sum(per_token_layer * (n_tokens if w is None else min(n_tokens, w)) for w in cfg.layer_windows)


def kv_bytes_per_token(cfg, context=None, dtype_bytes=None):
    """Average KV-cache bytes per token at `context` tokens (default: the model's full context)."""
    context = cfg.context_length if context is None else context
    return kv_cache_bytes(cfg, context, dtype_bytes) / context


def flops_per_token(cfg, context=1):
    """Forward FLOPs for one token at position `context`: 2 per multiply-add of every active matrix (the embedding
    lookup is free) plus q.k and p.v over the keys the layer sees (a window caps them)."""
    flops = 0
    for name, shape in param_shapes(cfg).items():
        if len(shape) < 2 or name in ("embed.weight", "pos_embed.weight") and not (
                cfg.tie_embeddings and name == "embed.weight"):
            continue
        n = math.prod(shape[-2:]) * (cfg.top_k if len(shape) == 3 else 1)  # experts: only top_k of them
        flops += 2 * n
    for w in cfg.layer_windows:
        keys = context if w is None else min(context, w)
        flops += 2 * 2 * cfg.n_heads * cfg.head_dim * keys
    return flops


def summary(cfg, context=4096):
    """The headline numbers of one config at real size: params, active params, weight bytes, KV bytes per token
    (averaged over `context` tokens, capped at the model's context), FLOPs per token at that context."""
    ctx = min(context, cfg.context_length)
    p, wb = count_params(cfg), weight_bytes(cfg)
    return {"params": p["total"], "active params": p["active"], "weight bytes": wb["total"],
            "KV bytes/token": kv_bytes_per_token(cfg, ctx), "FLOPs/token": flops_per_token(cfg, ctx)}


def delta_table(prev, cfg, context=4096):
    """Rows (quantity, before, after, change in %) between two configs, e.g. two consecutive chapter steps."""
    a, b = summary(prev, context), summary(cfg, context)
    return [(k, a[k], b[k], (b[k] - a[k]) / a[k] * 100 if a[k] else float("nan")) for k in a]


def format_delta_table(prev, cfg, context=4096):
    """delta_table as aligned text (numbers in human units), for chapters and the book."""
    def human(v):
        for unit, div in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
            if abs(v) >= div:
                return f"{v / div:,.2f}{unit}"
        return f"{v:,.0f}"
    rows = [f"{'':<16}{prev.name:>16}{cfg.name:>20}{'change':>10}"]
    for k, x, y, pct in delta_table(prev, cfg, context):
        rows.append(f"{k:<16}{human(x):>16}{human(y):>20}{pct:>+9.1f}%")
    return "\n".join(rows)


def decode_bytes_per_token(cfg, context, kv_dtype_bytes=2):
    """Bytes batch-1 decode must read per token at `context`: every weight a token uses (attention, router, norms,
    the top_k routed experts at their stored width, the output head; one embedding row) plus the KV cache it
    attends over (full layers: context keys, sliding layers: min(context, window)). Divide a measured memory
    bandwidth by this for the decode ceiling in tokens/s."""
    n = 0.0
    for name, shape in param_shapes(cfg).items():
        count = math.prod(shape)
        if name in ("embed.weight", "pos_embed.weight") and not (cfg.tie_embeddings and name == "embed.weight"):
            n += shape[-1] * DTYPE_BYTES[cfg.weight_dtype]  # one row
            continue
        if ".mlp.experts." in name:
            count = count * cfg.top_k // cfg.n_experts
            if cfg.expert_quant == "mxfp4" and is_expert_matrix(name):
                n += mxfp4_bytes(count)
                continue
        n += count * DTYPE_BYTES[cfg.weight_dtype]
    return n + kv_cache_bytes(cfg, context, kv_dtype_bytes)
