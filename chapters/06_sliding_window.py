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
# # 06 · Sliding-window attention: half the layers look back 128 tokens
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config with random weights, then the small gpt-oss this
# project trained and ships in the package: no download, no GPU. Real-size tables and memory curves come from the
# configs alone.*
#
# Step 06 of the chain keeps every weight of step 05 and changes only which keys a query may read: layers 0, 2,
# 4, … get a window of 128 tokens, the odd layers keep full causal attention. A mask has no parameters, so the
# parameter count does not move; what moves is the KV cache and the attention FLOPs.

# %%
import pathlib
import sys

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import time

import matplotlib.pyplot as plt
import numpy as np

import gptoss_np
from gptoss_np import attention as A
from gptoss_np.accounting import format_delta_table, kv_cache_bytes
from gptoss_np.config import chain_changes

T_START = time.time()
steps = dict(gptoss_np.chain())
prev, cfg = steps["05-gqa"], steps["06-sliding-window"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")
print("layer_windows[:6] =", cfg.layer_windows[:6], "...  (None = full causal attention)")

# %% [markdown]
# ## Explain
#
# - **What changes.** A query at position *t* in a sliding layer reads only the keys at positions
#   *t* − 127 … *t*: exactly 128 keys once the sequence is long enough, its own key among them. Full layers still
#   read 0 … *t*. The pattern is data in the config (`cfg.layer_windows`, one entry per layer), never an
#   `i % 2` buried in the model: even layers slide, odd layers see everything, as in both gpt-oss checkpoints.
# - **Why (the seed's account).** The seed groups the window with grouped-query attention as a memory saver and
#   likens it to GPT-3, which alternated dense layers with locally banded sparse ones (Brown et al., 2020,
#   following the Sparse Transformer of Child et al., 2019). It also remarks on how small the window is.
#   For scale: [Mistral 7B](https://arxiv.org/abs/2310.06825) used a 4096-token window in every layer,
#   [Gemma 2](https://arxiv.org/abs/2408.00118) alternated 4096-token local layers with global ones. 128 is a
#   radical choice.
# - **What the numbers say.** A sliding layer's cache stops growing at 128 tokens, but the full layers keep growing,
#   so alternating layers can at most halve the KV cache. The delta table below gives −48 % at a 4096-token context
#   and the figure shows the curve flattening at ½. The big cache cut was chapter 05's GQA (25 → 5 kv heads); the
#   window adds nearly a factor of two on top. Nothing is lost from reach: a full layer sits right after every
#   sliding one, so any token can still influence any later token.
# - **The formula.** allowed(*t*, *s*) = (*s* ≤ *t*) ∧ (*s* > *t* − *W*). Masked scores are −∞ before the softmax,
#   so the softmax runs over at most *W* keys.
# - **Papers.** Child et al., *Generating Long Sequences with Sparse Transformers* (2019); Beltagy et al.,
#   *Longformer* (2020); Brown et al., *Language Models are Few-Shot Learners* (2020); Jiang et al., *Mistral 7B*
#   (2023); Gemma Team, [*Gemma 2*](https://arxiv.org/abs/2408.00118) (2024).

# %% [markdown]
# ## Build: the sliding mask beside the causal one
#
# The old mask from chapter 00 and the new one; the only new line is the lower bound on the key position.

# %%
def causal_mask(q_pos, k_pos):
    """Query t may read key s when s <= t."""
    q, k = np.asarray(q_pos)[:, None], np.asarray(k_pos)[None, :]  # [T, 1], [1, S]
    return k <= q  # [T, S] bool


def sliding_window_mask(q_pos, k_pos, window):
    """Query t may read key s when t - window < s <= t: `window` keys, its own included."""
    q, k = np.asarray(q_pos)[:, None], np.asarray(k_pos)[None, :]  # [T, 1], [1, S]
    return (k <= q) & (k > q - window)  # NEW: the lower bound  [T, S] bool


# Check against the package: a prefill, a chunk after a cached prefix, and one decode step far into a sequence.
cases = [(np.arange(300), np.arange(300)),  # prefill: queries and keys are the same positions
         (np.arange(200, 260), np.arange(0, 260)),  # 60 new tokens after 200 cached ones
         (np.array([5000]), np.arange(4873, 5001))]  # a decode step: the 127 cached keys + its own
for q_pos, k_pos in cases:
    assert np.array_equal(causal_mask(q_pos, k_pos), A.causal_mask(q_pos, k_pos))
    for w in (1, 4, 128, 4096):
        assert np.array_equal(sliding_window_mask(q_pos, k_pos, w), A.sliding_window_mask(q_pos, k_pos, w))
print("causal_mask and sliding_window_mask == gptoss_np.attention's, on", len(cases), "position layouts")

# %% [markdown]
# ## Trap: a window of 128 includes the current token
#
# "Window 128" means 128 keys, the query's own among them: positions *t* − 127 … *t*. Writing the lower bound
# as `k >= q - W` lets in one key too many (129), an off-by-one that has shown up in real inference engines and
# only changes outputs past position 128, where short tests never look: mlx-lm fixed its window mask for this
# (ml-explore/mlx-lm#390, citing gpt-oss's reference code), ONNX Runtime redefined its local window to include
# the current token (microsoft/onnxruntime#25927), Megatron-Bridge subtracted one from FlashAttention's inclusive
# `window_size` for gpt-oss, Gemma and Mistral (NVIDIA-NeMo/Megatron-Bridge#2656), and transformers' flash-attention
# path was reported for it (huggingface/transformers#39408). The guard is to count the keys in each
# row. The references write the same condition three different ways (OpenAI's torch code blanks keys with
# *s* ≤ *t* − *W*, its triton kernel keys with *s* < *t* − *W* + 1, transformers keeps *s* > *t* − *W*);
# all three must give the same mask.

# %%
W, T = 128, 300
pos = np.arange(T)
q, k = pos[:, None], pos[None, :]
right = sliding_window_mask(pos, pos, W)
wrong = (k <= q) & (k >= q - W)  # the off-by-one: 129 keys once t >= 128
per_row = right.sum(axis=1)
print("query position        :", [0, 1, 126, 127, 128, 129, 299])
print("keys read (right)     :", per_row[[0, 1, 126, 127, 128, 129, 299]].tolist())
print("keys read (k >= q - W):", wrong.sum(axis=1)[[0, 1, 126, 127, 128, 129, 299]].tolist())
assert (per_row == np.minimum(pos + 1, W)).all()  # t+1 keys until the window fills, then exactly 128
assert wrong.sum(axis=1).max() == W + 1

causal = k <= q
oai_torch = causal & ~(k <= q - W)  # -inf where s <= t - W
oai_triton = causal & ~(k < q - W + 1)  # masked where s < t - W + 1
hf = causal & (k > q - W)  # kept where s > t - W
assert all(np.array_equal(m, right) for m in (oai_torch, oai_triton, hf))
print("the three reference formulations give the same mask")

# %% [markdown]
# ## Figure: which keys each query reads
#
# A small example (16 tokens, window 5) so that single cells are visible, and the key count per query at the
# real window of 128.

# %%
n, w_small = 16, 5
fig, axes = plt.subplots(1, 3, figsize=(13, 4))
for ax, m, title in ((axes[0], causal_mask(np.arange(n), np.arange(n)), "full causal (odd layers)"),
                     (axes[1], sliding_window_mask(np.arange(n), np.arange(n), w_small),
                      f"sliding window {w_small} (even layers)")):
    ax.imshow(m, cmap="Blues", vmin=0, vmax=1.3)
    ax.set_title(title)
    ax.set_xlabel("key position s")
    ax.set_ylabel("query position t")
axes[1].plot(np.arange(n), np.arange(n), "r.", ms=5, label="its own key (inside the window)")
axes[1].legend(loc="lower left", fontsize=8)
axes[2].plot(pos, per_row, label="t - 127 <= s <= t (right)")
axes[2].plot(pos, wrong.sum(axis=1), "--", label="t - 128 <= s <= t (off by one)")
axes[2].set_xlabel("query position t")
axes[2].set_ylabel("keys read")
axes[2].set_title("keys per query, window 128")
axes[2].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Delta table: step 05 → step 06 at real size
#
# Same parameters and weight bytes (a mask is not a parameter). KV bytes per token and FLOPs per token are averaged
# and measured at a 4096-token context; the second table repeats the comparison at the full 131,072 tokens.

# %%
print(format_delta_table(prev, cfg))
print()
print(format_delta_table(prev, cfg, context=131072))
kv_cut = 1 - kv_cache_bytes(cfg, 4096) / kv_cache_bytes(prev, 4096)
assert format_delta_table(prev, cfg) == format_delta_table(prev, cfg, context=4096)
assert f"{kv_cut:.0%}" == "48%"  # "-48 % at a 4096-token context", above

# %% [markdown]
# ## KV cache memory against context length
#
# The cache holds a key and a value vector per kv head per token per layer; a sliding layer holds at most *W*
# tokens. Written out and checked against `gptoss_np.accounting.kv_cache_bytes`:

# %%
def kv_bytes(cfg, n_tokens, bytes_per_value):
    """k and v, per kv head, per token each layer still holds: full layers n, sliding layers min(n, window)."""
    held = [n_tokens if w is None else min(n_tokens, w) for w in cfg.layer_windows]
    return 2 * cfg.n_kv_heads * cfg.head_dim * bytes_per_value * sum(held)


for c in (prev, cfg, gptoss_np.get_config("gpt-oss-20b")):
    for n_tok in (1, 127, 128, 129, 4096, 131072):
        assert kv_bytes(c, n_tok, 2) == kv_cache_bytes(c, n_tok, dtype_bytes=2)

ctx = np.unique(np.geomspace(1, 131072, 200).astype(int))
oss = gptoss_np.get_config("gpt-oss-20b")
oss_full = oss.replace(layer_windows=(None,) * oss.n_layers)  # gpt-oss-20b as if every layer were full
curves = {"step 05 (48 layers, all full)": prev, "step 06 (alternating window 128)": cfg,
          "gpt-oss-20b, all full (hypothetical)": oss_full, "gpt-oss-20b (alternating)": oss}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
for (label, c), style in zip(curves.items(), ("C0-", "C1-", "C0:", "C1:")):
    ax1.loglog(ctx, [kv_bytes(c, int(t), 2) / 2**30 for t in ctx], style, label=label)
ax1.set_xlabel("tokens in the cache")
ax1.set_ylabel("KV cache, GiB (bf16, one sequence)")
ax1.set_title("KV cache memory vs context")
ax1.legend(fontsize=8)
ratio = [kv_bytes(cfg, int(t), 2) / kv_bytes(prev, int(t), 2) for t in ctx]
ax2.semilogx(ctx, ratio)
ax2.axhline(0.5, color="gray", ls="--", lw=1)
ax2.axvline(128, color="gray", ls=":", lw=1)
ax2.set_ylim(0, 1.05)
ax2.set_xlabel("tokens in the cache")
ax2.set_ylabel("step 06 / step 05")
ax2.set_title("alternating windows can at most halve the cache")
fig.tight_layout()
plt.show()
print(f"at 131072 tokens: step 05 {kv_bytes(prev, 131072, 2) / 2**30:.2f} GiB, "
      f"step 06 {kv_bytes(cfg, 131072, 2) / 2**30:.2f} GiB (ratio {ratio[-1]:.4f}); "
      f"gpt-oss-20b {kv_bytes(oss, 131072, 2) / 2**30:.2f} GiB")

# %% [markdown]
# ## The cache keeps only the window
#
# During decoding a sliding layer never needs a key older than *t* − 127 again, so its cache can drop it. The
# package keeps *W* − 1 keys after each step: the next query brings its own key, which makes *W*. The
# scaled-down model below has 4 layers with a window of 8 (the pattern of the real config, tiny sizes) and
# decodes 40 tokens one at a time.

# %%
small = gptoss_np.scale_down(cfg, n_layers=4, window=8)
print(small.name, "layer_windows =", small.layer_windows)
assert small.layer_windows == (8, None, 8, None)
model = gptoss_np.build_model(small, seed=0, dtype="float64")
tokens = (np.arange(40) * 37 + 11) % small.vocab_size

cache, step_logits = model.new_cache(), []
print(" step | tokens held per layer")
for t in range(len(tokens)):
    step_logits.append(model(tokens[t:t + 1], cache=cache))
    if t in (0, 5, 6, 7, 8, 20, 39):
        print(f"{t:5d} | {cache.stored_tokens()}")
step_logits = np.concatenate(step_logits)  # [T, V]
assert cache.stored_tokens() == [7, 40, 7, 40]

# %% [markdown]
# **Cached decode = full forward, also past the window.** The token-by-token logits equal one forward over all 40
# tokens. Not bitwise: a single query against the cache sums its dot products in a different order than the
# full [T, T] matmul, so float64 agrees to within 1e-14 and float32 to within 1e-5 of the largest logit (the
# measured values are printed). As a control, the same weights with the
# window removed agree for the first 8 positions and disagree after them: the window is really in force.

# %%
full = model(tokens)
err64 = np.abs(step_logits - full).max()
print(f"float64: max |cached - full| = {err64:.1e}")
assert err64 < 1e-14

model32 = gptoss_np.build_model(small, seed=0, dtype="float32")
c32 = model32.new_cache()
inc32 = np.concatenate([model32(tokens[t:t + 1], cache=c32) for t in range(len(tokens))])
err32 = np.abs(inc32 - model32(tokens)).max() / np.abs(full).max()
print(f"float32: max |cached - full| / max |logits| = {err32:.1e}")
assert err32 < 1e-5

no_window = gptoss_np.Model(small.replace(layer_windows=(None,) * small.n_layers),
                            gptoss_np.init_weights(small, seed=0), dtype=np.float64)(tokens)
diff = np.abs(no_window - full).max(axis=1)  # per position
print("positions 0-7 , max diff without the window:", f"{diff[:8].max():.1e}")
print("positions 8-39, max diff without the window:", f"{diff[8:].max():.1e}")
assert diff[:8].max() < 1e-12 < 1e-6 < diff[8:].min()

# %% [markdown]
# ## Random-weight output
#
# The scaled-down step-06 model greedily continues a five-token prompt. With random weights the continuation is
# gibberish (greedy decoding of random weights tends to lock onto one token); the point is that the pipeline
# (prefill, then cached single-token steps past the window) runs. The 256-token toy vocabulary is read as bytes.

# %%
model32 = gptoss_np.build_model(small, seed=0)
prompt = np.frombuffer(b"Hello", dtype=np.uint8).astype(np.int64)
cache = model32.new_cache()
logits = model32(prompt, cache=cache)
out = []
for _ in range(20):
    nxt = gptoss_np.sample(logits[-1], temperature=0)
    out.append(nxt)
    logits = model32(np.array([nxt]), cache=cache)
print("greedy ids :", out)
print("as bytes   :", bytes(out))
print("cache held :", cache.stored_tokens(), "after", cache.length, "tokens")
rng = np.random.default_rng(0)
sampled = [gptoss_np.sample(row, temperature=1.0, rng=rng) for row in model32(np.arange(25) % 256)[-8:]]
print("sampled ids at T=1, last 8 positions of a 25-token forward:", sampled)

# %% [markdown]
# ## Random weights, then trained ones: what a windowed and a full layer look at
#
# The shipped model (`gptoss_np.default_checkpoint()`, a small gpt-oss trained on Shakespeare's dialogue)
# alternates windowed (64) and full layers. Its attention weights, recomputed from the trace for one head of each
# kind over a held-out exchange, beside the same architecture with random weights: the window bounds what a layer
# *can* read; training decides what it *does* read. At this scale only.

# %%
from gptoss_np.text import harmony as H
from gptoss_np.text.corpus import dialogue_pairs, shakespeare_splits

shipped = gptoss_np.load_model(gptoss_np.default_checkpoint(), progress=False)
tok = gptoss_np.get_tokenizer(gptoss_np.default_checkpoint())
(sp_a, line_a), (sp_b, line_b) = dialogue_pairs(shakespeare_splits()[1])[5]  # an exchange from a held-out play
exchange = np.array(H.render_conversation(tok, [H.user_message(line_a),
                                                H.Message("assistant", line_b, channel="final")]))[:160]


def attention_weights(model, tokens, layer, head):
    """[T, T] softmax weights of one head (with its sink in the denominator), recomputed from the trace."""
    c = model.cfg
    _, tr = model(tokens, trace=True)
    q = tr[f"layers.{layer}.attn.q"][:, head]  # [T, d]
    k = tr[f"layers.{layer}.attn.k"][:, head // (c.n_heads // c.n_kv_heads)]  # [T, d]: its GQA kv head
    pos = np.arange(len(tokens))
    s = np.where(A.attention_mask(pos, pos, c.layer_windows[layer]), q @ k.T / np.sqrt(c.head_dim), -np.inf)
    return A.softmax_with_sink(s, model.params[f"layers.{layer}.attn.sinks"][head])


assert shipped.cfg.layer_windows[:2] == (64, None)  # windowed (64) and full layers, alternating
random_twin = gptoss_np.build_model(shipped.cfg, seed=0)
fig, axes = plt.subplots(2, 2, figsize=(10, 9))
for row, (name, model) in enumerate((("random", random_twin), ("trained", shipped))):
    for col, layer in enumerate((0, 1)):
        w = attention_weights(model, exchange, layer, head=0)
        assert (w[np.triu_indices(len(exchange), 1)] == 0).all()  # causal: nothing from the future
        axes[row, col].imshow(np.sqrt(w), cmap="viridis")
        kind = "full" if shipped.cfg.layer_windows[layer] is None else f"window {shipped.cfg.layer_windows[layer]}"
        axes[row, col].set_title(f"{name}, layer {layer} ({kind}), head 0")
        axes[row, col].set_xlabel("key position")
        axes[row, col].set_ylabel("query position")
fig.suptitle("attention weights (square root, to show the small ones)", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# And their text: each model's greedy reply to the first line of the held-out exchange above (harmony prompt, low
# effort), decoded with its special tokens so the channels show. Random weights repeat a few tokens of the vocabulary;
# the trained model answers in the format it was trained on, in something like Shakespeare's English.

# %%
from gptoss_np.text.chat import greedy_reply


for name, model in (("random weights", random_twin), ("trained", shipped)):
    print(f"--- {name}, greedy ---\n{greedy_reply(model, tok, line_a)}\n")

# %% [markdown]
# ## Final check
#
# The claims of this chapter, as asserts: the step changes only the window pattern; the window counts the
# current token; the parameters do not change; the cache ratio tends to ½; the cache holds *W* − 1 tokens on
# sliding layers; cached decoding matches the full forward past the window.

# %%
assert cfg == prev.replace(layer_windows=tuple(128 if i % 2 == 0 else None for i in range(48)))
assert cfg.layer_windows == gptoss_np.get_config("gpt-oss-20b").layer_windows[:2] * 24
m = A.sliding_window_mask(np.arange(1000), np.arange(1000), 128)
assert (m.sum(axis=1) == np.minimum(np.arange(1000) + 1, 128)).all()
assert gptoss_np.count_params(cfg) == gptoss_np.count_params(prev)
r = kv_cache_bytes(cfg, 131072) / kv_cache_bytes(prev, 131072)
assert 0.5 < r < 0.501, r
assert 0.5 < kv_cache_bytes(cfg, 4096) / kv_cache_bytes(prev, 4096) < 0.52
assert cache.stored_tokens() == [7, len(prompt) + 20, 7, len(prompt) + 20]
assert err64 < 1e-12 and err32 < 1e-5
print(f"all checks passed in {time.time() - T_START:.1f} s")
