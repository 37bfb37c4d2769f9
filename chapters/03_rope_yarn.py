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
# # 03 · Learned positions → RoPE + YaRN
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config with random weights: no download, no GPU.
# Real-size numbers come from the configs alone.*
#
# GPT-2 learns one vector per position (1024 of them) and adds it to the token embedding. gpt-oss has no
# position vectors at all: it *rotates* queries and keys by an angle proportional to their position (RoPE), and
# stretches the slowest rotations (YaRN) so that a model pretrained on 4096-token windows reads 131072 tokens.
# Step 03 of the chain makes that change: `positions: learned → rope`, θ = 150000, YaRN ×32, context
# 1024 → 131072.

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
from gptoss_np import rope
from gptoss_np.accounting import count_params, flops_per_token, format_delta_table, summary
from gptoss_np.config import chain_changes

steps = dict(gptoss_np.chain())
prev, cfg = steps["02-rmsnorm"], steps["03-rope"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")
print(cfg.rope_theta, cfg.rope_scaling, cfg.context_length)
y = cfg.rope_scaling
assert (cfg.rope_theta, y.factor, y.original_context, y.beta_fast, y.beta_slow, y.truncate) == (150000, 32, 4096, 32, 1,
                                                                                               False)
assert (prev.context_length, cfg.context_length) == (1024, 131072)  # the numbers stated above and below

# %% [markdown]
# ## Explain
#
# - **Learned absolute positions** (GPT-2): $x_t = W_E[\text{tok}_t] + W_P[t]$, one trained row per position.
#   The model can only be told positions it has a row for (1024), and a row is only as good as the training
#   tokens that reached that position.
# - **RoPE** (Su et al., 2021, *RoFormer*): split each query and key head vector into $d/2$ pairs and rotate
#   pair $i$ of the vector at position $p$ by the angle $p\,\omega_i$, with $\omega_i = \theta^{-2i/d}$.
#   Because rotations compose, $\langle R_m q, R_n k\rangle = \langle q, R_{n-m} k\rangle$: attention scores
#   depend on the *offset* between two tokens, never on where they sit. No parameters (the seed's point), applied
#   to q and k only, after their projections.
# - **Which pairs** is a convention with no effect on the math but a large one on checkpoints: gpt-oss
#   ([`_apply_rotary_emb`](https://github.com/openai/gpt-oss/blob/main/gpt_oss/torch/model.py)), Qwen3 and
#   Hugging Face
#   ([`rotate_half`](https://github.com/huggingface/transformers/blob/main/src/transformers/models/qwen3_moe/modeling_qwen3_moe.py))
#   pair dimension $i$ with $i + d/2$ ("half-split"); the [RoFormer paper](https://arxiv.org/abs/2104.09864), GPT-J
#   ([`rotate_every_two`](https://github.com/huggingface/transformers/blob/main/src/transformers/models/gptj/modeling_gptj.py))
#   and Meta's original [Llama code](https://github.com/meta-llama/llama/blob/main/llama/model.py)
#   (`apply_rotary_emb`) pair $2i$ with $2i+1$ ("interleaved"). A checkpoint trained with one and run with the
#   other produces wrong scores with no error: a known trap, checked below.
# - **YaRN** (Peng et al., 2023, *YaRN: Efficient Context Window Extension of Large Language Models*). RoPE by
#   itself does not make a model read longer texts than it trained on: the slow pairs would reach angles they
#   never saw. YaRN counts how many full turns pair $i$ makes over the original context $L_0$,
#   $r_i = L_0\,\omega_i / 2\pi$. Pairs with $r_i > \beta_\text{fast} = 32$ turns saw every angle and are kept;
#   pairs with $r_i < \beta_\text{slow} = 1$ are slowed by the factor $s = 32$ (positions up to $32 L_0$ then
#   land on angles seen in training); a linear ramp (in $i$) blends the two in between. All queries and keys are
#   also multiplied by $0.1\ln s + 1 \approx 1.347$, which sharpens the softmax by $(0.1 \ln s + 1)^2$.
#   gpt-oss: $\theta = 150000$, $L_0 = 4096$, $s = 32$, so $32 \times 4096 = 131072$ tokens, and its ramp ends
#   are *not* rounded to whole pairs (`truncate: false`; Hugging Face's default rounds them: another trap).

# %% [markdown]
# ## Build: the rotation, both conventions

# %%
def rope_angles(positions, head_dim, theta):
    inv_freq = theta ** (-np.arange(0, head_dim, 2) / head_dim)  # [d/2]: omega_i = theta^(-2i/d)
    return np.outer(positions, inv_freq)  # [T, d/2]: angle p * omega_i


def rope_half_split(x, angles):  # NEW: pairs (i, i + d/2), as gpt-oss and Hugging Face
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]  # [T, H, d/2] each
    c, s = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]  # [T, 1, d/2]: every head the same
    return np.concatenate([x1 * c - x2 * s, x1 * s + x2 * c], axis=-1)  # [T, H, d]


def rope_interleaved(x, angles):  # pairs (2i, 2i + 1), as RoFormer and Meta's Llama code
    x1, x2 = x[..., 0::2], x[..., 1::2]  # [T, H, d/2] each
    c, s = np.cos(angles)[:, None, :], np.sin(angles)[:, None, :]
    out = np.empty_like(x)
    out[..., 0::2], out[..., 1::2] = x1 * c - x2 * s, x1 * s + x2 * c
    return out  # [T, H, d]


# %% [markdown]
# ## Check: against the package, the trap, and the relative-position property
#
# 1. `rope_half_split` equals `gptoss_np.rope.apply_rope` (float64).
# 2. The two conventions differ on the same vector, and are the same rotation once the dimensions are
#    reordered: `interleaved(x[perm]) == half_split(x)[perm]` with `perm = [0, d/2, 1, d/2+1, ...]`. That
#    reordering is what a checkpoint converter applies to the q and k projection rows; forget it and the scores
#    are wrong without any error.
# 3. The score between a query at $m$ and a key at $n$ does not change when both move by the same offset, even
#    by 100000 positions.

# %%
d, theta = 64, cfg.rope_theta
rng = np.random.default_rng(0)
x = rng.standard_normal((12, 4, d))  # [T, H, d]
pos = np.arange(12)
ang = rope_angles(pos, d, theta)
cos, sin = rope.rope_cos_sin(pos, rope.rope_inv_freq(d, theta), dtype=np.float64)
err_pkg = np.abs(rope_half_split(x, ang) - rope.apply_rope(x, cos, sin)).max()

perm = np.stack([np.arange(d // 2), np.arange(d // 2) + d // 2], axis=-1).reshape(-1)  # [0, 32, 1, 33, ...]
differ = np.abs(rope_interleaved(x, ang) - rope_half_split(x, ang)).max()
same_after_perm = np.abs(rope_interleaved(x[..., perm], ang) - rope_half_split(x, ang)[..., perm]).max()
print(f"half-split vs gptoss_np.rope.apply_rope:     {err_pkg:.1e}")
print(f"interleaved vs half-split, same input:       {differ:.2f}   <- the trap")
print(f"interleaved(x[perm]) vs half-split(x)[perm]: {same_after_perm:.1e}")


def score(q, k, m, n, inv_freq):
    """q . k after rotating q to position m and k to position n (one head vector each, [d])."""
    a = np.outer([m, n], inv_freq)  # [2, d/2]
    r = rope_half_split(np.stack([q, k])[:, None, :], a)[:, 0]  # [2, d]
    return r[0] @ r[1]


q, k = rng.standard_normal(d), rng.standard_normal(d)
inv_freq = rope.rope_inv_freq(d, theta)
for m, n in ((7, 3), (3, 7), (500, 20)):
    shifted = [score(q, k, m + s, n + s, inv_freq) for s in (0, 1, 1000, 100_000)]
    print(f"m={m:>3}, n={n:>3}: score at shift 0 / 1 / 1000 / 100000 = " + " / ".join(f"{v:.10f}" for v in shifted))
    assert np.ptp(shifted) < 1e-9
assert err_pkg < 1e-12 and differ > 0.1 and same_after_perm < 1e-12

# %% [markdown]
# ## A figure: where the score depends on position
#
# The same query and key vectors placed at every pair of positions $(m, n)$, $0 \le m, n < 48$. Left: GPT-2's
# way, a learned position vector added before the projections (here random, as at initialisation); the score
# changes with both positions in no particular pattern. Right: RoPE; the score is constant along every diagonal
# $m - n = \text{const}$ (a Toeplitz matrix). The relative-position property, seen rather than asserted.

# %%
N, D_model = 48, 64
e_q, e_k = rng.standard_normal(D_model), rng.standard_normal(D_model)  # two token embeddings
W_pos = 0.5 * rng.standard_normal((N, D_model))  # a learned position table
W_q, W_k = rng.standard_normal((d, D_model)) / 8, rng.standard_normal((d, D_model)) / 8  # [d, D]
learned = np.array([[(W_q @ (e_q + W_pos[m])) @ (W_k @ (e_k + W_pos[n])) for n in range(N)] for m in range(N)])
rotary = np.array([[score(W_q @ e_q, W_k @ e_k, m, n, rope.rope_inv_freq(d, 10000.0)) for n in range(N)]
                   for m in range(N)])  # theta 10000 here: faster turns make the stripes visible at 48 tokens

fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
for ax, s_mat, title in ((axes[0], learned, "learned absolute positions"), (axes[1], rotary, "RoPE")):
    im = ax.imshow(s_mat, cmap="RdBu_r", vmin=-np.abs(s_mat).max(), vmax=np.abs(s_mat).max())
    ax.set_xlabel("key position n")
    ax.set_ylabel("query position m")
    ax.set_title(f"{title}: score q·k")
    fig.colorbar(im, ax=ax, fraction=0.046)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Build: YaRN's frequencies
#
# Written from the turn count $r_i$ (the package writes the same ramp in terms of the pair index; the two are
# the same line, since $\ln r_i$ falls linearly in $i$), then checked against the package and against
# reference values for gpt-oss, computed in float32 the way OpenAI's reference code computes them (8 significant
# digits; they and our float64 values differ by less than 1e-7 relative; the same table is in
# `tests/test_layers.py`).

# %%
def yarn_frequencies(head_dim, theta, factor, original_context, beta_fast, beta_slow):
    omega = theta ** (-np.arange(0, head_dim, 2) / head_dim)  # [d/2]
    turns = original_context * omega / (2 * np.pi)  # [d/2]: full turns over the original context
    ramp = np.clip(np.log(beta_fast / turns) / np.log(beta_fast / beta_slow), 0, 1)  # 0: keep .. 1: slow down
    return omega * (1 - ramp) + omega / factor * ramp, ramp, 0.1 * np.log(factor) + 1


y = cfg.rope_scaling
omega_yarn, ramp, conc = yarn_frequencies(d, theta, y.factor, y.original_context, y.beta_fast, y.beta_slow)
pkg_omega, pkg_conc = rope.yarn_inv_freq(d, theta, y.factor, y.original_context, y.beta_fast, y.beta_slow)
reference = {9: 3.1705696e-02, 12: 6.7949593e-03, 16: 4.5648392e-04, 17: 1.2931869e-04, 31: 3.0235114e-07}
print(f"vs gptoss_np.rope.yarn_inv_freq: max rel err {np.abs(omega_yarn / pkg_omega - 1).max():.1e}; "
      f"attention factor {conc:.16f} vs {pkg_conc:.16f}")
for i, w in reference.items():
    print(f"  omega_{i:<2} ours {omega_yarn[i]:.7e}  reference {w:.7e}")
ref_gap = max(abs(omega_yarn[i] / w - 1) for i, w in reference.items())
print(f"  largest relative difference {ref_gap:.1e}")
assert ref_gap < 1e-7
assert np.abs(omega_yarn / pkg_omega - 1).max() < 1e-12 and abs(conc - 1.3465735902799727) < 1e-15

# the ramp's ends: fractional pair indices where a pair turns beta_fast and beta_slow times
ends = [d / 2 * np.log(y.original_context / (b * 2 * np.pi)) / np.log(theta) for b in (y.beta_fast, y.beta_slow)]
print(f"ramp from pair {ends[0]:.6f} to pair {ends[1]:.6f} (reference 8.092779, 17.398025)")
truncated, _ = rope.yarn_inv_freq(d, theta, y.factor, y.original_context, y.beta_fast, y.beta_slow, truncate=True)
print(f"Hugging Face's default truncate=True (ends rounded to 8 and 18) moves omega by up to "
      f"{np.abs(truncated / omega_yarn - 1).max():.0%} on the ramp pairs")

# %% [markdown]
# YaRN's attention factor multiplies both cos and sin, so both q and k are scaled and every score grows by
# $\text{conc}^2 \approx 1.813$: the softmax gets sharper by exactly that factor at every position.

# %%
pos2 = np.array([5, 2])
c1, s1 = rope.rope_cos_sin(pos2, pkg_omega, 1.0, np.float64)
cc, sc = rope.rope_cos_sin(pos2, pkg_omega, pkg_conc, np.float64)
qk = rng.standard_normal((2, 1, d))  # a query at 5, a key at 2
plain = (rope.apply_rope(qk, c1, s1)[0, 0] @ rope.apply_rope(qk, c1, s1)[1, 0])
scaled = (rope.apply_rope(qk, cc, sc)[0, 0] @ rope.apply_rope(qk, cc, sc)[1, 0])
print(f"score with the factor / without = {scaled / plain:.6f};  conc^2 = {pkg_conc**2:.6f}")
assert abs(scaled / plain - pkg_conc**2) < 1e-12
assert (f"{pkg_conc:.3f}", f"{pkg_conc**2:.3f}") == ("1.347", "1.813")

# %% [markdown]
# ## A figure: YaRN's frequencies
#
# Left: each pair's frequency $\omega_i$ before (plain RoPE, θ = 150000) and after YaRN, with the ramp (right
# axis). Pairs 0–8 turn more than 32 times over 4096 tokens and are kept; pairs from 18 on turn less than once
# and are slowed by 32; the ramp blends in between. Right: the same as wavelengths $2\pi/\omega_i$ (tokens per
# full turn), against the original context (4096) and the extended one (131072). Before YaRN, the slow pairs'
# wavelengths reach far beyond 4096: the model never saw them complete a turn.

# %%
i = np.arange(d // 2)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.semilogy(i, inv_freq, "o-", ms=3, label="RoPE, θ = 150000")
ax1.semilogy(i, omega_yarn, "s-", ms=3, label="YaRN ×32")
ax1.axvspan(ends[0], ends[1], color="gray", alpha=0.15, label="ramp")
ax1.set_xlabel("pair i")
ax1.set_ylabel("ω_i (radians per token)")
ax1.legend(loc="lower left", fontsize=8)
ax1.set_title("frequencies")
twin = ax1.twinx()
twin.plot(i, ramp, color="k", lw=1, ls=":")
twin.set_ylabel("ramp (0 keep … 1 divide by 32), dotted")
ax2.semilogy(i, 2 * np.pi / inv_freq, "o-", ms=3, label="RoPE")
ax2.semilogy(i, 2 * np.pi / omega_yarn, "s-", ms=3, label="YaRN")
ax2.axhline(4096, color="tab:red", lw=1, label="original context 4096")
ax2.axhline(131072, color="tab:purple", lw=1, label="extended context 131072")
ax2.set_xlabel("pair i")
ax2.set_ylabel("wavelength 2π/ω_i (tokens)")
ax2.legend(loc="upper left", fontsize=8)
ax2.set_title("wavelengths")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Context 1024 → 131072, and why learned positions cannot follow
#
# A learned table has a row per position and nothing past it: the scaled-down GPT-2 step refuses token 65 of
# its 64-position table, and the real one would refuse token 1025. Growing the table is not free either: 131072
# rows of 1600 would hold 210 M parameters (13.5 % of GPT-2 XL), each row trained only by the tokens that reach its
# position. RoPE has nothing to grow: the rotation is defined at every position, and because scores depend on
# offsets only, the scaled-down step-03 model gives the same logits for a text at positions 0–15 as for the same
# text at positions 100000–100015.

# %%
learned_small = gptoss_np.build_model(gptoss_np.scale_down(prev), seed=0)
try:
    learned_small(np.zeros(65, dtype=np.int64))
except gptoss_np.InputError as e:
    print("learned positions:", e)
xl_total = count_params(gptoss_np.get_config("gpt2-xl"))["total"]
print(f"a learned table for 131072 positions: {131072 * prev.d_model:,} parameters "
      f"({131072 * prev.d_model / xl_total:.1%} of GPT-2 XL)")
assert learned_small.cfg.context_length == 64 and prev.context_length == 1024  # tokens 65 and 1025 are refused
assert f"{131072 * prev.d_model / 1e6:.0f}" == "210" and f"{131072 * prev.d_model / xl_total:.1%}" == "13.5%"

small = gptoss_np.scale_down(cfg)
model = gptoss_np.build_model(small, seed=0)
text = np.frombuffer(b"Rotary positions", dtype=np.uint8).astype(np.int64)
assert len(text) == 16  # positions 0-15, then 100000-100015
at_zero = model(text)
cache = model.new_cache()
cache.length = 100_000  # the cache's length is the next token's position: start the text there
far = model(text, cache=cache)
print(f"RoPE model ({small.context_length:,} positions): logits at 0.. vs at 100000.. max abs diff "
      f"{np.abs(far - at_zero).max():.1e} (float32)")

# %% [markdown]
# ## Delta table, real size
#
# Parameters: the 1024 × 1600 position table goes (−1.64 M). Active parameters do not move: a table lookup was
# never counted as active. The FLOPs row moves for a reason that has nothing to do with RoPE's arithmetic (a
# few multiplies per q and k element): the table measures FLOPs per token at a 4096-token context, capped at
# the model's context. GPT-2 stops at 1024 keys; step 03 attends over 4096, and attention's $q\cdot k$ and
# $p\cdot v$ grow with the keys. At the same context the two steps cost the same, checked below.

# %%
print(format_delta_table(prev, cfg))
print(f"\nFLOPs/token at a 1024-token context: {flops_per_token(prev, 1024):,} vs {flops_per_token(cfg, 1024):,}")
assert count_params(prev)["total"] - count_params(cfg)["total"] == 1024 * 1600
assert flops_per_token(prev, 1024) == flops_per_token(cfg, 1024)

# %% [markdown]
# ## The scaled-down model of this step
#
# Greedy decoding from the random-weight step-03 model: gibberish, now with rotary positions. Then a check that
# the oracle's layer-0 keys are exactly this chapter's rotation, with YaRN's frequencies and factor, of the keys
# projected from the oracle's own traced input to that layer.

# %%
def greedy(model, prompt, n_new):
    """The prompt and n_new greedy tokens, decoded with the KV cache by the package's generate()."""
    return np.concatenate([prompt, list(generate(model, prompt, n_new, temperature=0))]).astype(np.int64)


def as_text(ids):
    """Byte tokens as text; a byte that does not print shows as '·'."""
    return "".join(chr(t) if chr(t).isprintable() else "·" for t in ids)


print(as_text(greedy(model, text, 24)))

_, trace = model(text, trace=True)
p = model.params
k_plain = (trace["layers.0.attn_norm"] @ p["layers.0.attn.k.weight"].T + p["layers.0.attn.k.bias"])
k_plain = k_plain.reshape(len(text), small.n_kv_heads, small.head_dim)  # [T, Hkv, d] before rotation
ang_small, _, conc_small = yarn_frequencies(small.head_dim, small.rope_theta, y.factor, y.original_context,
                                            y.beta_fast, y.beta_slow)
ours_k = conc_small * rope_half_split(k_plain, np.outer(np.arange(len(text)), ang_small))
print(f"our RoPE+YaRN on the oracle's layer-0 keys: max abs err {np.abs(ours_k - trace['layers.0.attn.k']).max():.1e}")

# %% [markdown]
# ## Checks
#
# The chapter's claims: the half-split rotation matches the package; interleaved differs unless the dimensions
# are permuted; scores depend only on the offset; YaRN's frequencies and attention factor match the package
# and gpt-oss's reference values, and truncating the ramp changes them; a learned table stops at its length
# while the RoPE model is shift-invariant out to 100000; the step removes exactly the position table and, at
# equal context, no FLOPs.

# %%
assert err_pkg < 1e-12 and differ > 0.1 and same_after_perm < 1e-12
assert np.ptp([score(q, k, 9 + s, 4 + s, omega_yarn) for s in (0, 77, 131_000)]) < 1e-9
assert np.abs(omega_yarn / pkg_omega - 1).max() < 1e-12 and abs(ends[0] - 8.092779115512402) < 1e-12
assert abs(ends[1] - 17.39802450158856) < 1e-12 and np.abs(truncated / omega_yarn - 1).max() > 0.01
assert abs(scaled / plain - 1.3465735902799727**2) < 1e-12
assert np.abs(far - at_zero).max() < 1e-4
assert np.abs(ours_k - trace["layers.0.attn.k"]).max() < 1e-5
assert "pos_embed.weight" not in gptoss_np.param_shapes(cfg) and cfg.context_length == 32 * 4096
assert count_params(prev)["total"] - count_params(cfg)["total"] == 1_638_400
assert summary(prev)["KV bytes/token"] == summary(cfg)["KV bytes/token"]
print("all checks passed")
