"""gpt-oss on one page: the whole forward pass of gpt-oss in plain NumPy, built from what chapters 00-09 built.

    python chapters/gpt_oss_one_page.py "Good morrow, what news?"        # the shipped model, greedy

The math (between the two rulers below) imports only numpy. Its functions are named after the math, and their
parameters after the keys of a Hugging Face gpt-oss checkpoint: `load` nests the dotted tensor names into dicts and
lists (`model.layers.0.self_attn.q_proj.weight` -> params["model"]["layers"][0]["self_attn"]["q_proj"]["weight"]),
so a block is called as `block(x, **layer)` and a renamed tensor fails at the call. The hyperparameters are read
from config.json under their own names. T tokens, D hidden_size, H heads of head_dim d, E experts, k per token.
Checked against the gptoss_np oracle trace point by trace point in tests/test_one_page.py and chapter 13;
chapters/qwen3_one_page.py is this file with the lines Qwen3-30B-A3B changes marked.
"""

import numpy as np

# ---- the math ------------------------------------------------------------------------------------------------------

FP4 = np.array([0, .5, 1, 1.5, 2, 3, 4, 6, -0., -.5, -1, -1.5, -2, -3, -4, -6], dtype=np.float32)  # E2M1 code -> value


def mxfp4_decode(blocks, scales):
    """W[r, 32g + i] = FP4[code i of block g] * 2^(scale_g - 127); two codes a byte, low nibble first."""
    codes = np.stack([blocks & 0x0F, blocks >> 4], axis=-1).reshape(*scales.shape, 32)  # [out, G, 16] -> [out, G, 32]
    w = FP4[codes] * np.ldexp(np.float32(1), scales[..., None].astype(np.int32) - 127)  # [out, G, 32]: exact
    return w.reshape(len(scales), -1)  # [out, 32 G]


def rms_norm(x, weight, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * weight


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))  # = 1 / (1 + exp(-x)), with no overflow for large negative x


def linear(x, weight, bias=0):
    return x @ weight.T + bias  # weight [out, in]: [T, in] -> [T, out]


def yarn(head_dim, rope_theta, factor, original_max_position_embeddings, beta_fast, beta_slow, truncate=True,
         rope_type="yarn"):
    """RoPE's speeds theta^(-2i/d), divided by `factor` for the pairs that turn fewer than beta_slow times over the
    original context, kept for those that turn more than beta_fast times, a linear ramp between; and 0.1 ln s + 1."""
    inv_freq = rope_theta ** -(np.arange(0, head_dim, 2) / head_dim)  # [d/2]
    low, high = (head_dim / 2 * np.log(original_max_position_embeddings / (turns * 2 * np.pi)) / np.log(rope_theta)
                 for turns in (beta_fast, beta_slow))  # the (fractional) pair indices where the ramp starts, ends
    low, high = (np.floor(low), np.ceil(high)) if truncate else (low, high)
    ramp = np.clip((np.arange(head_dim // 2) - max(low, 0)) / (min(high, head_dim - 1) - max(low, 0)), 0, 1)  # [d/2]
    return inv_freq * (1 - ramp) + inv_freq / factor * ramp, 0.1 * np.log(factor) + 1


def rope(x, cos, sin):
    """Rotate the pairs (x_i, x_{i + d/2}) by the angle t * omega_i (half-split, not interleaved)."""
    x1, x2 = np.split(x, 2, axis=-1)  # [T, H, d] -> 2 x [T, H, d/2]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)  # [T, H, d]


def attention(x, q_proj, k_proj, v_proj, o_proj, sinks, cos, sin, window, head_dim, tr, pre):
    """Grouped-query attention over the last `window` tokens (the current one included), with a learned sink
    logit per head that joins each softmax's denominator and is then dropped."""
    T = len(x)
    tr[pre + "attn.q"] = q = rope(linear(x, **q_proj).reshape(T, -1, head_dim), cos, sin)  # [T, D] -> [T, H, d]
    tr[pre + "attn.k"] = k = rope(linear(x, **k_proj).reshape(T, -1, head_dim), cos, sin)  # [T, D] -> [T, Hkv, d]
    tr[pre + "attn.v"] = v = linear(x, **v_proj).reshape(T, -1, head_dim)  # [T, D] -> [T, Hkv, d]
    group = q.shape[1] // k.shape[1]  # query head h reads kv head h // group
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # [T, Hkv, d] -> [T, H, d]
    q, k, v = q.transpose(1, 0, 2), k.transpose(1, 0, 2), v.transpose(1, 0, 2)  # [H, T, d] each
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim)  # [H, T, d] @ [H, d, T] -> [H, T, T]
    t, s = np.arange(T)[:, None], np.arange(T)[None, :]  # [T, 1], [1, T]
    scores = np.where((s <= t) & (s > t - window), scores, -np.inf)  # [H, T, T]
    sink = np.broadcast_to(sinks[:, None, None], (len(sinks), T, 1))  # [H, T, 1]
    probs = softmax(np.concatenate([scores, sink], axis=-1))[..., :-1]  # [H, T, T + 1] -> [H, T, T]
    out = (probs @ v).transpose(1, 0, 2).reshape(T, -1)  # [H, T, d] -> [T, H, d] -> [T, H d]
    return linear(out, **o_proj)  # [T, H d] -> [T, D]


def swiglu(x, limit, alpha=1.702):
    """gpt-oss's SwiGLU: gate and linear columns interleaved, both clamped, +1 on the linear half."""
    gate, lin = np.minimum(x[:, ::2], limit), np.clip(x[:, 1::2], -limit, limit)  # [n, 2F] -> 2 x [n, F]
    return gate * sigmoid(alpha * gate) * (lin + 1)  # [n, F]


def expert(e, x, gate_up_proj_blocks, gate_up_proj_scales, gate_up_proj_bias, down_proj_blocks, down_proj_scales,
           down_proj_bias, swiglu_limit):
    """Expert e on its tokens, its MXFP4 matrices decoded as they are needed."""
    up = mxfp4_decode(gate_up_proj_blocks[e], gate_up_proj_scales[e])  # [2F, D]
    down = mxfp4_decode(down_proj_blocks[e], down_proj_scales[e])  # [D, F]
    h = swiglu(linear(x, up, gate_up_proj_bias[e]), swiglu_limit)  # [n, D] -> [n, 2F] -> [n, F]
    return linear(h, down, down_proj_bias[e])  # [n, F] -> [n, D]


def moe(x, router, experts, num_experts_per_tok, swiglu_limit, tr, pre):
    """Top-k of the router logits, then a softmax over those k; each token's k experts mixed with those weights."""
    tr[pre + "router.logits"] = logits = linear(x, **router)  # [T, D] -> [T, E]
    tr[pre + "router.experts"] = top = np.argsort(-logits, axis=-1, kind="stable")[:, :num_experts_per_tok]  # [T, k]
    tr[pre + "router.weights"] = weights = softmax(np.take_along_axis(logits, top, axis=-1))  # [T, k]
    out = np.zeros_like(x)  # [T, D]
    for e in np.unique(top):  # every expert picked at least once, with the tokens t that picked it in slot j
        t, j = np.nonzero(top == e)  # [n], [n]
        out[t] += weights[t, j, None] * expert(e, x[t], **experts, swiglu_limit=swiglu_limit)  # [n, D]
    return out


def block(x, input_layernorm, self_attn, post_attention_layernorm, mlp, cos, sin, window, config, tr, pre):
    tr[pre + "attn_norm"] = h = rms_norm(x, **input_layernorm, eps=config["rms_norm_eps"])
    tr[pre + "attn.out"] = h = attention(h, **self_attn, cos=cos, sin=sin, window=window,
                                         head_dim=config["head_dim"], tr=tr, pre=pre)
    tr[pre + "attn_residual"] = x = x + h
    tr[pre + "ffn_norm"] = h = rms_norm(x, **post_attention_layernorm, eps=config["rms_norm_eps"])
    tr[pre + "ffn.out"] = h = moe(h, **mlp, num_experts_per_tok=config["num_experts_per_tok"],
                                  swiglu_limit=config["swiglu_limit"], tr=tr, pre=pre)
    tr[pre + "residual"] = x = x + h
    return x


def gpt_oss(tokens, model, lm_head, config, trace=None):
    """tokens [T] -> logits [T, vocab_size]; `trace` (a dict) receives gptoss_np's trace points."""
    tr = {} if trace is None else trace
    tr["embed"] = x = model["embed_tokens"]["weight"][tokens]  # [T] -> [T, D]
    inv_freq, scale = yarn(config["head_dim"], config["rope_theta"], **config["rope_scaling"])  # [d/2]
    angles = np.arange(len(tokens))[:, None, None] * inv_freq  # [T, 1, d/2]: one angle per position and pair
    cos, sin = (scale * np.cos(angles)).astype(x.dtype), (scale * np.sin(angles)).astype(x.dtype)  # [T, 1, d/2]
    for i, (layer, kind) in enumerate(zip(model["layers"], config["layer_types"])):
        window = config["sliding_window"] if kind == "sliding_attention" else len(tokens)
        x = block(x, **layer, cos=cos, sin=sin, window=window, config=config, tr=tr, pre=f"layers.{i}.")  # [T, D]
    tr["final_norm"] = x = rms_norm(x, **model["norm"], eps=config["rms_norm_eps"])
    tr["logits"] = logits = linear(x, **lm_head)  # [T, D] -> [T, vocab_size]
    return logits


def generate(tokens, params, config, n_tokens, stop=()):
    """Greedy decoding, the whole sequence again at every step (no KV cache): the new token ids."""
    tokens, new = list(tokens), []
    while len(new) < n_tokens and not (new and new[-1] in stop):
        new.append(int(np.argmax(gpt_oss(np.array(tokens + new), **params, config=config)[-1])))  # [T, V] -> id
    return new


# ---- loading and running: not the math ------------------------------------------------------------------------------

def nest(flat):
    """{"a.0.b": w} -> {"a": [{"b": w}]}: a checkpoint's dotted names as nested dicts, numbered levels as lists."""
    tree = {}
    for name, value in flat.items():
        *path, leaf = name.split(".")
        node = tree
        for key in path:
            node = node.setdefault(key, {})
        node[leaf] = value

    def lists(node):
        if not isinstance(node, dict):
            return node
        if all(k.isdigit() for k in node):
            return [lists(node[str(i)]) for i in range(len(node))]
        return {k: lists(v) for k, v in node.items()}
    return lists(tree)


def load(path, dtype=np.float32):
    """(params, config) of a Hugging Face gpt-oss checkpoint with MXFP4 experts: float tensors as `dtype`, the
    MXFP4 blocks and scales as the bytes they are."""
    from gptoss_np.errors import CheckpointError
    from gptoss_np.formats.json_io import read_json
    from gptoss_np.formats.safetensors_io import TensorStore
    config = read_json(f"{path}/config.json", "config.json")
    quant = (config.get("quantization_config") or {}).get("quant_method")
    if config.get("model_type") != "gpt_oss" or quant != "mxfp4":
        raise CheckpointError(f"{path}/config.json: model_type {config.get('model_type')!r} with quant_method "
                              f"{quant!r}; expected model_type 'gpt_oss' with MXFP4 experts (quant_method 'mxfp4')")
    store = TensorStore(path)
    return nest({n: store.get(n) if store.dtype(n) == "U8" else store.get(n).astype(dtype) for n in store}), config


def main(argv=None):
    import argparse
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)  # run from a clone without installing
    import gptoss_np
    from gptoss_np.text.harmony import chat_prompt, final_text, parse_reply, stop_tokens
    ap = argparse.ArgumentParser(description="Greedy chat with a gpt-oss checkpoint through the one-page forward.")
    ap.add_argument("prompt")
    ap.add_argument("--checkpoint", help="a Hugging Face gpt-oss directory (default: the shipped model)")
    ap.add_argument("--max-tokens", type=int, default=60)
    args = ap.parse_args(argv)
    path = args.checkpoint or gptoss_np.default_checkpoint()
    params, config = load(path)
    enc = gptoss_np.get_tokenizer(path)
    reply = generate(chat_prompt(enc, args.prompt), params, config, args.max_tokens, stop_tokens(enc))
    print(final_text(parse_reply(enc, reply)) or enc.decode(reply))


if __name__ == "__main__":
    main()
