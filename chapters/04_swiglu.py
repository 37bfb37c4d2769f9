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
# # 04 · GELU MLP → SwiGLU
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config with random weights: no download, no GPU.
# Real-size numbers come from the configs alone.*
#
# GPT-2's MLP widens each token to 4× its width, applies GELU, and projects back. gpt-oss's feed-forward
# networks (its experts, from chapter 08 on) are *gated*: two projections, one passed through an activation and
# used to gate the other, then a third projection back. Step 03 → 04 of the chain switches to gpt-oss's own
# clamped SwiGLU and, following the seed's recipe, halves the hidden width (6400 → 3200).

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
from gptoss_np import ffn as F
from gptoss_np.accounting import count_params, format_delta_table, summary
from gptoss_np.config import chain_changes

steps = dict(gptoss_np.chain())
prev, cfg = steps["03-rope"], steps["04-swiglu"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")
oss = gptoss_np.get_config("gpt-oss-20b")
assert (prev.ffn_hidden, cfg.ffn_hidden) == (6400, 3200) and oss.ffn_hidden == oss.d_model == 2880  # hidden widths

# %% [markdown]
# ## Explain
#
# - **GPT-2's MLP**: $\text{MLP}(x) = W_2\,\text{gelu}(W_1 x + b_1) + b_2$, hidden width $4d$, with GELU in its
#   tanh form (Hendrycks & Gimpel, 2016).
# - **Gated linear units** (Dauphin et al., 2017; Shazeer, 2020, *GLU Variants Improve Transformer*):
#   $\text{FFN}(x) = W_2\,(\text{act}(W_g x) \odot W_u x)$. One projection decides, element by element, how
#   much of the other passes. With Swish/SiLU, $\text{silu}(z) = z\,\sigma(z)$, as the activation this is
#   SwiGLU. Shazeer found these variants better than a plain MLP in his T5 experiments at equal parameters and
#   compute, and declined to explain why; the seed's "multiplicative interactions for richer expressivity" is a
#   description, not a result.
# - **The seed's 25 %.** Its example replaces a 1024 → 4096 → 1024 MLP by three 1024 ↔ 2048 matrices and says
#   this "reduces parameters by 25 %". The arithmetic is right (checked below), but the saving comes from halving
#   the hidden width, not from gating: at the same hidden width a SwiGLU has 50 % *more* parameters (three
#   matrices instead of two). [Shazeer](https://arxiv.org/abs/2002.05202) shrank the hidden width to 2/3 precisely
#   to keep the count equal; [Llama](https://arxiv.org/abs/2302.13971) uses $\frac{8}{3}d$ (2/3 of $4d$).
#   gpt-oss chooses again: each expert's hidden width is 2880, equal to
#   $d$. The chain follows the seed (hidden 6400 → 3200), so this step does cut 25 % of the MLP.
# - **gpt-oss's variant** (OpenAI's reference code, `swiglu` in
#   [gpt_oss/torch/model.py](https://github.com/openai/gpt-oss/blob/main/gpt_oss/torch/model.py),
#   and Hugging Face's `GptOssExperts` in
#   [modeling_gpt_oss.py](https://github.com/huggingface/transformers/blob/main/src/transformers/models/gpt_oss/modeling_gpt_oss.py)
#   agree), on the up-projection output $h = W_1 x + b_1$ of width $2F$:
#   - gate and linear halves are **interleaved columns**: gate $= h_{0::2}$, linear $= h_{1::2}$, not the first
#     and second halves;
#   - the gate is **clamped from above only** at 7, the linear half on **both sides** to $[-7, 7]$;
#   - the activation is $g\,\sigma(1.702\,g)$, not $g\,\sigma(g)$: Swish with $\beta = 1.702$, which is the
#     sigmoid approximation of GELU, so gpt-oss's "SwiGLU" gate behaves like GELU's;
#   - the linear half gets **+1**: $\text{out} = g\,\sigma(1.702\,g)\,(\ell + 1)$.
#
#   Each of these is a trap when reimplementing: every one of them still runs, and gives different numbers.

# %% [markdown]
# ## Build
#
# The GPT-2 MLP, a plain SwiGLU (the one Llama and Qwen3 use, halves `[gate | up]`), and gpt-oss's clamped
# variant, from NumPy primitives. Lines that differ from the GELU MLP are marked.

# %%
def sigmoid(z):
    return 0.5 * (1 + np.tanh(0.5 * z))  # = 1 / (1 + exp(-z)), without overflow for large |z|


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def silu(x):
    return x * sigmoid(x)


def linear(x, weight, bias):
    return x @ weight.T + bias  # [T, in] -> [T, out]


def mlp_gelu(x, up, down):
    return linear(gelu_tanh(linear(x, **up)), **down)  # [T, D] -> [T, F] -> [T, D]


def swiglu(h):  # NEW: Llama / Qwen3 layout, h = [gate | up]
    gate, up = np.split(h, 2, axis=-1)  # [T, 2F] -> 2 x [T, F]
    return silu(gate) * up


def swiglu_oss(h, alpha=1.702, limit=7.0):  # NEW: gpt-oss
    gate, lin = h[..., 0::2], h[..., 1::2]  # [T, 2F] -> 2 x [T, F]: interleaved columns
    gate = np.minimum(gate, limit)  # clamp from above only
    lin = np.clip(lin, -limit, limit)  # clamp both sides
    return gate * sigmoid(alpha * gate) * (lin + 1)  # Swish(beta=1.702), and +1 on the linear half


def mlp_glu(x, up, down, act=swiglu_oss):
    return linear(act(linear(x, **up)), **down)  # NEW: [T, D] -> [T, 2F] -> act -> [T, F] -> [T, D]


# %% [markdown]
# ## Check: against the package
#
# Each activation against `gptoss_np.ffn`, on inputs spread over ±20 so that both clamps are exercised, and the
# whole gated MLP against `gptoss_np.ffn.mlp` with a scaled-down step-04 config (float64).

# %%
rng = np.random.default_rng(0)
h = rng.uniform(-20, 20, size=(64, 2 * 48))  # [T, 2F]
errs = {
    "gelu_tanh": np.abs(gelu_tanh(h) - F.gelu_tanh(h)).max(),
    "silu": np.abs(silu(h) - F.silu(h)).max(),
    "swiglu": np.abs(swiglu(h) - F.swiglu(h)).max(),
    "swiglu_oss": np.abs(swiglu_oss(h) - F.swiglu_oss(h, 1.702, 7.0)).max(),
}
small = gptoss_np.scale_down(cfg)
w = {k: v.astype(np.float64) for k, v in gptoss_np.init_weights(small, seed=0).items()}
x = rng.standard_normal((10, small.d_model))  # [T, D]
up = {"weight": w["layers.0.mlp.up.weight"], "bias": w["layers.0.mlp.up.bias"]}  # [2F, D], [2F]
down = {"weight": w["layers.0.mlp.down.weight"], "bias": w["layers.0.mlp.down.bias"]}  # [D, F], [D]
errs["mlp (step 04)"] = np.abs(mlp_glu(x, up, down) - F.mlp(x, small, up["weight"], down["weight"], up["bias"],
                                                             down["bias"])).max()
for name, e in errs.items():
    print(f"{name:<15} max abs err vs gptoss_np: {e:.1e}")
assert max(errs.values()) < 1e-12

# %% [markdown]
# ## Check: the traps
#
# Each departure from the formula still runs. Taking the halves instead of the interleaved columns, forgetting
# the linear clamp, using $\sigma(g)$ instead of $\sigma(1.702\,g)$ or forgetting the $+1$ changes the outputs
# by whole units. Clamping the gate from below as well barely matters, and shows why the reference does not
# bother: below −7 the gate's activation is already almost zero ($-7\,\sigma(-11.9) \approx -5 \cdot 10^{-5}$).

# %%
def variant(h, halves=False, clamp_gate_both=False, clamp_lin=True, alpha=1.702, plus_one=1.0):
    gate, lin = np.split(h, 2, axis=-1) if halves else (h[..., 0::2], h[..., 1::2])
    gate = np.clip(gate, -7, 7) if clamp_gate_both else np.minimum(gate, 7)
    lin = np.clip(lin, -7, 7) if clamp_lin else lin
    return gate * sigmoid(alpha * gate) * (lin + plus_one)


right = swiglu_oss(h)
traps = {"halves instead of interleaved": variant(h, halves=True),
         "linear half not clamped": variant(h, clamp_lin=False),
         "alpha = 1 (plain SiLU)": variant(h, alpha=1.0),
         "no +1 on the linear half": variant(h, plus_one=0.0)}
for name, out in traps.items():
    print(f"{name:<32} max abs diff from gpt-oss: {np.abs(out - right).max():9.3f}")
lower = np.abs(variant(h, clamp_gate_both=True) - right).max()
print(f"{'gate clamped below as well':<32} max abs diff from gpt-oss: {lower:9.1e}")
assert all(np.abs(out - right).max() > 0.5 for out in traps.values()) and 0 < lower < 1e-3
assert np.array_equal(variant(h), right)
at_clamp = -7 * sigmoid(1.702 * -7)
print(f"a gate clamped at -7 (1.702 x -7 = {1.702 * -7:.1f}): activation {at_clamp:.1e}")
assert f"{1.702 * -7:.1f}" == "-11.9" and f"{at_clamp:.0e}" == "-5e-05"

# %% [markdown]
# And the fact behind $\alpha = 1.702$: $x\,\sigma(1.702\,x)$ stays within about 0.02 of GELU everywhere, while
# SiLU strays up to 0.19 from it. A gate above the clamp acts as a gate of exactly 7.

# %%
z = np.linspace(-12, 12, 24001)
near_gelu = np.abs(z * sigmoid(1.702 * z) - gelu_tanh(z)).max()
silu_gap = np.abs(silu(z) - gelu_tanh(z)).max()
print(f"max |x·σ(1.702x) - gelu(x)| = {near_gelu:.4f};  max |silu(x) - gelu(x)| = {silu_gap:.4f}")
print(f"gate -20 -> {swiglu_oss(np.array([-20.0, 0.0]))[0]:.2e};  gate 20 == gate 7: "
      f"{swiglu_oss(np.array([20.0, 0.5]))[0] == swiglu_oss(np.array([7.0, 0.5]))[0]}")
assert near_gelu < 0.025 < 0.15 < silu_gap
assert (f"{near_gelu:.2f}", f"{silu_gap:.2f}") == ("0.02", "0.19")  # "about 0.02", "up to 0.19"

# %% [markdown]
# ## Check: the seed's 25 %
#
# The seed's example, counted with `nn.Linear` shapes (with and without biases), and the same SwiGLU at GPT-2's
# hidden width for comparison.

# %%
def linear_params(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


for bias in (False, True):
    gpt2_mlp = linear_params(1024, 4096, bias) + linear_params(4096, 1024, bias)  # fc1, fc2
    seed_swiglu = 2 * linear_params(1024, 2048, bias) + linear_params(2048, 1024, bias)  # fc1, fc2, fc3
    same_width = 2 * linear_params(1024, 4096, bias) + linear_params(4096, 1024, bias)
    print(f"bias={bias!s:<5}  GELU MLP {gpt2_mlp:>10,}   SwiGLU (2048) {seed_swiglu:>10,} "
          f"({seed_swiglu / gpt2_mlp - 1:+.2%})   SwiGLU (4096) {same_width:>10,} ({same_width / gpt2_mlp - 1:+.0%})")
assert 2 * 1024 * 2048 + 2048 * 1024 == 0.75 * (2 * 1024 * 4096)  # exactly 25 % fewer weights
assert 3 * 1024 * 4096 == 1.5 * (2 * 1024 * 4096)  # and 50 % more at equal width

# %% [markdown]
# ## Delta table, real size
#
# Per block the MLP goes from $2 \cdot 6400 \cdot 1600$ weights to $3 \cdot 3200 \cdot 1600$: 25 % fewer, as in
# the seed's example. Attention and embeddings are untouched, so the whole model shrinks by 15.8 % and its
# FLOPs per token by a little less (attention's per-key work does not change).

# %%
print(format_delta_table(prev, cfg))
shapes_prev, shapes_now = gptoss_np.param_shapes(prev), gptoss_np.param_shapes(cfg)
mlp_w = lambda s: sum(np.prod(v) for k, v in s.items() if k.startswith("layers.0.mlp") and k.endswith("weight"))
print(f"\nMLP weights per block: {mlp_w(shapes_prev):,} -> {mlp_w(shapes_now):,} "
      f"({mlp_w(shapes_now) / mlp_w(shapes_prev) - 1:+.0%})")
assert mlp_w(shapes_now) == 0.75 * mlp_w(shapes_prev)
params_cut = 1 - summary(cfg)["params"] / summary(prev)["params"]
flops_cut = 1 - summary(cfg)["FLOPs/token"] / summary(prev)["FLOPs/token"]
print(f"whole model: {params_cut:.1%} fewer parameters, {flops_cut:.1%} fewer FLOPs per token")
assert f"{params_cut:.1%}" == "15.8%" and 0 < flops_cut < params_cut

# %% [markdown]
# ## A figure: the activations and the gate
#
# Left: GELU (tanh form), SiLU and gpt-oss's $x\,\sigma(1.702x)$; the last is hard to tell from GELU. Middle:
# gpt-oss's unit as a function of its gate for a few values of the linear half. The curves go flat at gate = 7
# (the clamp), the linear half saturates at ±7 (the curves for 10 and 7 coincide), and at linear = −1 the $+1$
# makes the unit silent whatever the gate. Right: the seed's parameter example.

# %%
g = np.linspace(-8, 12, 801)
fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4), gridspec_kw={"width_ratios": [1, 1.1, 0.9]})
xs = np.linspace(-5, 5, 401)
ax1.plot(xs, gelu_tanh(xs), lw=3, alpha=0.5, label="GELU (tanh), GPT-2")
ax1.plot(xs, silu(xs), label="SiLU = x·σ(x), Llama/Qwen3")
ax1.plot(xs, xs * sigmoid(1.702 * xs), ls="--", color="k", label="x·σ(1.702x), gpt-oss")
ax1.axhline(0, color="gray", lw=0.5)
ax1.legend(fontsize=8)
ax1.set_xlabel("x")
ax1.set_title("activations")
for lin in (10.0, 7.0, 2.0, 0.0, -1.0, -3.0):
    hh = np.stack([g, np.full_like(g, lin)], axis=-1).reshape(len(g), 2)  # interleaved [gate, linear] pairs
    ax2.plot(g, swiglu_oss(hh)[:, 0], ls=":" if lin == 10.0 else "-", lw=2.5 if lin == 10.0 else 1.5,
             label=f"linear = {lin:g}")
ax2.axvline(7, color="gray", lw=0.8, ls="--")
ax2.text(7.3, 30, "gate clamp\nat 7", fontsize=8, color="gray")
ax2.set_xlabel("gate")
ax2.set_ylabel("unit output")
ax2.legend(fontsize=8, loc="upper left")
ax2.set_title("gpt-oss's clamped SwiGLU unit")
counts = {"GELU MLP\n1024→4096→1024": 2 * 1024 * 4096, "SwiGLU\nhidden 2048": 3 * 1024 * 2048,
          "SwiGLU\nhidden 4096": 3 * 1024 * 4096}  # weights only
base = 2 * 1024 * 4096
bars = ax3.bar(list(counts), [c / 1e6 for c in counts.values()], color=["tab:blue", "tab:orange", "tab:gray"])
ax3.bar_label(bars, [f"{c / 1e6:.2f} M" + (f"\n({c / base - 1:+.0%})" if c != base else "")
                     for c in counts.values()], fontsize=8)
ax3.set_ylim(0, 15)
ax3.set_ylabel("weights (millions)")
ax3.set_title("the seed's example, d = 1024")
ax3.tick_params(axis="x", labelsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The scaled-down model of this step
#
# Greedy decoding from the random-weight step-04 model, then this chapter's gated MLP run on the oracle's own
# traced input to the first block's FFN, compared with the oracle's output for that branch.

# %%
def greedy(model, prompt, n_new):
    """The prompt and n_new greedy tokens, decoded with the KV cache by the package's generate()."""
    return np.concatenate([prompt, list(generate(model, prompt, n_new, temperature=0))]).astype(np.int64)


def as_text(ids):
    """Byte tokens as text; a byte that does not print shows as '·'."""
    return "".join(chr(t) if chr(t).isprintable() else "·" for t in ids)


model = gptoss_np.build_model(small, seed=0)
prompt = np.frombuffer(b"Gated units", dtype=np.uint8).astype(np.int64)
print(as_text(greedy(model, prompt, 24)))

_, trace = model(prompt, trace=True)
p = model.params
branch = mlp_glu(trace["layers.0.ffn_norm"], {"weight": p["layers.0.mlp.up.weight"], "bias": p["layers.0.mlp.up.bias"]},
                 {"weight": p["layers.0.mlp.down.weight"], "bias": p["layers.0.mlp.down.bias"]})
err_branch = np.abs(branch - trace["layers.0.ffn.out"]).max()
print(f"our gpt-oss MLP on the oracle's layer-0 input: max abs err {err_branch:.1e}")

# %% [markdown]
# ## Checks
#
# The chapter's claims: GELU, SiLU, SwiGLU and gpt-oss's clamped SwiGLU match the package; each gpt-oss detail
# (interleaving, one-sided gate clamp, linear clamp, α = 1.702, +1) changes the output; the gate activation is
# GELU-like; the seed's 25 % holds for its widths and reverses at equal width; the step removes a quarter of
# every MLP; the scaled-down model runs this chapter's MLP.

# %%
assert max(errs.values()) < 1e-12
assert all(np.abs(out - right).max() > 0.5 for out in traps.values()) and lower < 1e-3
assert near_gelu < 0.025 and silu_gap > 0.15
assert swiglu_oss(np.array([20.0, 0.5]))[0] == swiglu_oss(np.array([7.0, 0.5]))[0]
assert swiglu_oss(np.array([3.0, 20.0]))[0] == swiglu_oss(np.array([3.0, 7.0]))[0]
assert swiglu_oss(np.array([3.0, -1.0]))[0] == 0.0
assert mlp_w(shapes_now) == 0.75 * mlp_w(shapes_prev)
assert count_params(cfg)["attention"] == count_params(prev)["attention"]
assert summary(cfg)["params"] < summary(prev)["params"]
assert np.abs(branch - trace["layers.0.ffn.out"]).max() < 1e-5
print("all checks passed")
