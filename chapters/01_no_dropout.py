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
# # 01 · Drop dropout
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config with random weights: no download, no GPU.
# Real-size numbers come from the configs alone.*
#
# The first step of the chain changes one field, `dropout: 0.1 → 0.0`, and nothing a trained model computes.
# This chapter shows why both halves of that sentence hold: what dropout does while a model trains, why it is
# the identity once it is deployed, and why modern pretraining leaves it out.

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
from gptoss_np.accounting import format_delta_table, summary
from gptoss_np.config import chain_changes

np.set_printoptions(precision=4, suppress=True, linewidth=110)
steps = dict(gptoss_np.chain())
prev, cfg = steps["00-gpt2-xl"], steps["01-no-dropout"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")

# %% [markdown]
# ## Explain
#
# - **What dropout does.** During training, every activation it touches is set to zero with probability $p$
#   and the survivors are scaled by $1/(1-p)$ ("inverted" dropout), so the expected value is unchanged:
#   $\text{dropout}(x)_i = m_i\,x_i/(1-p)$, $m_i \sim \text{Bernoulli}(1-p)$, $\mathbb{E}[\text{dropout}(x)] = x$.
#   Each step trains a different random sub-network, which discourages units from relying on one another and
#   fights overfitting (Srivastava et al., 2014, *Dropout: A Simple Way to Prevent Neural Networks from
#   Overfitting*).
# - **Where GPT-2 has it.** $p = 0.1$ at four sites (three settings in its config): the embedding sum, the attention
#   probabilities, and the
#   output of each residual branch (attention and MLP), before it is added back.
# - **At inference it is the identity.** A deployed model runs in eval mode, where dropout passes its input through.
#   So removing it changes no parameter, no byte and no FLOP of inference: this step's delta table is all zeros. In
#   PyTorch the switch is `model.eval()`: Hugging Face's `from_pretrained` returns a model already in eval mode
#   ([its documentation](https://huggingface.co/docs/transformers/main_classes/model)), but a model built by hand
#   starts in training mode, and forgetting the switch is a classic reason why "my output does not match Hugging
#   Face": the logits then change from run to run.
# - **Why it went away (the seed's account).** Dropout fights overfitting, and overfitting needs repetition.
#   Large language models are now pretrained on corpora so big that most tokens are seen about once
#   (single-epoch training); there is little to overfit, and the noise only slows learning. gpt-oss and Qwen3
#   have no dropout anywhere (`attention_dropout: 0.0` in their configs).
# - **Where the evidence is thinner than the seed.** The seed says recent studies "confirm" that dropout hurts
#   single-epoch pretraining. The study usually cited (Liu, Bauer & Manning, 2025, [*Drop Dropout on Single-Epoch
#   Language Model Pretraining*](https://arxiv.org/abs/2505.24788)) reports better downstream results without
#   dropout, on models far smaller than gpt-oss. One study at small scale supports the choice; "confirm" is stronger
#   than that. Testing it takes training runs: chapter 11's ladder tries it at a small scale only, and what this
#   chapter tests is the inference half of the claim.

# %% [markdown]
# ## Build: GPT-2's forward with its three dropouts
#
# Chapter 00's forward, unchanged except for the lines marked `# NEW`. A random generator `rng` switches
# training mode on; `rng=None` is eval mode. First the helpers, as in chapter 00:

# %%
def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)  # [T, 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [T, 1]
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, weight, bias):
    return x @ weight.T + bias  # [T, in] -> [T, out]


def ffn(x, up, down):
    return linear(gelu(linear(x, **up)), **down)  # [T, D] -> [T, 4D] -> [T, D]


def nest(flat):
    """{'layers.0.attn.q.weight': w, ...} -> {'layers': [{'attn': {'q': {'weight': w}}}], ...}."""
    tree = {}
    for name, w in flat.items():
        *path, leaf = name.split(".")
        node = tree
        for part in path:
            node = node.setdefault(part, {})
        node[leaf] = w
    tree["layers"] = [tree["layers"][str(i)] for i in range(len(tree["layers"]))]
    return tree


# %% [markdown]
# Then dropout and the forward that uses it:

# %%
def dropout(x, p, rng):  # NEW
    """Inverted dropout: zero each entry with probability p, scale the rest by 1/(1-p); identity in eval mode."""
    if rng is None or p == 0.0:
        return x
    keep = rng.random(x.shape) >= p  # [same shape as x], True with probability 1 - p
    return np.where(keep, x / (1.0 - p), 0.0)


def causal_attention(q, k, v, p, rng):
    T, d = q.shape
    mask = np.triu(np.full((T, T), -np.inf), k=1)  # [T, T]
    probs = softmax(q @ k.T / np.sqrt(d) + mask)  # [T, T]
    return dropout(probs, p, rng) @ v  # NEW: attention dropout; [T, T] @ [T, d] -> [T, d]


def mha(x, q, k, v, o, n_heads, p, rng):
    q, k, v = linear(x, **q), linear(x, **k), linear(x, **v)  # [T, D] each
    heads = [causal_attention(qh, kh, vh, p, rng)  # n_heads x [T, d]
             for qh, kh, vh in zip(*(np.split(t, n_heads, axis=-1) for t in (q, k, v)))]
    return linear(np.concatenate(heads, axis=-1), **o)  # [T, D]


def block(x, attn_norm, attn, ffn_norm, mlp, n_heads, p, rng):
    x = x + dropout(mha(layer_norm(x, **attn_norm), **attn, n_heads=n_heads, p=p, rng=rng), p, rng)  # NEW
    return x + dropout(ffn(layer_norm(x, **ffn_norm), **mlp), p, rng)  # NEW: residual dropout on both branches


def gpt2(tokens, embed, pos_embed, layers, final_norm, n_heads, p=0.0, rng=None):
    x = embed["weight"][tokens] + pos_embed["weight"][np.arange(len(tokens))]  # [T, D]
    x = dropout(x, p, rng)  # NEW: embedding dropout
    for layer in layers:
        x = block(x, **layer, n_heads=n_heads, p=p, rng=rng)
    return layer_norm(x, **final_norm) @ embed["weight"].T  # [T, V]


# %% [markdown]
# ## Check
#
# 1. Eval mode equals `gptoss_np.Model` of this step *and* of the step before, on the same weights: the oracle
#    has no dropout code at all, and `dropout` is a field it never reads.
# 2. Training mode with $p = 0$ equals eval mode; with $p = 0.1$ two runs differ (the `model.eval()` trap).
# 3. Inverted dropout keeps the mean: averaged over many masks, `dropout(x)` returns to `x`, and about a
#    fraction $p$ of the entries is zeroed in each mask.

# %%
small_prev, small = gptoss_np.scale_down(prev), gptoss_np.scale_down(cfg)
weights = gptoss_np.init_weights(small, seed=0)
params = nest({k: v.astype(np.float64) for k, v in weights.items()})
tokens = np.frombuffer(b"The quick brown fox", dtype=np.uint8).astype(np.int64)
H, P = small.n_heads, prev.dropout  # GPT-2's p = 0.1

eval_logits = gpt2(tokens, **params, n_heads=H)  # rng=None: eval mode
oracle_now = gptoss_np.Model(small, weights, dtype=np.float64)(tokens)
oracle_before = gptoss_np.Model(small_prev, weights, dtype=np.float64)(tokens)  # dropout=0.1 in its config
print("eval vs oracle (step 01):       ", np.abs(eval_logits - oracle_now).max())
print("eval vs oracle (step 00):       ", np.abs(eval_logits - oracle_before).max())

p0 = gpt2(tokens, **params, n_heads=H, p=0.0, rng=np.random.default_rng(1))
t1 = gpt2(tokens, **params, n_heads=H, p=P, rng=np.random.default_rng(1))
t2 = gpt2(tokens, **params, n_heads=H, p=P, rng=np.random.default_rng(2))
print("train p=0 vs eval:              ", np.abs(p0 - eval_logits).max())
print("train p=0.1, two runs:          ", np.abs(t1 - t2).max())

rng = np.random.default_rng(0)
x = rng.standard_normal(64)
masks = np.stack([dropout(x, P, rng) for _ in range(20000)])  # [20000, 64]
print(f"mean over 20000 masks vs x:      {np.abs(masks.mean(0) - x).max():.4f} (max |x| {np.abs(x).max():.2f})")
print(f"fraction zeroed:                 {(masks == 0).mean():.4f} (p = {P})")

assert np.abs(eval_logits - oracle_now).max() < 1e-12 and np.abs(eval_logits - oracle_before).max() < 1e-12
assert np.array_equal(p0, eval_logits) and np.abs(t1 - t2).max() > 1e-3
assert np.abs(masks.mean(0) - x).max() < 0.03 and abs((masks == 0).mean() - P) < 0.005

# %% [markdown]
# ## The config field
#
# The chain's step 01 differs from GPT-2 XL in one field. The oracle only does inference, so it never reads it;
# the field documents the training recipe, and a trainer built on these configs would honour it.

# %%
d_prev, d_now = prev.to_dict(), cfg.to_dict()
changed = {k: (d_prev[k], d_now[k]) for k in d_prev if k != "name" and d_prev[k] != d_now[k]}
print(changed)
assert changed == {"dropout": (0.1, 0.0)}

# %% [markdown]
# ## Delta table, real size
#
# Every row is unchanged: dropout has no parameters and costs nothing at inference.

# %%
print(format_delta_table(prev, cfg))
assert summary(prev) == summary(cfg)

# %% [markdown]
# ## A figure: what dropout does to one prediction while training
#
# The same prompt through the tiny model 400 times in training mode, each time with fresh masks. Left: the
# next-token logit of the token the eval-mode model ranks first, spread over the 400 runs, with the eval value
# marked. Right: for all 256 next-token logits, the training-mode mean against the eval value. The points sit
# near the diagonal but not on it (here on a slightly flatter line): scaling by $1/(1-p)$ keeps each *layer's*
# expectation, yet the network is nonlinear, so the eval forward only approximates the average over the
# sub-networks. Training sees this noise; deployment never does.

# %%
rng = np.random.default_rng(0)
runs = np.stack([gpt2(tokens, **params, n_heads=H, p=P, rng=rng)[-1] for _ in range(400)])  # [400, V]
top = int(eval_logits[-1].argmax())
assert runs.shape == (400, 256)  # 400 runs, all 256 next-token logits

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.hist(runs[:, top], bins=40, color="tab:blue", alpha=0.8, label="training mode, 400 masks")
ax1.axvline(eval_logits[-1, top], color="k", lw=2, label="eval mode (no dropout)")
ax1.axvline(runs[:, top].mean(), color="tab:orange", ls="--", lw=2, label="mean of training runs")
ax1.set_xlabel(f"logit of token {top} ({chr(top)!r}) after {bytes(tokens.tolist()).decode()!r}")
ax1.set_ylabel("runs")
ax1.legend(fontsize=8)
ax1.set_title(f"dropout p = {P}: one logit, 400 training-mode forwards")
lim = np.abs(eval_logits[-1]).max() * 1.1
ax2.plot([-lim, lim], [-lim, lim], color="gray", lw=1)
ax2.scatter(eval_logits[-1], runs.mean(0), s=8)
ax2.set_xlabel("eval-mode logit")
ax2.set_ylabel("mean training-mode logit")
ax2.set_title("all 256 next-token logits")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The scaled-down model of this step
#
# `build_model` draws random weights for the scaled-down step-01 config. With the same seed it draws exactly
# the weights of step 00 (the field changes no shape), so the two models are the same function: the greedy
# continuation is the same random-weight gibberish, byte for byte.

# %%
def greedy(model, prompt, n_new):
    """The prompt and n_new greedy tokens, decoded with the KV cache by the package's generate()."""
    return np.concatenate([prompt, list(generate(model, prompt, n_new, temperature=0))]).astype(np.int64)


def as_text(ids):
    """Byte tokens as text; a byte that does not print shows as '·'."""
    return "".join(chr(t) if chr(t).isprintable() else "·" for t in ids)


prompt = np.frombuffer(b"Dropout is", dtype=np.uint8).astype(np.int64)
m_prev, m_now = gptoss_np.build_model(small_prev, seed=0), gptoss_np.build_model(small, seed=0)
out_prev, out_now = greedy(m_prev, prompt, 24), greedy(m_now, prompt, 24)
print("step 00:", as_text(out_prev))
print("step 01:", as_text(out_now))

# %% [markdown]
# ## Checks
#
# The chapter's claims: dropout is the identity in eval mode and the oracle equals that eval forward for both
# steps; training mode is random and keeps the mean; the step changes exactly one field and no accounting
# number; the scaled-down models of steps 00 and 01 compute the same function.

# %%
assert np.abs(gpt2(tokens, **params, n_heads=H) - oracle_now).max() < 1e-12
assert np.array_equal(dropout(x, 0.1, None), x) and np.array_equal(dropout(x, 0.0, rng), x)
assert not np.array_equal(t1, t2)
assert changed == {"dropout": (0.1, 0.0)} and cfg.dropout == 0.0 == gptoss_np.get_config("gpt-oss-20b").dropout
assert summary(prev) == summary(cfg)
assert np.array_equal(out_prev, out_now)
assert np.array_equal(m_prev(prompt), m_now(prompt))
print("all checks passed")
