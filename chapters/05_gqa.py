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
# # 05 · Multi-head → grouped-query attention
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config with random weights: no download, no GPU.
# Real-size numbers come from the configs alone.*
#
# In GPT-2 every attention head has its own keys and values. In gpt-oss, 64 query heads share 8 key/value
# heads, 8 queries per group. Step 05 of the chain makes the same move within GPT-2's 25 heads: 5 key/value
# heads, each shared by 5 query heads. Nothing about what a head computes changes; what changes is how much
# has to be kept, and read back, for every past token.

# %%
import pathlib
import sys

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import matplotlib.pyplot as plt
import numpy as np

import gptoss_np
from gptoss_np.text.chat import generate
from gptoss_np import attention as A
from gptoss_np.accounting import count_params, format_delta_table, kv_cache_bytes, summary
from gptoss_np.config import chain_changes

steps = dict(gptoss_np.chain())
prev, cfg = steps["04-swiglu"], steps["05-gqa"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")
print(f"heads: {prev.n_heads} query / {prev.n_kv_heads} kv  ->  {cfg.n_heads} query / {cfg.n_kv_heads} kv")
oss = gptoss_np.get_config("gpt-oss-20b")
assert (oss.n_heads, oss.n_kv_heads, cfg.n_heads, cfg.n_kv_heads, prev.n_kv_heads) == (64, 8, 25, 5, 25)
assert summary(prev)["KV bytes/token"] == 2 * 48 * 25 * 64 * 4 == 614_400  # float32
print(f"GPT-2 XL's KV cache: {summary(prev)['KV bytes/token']:,} bytes per token, "
      f"{kv_cache_bytes(prev, 131072) / 1e9:.1f} GB at 131072 tokens")
assert f"{kv_cache_bytes(prev, 131072) / 1e9:.1f}" == "80.5"

# %% [markdown]
# ## Explain
#
# - **Multi-head attention** (Vaswani et al., 2017): each of $H$ heads projects its own $q$, $k$, $v$ of width
#   $d$. To generate text one token at a time, a model keeps every past token's keys and values (the KV cache)
#   so that they are not recomputed: $2 \cdot L \cdot H \cdot d$ numbers per token, for every layer $L$. For
#   GPT-2 XL in float32 that is 614,400 bytes per token; at 131072 tokens it would be 80.5 GB.
# - **Multi-query attention** (Shazeer, 2019, *Fast Transformer Decoding: One Write-Head is All You Need*): all
#   query heads share one key/value head. The cache shrinks $H$-fold; quality suffers somewhat.
# - **Grouped-query attention** (Ainslie et al., 2023, *GQA*): the middle road. $H_{kv}$ key/value heads, each
#   shared by a group of $H/H_{kv}$ consecutive query heads: query head $h$ reads key/value head
#   $\lfloor h / (H/H_{kv}) \rfloor$. The paper reports quality close to multi-head attention at a speed close
#   to multi-query attention. gpt-oss: $64/8$. This chain: $25/5$ (25 heads split only into groups of 1, 5 or 25).
# - **The seed's claim**, "slashing memory use by sharing key-value projections", checked below: the KV cache
#   shrinks by exactly $H/H_{kv} = 5$; the parameters only by the k and v projections (15 % here); the FLOPs of
#   attention scores not at all, since every query head still scores every key. What GQA buys is memory, and
#   the memory traffic of decoding, where each new token reads the whole cache.
# - **A trap**: which query heads share a key/value head. OpenAI's code (`AttentionBlock.forward` in
#   [gpt_oss/torch/model.py](https://github.com/openai/gpt-oss/blob/main/gpt_oss/torch/model.py)) views the queries as
#   `[kv head, group member]` and Hugging Face repeats each key/value head `group` times in a row (`repeat_kv` in
#   [modeling_gpt_oss.py](https://github.com/huggingface/transformers/blob/main/src/transformers/models/gpt_oss/modeling_gpt_oss.py));
#   both give $h \mapsto \lfloor h / G \rfloor$. Tiling the heads instead ($h \mapsto h \bmod H_{kv}$) runs
#   and is wrong.

# %% [markdown]
# ## Build
#
# Attention written head by head, as in chapter 00 but on `[T, heads, d]` arrays; the GQA version differs in
# the two marked lines.

# %%
def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def mha(q, k, v):
    T, H, d = q.shape  # q, k, v: [T, H, d]
    mask = np.triu(np.full((T, T), -np.inf), k=1)  # [T, T]
    heads = [softmax(q[:, h] @ k[:, h].T / np.sqrt(d) + mask) @ v[:, h] for h in range(H)]  # H x [T, d]
    return np.stack(heads, axis=1)  # [T, H, d]


def gqa(q, k, v):
    T, H, d = q.shape  # q: [T, H, d]; k, v: [T, H_kv, d]
    G = H // k.shape[1]  # NEW: query heads per key/value head
    mask = np.triu(np.full((T, T), -np.inf), k=1)
    heads = [softmax(q[:, h] @ k[:, h // G].T / np.sqrt(d) + mask) @ v[:, h // G] for h in range(H)]  # NEW: h // G
    return np.stack(heads, axis=1)  # [T, H, d]


# %% [markdown]
# ## Check
#
# 1. `gqa` equals `gptoss_np.attention.attention` (which does it as one batched matmul per key/value head).
# 2. GQA with as many key/value heads as query heads *is* multi-head attention.
# 3. GQA equals multi-head attention on key/value heads repeated `G` times in a row (`repeat_kv`), and differs
#    from it on heads tiled (`h % H_kv`): the trap.

# %%
rng = np.random.default_rng(0)
T, H, H_kv, d = 10, 8, 2, 16
q = rng.standard_normal((T, H, d))
k, v = rng.standard_normal((T, H_kv, d)), rng.standard_normal((T, H_kv, d))  # [T, H_kv, d]
pos = np.arange(T)
err_pkg = np.abs(gqa(q, k, v) - A.attention(q, k, v, A.causal_mask(pos, pos))).max()

k_full, v_full = rng.standard_normal((T, H, d)), rng.standard_normal((T, H, d))
err_mha = np.abs(gqa(q, k_full, v_full) - mha(q, k_full, v_full)).max()

G = H // H_kv
repeated = mha(q, np.repeat(k, G, axis=1), np.repeat(v, G, axis=1))  # kv heads [0, 0, 0, 0, 1, 1, 1, 1]
tiled = mha(q, np.tile(k, (1, G, 1)), np.tile(v, (1, G, 1)))  # kv heads [0, 1, 0, 1, ...]: wrong
err_rep, err_tile = np.abs(gqa(q, k, v) - repeated).max(), np.abs(gqa(q, k, v) - tiled).max()
print(f"gqa vs gptoss_np.attention:              {err_pkg:.1e}")
print(f"gqa with H_kv = H vs mha:                {err_mha:.1e}")
print(f"gqa vs mha on repeated kv heads (h // G): {err_rep:.1e}")
print(f"gqa vs mha on tiled kv heads (h % H_kv):  {err_tile:.2f}   <- the trap")
assert err_pkg < 1e-12 and err_mha == 0.0 and err_rep < 1e-12 and err_tile > 0.1

# %% [markdown]
# The same at the level of a whole model: a step-05 model (4 query heads, 2 key/value heads, scaled down) gives
# exactly the logits of a step-04 model (multi-head) whose key and value projections hold each key/value head's
# rows twice. A GQA model is a multi-head model with tied key and value heads; the GQA paper builds its
# models the other way round, mean-pooling a trained multi-head model's key/value heads and training on.

# %%
small, small_mha = gptoss_np.scale_down(cfg), gptoss_np.scale_down(prev)
print(f"scaled down: {small.n_heads}/{small.n_kv_heads} heads vs {small_mha.n_heads}/{small_mha.n_kv_heads}")
assert (small.n_heads, small.n_kv_heads) == (4, 2)
w = gptoss_np.init_weights(small, seed=0)
w_mha = dict(w)
for i in range(small.n_layers):
    for name in ("k", "v"):
        for t in ("weight", "bias"):
            key = f"layers.{i}.attn.{name}.{t}"
            per_head = w[key].reshape(small.n_kv_heads, small.head_dim, *w[key].shape[1:])  # [H_kv, d, (D)]
            w_mha[key] = np.repeat(per_head, small.n_heads // small.n_kv_heads, axis=0).reshape(
                small.n_heads * small.head_dim, *w[key].shape[1:])  # [H * d, (D)]
tokens = np.frombuffer(b"Grouped queries", dtype=np.uint8).astype(np.int64)
logits_gqa = gptoss_np.Model(small, w, dtype=np.float64)(tokens)
logits_mha = gptoss_np.Model(small_mha, w_mha, dtype=np.float64)(tokens)
print(f"step-05 model vs step-04 model with repeated kv rows: {np.abs(logits_gqa - logits_mha).max():.1e}")
assert np.abs(logits_gqa - logits_mha).max() < 1e-12

# %% [markdown]
# ## The KV cache, measured and counted
#
# Run both scaled-down models through 40 tokens one at a time with a cache, then add up the bytes the caches
# actually hold: the GQA cache is half the size (2 key/value heads instead of 4), and both equal what
# `gptoss_np.accounting.kv_cache_bytes` predicts from the config.

# %%
def cache_after(model, n):
    cache = model.new_cache()
    for t in range(n):
        model(np.array([t % 256]), cache=cache)
    return sum(layer.k[:layer.n].nbytes + layer.v[:layer.n].nbytes for layer in cache.layers)


m_gqa, m_mha = gptoss_np.build_model(small, seed=0), gptoss_np.build_model(small_mha, seed=0)
held_gqa, held_mha = cache_after(m_gqa, 40), cache_after(m_mha, 40)
print(f"after 40 tokens: MHA cache {held_mha:,} B (accounting {kv_cache_bytes(small_mha, 40, 4):,}), "
      f"GQA cache {held_gqa:,} B (accounting {kv_cache_bytes(small, 40, 4):,})")
assert held_mha == kv_cache_bytes(small_mha, 40, 4) and held_gqa == kv_cache_bytes(small, 40, 4)
assert held_mha == 2 * held_gqa

# %% [markdown]
# ## Delta table, real size
#
# The cache per token drops 5× (614,400 → 122,880 bytes in float32). Parameters drop by the key and value
# projections: per layer $2 \cdot 1600 \cdot (1600 - 320)$ weights and $2 \cdot 1280$ biases, 196.7 M in all.
# FLOPs per token drop by those projections only; the score and weighted-sum work per key is unchanged.

# %%
print(format_delta_table(prev, cfg))
saved = count_params(prev)["total"] - count_params(cfg)["total"]
print(f"\nparameters saved: {saved:,} = 48 layers x 2 x (1600 x 1280 + 1280), "
      f"{saved / count_params(prev)['total']:.0%} of step 04's")
assert saved == 48 * 2 * (1600 * 1280 + 1280) and f"{saved / 1e6:.1f}" == "196.7"
assert f"{saved / count_params(prev)['total']:.0%}" == "15%"  # "15 % here", above
assert summary(prev)["KV bytes/token"] == 5 * summary(cfg)["KV bytes/token"] == 614_400

# %% [markdown]
# ## A figure: KV-cache memory against context
#
# The cache of one sequence, at real size, as the context grows: step 04 (multi-head, 25 key/value heads), step
# 05 (5 key/value heads), both in float32 as the chain still stores GPT-2's dtype, and gpt-oss-20b for
# reference (8 key/value heads, bfloat16, and half its layers capped at a 128-token window: chapters 06 and 08).
# The horizontal lines are a 16 GB consumer GPU and an 80 GB H100, before a single weight is loaded. At 131072
# tokens the multi-head cache alone needs 80.5 GB, more than the H100 holds; grouped queries bring it to 16.1 GB.

# %%
ctx = np.unique(np.geomspace(256, 131072, 60).astype(int))
print(f"at 131072 tokens: multi-head {kv_cache_bytes(prev, 131072) / 1e9:.1f} GB, "
      f"grouped queries {kv_cache_bytes(cfg, 131072) / 1e9:.1f} GB")
assert (f"{kv_cache_bytes(prev, 131072) / 1e9:.1f}", f"{kv_cache_bytes(cfg, 131072) / 1e9:.1f}") == ("80.5", "16.1")
assert oss.weight_dtype == "bfloat16" and oss.layer_windows == (128, None) * 12  # half its layers at 128
fig, ax = plt.subplots(figsize=(8.5, 4.5))
for c, label, style in ((prev, "step 04: multi-head, 25 kv heads (float32)", "-"),
                        (cfg, "step 05: GQA, 5 kv heads (float32)", "-"),
                        (oss, "gpt-oss-20b: 8 kv heads, bf16, sliding half", "--")):
    ax.loglog(ctx, [kv_cache_bytes(c, int(n)) / 1e9 for n in ctx], style, lw=2, label=label)
for gb, name in ((16, "16 GB GPU"), (80, "80 GB H100")):
    ax.axhline(gb, color="gray", lw=0.8, ls=":")
    ax.text(300, gb * 1.1, name, fontsize=8, color="gray")
ax.axvline(1024, color="tab:red", lw=0.8, ls=":")
ax.text(1100, 3, "GPT-2's\n1024", fontsize=8, color="tab:red")
ax.set_xlabel("tokens in context")
ax.set_ylabel("KV cache (GB, one sequence)")
ax.set_title("KV-cache memory at real size")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The scaled-down model of this step
#
# Greedy decoding from the random-weight step-05 model: gibberish from grouped queries, and a check that the
# oracle's attention in the first layer is this chapter's `gqa` on its own traced queries, keys and values.

# %%
def greedy(model, prompt, n_new):
    """The prompt and n_new greedy tokens, decoded with the KV cache by the package's generate()."""
    return np.concatenate([prompt, list(generate(model, prompt, n_new, temperature=0))]).astype(np.int64)


def as_text(ids):
    """Byte tokens as text; a byte that does not print shows as '·'."""
    return "".join(chr(t) if chr(t).isprintable() else "·" for t in ids)


print(as_text(greedy(m_gqa, tokens, 24)))
_, trace = m_gqa(tokens, trace=True)
p = m_gqa.params
heads = gqa(trace["layers.0.attn.q"], trace["layers.0.attn.k"], trace["layers.0.attn.v"])  # [T, H, d]
branch = heads.reshape(len(tokens), -1) @ p["layers.0.attn.o.weight"].T + p["layers.0.attn.o.bias"]  # [T, D]
print(f"our gqa on the oracle's layer-0 q, k, v: max abs err {np.abs(branch - trace['layers.0.attn.out']).max():.1e}")

# %% [markdown]
# ## Checks
#
# The chapter's claims: GQA matches the package, reduces to multi-head attention when every query head has its
# own key/value head, and equals multi-head attention with repeated (not tiled) key/value heads, for one layer
# and for a whole model; the cache the model really holds shrinks by the group size and matches the accounting;
# at real size the cache per token drops 5× while the per-key attention FLOPs stay.

# %%
assert err_pkg < 1e-12 and err_mha == 0.0 and err_rep < 1e-12 and err_tile > 0.1
assert np.abs(logits_gqa - logits_mha).max() < 1e-12
assert held_mha == 2 * held_gqa == 2 * kv_cache_bytes(small, 40, 4)
assert kv_cache_bytes(prev, 131072) == 5 * kv_cache_bytes(cfg, 131072)
assert kv_cache_bytes(prev, 131072) > 80e9 > kv_cache_bytes(cfg, 131072)  # over an H100 / well within
assert cfg.n_heads % cfg.n_kv_heads == 0 and cfg.n_heads // cfg.n_kv_heads == 5
assert np.abs(branch - trace["layers.0.attn.out"]).max() < 1e-5
print("all checks passed")
