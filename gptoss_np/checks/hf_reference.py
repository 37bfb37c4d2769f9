"""The same trace, taken from Hugging Face transformers with forward hooks: the oracle's independent check.

transformers is a test/compare dependency only; nothing else in gptoss_np imports this module.
"""

import numpy as np


def _first(out):
    return out[0] if isinstance(out, tuple) else out


def hf_trace(hf_model, tokens):
    """Run a transformers GPT2LMHeadModel / GptOssForCausalLM / Qwen3MoeForCausalLM on `tokens` and return
    (logits [T, V], trace) with our trace point names (the ones transformers' modules expose)."""
    import torch

    kind = hf_model.config.model_type
    tr, hooks = {}, []

    def rec(name, pick=_first):
        def hook(_module, _inputs, output):
            t = pick(output)
            t = t[0] if t.dim() == 3 else t  # drop the batch axis
            tr[name] = t.detach().numpy() if not t.is_floating_point() else t.detach().float().numpy()
        return hook

    if kind == "gpt2":
        t = hf_model.transformer
        layers, final = t.h, t.ln_f
        names = dict(attn_norm="ln_1", ffn_norm="ln_2", attn="attn", mlp="mlp")
    else:
        m = hf_model.model
        layers, final = m.layers, m.norm
        names = dict(attn_norm="input_layernorm", ffn_norm="post_attention_layernorm", attn="self_attn", mlp="mlp")
    for i, layer in enumerate(layers):
        p = f"layers.{i}."
        hooks.append(getattr(layer, names["attn_norm"]).register_forward_hook(rec(p + "attn_norm")))
        hooks.append(getattr(layer, names["attn"]).register_forward_hook(rec(p + "attn.out")))
        hooks.append(getattr(layer, names["ffn_norm"]).register_forward_hook(rec(p + "ffn_norm")))
        hooks.append(getattr(layer, names["mlp"]).register_forward_hook(rec(p + "ffn.out")))
        hooks.append(layer.register_forward_hook(rec(p + "residual")))
        router = getattr(layer.mlp, "router", None) or getattr(layer.mlp, "gate", None)
        if router is not None and kind != "gpt2":  # routers return (logits [T, E], weights [T, k], experts [T, k])
            hooks.append(router.register_forward_hook(rec(p + "router.logits", lambda o: o[0])))
            hooks.append(router.register_forward_hook(rec(p + "router.weights", lambda o: o[1])))
            hooks.append(router.register_forward_hook(rec(p + "router.experts", lambda o: o[2])))
    hooks.append(final.register_forward_hook(rec("final_norm")))
    try:
        with torch.no_grad():
            out = hf_model(torch.as_tensor(np.asarray(tokens))[None], output_hidden_states=True)
    finally:
        for h in hooks:
            h.remove()
    tr["embed"] = out.hidden_states[0][0].float().numpy()
    logits = out.logits[0].float().numpy()
    tr["logits"] = logits
    for i in range(len(layers)):  # attn_residual is the block input plus the attention branch
        block_in = tr["embed"] if i == 0 else tr[f"layers.{i - 1}.residual"]
        tr[f"layers.{i}.attn_residual"] = block_in + tr[f"layers.{i}.attn.out"]
    return logits, tr
