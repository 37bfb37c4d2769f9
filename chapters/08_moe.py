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
# # 08 · From one feed-forward network to 32 experts (and gpt-oss's shape)
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down configs with random weights, then the small gpt-oss this
# project trained and ships in the package: no download, no GPU. Real-size parameter counts and tables come from the
# configs alone.*
#
# Step 08 is the largest jump in the chain. Each layer's single SwiGLU feed-forward network becomes 32 of them,
# the *experts*, and a small linear *router* picks 4 of them per token. The same step also gives the model
# gpt-oss-20b's proportions: width 1600 → 2880, 48 → 24 layers, 25/5 → 64/8 attention heads, a 201,088-token
# vocabulary with separate input and output embeddings, and bf16 storage. The chapter separates the two.

# %%
import pathlib
import sys

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import math
import time

import matplotlib.pyplot as plt
import numpy as np

import gptoss_np
from gptoss_np import moe as M
from gptoss_np.accounting import format_delta_table
from gptoss_np.config import alternating_windows, chain_changes
from gptoss_np.ffn import linear, swiglu_oss

T_START = time.time()
steps = dict(gptoss_np.chain())
prev, cfg = steps["07-sinks"], steps["08-moe"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")
rng = np.random.default_rng(0)
assert (cfg.n_experts, cfg.top_k, cfg.ffn_hidden, prev.d_model, cfg.d_model, prev.n_layers, cfg.n_layers) == (
    32, 4, 2880, 1600, 2880, 48, 24)  # the numbers stated above
assert (prev.n_heads, prev.n_kv_heads, cfg.n_heads, cfg.n_kv_heads, cfg.vocab_size) == (25, 5, 64, 8, 201_088)
assert not cfg.tie_embeddings and cfg.weight_dtype == "bfloat16"
qwen = gptoss_np.get_config("qwen3-30b-a3b")
assert (qwen.n_experts, qwen.ffn_hidden, qwen.top_k) == (128, 768, 8)  # Qwen3's "many, small" experts

# %% [markdown]
# ## Explain
#
# - **What changes.** A token's FFN output is the weighted sum of *k* = 4 experts out of *E* = 32, each expert a
#   full clamped SwiGLU (chapter 04) with hidden size 2880. The router is one linear layer with a bias, giving a
#   logit per expert. gpt-oss keeps the 4 largest logits and takes a softmax over those 4 only.
# - **Why.** The parameter count, which holds what the model can store, grows with *E*; the work per token grows
#   only with *k*. gpt-oss-20b holds 20.9 billion parameters and uses 3.6 billion of them per token (computed below).
#   The seed puts this under "the MoE gambit" and stresses gpt-oss's choice of *few, large* experts (32 of width
#   2880, 4 active) against Qwen3's *many, small* ones (128 of width 768, 8 active). It notes that this runs against
#   the DeepSeekMoE line of fine-grained experts. Below we hold the parameter budget fixed and compare the two shapes.
# - **The reshape in the same step.** The chain moves to gpt-oss's widths here: GPT-2's 25 query heads could not be
#   grouped into gpt-oss's 64/8 earlier, and gpt-oss's experts are sized for its width (hidden 2880 = *d*). The
#   delta table therefore mixes two changes; two extra tables split it into "reshape" and "dense → MoE".
# - **The formula.** *z* = *W*ᵣ*x* + *b*ᵣ; *K* = top-*k*(*z*); *w*ᵢ = exp *z*ᵢ / Σⱼ∈K exp *z*ⱼ;
#   *y* = Σᵢ∈K *w*ᵢ · FFNᵢ(*x*).
# - **Papers.** Shazeer et al., *Outrageously Large Neural Networks: The Sparsely-Gated Mixture-of-Experts Layer*
#   (2017); Lepikhin et al., *GShard* (2020); Fedus et al., *Switch Transformers* (2021); Jiang et al.,
#   *Mixtral of Experts* (2024); Dai et al., *DeepSeekMoE* (2024).

# %% [markdown]
# ## Build: two routers
#
# gpt-oss: top-*k* of the logits, then a softmax over those *k*. Qwen3: a softmax over all *E*, top-*k* of the
# probabilities, then divide by their sum. They are the same function: the softmax is monotone, so it keeps
# the order (same experts), and exp *z*ᵢ / Σₑ exp *z*ₑ divided by Σⱼ∈K exp *z*ⱼ / Σₑ exp *z*ₑ is
# exp *z*ᵢ / Σⱼ∈K exp *z*ⱼ. Without the final division (what a Qwen-style MoE config with `norm_topk_prob = false`
# does) the weights would sum to less than one and the two would differ. The trap is to port one router's code to
# the other model without that division.

# %%
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def top_k(x, k):
    """Indices of the k largest per row, largest first (stable: a tie goes to the lower index). [T, E] -> [T, k]"""
    return np.argsort(-x, axis=-1, kind="stable")[:, :k]


def router_topk_softmax(logits, k):
    """gpt-oss: (experts [T, k], weights [T, k]) with the softmax over the k chosen logits only."""
    idx = top_k(logits, k)
    return idx, softmax(np.take_along_axis(logits, idx, axis=-1))


def router_softmax_topk(logits, k, renormalise=True):
    """Qwen3: softmax over all E, keep the k largest probabilities, renormalise them."""
    p = softmax(logits)  # [T, E]
    idx = top_k(p, k)
    w = np.take_along_axis(p, idx, axis=-1)  # [T, k]
    return idx, (w / w.sum(axis=-1, keepdims=True) if renormalise else w)


logits = 2.0 * rng.standard_normal((1000, 32))
i1, w1 = router_topk_softmax(logits, 4)
i2, w2 = router_softmax_topk(logits, 4)
assert np.array_equal(i1, i2)
np.testing.assert_allclose(w1, w2, rtol=1e-13)
for mine, pkg in (((i1, w1), M.router_topk_softmax(logits, 4)), ((i2, w2), M.router_softmax_topk(logits, 4))):
    assert np.array_equal(mine[0], pkg[0]) and np.allclose(mine[1], pkg[1], rtol=1e-14)
_, w_raw = router_softmax_topk(logits, 4, renormalise=False)
print("top-k -> softmax == softmax -> top-k -> renormalise, on 1000 tokens x 32 experts; both == gptoss_np.moe")
print(f"without the renormalisation the 4 weights sum to {w_raw.sum(-1).mean():.3f} on average, not 1")

# %% [markdown]
# ## Build: the routed MoE beside the dense FFN
#
# Chapter 04's feed-forward network, and the MoE made of it. The MoE is written the slow, readable way: a loop
# over tokens and their *k* experts. Expert weights are stacked along a leading expert axis: up [*E*, 2*F*, *D*]
# (gate and linear rows interleaved), down [*E*, *D*, *F*].

# %%
def ffn(x, up_w, up_b, down_w, down_b):
    """Chapter 04: clamped SwiGLU FFN. x [T, D], up [2F, D], down [D, F] -> [T, D]."""
    return linear(swiglu_oss(linear(x, up_w, up_b)), down_w, down_b)


def moe_ffn(x, router_w, router_b, up_w, up_b, down_w, down_b, k):
    """y_t = sum over the k experts e the router picks for token t of w_te * ffn_e(x_t). x [T, D] -> [T, D]."""
    logits = linear(x, router_w, router_b)  # NEW  [T, D] -> [T, E]
    experts, weights = router_topk_softmax(logits, k)  # NEW  [T, k], [T, k]
    y = np.zeros_like(x)
    for t in range(x.shape[0]):  # NEW: each token ...
        for e, w in zip(experts[t], weights[t]):  # NEW: ... runs only its k experts
            y[t] += w * ffn(x[t:t + 1], up_w[e], up_b[e], down_w[e], down_b[e])[0]  # NEW  [D]
    return y


small = gptoss_np.scale_down(cfg)  # every feature of step 08, tiny widths: D = 64, E = 8, k = 4, F = 32
print(small.name, f"D={small.d_model} E={small.n_experts} k={small.top_k} F={small.ffn_hidden}")
p = {n.replace("layers.0.mlp.", ""): w.astype(np.float64) for n, w in gptoss_np.init_weights(small, seed=1).items()
     if n.startswith("layers.0.mlp.")}
x = rng.standard_normal((24, small.d_model))
args = (p["router.weight"], p["router.bias"], M.ExpertWeights(p["experts.up.weight"]), p["experts.up.bias"],
        M.ExpertWeights(p["experts.down.weight"]), p["experts.down.bias"])
y_mine = moe_ffn(x, p["router.weight"], p["router.bias"], p["experts.up.weight"], p["experts.up.bias"],
                 p["experts.down.weight"], p["experts.down.bias"], small.top_k)
y_routed, *_ = M.moe(x, small, *args)  # groups tokens by expert: one matmul per expert that was hit
y_dense, *_ = M.moe_dense(x, small, *args)  # every expert on every token, zero weight for the unpicked ones
np.testing.assert_allclose(y_mine, y_routed, rtol=1e-12, atol=1e-14)
np.testing.assert_allclose(y_mine, y_dense, rtol=1e-12, atol=1e-14)
print("moe_ffn (per token) == gptoss_np.moe.moe (per expert) == gptoss_np.moe.moe_dense (all experts)")

# %% [markdown]
# `moe_dense` is the "twin" kept for testing: it runs all *E* experts on every token and multiplies the ones not
# picked by zero, so it spends *E*/*k* times the FLOPs but cannot get the bookkeeping of who-went-where wrong.
# The package's `moe` sorts the (token, slot) pairs by expert and does one matmul per expert that was hit, which is
# how real implementations batch the work.

# %% [markdown]
# ## Delta table: step 07 → step 08 at real size, then split in two

# %%
print(format_delta_table(prev, cfg))
reshaped = prev.replace(name="07-reshaped", d_model=2880, n_layers=24, n_heads=64, n_kv_heads=8, head_dim=64,
                        ffn_hidden=2880, vocab_size=201088, tie_embeddings=False,
                        layer_windows=alternating_windows(24, 128), weight_dtype="bfloat16")
assert reshaped.replace(ffn="moe", n_experts=32, top_k=4, router="topk_softmax") == cfg
print("\n(a) the reshape alone: gpt-oss's widths, depth, heads, vocabulary, untied, bf16; still one dense FFN")
print(format_delta_table(prev, reshaped))
print("\n(b) dense -> MoE alone, at gpt-oss's shape")
print(format_delta_table(reshaped, cfg))

# %% [markdown]
# Reading the tables: the reshape already more than doubles the parameters, mostly through the vocabulary (two
# untied 201,088 × 2880 tables are 1.16 billion parameters, against GPT-2's one tied 50,257 × 1600 table), and it cuts
# the KV-cache bytes by 60 %: 24 layers × 8 kv heads instead of 48 × 5 (192 head-layers of 64 values instead of 240)
# remove a fifth, and storing the cache in bf16 (2 bytes instead of float32's 4; the table's KV column is in each
# step's weight dtype) halves what is left. bf16 storage also halves the bytes per parameter, which is why the weight
# bytes barely move (+7.5 %). Then the MoE multiplies the FFN parameters by 32 (the router adds a little more) while
# the active parameters and FLOPs per token less than double. Those numbers, from the configs:

# %%
from gptoss_np.accounting import summary

s_prev, s_re, s_moe = summary(prev), summary(reshaped), summary(cfg)
ffn_params = lambda c: gptoss_np.count_params(c)["mlp"]
print(f"reshape: parameters x{s_re['params'] / s_prev['params']:.2f}, KV bytes/token "
      f"{s_re['KV bytes/token'] / s_prev['KV bytes/token'] - 1:+.0%}, weight bytes "
      f"{s_re['weight bytes'] / s_prev['weight bytes'] - 1:+.1%}; two 201,088 x 2880 tables "
      f"{2 * 201_088 * 2880 / 1e9:.2f} B")
print(f"dense -> MoE: FFN parameters x{ffn_params(cfg) / ffn_params(reshaped):.3f}, "
      f"active x{s_moe['active params'] / s_re['active params']:.2f}, "
      f"FLOPs/token x{s_moe['FLOPs/token'] / s_re['FLOPs/token']:.2f}")
assert 2 < s_re["params"] / s_prev["params"] < 2.2 and f"{2 * 201_088 * 2880 / 1e9:.2f}" == "1.16"
assert f"{s_re['KV bytes/token'] / s_prev['KV bytes/token'] - 1:+.0%}" == "-60%"
assert (24 * 8, 48 * 5) == (192, 240) and 192 / 240 == 0.8 and reshaped.n_kv_heads * reshaped.n_layers == 192
assert f"{s_re['weight bytes'] / s_prev['weight bytes'] - 1:+.1%}" == "+7.5%"
assert 32 < ffn_params(cfg) / ffn_params(reshaped) < 32.01  # 32 experts, plus the router
assert s_moe["active params"] < 2 * s_re["active params"] and s_moe["FLOPs/token"] < 2 * s_re["FLOPs/token"]

# %% [markdown]
# ## Total and active parameters, from the shapes
#
# Counted by hand from the shapes and checked against `gptoss_np.count_params`. "Active" follows the model card's
# convention: the parameters a token touches, counting the output head but not the input embedding (a lookup reads
# one row). The published figures ([the model card](https://arxiv.org/abs/2508.10925)) are 20.91 billion total and
# 3.61 billion active.

# %%
D, L, V, E, K, F = cfg.d_model, cfg.n_layers, cfg.vocab_size, cfg.n_experts, cfg.top_k, cfg.ffn_hidden
attn = (cfg.q_dim * D + cfg.q_dim) + 2 * (cfg.kv_dim * D + cfg.kv_dim) + (D * cfg.q_dim + D) + cfg.n_heads + D
expert = (2 * F * D + 2 * F) + (D * F + D)  # up (gate and linear) and down, with biases
router = E * D + E
total = 2 * V * D + L * (attn + router + D + E * expert) + D  # embed, unembed, layers (ffn norm D), final norm
active = total - V * D - L * (E - K) * expert
counted = gptoss_np.count_params(cfg)
assert (total, active) == (counted["total"], counted["active"])
print(f"one expert: {expert:,} parameters; one layer's attention: {attn:,}; router: {router:,}")
print(f"total {total:,} ({total / 1e9:.2f} B), active {active:,} ({active / 1e9:.2f} B), "
      f"experts are {L * E * expert / total:.1%} of the total")
assert round(total / 1e9, 2) == 20.91 and round(active / 1e9, 2) == 3.61

groups = {"embedding (lookup)": V * D, "unembedding": V * D, "attention": L * attn,
          "router + ffn norms": L * (router + D), "experts, active": L * K * expert,
          "experts, idle": L * (E - K) * expert}
fig, ax = plt.subplots(figsize=(9, 3.2))
for col, (label, n) in enumerate(groups.items()):
    left_total = sum(list(groups.values())[:col])
    ax.barh(1, n / 1e9, left=left_total / 1e9, color=f"C{col}", label=label)
    if label not in ("embedding (lookup)", "experts, idle"):
        left_active = sum(v for lab, v in list(groups.items())[:col] if lab not in ("embedding (lookup)",
                                                                                    "experts, idle"))
        ax.barh(0, n / 1e9, left=left_active / 1e9, color=f"C{col}")
ax.set_yticks([0, 1], [f"active per token\n{active / 1e9:.2f} B", f"total\n{total / 1e9:.2f} B"])
ax.set_xlabel("parameters (billions)")
ax.set_title("gpt-oss-20b: where the parameters are, and which ones a token uses")
ax.legend(fontsize=8, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 32 experts / top-4 against 128 / top-8
#
# Hold the expert budget fixed (32 × 2880 = 92,160 hidden units per layer) and cut it into 128 experts of 720. At
# top-16 the total and active parameters are nearly unchanged (only the router and the experts' down-projection
# biases grow: one bias vector of width *d* per expert); at top-8, the Qwen3 ratio, a token uses about half as many
# expert parameters. What changes at the same budget is the number of different
# expert combinations a token can be routed to, and the size of each matmul. Whether the combinations buy quality
# is an empirical question that DeepSeekMoE answers yes for its setting and gpt-oss's design does not follow;
# this table only states the costs.

# %%
rows = [("gpt-oss-20b", cfg), ("128 x 720, top-16", cfg.replace(n_experts=128, top_k=16, ffn_hidden=720)),
        ("128 x 720, top-8", cfg.replace(n_experts=128, top_k=8, ffn_hidden=720)),
        ("qwen3-30b-a3b", gptoss_np.get_config("qwen3-30b-a3b"))]
print(f"{'':20}{'E':>5}{'k':>4}{'width':>7}{'total':>9}{'active':>9}{'router/layer':>14}{'expert sets C(E,k)':>20}")
for name, c in rows:
    pc = gptoss_np.count_params(c)
    print(f"{name:20}{c.n_experts:>5}{c.top_k:>4}{c.ffn_hidden:>7}{pc['total'] / 1e9:>8.2f}B{pc['active'] / 1e9:>8.2f}B"
          f"{c.n_experts * c.d_model:>14,}{math.comb(c.n_experts, c.top_k):>20.3g}")
fine = gptoss_np.count_params(rows[1][1])
assert 32 * 2880 == 128 * 720 == 92_160  # the same expert budget per layer
top8 = gptoss_np.count_params(rows[2][1])
expert_share = (top8["experts"] * 8 / 128) / (gptoss_np.count_params(cfg)["experts"] * K / E)  # active experts
print(f"active expert parameters at 128 x 720, top-8: {expert_share:.3f} of gpt-oss-20b's")
assert 0.49 < expert_share < 0.52  # "about half"
extra = L * (128 - E) * ((D + 1) + D)  # per layer: 96 more router rows (weight + bias), 96 more down biases
assert fine["total"] - gptoss_np.count_params(cfg)["total"] == extra
print(f"128 x 720, top-16: {extra:,} more parameters in total than gpt-oss-20b, all router rows and down biases")

# %% [markdown]
# ## Expert load on a scaled-down model
#
# A scaled-down step-08 model with all 32 experts (width 64, 2 layers, random weights) routes 2048 tokens. With
# perfect balance every expert would get 2048 × 4 / 32 = 256 of the token slots. Random routers are not balanced;
# trained ones are pushed towards balance by an auxiliary loss during training, which inference code never sees.

# %%
small32 = gptoss_np.scale_down(cfg, n_experts=32)
model32 = gptoss_np.build_model(small32, seed=0)
tokens = np.random.default_rng(1).integers(0, small32.vocab_size, 2048)
_, tr = model32(tokens, trace=True)
fair = len(tokens) * small32.top_k / small32.n_experts
assert (small32.d_model, small32.n_layers, small32.n_experts, small32.top_k, fair) == (64, 2, 32, 4, 256)
fig, axes = plt.subplots(1, small32.n_layers, figsize=(12, 3.4), sharey=True)
loads = []
for i, ax in enumerate(axes):
    chosen = tr[f"layers.{i}.router.experts"]  # [T, k]
    load = np.bincount(chosen.ravel(), minlength=small32.n_experts)
    loads.append(load)
    ax.bar(np.arange(small32.n_experts), load, color="C0")
    ax.axhline(fair, color="C3", ls="--", lw=1, label=f"balanced: {fair:.0f}")
    ax.set_title(f"layer {i}: busiest / balanced = {load.max() / fair:.2f}, idle experts: {(load == 0).sum()}")
    ax.set_xlabel("expert")
    ax.legend(fontsize=8)
    assert load.sum() == len(tokens) * small32.top_k
    assert (np.sort(chosen, axis=1)[:, 1:] != np.sort(chosen, axis=1)[:, :-1]).all()  # k distinct experts
axes[0].set_ylabel("token slots routed to it")
fig.suptitle("expert load, random-weight model, 2048 tokens, top-4 of 32", y=1.02)
fig.tight_layout()
plt.show()
w_tr = tr["layers.0.router.weights"]
print(f"router weights: each row sums to 1 (max error {np.abs(w_tr.sum(1) - 1).max():.1e}); "
      f"mean weight of the first choice {w_tr[:, 0].mean():.2f}, of the fourth {w_tr[:, 3].mean():.2f}")

# %% [markdown]
# ## The whole step-08 model: trace check and random-weight output
#
# The layer-0 MoE output of the scaled-down model, recomputed with `moe_ffn` from its own trace, and a greedy
# continuation (gibberish: random weights; the 256-token toy vocabulary read as bytes).

# %%
model = gptoss_np.build_model(small, seed=1, dtype="float64")
prompt = np.frombuffer(b"Hello", dtype=np.uint8).astype(np.int64)
_, tr = model(prompt, trace=True)
y_trace = moe_ffn(tr["layers.0.ffn_norm"], p["router.weight"], p["router.bias"], p["experts.up.weight"],
                  p["experts.up.bias"], p["experts.down.weight"], p["experts.down.bias"], small.top_k)
np.testing.assert_allclose(y_trace, tr["layers.0.ffn.out"], rtol=1e-12, atol=1e-14)
print("layer 0 MoE output == moe_ffn recomputed from the trace; experts chosen for 'Hello':")
print(tr["layers.0.router.experts"])

cache = model.new_cache()
step_logits = model(prompt, cache=cache)
out = []
for _ in range(20):
    out.append(gptoss_np.sample(step_logits[-1], temperature=0))
    step_logits = model(np.array(out[-1:]), cache=cache)
print("greedy ids:", out)
print("as bytes  :", bytes(out))

# %% [markdown]
# ## Random weights, then trained ones: expert load and routing entropy
#
# On the shipped model (a small gpt-oss trained on Shakespeare's dialogue, `gptoss_np.default_checkpoint()`), the
# trace's router points say how training spread the tokens over the experts: the share of the routing slots each
# expert takes, per layer, and the entropy of the router's full softmax (ln E when it cannot tell experts apart,
# lower as it becomes sure). Beside it, the same architecture with random weights. At this scale only.

# %%
from gptoss_np.text import harmony as H
from gptoss_np.text.corpus import dialogue_pairs, shakespeare_splits

shipped = gptoss_np.load_model(gptoss_np.default_checkpoint(), progress=False)
tok = gptoss_np.get_tokenizer(gptoss_np.default_checkpoint())
messages = []
for (a, line_a), (b, line_b) in dialogue_pairs(shakespeare_splits()[1])[:8]:  # held-out plays
    messages += [H.user_message(line_a), H.Message("assistant", line_b, channel="final")]
dialogue = np.array(H.render_conversation(tok, messages))[:1024]


def routing(model, tokens):
    """Per layer: (load [E], share of the T*k routing slots per expert; mean entropy of softmax(router logits))."""
    _, tr = model(tokens, trace=True)
    out = []
    for i in range(model.cfg.n_layers):
        chosen, logits = tr[f"layers.{i}.router.experts"], tr[f"layers.{i}.router.logits"]
        load = np.bincount(chosen.reshape(-1), minlength=model.cfg.n_experts) / chosen.size
        p = np.exp(logits - logits.max(-1, keepdims=True))
        p /= p.sum(-1, keepdims=True)
        out.append((load, float(-(p * np.log(p + 1e-30)).sum(-1).mean())))
    return out


n_exp = shipped.cfg.n_experts
print(f"{len(dialogue)} tokens of held-out dialogue; {n_exp} experts, top-{shipped.cfg.top_k}; uniform load "
      f"{1 / n_exp:.3f}, max entropy ln E = {math.log(n_exp):.3f}")
for name, model in (("random", gptoss_np.build_model(shipped.cfg, seed=0)), ("trained", shipped)):
    for i, (load, ent) in enumerate(routing(model, dialogue)):
        print(f"  {name:7s} layer {i}: load " + " ".join(f"{v:.2f}" for v in load) + f"   router entropy {ent:.3f}")
        assert abs(load.sum() - 1) < 1e-9

# %% [markdown]
# Random routers send most tokens to a few experts and are unsure about every token (entropy near ln E). The
# trained routers spread the load far more evenly, which is consistent with the load-balancing loss the model was
# trained with (no model was trained without it here, so this does not show that the loss did it), while each
# token's softmax became sharper: balanced in aggregate, decisive per token.

# %% [markdown]
# And their text: each model's greedy reply to a line of the held-out dialogue (harmony prompt, low effort),
# decoded with its special tokens so the channels show. Random weights repeat a few tokens of the vocabulary;
# the trained model answers in the format it was trained on, in something like Shakespeare's English.

# %%
from gptoss_np.text.chat import greedy_reply


question = dialogue_pairs(shakespeare_splits()[1])[5][0][1]  # VALENTINE's answer to the duke
for name, model in (("random weights", gptoss_np.build_model(shipped.cfg, seed=0)), ("trained", shipped)):
    print(f"--- {name}, greedy ---\n{greedy_reply(model, tok, question)}\n")

# %% [markdown]
# ## Final check
#
# The two routers agree; the three MoE implementations agree; the step equals "reshape, then dense → MoE"; the
# counts match the published 20.91 B / 3.61 B; only *k*/*E* of the expert parameters are active.

# %%
assert np.array_equal(i1, i2) and np.allclose(w1, w2)
assert np.allclose(y_mine, y_routed) and np.allclose(y_routed, y_dense)
assert reshaped.replace(ffn="moe", n_experts=32, top_k=4, router="topk_softmax") == cfg
pc, pr = gptoss_np.count_params(cfg), gptoss_np.count_params(reshaped)
assert (pc["total"], pc["active"]) == (20_914_757_184, 3_608_307_264)
assert pc["experts"] == L * E * expert and pc["total"] - pc["active"] == V * D + L * (E - K) * expert
assert pc["active"] < pc["total"] / 5 and pr["active"] < pc["active"] < 2 * pr["active"]
assert sum(loads[0]) == len(tokens) * small32.top_k
print(f"all checks passed in {time.time() - T_START:.1f} s")
