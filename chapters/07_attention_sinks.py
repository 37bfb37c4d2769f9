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
# # 07 · Attention sinks: a learned way to attend to nothing
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config with random weights, then the small gpt-oss this
# project trained and ships in the package: no download, no GPU. Real-size numbers come from the configs alone.*
#
# Step 07 gives every query head of every layer one learned number, its sink logit. The sink competes in the
# softmax like one more key, but it has no value vector, so whatever weight it wins is simply not spent on any
# token. That is 25 numbers per layer at this step (1,200 in all) and 64 per layer in gpt-oss-20b.

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
from gptoss_np.accounting import format_delta_table
from gptoss_np.config import chain_changes
from gptoss_np.ffn import linear

T_START = time.time()
steps = dict(gptoss_np.chain())
prev, cfg = steps["06-sliding-window"], steps["07-sinks"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")
rng = np.random.default_rng(0)

# %% [markdown]
# ## Explain
#
# - **What changes.** For head *h* with sink logit *S*ₕ, the attention weights over the allowed keys become
#   *p*ⱼ = exp(*l*ⱼ) / (Σₖ exp(*l*ₖ) + exp(*S*ₕ)). They sum to 1 − *p*ₛᵢₙₖ < 1. The sink is not scaled by
#   1/√*d*, it is the same at every position, and it has no value: the output is Σⱼ *p*ⱼ *v*ⱼ over real keys only.
# - **Why.** A plain softmax must hand out exactly 1 of attention even when a head has nothing to read. Trained
#   models cope by parking the surplus on a token that carries little, very often the first one: Xiao et al.
#   (2023) named these *attention sinks* and showed that a sliding-window cache collapses once the first tokens
#   are evicted, and that keeping them, or training with a dedicated sink token, repairs it. Miller's
#   "Attention Is Off By One" (2023) proposed adding 1 to the softmax denominator, which is a sink whose logit is
#   fixed at 0. gpt-oss learns the logit per head instead.
# - **Why here, after chapter 06.** In a layer with a 128-token window the first token of the text leaves the
#   window after 128 steps, so the usual parking place is gone; a learned sink gives every window one. That is
#   our reading of why the two features appear together; the release does not say so.
# - **The seed** describes sinks as learned per-head biases that stabilise long-context processing. What can be
#   computed here is the mechanism: how much weight a sink takes and how that depends on the logit and on the
#   number of keys (figures below). Whether it improves gpt-oss is not something a from-scratch reimplementation
#   can measure, and the seed cites no ablation. Its sentence doubting "their necessity" follows its remark on
#   query/key *biases*; chapter 10 takes those up.
# - **Papers.** Xiao et al., *Efficient Streaming Language Models with Attention Sinks* (2023); Miller,
#   *Attention Is Off By One* (blog post, 2023); Sun et al., *Massive Activations in Large Language Models* (2024);
#   OpenAI, *gpt-oss-120b & gpt-oss-20b Model Card* (2025).

# %% [markdown]
# ## Build: two ways to write the sink
#
# OpenAI's reference (`sdpa` in [gpt_oss/torch/model.py](https://github.com/openai/gpt-oss/blob/main/gpt_oss/torch/model.py))
# appends the sink as an extra column, takes the softmax and drops the column. The same thing can be written as a
# log-sum-exp denominator with no extra column. Both beside the plain softmax of chapters 00–06:

# %%
def softmax(x):
    """Chapters 00-06: exp(x - max) / sum exp(x - max) over the last axis."""
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_sink_column(scores, sink):
    """The sink as one more column: softmax over [scores | sink], then drop the sink's column. [..., S] -> [..., S]"""
    col = np.broadcast_to(sink, scores.shape[:-1] + (1,))  # NEW  [..., 1]
    return softmax(np.concatenate([scores, col], axis=-1))[..., :-1]  # NEW  [..., S+1] -> [..., S]


def softmax_sink_lse(scores, sink):
    """The sink in the denominator only: p_j = exp(s_j - L), L = log(sum_j exp(s_j) + exp(sink))."""
    m = np.maximum(scores.max(axis=-1, keepdims=True), sink)  # NEW: the shift includes the sink  [..., 1]
    L = m + np.log(np.exp(scores - m).sum(axis=-1, keepdims=True) + np.exp(sink - m))  # NEW  [..., 1]
    return np.exp(scores - L)  # [..., S]


H, T = 6, 10
scores = 3.0 * rng.standard_normal((H, T, T))  # [H, T, S]
scores = np.where(A.causal_mask(np.arange(T), np.arange(T)), scores, -np.inf)  # masked keys, as attention passes them
sinks = 2.0 * rng.standard_normal(H).reshape(H, 1, 1)  # one logit per head
p_col, p_lse = softmax_sink_column(scores, sinks), softmax_sink_lse(scores, sinks)
p_pkg = A.softmax_with_sink(scores, sinks)
np.testing.assert_allclose(p_col, p_lse, rtol=1e-13, atol=1e-300)
np.testing.assert_allclose(p_lse, p_pkg, rtol=1e-13, atol=1e-300)
row_sums = p_lse.sum(axis=-1)
p_sink = softmax(np.concatenate([scores, np.broadcast_to(sinks, (H, T, 1))], axis=-1))[..., -1]  # the dropped column
np.testing.assert_allclose(1 - row_sums, p_sink, rtol=1e-11)
print("column form == log-sum-exp form == gptoss_np.attention.softmax_with_sink")
print(f"row sums lie in [{row_sums.min():.3f}, {row_sums.max():.3f}]: what is missing is the sink's share")

# %% [markdown]
# ## Traps: the denominator only, and the same shift on both sides
#
# - Renormalising the rows after dropping the column ("so they sum to 1 again") removes the sink entirely: the
#   result is the plain softmax.
# - A fused kernel keeps a running maximum for stability. If the numerators are shifted by the maximum of the
#   scores but the denominator by the maximum including the sink, every weight is off by exp(*m*ₛᵢₙₖ − *m*) as soon
#   as the sink is the larger. Both sides must use the same shift (transformers subtracts the row maximum including
#   the sink, in `eager_attention_forward` of
#   [modeling_gpt_oss.py](https://github.com/huggingface/transformers/blob/main/src/transformers/models/gpt_oss/modeling_gpt_oss.py);
#   OpenAI's flash kernel,
#   [gpt_oss/triton/attention.py](https://github.com/openai/gpt-oss/blob/main/gpt_oss/triton/attention.py), starts
#   its running maximum at the sink value).
# - The sink is a logit, not a query·key product: scaling it by 1/√*d* like the scores is a different model.
#
# Each wrong version below differs from the right one; the shift itself is harmless when applied consistently.

# %%
def renormalised(scores, sink):  # wrong: the rows sum to 1 again, the sink does nothing
    p = softmax_sink_column(scores, sink)
    return p / p.sum(axis=-1, keepdims=True)


def mismatched_shift(scores, sink):  # wrong: numerator shifted by max(scores), denominator by max(scores, sink)
    m_s = scores.max(axis=-1, keepdims=True)
    m = np.maximum(m_s, sink)
    return np.exp(scores - m_s) / (np.exp(scores - m).sum(axis=-1, keepdims=True) + np.exp(sink - m))


def scaled_sink(scores, sink, d=64):  # wrong: the sink divided by sqrt(d) like a score
    return softmax_sink_lse(scores, sink / np.sqrt(d))


def no_shift(scores, sink):  # right, if the numbers are small: the shift cancels in exact arithmetic
    return np.exp(scores) / (np.exp(scores).sum(axis=-1, keepdims=True) + np.exp(sink))


np.testing.assert_allclose(no_shift(scores, sinks), p_lse, rtol=1e-12, atol=1e-300)
np.testing.assert_allclose(renormalised(scores, sinks), softmax(scores), rtol=1e-12, atol=1e-300)
for name, fn in (("renormalised after the drop", renormalised), ("mismatched shift", mismatched_shift),
                 ("sink scaled by 1/sqrt(d)", scaled_sink)):
    err = np.abs(fn(scores, sinks) - p_lse).max()
    print(f"{name:28s} max |wrong - right| = {err:.3f}")
    assert err > 1e-2

# %% [markdown]
# ## Build: attention with sinks
#
# Chapter 05's grouped-query attention written head by head, with the one changed line marked. Query head *h* reads
# kv head *h* // *G*; the sinks belong to the query heads. Checked against `gptoss_np.attention.attention`, which
# does the same with one matmul per kv head.

# %%
def attention_per_head(q, k, v, allowed, sinks=None):
    """q [T, Hq, d], k/v [S, Hkv, d], allowed [T, S], sinks [Hq] -> [T, Hq, d]."""
    T, Hq, d = q.shape
    G = Hq // k.shape[1]  # query heads per kv head
    out = np.empty_like(q)
    for h in range(Hq):
        s = q[:, h] @ k[:, h // G].T / np.sqrt(d)  # [T, S]
        s = np.where(allowed, s, -np.inf)
        p = softmax(s) if sinks is None else softmax_sink_lse(s, sinks[h])  # NEW: the head's sink  [T, S]
        out[:, h] = p @ v[:, h // G]  # [T, d]; the sink contributes no value
    return out


q, k, v = rng.standard_normal((12, 8, 16)), rng.standard_normal((12, 2, 16)), rng.standard_normal((12, 2, 16))
for allowed in (A.causal_mask(np.arange(12), np.arange(12)), A.sliding_window_mask(np.arange(12), np.arange(12), 4)):
    head_sinks = 2.0 * rng.standard_normal(8)
    np.testing.assert_allclose(attention_per_head(q, k, v, allowed, head_sinks),
                               A.attention(q, k, v, allowed, head_sinks), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(attention_per_head(q, k, v, allowed), A.attention(q, k, v, allowed), rtol=1e-12)
print("attention_per_head == gptoss_np.attention.attention, with and without sinks, causal and sliding")

# %% [markdown]
# ## Figure: how much weight the sink takes
#
# With logits *l*ⱼ the sink's share is σ(*S* − log Σⱼ exp *l*ⱼ): a logistic function of the sink logit, shifted by
# the log-sum-exp of the real scores, which grows like log *n* with the number of keys *n*. Below, scores are
# q·k/√64 for random unit-variance q and k (so each score has variance 1), averaged over 200 queries.
# The right panel shows what this means for the two kinds of layer: in a sliding layer the number of keys stops at
# 128, so a sink keeps its share however long the text gets; in a full layer the same sink is diluted as the
# context grows.

# %%
def sink_share(n_keys, sink, n_queries=200, d=64, seed=1):
    """Average weight the sink takes from n_keys random keys (scores q.k/sqrt(d), unit-variance q and k), for each
    sink logit in `sink`: [n_sinks] -> [n_sinks]."""
    r = np.random.default_rng(seed)
    s = r.standard_normal((n_queries, d)) @ r.standard_normal((n_keys, d)).T / np.sqrt(d)  # [Q, n]
    sink = np.asarray(sink, dtype=float).reshape(-1, 1, 1)  # [n_sinks, 1, 1]
    return 1.0 - softmax_sink_lse(s[None], sink).sum(axis=-1).mean(axis=-1)  # [n_sinks, Q, n] -> [n_sinks]


sink_logits = np.linspace(-4, 12, 33)
key_counts = np.unique(np.geomspace(1, 8192, 24).astype(int))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
for n in (1, 16, 128, 4096):
    ax1.plot(sink_logits, sink_share(n, sink_logits), label=f"{n} key" + "s" * (n > 1))
    ax1.plot(sink_logits, 1 / (1 + np.exp(-(sink_logits - np.log(n) - 0.5))), "k:", lw=0.8)
ax1.set_xlabel("sink logit S")
ax1.set_ylabel("attention weight on the sink")
ax1.set_title("share vs sink logit (dotted: sigmoid(S - ln n - 1/2))")
ax1.legend(fontsize=8)
S_values = (0.0, 3.0, 6.0)
full = np.array([sink_share(int(n), S_values) for n in key_counts])  # [n_counts, 3]
slide = np.array([sink_share(int(min(n, 128)), S_values) for n in key_counts])
for i, s in enumerate(S_values):
    ax2.semilogx(key_counts, full[:, i], f"C{i}-", label=f"S = {s:g}, full layer")
    ax2.semilogx(key_counts, slide[:, i], f"C{i}--", label=f"S = {s:g}, window 128")
ax2.axvline(128, color="gray", ls=":", lw=1)
ax2.set_xlabel("tokens so far (keys a full layer reads)")
ax2.set_ylabel("attention weight on the sink")
ax2.set_title("share vs context: the window caps the dilution")
ax2.legend(fontsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# The dotted curves are the closed form for unit-variance scores, where E[exp *l*] = e^½ makes
# log Σ exp *l* ≈ ln *n* + ½ (a good approximation from a few dozen keys on, a poor one for a single key). One and
# the same sink logit can take nearly all the weight early in a text and almost none thousands of tokens later.
# Note also what the sink does not do: it cannot move weight *between* tokens (the ratios *p*ᵢ / *p*ⱼ are those of
# the plain softmax), it only scales the whole row down.

# %%
last_sink, last_plain = p_lse[:, -1], softmax(scores)[:, -1]  # the last query row: every key allowed  [H, S]
np.testing.assert_allclose(last_sink[:, :-1] / last_sink[:, 1:], last_plain[:, :-1] / last_plain[:, 1:], rtol=1e-10)
print("ratios between tokens are unchanged by the sink; only the row total shrinks")
for n in (4, 128, 4096):
    print(f"sink logit 6 against {n:4d} random keys takes {sink_share(n, [6.0])[0]:6.1%} of the weight")

# %% [markdown]
# ## Delta table: step 06 → step 07 at real size
#
# 48 layers × 25 heads = 1,200 parameters on top of 1.1 billion: every row rounds to zero change. The sink costs
# nothing measurable in memory, cache or FLOPs.

# %%
print(format_delta_table(prev, cfg))
added = gptoss_np.count_params(cfg)["total"] - gptoss_np.count_params(prev)["total"]
total = gptoss_np.count_params(cfg)["total"]
print(f"\nparameters added: {added:,} = {cfg.n_layers} layers x {cfg.n_heads} heads, "
      f"on top of {total / 1e9:.1f} billion")
assert added == cfg.n_layers * cfg.n_heads == 48 * 25 == 1200 and f"{total / 1e9:.1f}" == "1.1"

# %% [markdown]
# ## The scaled-down model with sinks
#
# Three checks on the step-07 model (random weights, float64): with every sink at −∞ it is exactly the step-06
# model; its attention output can be recomputed from its own trace with `attention_per_head`; and the weight its
# sinks take, per head and position, behaves as the figure above predicts: flat once a sliding layer's window is
# full, falling with position in a full layer.

# %%
small = gptoss_np.scale_down(cfg, window=16)
small_prev = gptoss_np.scale_down(prev, window=16)
weights = gptoss_np.init_weights(small, seed=0)
model = gptoss_np.Model(small, weights, dtype=np.float64)
tokens = (np.arange(96) * 37 + 11) % small.vocab_size
logits, trace = model(tokens, trace=True)

silenced = {n: (np.full_like(w, -np.inf) if n.endswith("attn.sinks") else w) for n, w in weights.items()}
no_sink_names = [n for n in weights if not n.endswith("attn.sinks")]
step06 = gptoss_np.Model(small_prev, {n: weights[n] for n in no_sink_names}, dtype=np.float64)
err_inf = np.abs(gptoss_np.Model(small, silenced, dtype=np.float64)(tokens) - step06(tokens)).max()
print(f"sinks = -inf vs the step-06 model: max |diff| = {err_inf:.1e}")
assert err_inf < 1e-12

pos = np.arange(len(tokens))
shares = {}
for i, w in enumerate(small.layer_windows):
    pre = f"layers.{i}.attn."
    qi, ki, vi = trace[pre + "q"], trace[pre + "k"], trace[pre + "v"]
    allowed = A.attention_mask(pos, pos, w)
    o = attention_per_head(qi, ki, vi, allowed, weights[pre + "sinks"])
    out = linear(o.reshape(len(tokens), -1), weights[pre + "o.weight"], weights[pre + "o.bias"])
    np.testing.assert_allclose(out, trace[pre + "out"], rtol=1e-10, atol=1e-12)
    G = small.n_heads // small.n_kv_heads
    s = np.einsum("thd,shd->hts", qi, np.repeat(ki, G, axis=1)) / np.sqrt(small.head_dim)  # [Hq, T, S]
    s = np.where(allowed, s, -np.inf)
    shares[i] = 1.0 - softmax_sink_lse(s, weights[pre + "sinks"].reshape(-1, 1, 1)).sum(axis=-1)  # [Hq, T]
print("attention output recomputed from the trace == the model's, in every layer")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.6), sharey=True)
for ax, (i, sh) in zip(axes, shares.items()):
    for h in range(sh.shape[0]):
        ax.plot(pos, sh[h], label=f"head {h}: S = {weights[f'layers.{i}.attn.sinks'][h]:+.2f}")
    w = small.layer_windows[i]
    ax.set_title(f"layer {i}: " + ("full causal" if w is None else f"sliding window {w}"))
    ax.set_xlabel("query position")
    ax.legend(fontsize=7)
    if w:
        ax.axvline(w - 1, color="gray", ls=":", lw=1)
axes[0].set_ylabel("attention weight on the sink")
fig.suptitle("random-weight step-07 model: the sink's share per head", y=1.02)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Random-weight output
#
# Greedy continuation of a five-token prompt by the scaled-down step-07 model: gibberish, as it should be with
# random weights; the 256-token toy vocabulary is read as bytes.

# %%
model32 = gptoss_np.build_model(small, seed=0)
cache = model32.new_cache()
step_logits = model32(np.frombuffer(b"Hello", dtype=np.uint8).astype(np.int64), cache=cache)
out = []
for _ in range(20):
    out.append(gptoss_np.sample(step_logits[-1], temperature=0))
    step_logits = model32(np.array(out[-1:]), cache=cache)
print("greedy ids:", out)
print("as bytes  :", bytes(out))

# %% [markdown]
# ## Random weights, then trained ones: where the sink's mass goes
#
# The shipped model (`gptoss_np.default_checkpoint()`, a small gpt-oss trained on Shakespeare's dialogue in the
# harmony format) has sinks that were *learned*. Recomputing each layer's attention from the trace (queries and
# keys after RoPE, the layer's mask and its sinks), the sink's share per head shows what training made of them,
# beside the same architecture with random weights (sinks drawn from N(0, 1)). What it shows is true of this small
# model at this scale; it says nothing certain about gpt-oss-20b's sinks.

# %%
from gptoss_np.text import harmony as H
from gptoss_np.text.corpus import dialogue_pairs, shakespeare_splits

shipped = gptoss_np.load_model(gptoss_np.default_checkpoint(), progress=False)
tok = gptoss_np.get_tokenizer(gptoss_np.default_checkpoint())
(a, line_a), (b, line_b) = dialogue_pairs(shakespeare_splits()[1])[5]  # an exchange from a held-out play
exchange = np.array(H.render_conversation(tok, [H.system_message("low"), H.user_message(line_a),
                                              H.Message("assistant", line_b, channel="final")]))


def sink_shares(model, tokens):
    """[L, Hq, T]: 1 - (attention weights over the keys) per layer, head and query, recomputed from the trace."""
    c = model.cfg
    _, tr = model(tokens, trace=True)
    pos = np.arange(len(tokens))
    out = []
    for i in range(c.n_layers):
        q = tr[f"layers.{i}.attn.q"]  # [T, Hq, d]
        k = np.repeat(tr[f"layers.{i}.attn.k"], c.n_heads // c.n_kv_heads, axis=1)  # [T, Hq, d]: GQA
        s = np.einsum("thd,shd->hts", q, k) / np.sqrt(c.head_dim)  # [Hq, T, T]
        s = np.where(A.attention_mask(pos, pos, c.layer_windows[i]), s, -np.inf)
        p = A.softmax_with_sink(s, model.params[f"layers.{i}.attn.sinks"].reshape(-1, 1, 1))
        out.append(1.0 - p.sum(axis=-1))  # [Hq, T]
    return np.stack(out)


random_twin = gptoss_np.build_model(shipped.cfg, seed=0)
trained, untrained = sink_shares(shipped, exchange), sink_shares(random_twin, exchange)
assert ((trained > -1e-6) & (trained < 1 + 1e-6)).all()  # shares, up to float rounding
print(f"{len(exchange)} tokens of a held-out exchange ({a} -> {b}); mean sink share per layer and head:")
for name, sh in (("random", untrained), ("trained", trained)):
    for i in range(sh.shape[0]):
        kind = "full" if shipped.cfg.layer_windows[i] is None else f"window {shipped.cfg.layer_windows[i]}"
        print(f"  {name:7s} layer {i} ({kind:9s}): " + "  ".join(f"{v:.3f}" for v in sh[i].mean(axis=-1)))
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4), sharey=True)
for ax, (name, sh) in zip(axes, (("random weights", untrained), ("trained", trained))):
    for i in range(sh.shape[0]):
        ax.plot(sh[i].mean(axis=0), label=f"layer {i} ({'full' if shipped.cfg.layer_windows[i] is None else 'window'})")
    ax.set_title(f"{name}: sink share, mean over heads")
    ax.set_xlabel("query position")
    ax.legend(fontsize=7)
axes[0].set_ylabel("attention weight on the sink")
fig.tight_layout()
plt.show()

# %% [markdown]
# Training changes which heads lean on the sink and by how much: in this model a few heads give it a steady share
# while most barely use it. The ladder (chapter 11) found no measurable loss difference from sinks at this scale,
# so read this as what the mechanism does here, not as evidence that sinks are needed.

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
# The step adds exactly one logit per head per layer; the column and log-sum-exp forms agree with the package;
# rows sum to less than one by exactly the sink's share; renormalising would erase the sink; a −∞ sink is the old
# model; and the sink's share stops falling once a sliding window is full but keeps falling in a full layer.

# %%
assert cfg == prev.replace(sinks=True)
assert gptoss_np.param_shapes(cfg)["layers.0.attn.sinks"] == (cfg.n_heads,)
assert gptoss_np.param_shapes(gptoss_np.get_config("gpt-oss-20b"))["layers.0.attn.sinks"] == (64,)
np.testing.assert_allclose(softmax_sink_column(scores, sinks), A.softmax_with_sink(scores, sinks), rtol=1e-13)
assert (row_sums < 1).all() and np.allclose(1 - row_sums, p_sink)
assert np.abs(renormalised(scores, sinks) - A.softmax_with_sink(scores, sinks)).max() > 1e-2
assert err_inf < 1e-12
W_small = small.layer_windows[0]
def later_over_earlier(share):  # mean share over the last W positions / over the W after the window fills
    return share[:, -W_small:].mean(axis=1) / share[:, W_small:2 * W_small].mean(axis=1)


assert (np.abs(later_over_earlier(shares[0]) - 1) < 0.2).all()  # sliding layer: flat once the window is full
assert (later_over_earlier(shares[1]) < 0.5).all()  # full layer: diluted as the context grows
assert sink_share(4, [6.0])[0] > 0.95 and sink_share(4096, [6.0])[0] < 0.1
print(f"all checks passed in {time.time() - T_START:.1f} s")
