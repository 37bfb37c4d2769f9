"""Qwen3-30B-A3B on one page: chapters/gpt_oss_one_page.py with every line that Qwen3 changes marked `# QWEN3:`.

    python -m gptoss_np write-checkpoint --preset qwen3-30b-a3b --scale-down --vocab-size 151669 --out /tmp/q3
    python chapters/qwen3_one_page.py --checkpoint /tmp/q3 "Hello"      # random weights: gibberish, greedy

Apart from this docstring the two files differ only in marked lines (tests/test_one_page.py checks it with difflib),
so `diff chapters/gpt_oss_one_page.py chapters/qwen3_one_page.py` is the whole architectural difference: QK-norm,
no sinks, no sliding window, no biases, plain RoPE without YaRN, a softmax-then-top-k router renormalised over the k,
plain SwiGLU on separate gate and up matrices, bf16 experts stored one by one instead of MXFP4. The parameters are
named after a Hugging Face Qwen3-MoE checkpoint's keys (`model.layers.0.mlp.gate.weight`,
`model.layers.0.mlp.experts.7.up_proj.weight`, ...), the hyperparameters after its config.json.
"""

import numpy as np

# ---- the math ------------------------------------------------------------------------------------------------------

# QWEN3: no MXFP4: the experts are bf16 matrices like every other weight


def rms_norm(x, weight, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * weight


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))  # = 1 / (1 + exp(-x)), with no overflow for large negative x


def linear(x, weight, bias=0):
    return x @ weight.T + bias  # weight [out, in]: [T, in] -> [T, out]
# QWEN3: no biases anywhere in the checkpoint: every linear() adds the default 0


# QWEN3: no YaRN: rope_scaling is null, RoPE keeps its speeds theta^(-2i/d) (theta = 1e6 for a 40960-token context)


def rope(x, cos, sin):
    """Rotate the pairs (x_i, x_{i + d/2}) by the angle t * omega_i (half-split, not interleaved)."""
    x1, x2 = np.split(x, 2, axis=-1)  # [T, H, d] -> 2 x [T, H, d/2]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)  # [T, H, d]


def attention(x, q_proj, k_proj, v_proj, o_proj, q_norm, k_norm, cos, sin, head_dim, eps, tr, pre):  # QWEN3: +QK-norm
    """Causal grouped-query attention, queries and keys RMS-normed per head before RoPE."""  # QWEN3: no sink, window
    T = len(x)
    q = rms_norm(linear(x, **q_proj).reshape(T, -1, head_dim), **q_norm, eps=eps)  # QWEN3: QK-norm [T, H, d]
    k = rms_norm(linear(x, **k_proj).reshape(T, -1, head_dim), **k_norm, eps=eps)  # QWEN3: QK-norm [T, Hkv, d]
    tr[pre + "attn.q"], tr[pre + "attn.k"] = q, k = rope(q, cos, sin), rope(k, cos, sin)  # QWEN3: RoPE after it
    tr[pre + "attn.v"] = v = linear(x, **v_proj).reshape(T, -1, head_dim)  # [T, D] -> [T, Hkv, d]
    group = q.shape[1] // k.shape[1]  # query head h reads kv head h // group
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # [T, Hkv, d] -> [T, H, d]
    q, k, v = q.transpose(1, 0, 2), k.transpose(1, 0, 2), v.transpose(1, 0, 2)  # [H, T, d] each
    scores = q @ k.transpose(0, 2, 1) / np.sqrt(head_dim)  # [H, T, d] @ [H, d, T] -> [H, T, T]
    t, s = np.arange(T)[:, None], np.arange(T)[None, :]  # [T, 1], [1, T]
    scores = np.where(s <= t, scores, -np.inf)  # QWEN3: every layer causal over the whole context [H, T, T]
    probs = softmax(scores)  # QWEN3: no sink column [H, T, T]
    out = (probs @ v).transpose(1, 0, 2).reshape(T, -1)  # [H, T, d] -> [T, H, d] -> [T, H d]
    return linear(out, **o_proj)  # [T, H d] -> [T, D]


def swiglu(gate, up):  # QWEN3: plain SwiGLU, gate and up from separate matrices
    return gate * sigmoid(gate) * up  # QWEN3: silu(gate) * up: no clamp, no alpha, no +1 [n, F]


def expert(x, gate_proj, up_proj, down_proj):  # QWEN3: one expert's own bf16 matrices
    h = swiglu(linear(x, **gate_proj), linear(x, **up_proj))  # QWEN3: [n, D] -> 2 x [n, F] -> [n, F]
    return linear(h, **down_proj)  # QWEN3: [n, F] -> [n, D]


def moe(x, gate, experts, num_experts_per_tok, tr, pre):  # QWEN3: the router is mlp.gate
    """A softmax over all E router logits, then its top k renormalised; each token's k experts mixed."""  # QWEN3
    tr[pre + "router.logits"] = logits = linear(x, **gate)  # QWEN3: [T, D] -> [T, E]
    probs = softmax(logits)  # QWEN3: the softmax first, over all E [T, E]
    top = np.argsort(-probs, axis=-1, kind="stable")[:, :num_experts_per_tok]  # QWEN3: top k of the probabilities
    tr[pre + "router.experts"] = top  # QWEN3: [T, k]
    w = np.take_along_axis(probs, top, axis=-1)  # QWEN3: [T, k]
    tr[pre + "router.weights"] = weights = w / w.sum(axis=-1, keepdims=True)  # QWEN3: norm_topk_prob [T, k]
    out = np.zeros_like(x)  # [T, D]
    for e in np.unique(top):  # every expert picked at least once, with the tokens t that picked it in slot j
        t, j = np.nonzero(top == e)  # [n], [n]
        out[t] += weights[t, j, None] * expert(x[t], **experts[e])  # QWEN3: experts is a list [n, D]
    return out


def block(x, input_layernorm, self_attn, post_attention_layernorm, mlp, cos, sin, config, tr, pre):  # QWEN3: no window
    tr[pre + "attn_norm"] = h = rms_norm(x, **input_layernorm, eps=config["rms_norm_eps"])
    tr[pre + "attn.out"] = h = attention(h, **self_attn, cos=cos, sin=sin, eps=config["rms_norm_eps"],  # QWEN3
                                         head_dim=config["head_dim"], tr=tr, pre=pre)
    tr[pre + "attn_residual"] = x = x + h
    tr[pre + "ffn_norm"] = h = rms_norm(x, **post_attention_layernorm, eps=config["rms_norm_eps"])
    tr[pre + "ffn.out"] = h = moe(h, **mlp, num_experts_per_tok=config["num_experts_per_tok"],
                                  tr=tr, pre=pre)  # QWEN3: no swiglu_limit
    tr[pre + "residual"] = x = x + h
    return x


def qwen3_moe(tokens, model, lm_head, config, trace=None):  # QWEN3: the name
    """tokens [T] -> logits [T, vocab_size]; `trace` (a dict) receives gptoss_np's trace points."""
    tr = {} if trace is None else trace
    tr["embed"] = x = model["embed_tokens"]["weight"][tokens]  # [T] -> [T, D]
    inv_freq = config["rope_theta"] ** -(np.arange(0, config["head_dim"], 2) / config["head_dim"])  # QWEN3: [d/2]
    angles = np.arange(len(tokens))[:, None, None] * inv_freq  # [T, 1, d/2]: one angle per position and pair
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)  # QWEN3: no YaRN factor [T, 1, d/2]
    for i, layer in enumerate(model["layers"]):  # QWEN3: no layer_types, every layer attends to everything
        x = block(x, **layer, cos=cos, sin=sin, config=config, tr=tr, pre=f"layers.{i}.")  # QWEN3: [T, D]
    tr["final_norm"] = x = rms_norm(x, **model["norm"], eps=config["rms_norm_eps"])
    tr["logits"] = logits = linear(x, **lm_head)  # [T, D] -> [T, vocab_size]
    return logits


def generate(tokens, params, config, n_tokens, stop=()):
    """Greedy decoding, the whole sequence again at every step (no KV cache): the new token ids."""
    tokens, new = list(tokens), []
    while len(new) < n_tokens and not (new and new[-1] in stop):
        new.append(int(np.argmax(qwen3_moe(np.array(tokens + new), **params, config=config)[-1])))  # QWEN3: the name
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
    """(params, config) of a Hugging Face Qwen3-MoE checkpoint: every tensor as `dtype`."""  # QWEN3
    from gptoss_np.errors import CheckpointError
    from gptoss_np.formats.json_io import read_json
    from gptoss_np.formats.safetensors_io import TensorStore
    config = read_json(f"{path}/config.json", "config.json")
    if config.get("model_type") != "qwen3_moe":  # QWEN3
        raise CheckpointError(f"{path}/config.json: model_type {config.get('model_type')!r}; expected "  # QWEN3
                              "'qwen3_moe' (a Hugging Face Qwen3-MoE checkpoint)")  # QWEN3
    store = TensorStore(path)
    return nest({n: store.get(n) if store.dtype(n) == "U8" else store.get(n).astype(dtype) for n in store}), config


def main(argv=None):
    import argparse
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)  # run from a clone without installing
    import gptoss_np
    ap = argparse.ArgumentParser(description="Greedy chat with a Qwen3-MoE checkpoint, one-page forward.")  # QWEN3
    ap.add_argument("prompt")
    ap.add_argument("--checkpoint", required=True, help="a Hugging Face Qwen3-MoE directory")  # QWEN3: none ships
    ap.add_argument("--max-tokens", type=int, default=60)
    args = ap.parse_args(argv)
    path = args.checkpoint  # QWEN3
    params, config = load(path)
    enc = gptoss_np.get_tokenizer(path)
    chatml = f"<|im_start|>user\n{args.prompt}<|im_end|>\n<|im_start|>assistant\n"  # QWEN3: ChatML, not harmony
    prompt = enc.encode(chatml, allowed_special="all")  # QWEN3
    reply = generate(prompt, params, config, args.max_tokens, {enc.encode_single_token("<|im_end|>")})  # QWEN3
    print(enc.decode(reply))  # QWEN3: no channels to parse


if __name__ == "__main__":
    main()
