# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 10 · gpt-oss-20b beside Qwen3-30B-A3B
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down configs with random weights: no download, no GPU.
# Real-size tables and figures come from the configs alone.*
#
# The chain ends at gpt-oss-20b. This chapter sets it beside the model the seed compares it with, Qwen3-30B-A3B, a
# mixture-of-experts model of similar active size released a few months earlier. The two share the same
# skeleton: pre-norm RMSNorm blocks, RoPE, grouped-query attention, SwiGLU experts, no dropout, untied embeddings.
# Both are configs of the same `ModelConfig`, so their differences can be listed as data, then examined one by one.

# %%
import pathlib
import sys

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import dataclasses
import math
import time

import matplotlib.pyplot as plt
import numpy as np

import gptoss_np
from gptoss_np import attention as A
from gptoss_np import moe as M
from gptoss_np.accounting import format_delta_table, kv_cache_bytes, summary
from gptoss_np.ffn import linear
from gptoss_np.norms import rms_norm
from gptoss_np.rope import apply_rope, rope_cos_sin, rope_frequencies

T_START = time.time()
oss, qwen = gptoss_np.get_config("gpt-oss-20b"), gptoss_np.get_config("qwen3-30b-a3b")
rng = np.random.default_rng(0)


def show(v):
    if isinstance(v, tuple) and len(v) > 4:  # layer_windows
        return "all full" if set(v) == {None} else f"{v[:2]} x {len(v) // 2}"
    if dataclasses.is_dataclass(v):
        return f"YaRN x{v.factor:g} from {v.original_context}"
    return str(v)


print(f"{'field':16}{oss.name:>24}{qwen.name:>26}")
for f in dataclasses.fields(oss):
    a, b = getattr(oss, f.name), getattr(qwen, f.name)
    if f.name != "name" and a != b:
        print(f"{f.name:16}{show(a):>24}{show(b):>26}")

# %% [markdown]
# ## Explain
#
# - **Width against depth.** gpt-oss is wide and shallow (*d* = 2880, 24 layers), Qwen3 narrow and deep (*d* = 2048,
#   48 layers). The seed reports a Gemma 2 ablation as favouring width, but the [Gemma 2
#   report](https://arxiv.org/abs/2408.00118) itself finds its deeper 9B model slightly ahead of a wider one of the
#   same size; this book cannot re-run it, and a single comparison at one scale is thin evidence either way. What we
#   can compute is the cost side: half as many sequential blocks per token, each bigger, and the KV cache each
#   choice implies.
# - **Few big experts against many small ones.** 32 experts of width 2880 with 4 active, against 128 of width 768
#   with 8 active. Each gpt-oss expert holds 5.3 times the parameters of a Qwen3 expert. Fine-grained experts
#   (DeepSeekMoE) give a router far more combinations to choose from; gpt-oss does not follow that trend.
# - **Attention extras.** gpt-oss has sinks (chapter 07), biases on q, k, v and o, and sliding windows on half its
#   layers (chapter 06). Qwen3 has none of them, but normalises every query and key head (QK-norm) before RoPE.
# - **The router.** gpt-oss: top-4 of the logits, softmax over those 4. Qwen3: softmax over 128, top-8, renormalised.
#   Chapter 08 showed these are the same function; below, Qwen3's router is checked against gpt-oss's on a model trace.
# - **Smaller things.** Qwen3 uses the plain SwiGLU without gpt-oss's clamp and +1, a RoPE base of 10⁶ without YaRN
#   (40,960 positions in its config), head_dim 128 so that its attention width (32 × 128 = 4096) is twice its residual
#   width, a smaller vocabulary, and ships bf16 rather than MXFP4 experts. Its RMSNorm rounds to bf16 before it
#   multiplies by the weight; gpt-oss's multiplies first and rounds once (`norm_cast` above; compare `Qwen3MoeRMSNorm`
#   in [modeling_qwen3_moe.py](https://github.com/huggingface/transformers/blob/main/src/transformers/models/qwen3_moe/modeling_qwen3_moe.py)
#   with `GptOssRMSNorm` in
#   [modeling_gpt_oss.py](https://github.com/huggingface/transformers/blob/main/src/transformers/models/gpt_oss/modeling_gpt_oss.py)).
#   One rounding in bf16, nothing in float32: the NumPy oracle, which computes in float32, ignores the switch.
# - **Papers.** Yang et al., *Qwen3 Technical Report* (2025); OpenAI, *gpt-oss-120b & gpt-oss-20b Model Card* (2025);
#   Henry et al., *Query-Key Normalization for Transformers* (2020); Dehghani et al., *Scaling Vision Transformers to
#   22 Billion Parameters* (2023); Gemma Team, *Gemma 2* (2024); Dai et al., *DeepSeekMoE* (2024).

# %% [markdown]
# ## The accounting side by side
#
# The same delta table as in every chapter, from gpt-oss-20b to Qwen3-30B-A3B, then the parameter groups.

# %%
print(format_delta_table(oss, qwen))
po, pq = gptoss_np.count_params(oss), gptoss_np.count_params(qwen)
print(f"\n{'parameters':24}{'gpt-oss-20b':>16}{'qwen3-30b-a3b':>16}")
for key in ("embedding", "attention", "mlp", "experts", "total", "active", "active_with_embedding"):
    print(f"{key:24}{po[key]:>16,}{pq[key]:>16,}")
per_layer = {c.name: (gptoss_np.count_params(c)["total"] - gptoss_np.count_params(c)["embedding"]) / c.n_layers
             for c in (oss, qwen)}
print(f"\nper layer: gpt-oss {per_layer[oss.name] / 1e6:,.0f} M, Qwen3 {per_layer[qwen.name] / 1e6:,.0f} M parameters")

# %% [markdown]
# Four things stand out. Qwen3 holds 46 % more parameters and uses 16 % fewer per token, because its experts are
# sparser (8 of 128 against 4 of 32). Model cards count "active" differently: Qwen's "A3B" (3.3 B activated on
# [its model card](https://huggingface.co/Qwen/Qwen3-30B-A3B)) includes the embedding table, gpt-oss's 3.6 B
# ([its model card](https://arxiv.org/abs/2508.10925)) does not. Counted here, Qwen3 is 3.35 B with the table;
# without it, the convention of gpt-oss's card, the two are 3.04 B and 3.61 B. The bytes differ by 4.4×: MXFP4
# experts against bf16 ones. And the KV cache per token, averaged over the table's context of 4,096 tokens, is 3.9×
# larger for Qwen3. Per full layer the two cost the same (8 kv heads × 64 = 4 × 128 = 512 values
# each for k and v), so the difference is twice the layers and no sliding windows. The ratios, from the table's
# own numbers:

# %%
table_ctx = 4096
assert format_delta_table(oss, qwen, context=table_ctx) == format_delta_table(oss, qwen)  # the table's default
s_o, s_q = summary(oss, table_ctx), summary(qwen, table_ctx)
more, fewer = s_q["params"] / s_o["params"] - 1, 1 - s_q["active params"] / s_o["active params"]
bytes_x, kv_x = s_q["weight bytes"] / s_o["weight bytes"], s_q["KV bytes/token"] / s_o["KV bytes/token"]
print(f"Qwen3 against gpt-oss: {more:.0%} more parameters, {fewer:.0%} fewer active ({pq['active'] / 1e9:.2f} B "
      f"against {po['active'] / 1e9:.2f} B), {bytes_x:.1f}x the weight bytes, {kv_x:.1f}x the KV cache per token")
assert (f"{more:.0%}", f"{fewer:.0%}", f"{bytes_x:.1f}", f"{kv_x:.1f}") == ("46%", "16%", "4.4", "3.9")
assert (f"{pq['active'] / 1e9:.2f}", f"{po['active'] / 1e9:.2f}") == ("3.04", "3.61")
print(f"Qwen3 active with the embedding table {pq['active_with_embedding'] / 1e9:.2f} B (card: 3.3 B); gpt-oss "
      f"without it {po['active'] / 1e9:.2f} B (card: 3.6 B)")
assert f"{pq['active_with_embedding'] / 1e9:.2f}" == "3.35" and int(pq["active_with_embedding"] / 1e8) == 33
assert f"{po['active'] / 1e9:.1f}" == "3.6" != f"{po['active_with_embedding'] / 1e9:.1f}"  # 3.6 B: without the table
assert oss.n_kv_heads * oss.head_dim == qwen.n_kv_heads * qwen.head_dim == 512 and qwen.n_layers == 2 * oss.n_layers

# %% [markdown]
# ## Figure: where the parameters are, and what a long context costs

# %%
def groups(c):
    """Parameter groups [embedding lookup, unembedding, attention, router + norms, active experts, idle experts]."""
    pc = gptoss_np.count_params(c)
    table = c.vocab_size * c.d_model
    active_exp = pc["experts"] * c.top_k // c.n_experts
    return [table, pc["embedding"] - table, pc["attention"], pc["mlp"] + pc["final_norm"] - pc["experts"], active_exp,
            pc["experts"] - active_exp]


labels = ["embedding (lookup)", "unembedding", "attention", "router + norms", "experts, active", "experts, idle"]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4))
for row, c in enumerate((oss, qwen)):
    g = groups(c)
    assert sum(g) == gptoss_np.count_params(c)["total"]
    left = 0
    for i, n in enumerate(g):
        ax1.barh(row, n / 1e9, left=left / 1e9, color=f"C{i}", label=labels[i] if row == 0 else None,
                 hatch="//" if i in (0, 5) else None, edgecolor="white")
        left += n
ax1.set_yticks([0, 1], [oss.name, qwen.name])
ax1.set_xlabel("parameters (billions)")
ax1.set_title("parameters by group (hatched: not used by a token)")
ax1.legend(fontsize=8, loc="lower right")
ctx = np.unique(np.geomspace(1, 131072, 200).astype(int))
for c, style in ((oss, "C0-"), (qwen, "C1-")):
    n = ctx[ctx <= c.context_length]
    ax2.loglog(n, [kv_cache_bytes(c, int(t)) / 2**30 for t in n], style, label=f"{c.name} (to {c.context_length:,})")
ax2.set_xlabel("tokens in the cache")
ax2.set_ylabel("KV cache, GiB (bf16, one sequence)")
ax2.set_title("KV cache vs context")
ax2.legend(fontsize=8)
fig.tight_layout()
plt.show()
for n_tok in (4096, 32768):
    print(f"KV cache at {n_tok:6,} tokens: gpt-oss {kv_cache_bytes(oss, n_tok) / 2**30:.2f} GiB, "
          f"Qwen3 {kv_cache_bytes(qwen, n_tok) / 2**30:.2f} GiB")

# %% [markdown]
# ## Width, depth and experts in numbers

# %%
def expert_params(c):
    return 3 * c.d_model * c.ffn_hidden + (2 * c.ffn_hidden + c.d_model if c.mlp_bias else 0)  # up (2F x D), down


print(f"{'':30}{'gpt-oss-20b':>14}{'qwen3-30b-a3b':>16}")
table = [("residual width d_model", lambda c: c.d_model), ("layers (sequential blocks)", lambda c: c.n_layers),
         ("attention width heads x head_dim", lambda c: c.q_dim), ("params per expert", expert_params),
         ("experts / active", lambda c: f"{c.n_experts} / {c.top_k}"),
         ("active expert width per token", lambda c: c.top_k * c.ffn_hidden),
         ("expert combinations C(E, k)", lambda c: f"{math.comb(c.n_experts, c.top_k):.3g}"),
         ("KV bytes per token, full layer", lambda c: 2 * c.kv_dim * 2)]
for name, fn in table:
    a, b = fn(oss), fn(qwen)
    print(f"{name:32}{a:>12,}{b:>16,}" if isinstance(a, int) else f"{name:32}{a:>12}{b:>16}")
assert expert_params(oss) * oss.n_layers * oss.n_experts == po["experts"]
assert expert_params(qwen) * qwen.n_layers * qwen.n_experts == pq["experts"]
print(f"\none gpt-oss expert = {expert_params(oss) / expert_params(qwen):.1f} Qwen3 experts")
assert f"{expert_params(oss) / expert_params(qwen):.1f}" == "5.3"

# %% [markdown]
# ## Build: QK-norm, per head
#
# Qwen3 applies an RMSNorm to every query head and every key head, over the head's 128 dimensions, with one
# learned weight vector of length 128 shared by all heads, after the projection and before RoPE. Chapter 02's
# RMSNorm normalised a token's whole residual vector; here the same formula runs on each head separately. The
# trap is the axis: normalising the token's full 4096-wide query row would be a different function.

# %%
def rmsnorm(x, weight, eps):
    """Chapter 02: x / sqrt(mean(x^2) + eps) * weight over the last axis. x [T, D]."""
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * weight


def qk_norm(x, weight, eps):
    """The same per head: x [T, H, d], weight [d] shared by the heads -> [T, H, d]."""
    ms = (x * x).mean(axis=-1, keepdims=True)  # NEW: one mean square per (token, head)  [T, H, 1]
    return x / np.sqrt(ms + eps) * weight  # weight [d] broadcasts over the heads


x = rng.standard_normal((5, 32, 128)) * rng.uniform(0.1, 10, size=(1, 32, 1))  # heads of very different sizes
w = 1 + 0.1 * rng.standard_normal(128)
np.testing.assert_allclose(qk_norm(x, w, 1e-6), rms_norm(x, w, 1e-6), rtol=1e-13)
wrong_axis = rmsnorm(x.reshape(5, -1), np.tile(w, 32), 1e-6).reshape(x.shape)  # one norm over the flat row
print(f"qk_norm == gptoss_np.norms.rms_norm on [T, H, d]; the flat-row version differs by up to "
      f"{np.abs(wrong_axis - qk_norm(x, w, 1e-6)).max():.1f}")
assert np.abs(wrong_axis - qk_norm(x, w, 1e-6)).max() > 1.0

# %% [markdown]
# **Checked on the model.** In the scaled-down Qwen3 model, the traced queries and keys of layer 0 (after QK-norm
# and RoPE) are recomputed from the traced attention input with `qk_norm` and the RoPE of chapter 03.

# %%
small_q = gptoss_np.scale_down(qwen)
wq = gptoss_np.init_weights(small_q, seed=0)
model_q = gptoss_np.Model(small_q, wq, dtype=np.float64)
tokens = (np.arange(40) * 37 + 11) % small_q.vocab_size
logits_q, tr = model_q(tokens, trace=True)
T, pos = len(tokens), np.arange(len(tokens))
inv_freq, factor = rope_frequencies(small_q)
cos, sin = rope_cos_sin(pos, inv_freq, factor, np.float64)
h = tr["layers.0.attn_norm"]
for name, heads in (("q", small_q.n_heads), ("k", small_q.n_kv_heads)):
    proj = linear(h, wq[f"layers.0.attn.{name}.weight"]).reshape(T, heads, small_q.head_dim)  # no bias in Qwen3
    mine = apply_rope(qk_norm(proj, wq[f"layers.0.attn.{name}_norm.weight"], small_q.norm_eps), cos, sin)
    np.testing.assert_allclose(mine, tr[f"layers.0.attn.{name}"], rtol=1e-12, atol=1e-12)
print(f"layer-0 q [T, {small_q.n_heads}, {small_q.head_dim}] and k [T, {small_q.n_kv_heads}, {small_q.head_dim}] "
      "== qk_norm + RoPE of the traced input")

# %% [markdown]
# **What it buys.** With QK-norm the attention logits no longer depend on the scale of the query and key weights:
# each head vector is brought to unit root-mean-square before the dot product. Multiplying Qwen3's *W*q and *W*k by
# 10 leaves its outputs unchanged (up to the tiny ε); the same change to gpt-oss, whose query and key projections
# also have biases (scaled by 10 with the weights, so q and k are exactly 10 times larger), multiplies every
# attention logit by 100 and changes everything. Growing attention logits are a known cause of training
# instability at scale, which is the motivation given by Dehghani et al. (2023); gpt-oss does without QK-norm.

# %%
def scale_qk(weights, factor):
    return {n: (w * factor if any(s in n for s in (".attn.q.", ".attn.k.")) else w) for n, w in weights.items()}


small_o = gptoss_np.scale_down(oss)
wo = gptoss_np.init_weights(small_o, seed=0)
model_o = gptoss_np.Model(small_o, wo, dtype=np.float64)
logits_o = model_o(tokens)
d_qwen = np.abs(gptoss_np.Model(small_q, scale_qk(wq, 10.0), dtype=np.float64)(tokens) - logits_q).max()
d_oss = np.abs(gptoss_np.Model(small_o, scale_qk(wo, 10.0), dtype=np.float64)(tokens) - logits_o).max()
print(f"W_q, W_k x 10 -> max |logit change|: Qwen3 (QK-norm) {d_qwen:.1e}, gpt-oss (none) {d_oss:.1e}")
assert d_qwen < 1e-3 < 1e-1 < d_oss  # Qwen3 moves only through eps (1e-6 against the heads' mean square)

# %% [markdown]
# ## Biases: what a key bias can and cannot do
#
# gpt-oss keeps biases on the q, k, v and o projections, the router and the experts; Qwen3 has none. The seed
# notes that their value has been questioned. One argument (Namazifar et al., 2023) is that a key bias is redundant:
# *q*·(*k*ⱼ + *b*) = *q*·*k*ⱼ + *q*·*b*, and the second term is the same for every key, so the softmax cancels it.
# That holds for plain softmax attention with absolute positions. In gpt-oss it fails twice over: RoPE rotates the
# bias with the key's position, so *q*·*b* turns into a term that depends on the distance between query and key; and
# the sink is a fixed logit, so a shift shared by all real keys changes the weight the sink takes. Checked below on
# one head.

# %%
d = 64
q1, keys, b = rng.standard_normal((1, 1, d)), rng.standard_normal((30, 1, d)), rng.standard_normal(d)
cs_q = rope_cos_sin(np.array([29]), *rope_frequencies(oss), np.float64)
cs_k = rope_cos_sin(np.arange(30), *rope_frequencies(oss), np.float64)


def probs(k_vecs, rope=False, sink=None):
    qq, kk = (apply_rope(q1, *cs_q), apply_rope(k_vecs, *cs_k)) if rope else (q1, k_vecs)
    s = (qq[0, 0] @ kk[:, 0].T / np.sqrt(d))[None]  # [1, S]
    return A.softmax(s) if sink is None else A.softmax_with_sink(s, np.array([[sink]]))


cases = {"plain softmax, no RoPE": {}, "with RoPE (bias rotated)": {"rope": True}, "with a sink": {"sink": 3.0}}
effects = {}
for name, kw in cases.items():
    effects[name] = np.abs(probs(keys + b, **kw) - probs(keys, **kw)).max()
    print(f"{name:26s} max change in attention weights from a key bias: {effects[name]:.1e}")
assert effects["plain softmax, no RoPE"] < 1e-14 < 1e-3 < min(effects["with RoPE (bias rotated)"],
                                                             effects["with a sink"])
bias_params = {c.name: sum(math.prod(s) for n, s in gptoss_np.param_shapes(c).items() if n.endswith("bias"))
               for c in (oss, qwen)}
print(f"\nbias parameters: gpt-oss {bias_params[oss.name]:,} ({bias_params[oss.name] / po['total']:.4%} of the "
      f"model), Qwen3 {bias_params[qwen.name]:,}")
assert 1e6 < bias_params[oss.name] < 1e7 and bias_params[qwen.name] == 0  # "a few million", below

# %% [markdown]
# So the biases are cheap (a few million parameters) and, in gpt-oss's attention, not mathematically redundant. Whether
# they help the trained model is an empirical question that these computations do not settle.

# %% [markdown]
# ## The router, once more
#
# Qwen3's router (softmax over 128, top-8, renormalise) on the scaled-down Qwen3 model: its traced choices and weights
# equal what gpt-oss's order (top-*k*, then softmax over *k*) gives on the same logits.

# %%
for i in range(small_q.n_layers):
    lg = tr[f"layers.{i}.router.logits"]
    idx, wts = M.router_topk_softmax(lg, small_q.top_k)
    assert np.array_equal(idx, tr[f"layers.{i}.router.experts"])
    np.testing.assert_allclose(wts, tr[f"layers.{i}.router.weights"], rtol=1e-12)
print(f"Qwen3 router == gpt-oss router on {small_q.n_layers} layers x {T} tokens "
      f"({small_q.n_experts} experts, top-{small_q.top_k} in the scaled-down model)")

# %% [markdown]
# ## The scaled-down Qwen3 forward
#
# Random weights, so the continuation is gibberish (the 256-token toy vocabulary read as bytes). The cached decode
# equals the full forward here too; with no sliding windows every layer keeps every token.

# %%
model32 = gptoss_np.build_model(small_q, seed=0)
prompt = np.frombuffer(b"Hello", dtype=np.uint8).astype(np.int64)
cache = model32.new_cache()
step_logits, out = model32(prompt, cache=cache), []
for _ in range(20):
    out.append(gptoss_np.sample(step_logits[-1], temperature=0))
    step_logits = model32(np.array(out[-1:]), cache=cache)
print("greedy ids:", out)
print("as bytes  :", bytes(out))
print("tokens held per layer:", cache.stored_tokens())
c64 = model_q.new_cache()
inc = np.concatenate([model_q(tokens[t:t + 1], cache=c64) for t in range(T)])
err_cache = np.abs(inc - logits_q).max()
print(f"cached vs full forward (float64): max |diff| = {err_cache:.1e}")

# %% [markdown]
# ## Final check
#
# The comparisons this chapter makes, as asserts on the configs and the computations above.

# %%
assert (oss.d_model, oss.n_layers, qwen.d_model, qwen.n_layers) == (2880, 24, 2048, 48)  # wide/shallow vs narrow/deep
assert (oss.n_experts, oss.top_k, qwen.n_experts, qwen.top_k) == (32, 4, 128, 8)
assert (oss.ffn_hidden, qwen.ffn_hidden) == (2880, 768)
assert (qwen.rope_theta, qwen.rope_scaling, qwen.context_length, qwen.n_heads, qwen.head_dim) == (1e6, None, 40960, 32,
                                                                                                  128)
assert qwen.q_dim == 4096 == 2 * qwen.d_model and (qwen.weight_dtype, qwen.expert_quant) == ("bfloat16", "none")
assert expert_params(oss) > 5 * expert_params(qwen)
assert oss.sinks and not qwen.sinks and oss.attn_bias and not qwen.attn_bias and qwen.qk_norm and not oss.qk_norm
assert (oss.router, qwen.router) == ("topk_softmax", "softmax_topk")
assert pq["total"] > po["total"] and pq["active"] < po["active"] < pq["active_with_embedding"] + 0.3e9
assert kv_cache_bytes(qwen, 4096) > 3.5 * kv_cache_bytes(oss, 4096)
assert d_qwen < 1e-3 and d_oss > 1e-1
assert effects["plain softmax, no RoPE"] < 1e-14 and effects["with RoPE (bias rotated)"] > 1e-3
assert err_cache < 1e-12 and cache.stored_tokens() == [len(prompt) + 20] * small_q.n_layers
print(f"all checks passed in {time.time() - T_START:.1f} s")
