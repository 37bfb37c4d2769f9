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
# # 02 · LayerNorm → RMSNorm
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config with random weights: no download, no GPU.
# Real-size numbers come from the configs alone.*
#
# GPT-2 normalises with LayerNorm: subtract the mean, divide by the standard deviation, scale, shift. gpt-oss
# (like Llama, Mistral and Qwen3) uses RMSNorm: divide by the root mean square, scale. Step 02 of
# the chain swaps one for the other in all 97 places (two per block, one at the end).

# %%
import pathlib
import sys
import timeit

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import matplotlib.pyplot as plt
import numpy as np

import gptoss_np
from gptoss_np.text.chat import generate
from gptoss_np import norms
from gptoss_np.accounting import count_params, format_delta_table, summary
from gptoss_np.config import chain_changes

steps = dict(gptoss_np.chain())
prev, cfg = steps["01-no-dropout"], steps["02-rmsnorm"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")

# %% [markdown]
# ## Explain
#
# - **LayerNorm** (Ba, Kiros & Hinton, 2016), over the last axis of size $d$:
#   $\mu = \frac1d\sum_i x_i$, $\sigma^2 = \frac1d\sum_i (x_i-\mu)^2$,
#   $\text{LN}(x) = \frac{x-\mu}{\sqrt{\sigma^2+\epsilon}}\odot\gamma + \beta$. It *re-centres* (removes the
#   mean) and *re-scales* (divides by the spread); $\gamma$ and $\beta$ are learned.
# - **RMSNorm** (Zhang & Sennrich, 2019, *Root Mean Square Layer Normalization*):
#   $\text{RMS}(x) = \frac{x}{\sqrt{\frac1d\sum_i x_i^2+\epsilon}}\odot\gamma$. Re-scaling only: no mean, no
#   $\beta$. The paper's argument is that re-scaling invariance is what makes normalisation work, and
#   re-centring can be dropped at little cost in quality.
# - **The seed's reason**: less computation, "a nod to GPU efficiency". Per norm that is right: one reduction
#   over the row instead of two (the variance needs the mean first), about four operations per element instead
#   of seven, and no bias to store. But norms are a sliver of a transformer's arithmetic (computed below:
#   about 0.03 % of GPT-2 XL's FLOPs per token), so the saving in FLOPs is negligible; the real gain is
#   wall-clock time in memory-bound kernels (a norm reads and writes the whole activation for little math).
#   [Zhang & Sennrich](https://arxiv.org/abs/1910.07467) report 7 %–64 % shorter running times on their models;
#   that measures whole models with the implementations of the time, not the formula alone.
# - **gpt-oss's details** (`RMSNorm` in OpenAI's reference code,
#   [gpt_oss/torch/model.py](https://github.com/openai/gpt-oss/blob/main/gpt_oss/torch/model.py)):
#   $\epsilon = 10^{-5}$; the scale starts at ones; the reference code upcasts to float32, normalises *and*
#   multiplies by the float32 scale before casting back to bfloat16.

# %% [markdown]
# ## Build
#
# The two norms side by side; the RMSNorm lines that differ are marked.

# %%
def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)  # [..., 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [..., 1]: a second pass, over the centred values
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def rms_norm(x, weight, eps=1e-5):  # NEW: no bias
    ms = (x * x).mean(axis=-1, keepdims=True)  # NEW: one pass, mean of squares, no centring  [..., 1]
    return x / np.sqrt(ms + eps) * weight  # NEW: no mean subtracted, no shift


# %% [markdown]
# ## Check
#
# Against the package (`gptoss_np.norms`), in float64, on rows with an offset so that centring matters. Then
# the algebra that links the two: LayerNorm is RMSNorm applied to the centred row, plus the shift,
# $\text{LN}(x;\gamma,\beta) = \text{RMS}(x-\mu;\gamma) + \beta$ (the variance *is* the mean square of the
# centred row). And the invariances: both ignore a positive rescaling of the row; only LayerNorm ignores an
# added constant.

# %%
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 1600)) * 1.5 + 0.8  # [rows, d], offset mean
gamma, beta = 1 + 0.1 * rng.standard_normal(1600), 0.1 * rng.standard_normal(1600)

err_ln = np.abs(layer_norm(x, gamma, beta) - norms.layer_norm(x, gamma, beta)).max()
err_rms = np.abs(rms_norm(x, gamma) - norms.rms_norm(x, gamma)).max()
link = np.abs(layer_norm(x, gamma, beta) - (rms_norm(x - x.mean(-1, keepdims=True), gamma) + beta)).max()
print(f"layer_norm vs gptoss_np: {err_ln:.1e}   rms_norm vs gptoss_np: {err_rms:.1e}   "
      f"LN = RMS(centred) + b: {link:.1e}")

scale = np.abs(rms_norm(7.0 * x, gamma) - rms_norm(x, gamma)).max()
shift_ln = np.abs(layer_norm(x + 3.0, gamma, beta) - layer_norm(x, gamma, beta)).max()
shift_rms = np.abs(rms_norm(x + 3.0, gamma) - rms_norm(x, gamma)).max()
print(f"RMS(7x) - RMS(x): {scale:.1e}   LN(x+3) - LN(x): {shift_ln:.1e}   RMS(x+3) - RMS(x): {shift_rms:.2f}")
assert err_ln < 1e-12 and err_rms < 1e-12 and link < 1e-12
assert scale < 1e-5 and shift_ln < 1e-5 and shift_rms > 0.1

# %% [markdown]
# ## Cost
#
# Counting the operations per element (LayerNorm: mean, subtract, square, sum, normalise, scale, shift = 7;
# RMSNorm: square, sum, normalise, scale = 4) for all 97 norms of GPT-2 XL, against the whole forward's FLOPs per
# token from the config. Then a wall-clock measurement of both NumPy functions on a `[4096, 1600]` float32 batch:
# NumPy runs each operation as its own pass over memory, so the count of passes shows up directly. (A timing, so
# it varies from machine to machine and is printed, not asserted.)

# %%
n_norms, D = 2 * prev.n_layers + 1, prev.d_model
ln_flops, rms_flops = 7 * D * n_norms, 4 * D * n_norms
total = summary(prev)["FLOPs/token"]  # at the table's context (GPT-2: its 1024)
print(f"norm FLOPs per token: LayerNorm {ln_flops:,}  RMSNorm {rms_flops:,}  (forward: {total / 1e9:.2f} G)")
print(f"share of the forward: LayerNorm {ln_flops / total:.4%}  RMSNorm {rms_flops / total:.4%}")
assert n_norms == 97 and f"{ln_flops / total:.2%}" == "0.03%"  # "all 97 norms", "about 0.03 %"
assert 1e6 < ln_flops < 1.2e6  # the norms' "million or so operations" (below)

xb = np.random.default_rng(1).standard_normal((4096, 1600)).astype(np.float32)
g32, b32 = np.ones(1600, np.float32), np.zeros(1600, np.float32)
t_ln = min(timeit.repeat(lambda: layer_norm(xb, g32, b32), number=3, repeat=5)) / 3
t_rms = min(timeit.repeat(lambda: rms_norm(xb, g32), number=3, repeat=5)) / 3
print(f"NumPy on [4096, 1600] float32: LayerNorm {t_ln * 1e3:.1f} ms, RMSNorm {t_rms * 1e3:.1f} ms "
      f"(RMSNorm takes {t_rms / t_ln:.0%} of LayerNorm's time)")

# %% [markdown]
# ## Delta table, real size
#
# The only parameters that go are the 97 bias vectors ($\beta$) of width 1600: 155,200 of 1.56 billion, a change
# the table's one decimal rounds to zero. KV cache and FLOPs per token do not move (the table's FLOPs count the
# matrix products; the norms' million or so operations, above, are below its resolution).

# %%
print(format_delta_table(prev, cfg))
removed = count_params(prev)["total"] - count_params(cfg)["total"]
print(f"\nparameters removed: {removed:,} = {n_norms} norms x {D}, {removed / count_params(prev)['total']:.1%} of "
      f"{count_params(prev)['total'] / 1e9:.2f} billion")
assert removed == n_norms * D == 155_200
assert f"{count_params(prev)['total'] / 1e9:.2f}" == "1.56" and f"{removed / count_params(prev)['total']:.1%}" == "0.0%"

# %% [markdown]
# ## A figure: both norms on a sample
#
# Left: a row of 1600 values with mean 0.8 (a residual stream row often carries such an offset), after each
# norm. LayerNorm moves it to mean 0 and standard deviation 1; RMSNorm only rescales it to root mean square 1,
# so the offset survives, shrunk in proportion. Right: the geometry, shown in 2 dimensions where it can be drawn
# ($\gamma = 1$, $\beta = 0$). RMSNorm puts every point on the circle of radius $\sqrt d = \sqrt2$; LayerNorm
# first projects onto the line $x_1 + x_2 = 0$ (removing the mean removes a direction), then rescales, so in 2
# dimensions only two points are left: $(1, -1)$ and $(-1, 1)$ (the few crosses between them are inputs with
# $x_1 \approx x_2$, whose tiny variance is comparable to $\epsilon$). In $d$ dimensions LayerNorm outputs lie
# on a sphere inside a $(d-1)$-dimensional plane; RMSNorm outputs on the full sphere.

# %%
row = np.random.default_rng(2).standard_normal(1600) * 1.5 + 0.8
ones = np.ones(1600)
pts = np.random.default_rng(3).standard_normal((300, 2)) * [1.5, 0.7] + [0.6, 0.3]  # [300, 2]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.4, 1]})
bins = np.linspace(-4, 6, 80)
for values, label, color in ((row, "x (mean 0.8, std 1.5)", "gray"),
                             (layer_norm(row, ones, 0 * ones), "LayerNorm(x)", "tab:blue"),
                             (rms_norm(row, ones), "RMSNorm(x)", "tab:orange")):
    ax1.hist(values, bins=bins, histtype="step", lw=2, color=color,
             label=f"{label}: mean {values.mean():+.2f}, rms {np.sqrt((values ** 2).mean()):.2f}")
ax1.axvline(0, color="k", lw=0.5)
ax1.set_xlabel("value")
ax1.set_ylabel("count (of 1600)")
ax1.legend(fontsize=8, loc="upper right")
ax1.set_title("one 1600-wide row through each norm")
ax2.scatter(*pts.T, s=6, color="gray", alpha=0.5, label="inputs")
ax2.scatter(*rms_norm(pts, np.ones(2)).T, s=10, color="tab:orange", label="RMSNorm: circle of radius √2")
ax2.scatter(*layer_norm(pts, np.ones(2), np.zeros(2)).T, s=60, color="tab:blue", marker="x",
            label="LayerNorm: two points")
ax2.plot([-3, 3], [3, -3], color="tab:blue", lw=0.5, ls=":")
ax2.set_aspect("equal")
ax2.set_xlim(-4, 4)
ax2.set_ylim(-3, 3)
ax2.legend(fontsize=8, loc="lower left")
ax2.set_title("d = 2: where the outputs land")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The scaled-down model of this step
#
# Step 02 scaled down, random weights, greedy decoding: random-weight gibberish again. Its weight dict has no
# norm biases; the model refuses a dict that still carries them (a LayerNorm checkpoint cannot load into an
# RMSNorm config by accident).

# %%
def greedy(model, prompt, n_new):
    """The prompt and n_new greedy tokens, decoded with the KV cache by the package's generate()."""
    return np.concatenate([prompt, list(generate(model, prompt, n_new, temperature=0))]).astype(np.int64)


def as_text(ids):
    """Byte tokens as text; a byte that does not print shows as '·'."""
    return "".join(chr(t) if chr(t).isprintable() else "·" for t in ids)


small = gptoss_np.scale_down(cfg)
model = gptoss_np.build_model(small, seed=0)
prompt = np.frombuffer(b"Normalise", dtype=np.uint8).astype(np.int64)
print(as_text(greedy(model, prompt, 24)))

logits, trace = model(prompt, trace=True)
w = model.params
h = rms_norm(trace["embed"], w["layers.0.attn_norm.weight"])  # our function on the oracle's own activations
print(f"our rms_norm vs the oracle's layers.0.attn_norm: {np.abs(h - trace['layers.0.attn_norm']).max():.1e}")

old = gptoss_np.init_weights(gptoss_np.scale_down(prev), seed=0)  # a LayerNorm weight dict, biases included
try:
    gptoss_np.Model(small, old)
except gptoss_np.CheckpointError as e:
    print("LayerNorm weights into the RMSNorm config:", e)

# %% [markdown]
# ## Checks
#
# The chapter's claims: both norms match the package; LayerNorm is RMSNorm of the centred row plus a shift; only
# LayerNorm is shift-invariant; RMSNorm does fewer operations per element and the norms are a tiny share of the
# forward; the step removes exactly the 97 bias vectors; the scaled-down model runs RMSNorm as written here.

# %%
assert err_ln < 1e-12 and err_rms < 1e-12 and link < 1e-12
assert shift_ln < 1e-5 < shift_rms
assert rms_flops < ln_flops and ln_flops / total < 1e-3
assert count_params(prev)["total"] - count_params(cfg)["total"] == 155_200
assert cfg.norm == "rmsnorm" and prev.norm == "layernorm"
assert not any(n.endswith("norm.bias") for n in gptoss_np.param_shapes(cfg))
assert np.abs(h - trace["layers.0.attn_norm"]).max() < 1e-6  # float32 model
print("all checks passed")
