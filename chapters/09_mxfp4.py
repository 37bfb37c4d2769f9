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
# # 09 · MXFP4: 4.25 bits per expert weight, and the chain reaches gpt-oss-20b
#
# *Runs on a CPU in under a minute (2 cores). Scaled-down config and small random matrices, then the small models this
# project trained and ships in the package: no download, no GPU. Real-size byte counts come from the configs alone.*
#
# The last step changes no arithmetic of the forward pass, only how the expert matrices are stored. Each expert
# weight becomes a 4-bit floating-point code, and every 32 neighbouring weights share one 8-bit power-of-two scale.
# The experts are 91 % of gpt-oss-20b's parameters, so this is what brings the checkpoint from 41.8 GB to 13.8 GB.
# After this step the chain's config equals the published gpt-oss-20b config.

# %%
import pathlib
import sys

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import time

import matplotlib.pyplot as plt
import ml_dtypes
import numpy as np

import gptoss_np
from gptoss_np import mxfp4 as MX
from gptoss_np.accounting import format_delta_table, kv_cache_bytes, weight_bytes
from gptoss_np.config import chain_changes
from gptoss_np.fast.mxfp4_matmul import mxfp4_decode_fast
from gptoss_np.params import storage_shapes

T_START = time.time()
steps = dict(gptoss_np.chain())
prev, cfg = steps["08-moe"], steps["09-mxfp4"]
print(f"{prev.name} -> {cfg.name}: {chain_changes()[cfg.name]}")
rng = np.random.default_rng(0)
expert_share = gptoss_np.count_params(cfg)["experts"] / gptoss_np.count_params(cfg)["total"]
gb_before, gb_after = weight_bytes(prev)["total"] / 1e9, weight_bytes(cfg)["total"] / 1e9
print(f"experts: {expert_share:.0%} of the parameters; checkpoint {gb_before:.1f} GB -> {gb_after:.1f} GB")
assert (f"{expert_share:.0%}", f"{gb_before:.1f}", f"{gb_after:.1f}") == ("91%", "41.8", "13.8")

# %% [markdown]
# ## Explain
#
# - **What changes.** Only the two expert matrices of every layer: up [32, 5760, 2880] and down
#   [32, 2880, 2880]. Attention, router, embeddings, norms, sinks and the expert biases stay bf16. The forward pass
#   decodes the experts it is routed to and computes as before (GPU kernels can multiply in the packed form instead).
# - **The format (OCP "MX").** An element is E2M1: 1 sign bit, 2 exponent bits, 1 mantissa bit, so 16 codes and the
#   magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6. A block of 32 elements shares one E8M0 scale byte *s* meaning
#   2^(*s* − 127). The layout is gpt-oss's: its checkpoints take the blocks along each row's *input* axis and put two
#   codes in a byte, the even element in the low nibble (as OpenAI's loader,
#   [gpt_oss/torch/weights.py](https://github.com/openai/gpt-oss/blob/main/gpt_oss/torch/weights.py), and
#   transformers' [integrations/mxfp4.py](https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/mxfp4.py)
#   decode them). Cost: (32 × 4 + 8) / 32 = **4.25 bits per weight**.
# - **Why (the seed).** Memory. The seed says gpt-oss-20b fits a 16 GB consumer GPU and gpt-oss-120b a single 80 GB
#   H100, and that without MXFP4 they would need 48 GB and 240 GB. Counting parameter bytes gives 41.8 GB and
#   233.7 GB in bf16 (below); the seed's figures are higher than the bare weights. Its 16 GB claim holds: the
#   13.8 GB of weights leave room for about 91,000 tokens of KV cache in 16 × 10⁹ bytes and for the full 131,072 in
#   16 GiB, though with little to spare for activations at that length (figure below).
# - **Quality.** The [model card](https://arxiv.org/abs/2508.10925) states that the models were post-trained with
#   the MoE weights quantised to MXFP4, so the released checkpoint is the model as trained, not a lossy copy of a
#   better bf16 one. The errors measured here are those of the format on random Gaussian weights, not gpt-oss's
#   accuracy.
# - **The formula.** *W*[*r*, 32*g* + *i*] = E2M1(*c*[*r*, *g*, *i*]) · 2^(*s*[*r*, *g*] − 127).
# - **Papers.** Open Compute Project, *OCP Microscaling Formats (MX) Specification v1.0* (2023); Rouhani et al.,
#   *Microscaling Data Formats for Deep Learning* (2023); OpenAI, *gpt-oss-120b & gpt-oss-20b Model Card* (2025).

# %% [markdown]
# ## Build: the E2M1 value of a 4-bit code
#
# Bit 3 is the sign, bits 2–1 the exponent *e*, bit 0 the mantissa *m*. With exponent bias 1, a normal number is
# 2^(*e* − 1) · (1 + *m*/2); *e* = 0 is subnormal, *m* · 0.5. Built from the bits and checked against the package's
# table, signed zeros included.

# %%
def e2m1(code):
    """The value of a 4-bit E2M1 code."""
    sign = -1.0 if code & 0b1000 else 1.0
    e, m = (code >> 1) & 0b11, code & 0b1
    return sign * (0.5 * m if e == 0 else 2.0 ** (e - 1) * (1 + 0.5 * m))


FP4 = np.array([e2m1(c) for c in range(16)], dtype=np.float32)  # code -> value
assert np.array_equal(FP4, MX.FP4_VALUES) and np.array_equal(np.signbit(FP4), np.signbit(MX.FP4_VALUES))
print("code :", " ".join(f"{c:>4x}" for c in range(16)))
print("value:", " ".join(f"{v:>4g}" for v in FP4))

# %% [markdown]
# ## Figure: the E2M1 grid, and one block on it
#
# Left: the 15 distinct values (±0 coincide) and the rounding boundaries halfway between neighbours. The grid is
# fine near zero and coarse at the ends: a step of 0.5 below 2 and of 2 between 4 and 6. Right: 32 Gaussian
# weights (std 0.02) with the grid their block scale gives them. The scale is the smallest power of two with
# max |*w*| ≤ 6 · 2^*e*, so the largest weight always fits.

# %%
grid = np.unique(FP4)
mids = (grid[1:] + grid[:-1]) / 2
assert len(grid) == 15 and np.array_equal(np.diff(grid[grid >= 0]), [0.5, 0.5, 0.5, 0.5, 1, 1, 2])  # steps 0.5 .. 2
block = 0.02 * rng.standard_normal(32)
e_blk = int(np.ceil(np.log2(np.abs(block).max() / 6)))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 2.8))
ax1.vlines(mids, -1, 1, color="gray", ls=":", lw=1)
ax1.plot(grid, np.zeros_like(grid), "o", color="C0")
for c in range(8):
    ax1.annotate(f"{c:x}", (FP4[c], 0), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    ax1.annotate(f"{c + 8:x}", (-FP4[c], 0), textcoords="offset points", xytext=(0, -14), ha="center", fontsize=8)
ax1.set_yticks([])
ax1.set_title("E2M1 values (code in hex) and rounding boundaries (dotted)")
scaled_grid = grid * 2.0 ** e_blk
ax2.vlines(scaled_grid, -1, 1, color="C0", lw=1)
ax2.plot(block, np.zeros_like(block), "|", color="C3", ms=25, mew=1.5)
ax2.set_yticks([])
ax2.set_title(f"32 weights (red), their block's grid (blue): scale 2^{e_blk}, top {6 * 2.0 ** e_blk:.4f}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Build: decoding packed blocks, from primitives
#
# Stored tensors: `blocks` uint8 [..., *G*, 16] (32 codes per block, two per byte) and `scales` uint8 [..., *G*].
# The low nibble is the even element, the high nibble the odd one; the scale byte is an exponent with bias 127.

# %%
def mxfp4_decode(blocks, scales):
    """blocks u8 [..., G, 16], scales u8 [..., G] -> float32 [..., 32 G]."""
    lo = blocks & 0x0F  # element 2j: the low nibble comes first  [..., G, 16]
    hi = blocks >> 4  # element 2j + 1  [..., G, 16]
    codes = np.stack([lo, hi], axis=-1).reshape(*blocks.shape[:-1], 32)  # [..., G, 32]
    w = np.ldexp(FP4[codes], scales.astype(np.int32)[..., None] - 127)  # times 2^(s - 127), exact  [..., G, 32]
    return w.reshape(*blocks.shape[:-2], -1)  # [..., 32 G]


blocks = rng.integers(0, 256, size=(3, 40, 8, 16), dtype=np.uint8)  # [E, rows, G, 16]: random bytes, all codes
scales = rng.integers(90, 160, size=(3, 40, 8), dtype=np.uint8)  # [E, rows, G]
mine = mxfp4_decode(blocks, scales)
assert mine.shape == (3, 40, 256)
assert np.array_equal(mine, MX.mxfp4_decode(blocks, scales))  # bitwise: every product is exact
assert np.array_equal(mine, mxfp4_decode_fast(blocks, scales))  # the table-gather speed path (gptoss_np/fast)
print("mxfp4_decode from primitives == gptoss_np.mxfp4.mxfp4_decode == gptoss_np.fast's mxfp4_decode_fast, bit for bit")

# %% [markdown]
# ## Traps: nibble order, the bias, the axis
#
# Three plausible mistakes, each producing a tensor of the right shape and the wrong values:
#
# - **High nibble first.** Swaps every pair of neighbouring weights.
# - **Bias 128** (or reading the scale as a plain integer). Every weight off by a factor of 2.
# - **Blocks along the wrong axis.** The blocks run along the input axis of the `[out, in]` matrix (the last axis
#   on disk, in both the original and the Hugging Face layouts; transformers transposes the decoded experts to
#   `[in, out]` in memory: `convert_moe_packed_tensors` in
#   [integrations/mxfp4.py](https://github.com/huggingface/transformers/blob/main/src/transformers/integrations/mxfp4.py)).
#   For gpt-oss-20b the down matrix is square (2880 × 2880), so a transposed decode even has the right shape.

# %%
W = (0.02 * rng.standard_normal((256, 256))).astype(np.float32)  # a square expert matrix [out, in]
b, s = MX.mxfp4_encode(W)  # blocks along the input (last) axis
W_hat = mxfp4_decode(b, s)  # what the checkpoint means


def rel_err(a):
    return np.linalg.norm(a - W_hat) / np.linalg.norm(W_hat)


codes_hi_first = np.stack([b >> 4, b & 0x0F], axis=-1).reshape(*b.shape[:-1], 32)
hi_first = np.ldexp(FP4[codes_hi_first], s.astype(np.int32)[..., None] - 127).reshape(W.shape)
bias_128 = mxfp4_decode(b, s) / 2  # same as using 2^(s - 128)
transposed = mxfp4_decode(b, s).T  # e.g. an [in, out] buffer read as [out, in]
for name, wrong in (("high nibble first", hi_first), ("bias 128", bias_128), ("transposed", transposed)):
    print(f"{name:18s} relative error {rel_err(wrong):.2f}")
    assert rel_err(wrong) > 0.4
shapes = storage_shapes(cfg)
print("gpt-oss-20b, layer 0, as stored:")
for n in ("up.blocks", "up.scales", "down.blocks", "down.scales"):
    print(f"  layers.0.mlp.experts.{n:12s} {shapes['layers.0.mlp.experts.' + n][0]}")
assert shapes["layers.0.mlp.experts.up.blocks"][0] == (32, 5760, 2880 // 32, 16)  # input axis D = 2880 in blocks
assert shapes["layers.0.mlp.experts.down.scales"][0] == (32, 2880, 2880 // 32)  # input axis F = 2880 in blocks

# %% [markdown]
# ## Build: encoding, and the error it makes
#
# The encoder picks each block's exponent as the smallest *e* with max |*w*| ≤ 6 · 2^*e* and rounds every
# *w* / 2^*e* to the nearest grid value. That scale rule is **this project's choice**, not the format's: the
# format only says how to decode. Write *j* = ⌊log2 max |*w*|⌋ for the block's largest weight. The [OCP
# Microscaling spec](https://www.opencompute.org/documents/ocp-microscaling-formats-mx-v1-0-spec-final-pdf) (v1.0,
# §6.3) suggests *e* = *j* − 2 (2 being E2M1's largest exponent) and clamps what then
# exceeds 6. The two rules agree when max |*w*| / 2^*j* ≤ 1.5; above that (a block maximum between 6 · 2^(*j*−2) and
# 8 · 2^(*j*−2)) the spec's rule keeps the finer grid and saturates the largest weights at 6 · 2^(*j*−2), while
# ours moves to the next power of two, *e* = *j* − 1, so nothing clips. Both decode with the same code, and a
# checkpoint does not record which rule encoded it. A short version for clarity; the package's `mxfp4_encode` also
# handles exact ties (to even, IEEE 754's default rounding; again our choice), the ends of the E8M0 range and the
# exact exponent of a maximum that is a power of two, none of which occur with random Gaussian weights, so the two
# agree here.

# %%
def mxfp4_quantise(w):
    """Round w [..., K] to MXFP4 (blocks of 32 along the last axis) and return the decoded values."""
    blk = w.reshape(*w.shape[:-1], -1, 32).astype(np.float64)  # [..., G, 32]
    e = np.ceil(np.log2(np.abs(blk).max(axis=-1, keepdims=True) / 6))  # [..., G, 1]
    x = blk / 2.0 ** e  # now |x| <= 6
    nearest = grid[np.abs(x[..., None] - grid).argmin(axis=-1)]  # nearest E2M1 value  [..., G, 32]
    return (nearest * 2.0 ** e).reshape(w.shape).astype(np.float32)


W_big = (0.02 * rng.standard_normal((256, 2048))).astype(np.float32)
W_q = mxfp4_quantise(W_big)
assert np.array_equal(W_q, MX.mxfp4_decode(*MX.mxfp4_encode(W_big)))
assert np.array_equal(MX.mxfp4_decode(*MX.mxfp4_encode(W_q)), W_q)  # decoded values are fixed points
print(f"mxfp4_quantise == decode(gptoss_np.mxfp4.mxfp4_encode(.)) on {W_big.size:,} Gaussian weights; "
      "re-encoding is lossless")

# %% [markdown]
# ## Figure: the quantisation error
#
# Left: the error of every weight, measured in its block's unit 2^*e*. Right: the relative error of each block
# (‖*w* − *ŵ*‖ / ‖*w*‖) against its crest factor max |*w*| / rms(*w*), for Gaussian weights and for heavy-tailed
# ones (Student-t with 3 degrees of freedom, as a stand-in for weights with outliers). One large weight sets the
# scale for all 32, and the small ones fall below the first grid step and round to zero.

# %%
def block_stats(w):
    wq = mxfp4_quantise(w)
    blk, blk_q = w.reshape(-1, 32), wq.reshape(-1, 32)
    rel = np.linalg.norm(blk - blk_q, axis=1) / np.linalg.norm(blk, axis=1)
    crest = np.abs(blk).max(axis=1) / np.sqrt((blk ** 2).mean(axis=1))
    return rel, crest, (blk_q == 0).mean()


W_t = (0.02 * rng.standard_t(3, size=(256, 2048)) / np.sqrt(3)).astype(np.float32)  # same std, heavier tails
blk_g = W_big.reshape(-1, 32)
unit = 2.0 ** np.ceil(np.log2(np.abs(blk_g).max(axis=1, keepdims=True) / 6))
err_units = ((W_q.reshape(-1, 32) - blk_g) / unit).ravel()
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 3.8))
ax1.hist(err_units, bins=101, color="C0")
ax1.set_xlabel("quantised - original, in units of the block scale 2^e")
ax1.set_ylabel("weights")
ax1.set_yscale("log")
ax1.set_title("per-weight error (Gaussian weights)")
stats = {}
for name, w, col in (("Gaussian", W_big, "C0"), ("Student-t(3)", W_t, "C3")):
    rel, crest, zero_frac = block_stats(w)
    stats[name] = (rel, crest, zero_frac)
    sel = np.random.default_rng(2).choice(len(rel), 4000, replace=False)
    ax2.plot(crest[sel], rel[sel], ".", ms=2, color=col, alpha=0.5,
             label=f"{name}: median {np.median(rel):.1%}, {zero_frac:.0%} of weights -> 0")
ax2.set_xlabel("block crest factor max|w| / rms(w)")
ax2.set_ylabel("block relative error")
ax2.set_title("blocks with an outlier lose more")
ax2.legend(fontsize=8, markerscale=5)
fig.tight_layout()
plt.show()
rel_g, crest_g, _ = stats["Gaussian"]
print(f"Gaussian: median block error {np.median(rel_g):.1%}, errors within +-{np.abs(err_units).max():.2f} units "
      f"(half the widest grid step: 2 units between 4 and 6)")

# %% [markdown]
# ## Delta table: step 08 → step 09 at real size
#
# Parameters, FLOPs and KV cache unchanged; weight bytes −67 %.

# %%
print(format_delta_table(prev, cfg))
assert f"{weight_bytes(cfg)['total'] / weight_bytes(prev)['total'] - 1:.0%}" == "-67%"

# %% [markdown]
# ## Bytes, by hand
#
# Expert parameters cost 17 bytes per 32 (16 bytes of codes, 1 scale byte); everything else 2 bytes. The total is
# the `total_size` that the published Hugging Face index of gpt-oss-20b
# ([model.safetensors.index.json](https://huggingface.co/openai/gpt-oss-20b/blob/main/model.safetensors.index.json))
# records, 13,761,264,768 bytes (12.8 GiB).

# %%
def checkpoint_bytes(c):
    n_exp = c.n_layers * c.n_experts * (2 * c.ffn_hidden * c.d_model + c.d_model * c.ffn_hidden)  # expert matrices
    rest = gptoss_np.count_params(c)["total"] - n_exp  # bf16
    return {"experts": n_exp * 17 // 32, "bf16": 2 * rest, "total": n_exp * 17 // 32 + 2 * rest}


seed_claims = {"gpt-oss-20b": 48e9, "gpt-oss-120b": 240e9}
print(f"{'':14}{'bf16 GB':>10}{'seed says':>11}{'MXFP4 GB':>10}{'GiB':>7}{'bits/expert weight':>20}")
for name in ("gpt-oss-20b", "gpt-oss-120b"):
    c = gptoss_np.get_config(name)
    mine_b = checkpoint_bytes(c)
    assert mine_b["total"] == weight_bytes(c)["total"]
    bf16 = weight_bytes(c.replace(expert_quant="none"))["total"]
    n_exp = gptoss_np.count_params(c)["experts"] - c.n_layers * c.n_experts * (2 * c.ffn_hidden + c.d_model)
    print(f"{name:14}{bf16 / 1e9:>10.1f}{seed_claims[name] / 1e9:>11.0f}{mine_b['total'] / 1e9:>10.2f}"
          f"{mine_b['total'] / 2**30:>7.2f}{8 * mine_b['experts'] / n_exp:>20.2f}")
assert weight_bytes(cfg)["total"] == 13_761_264_768 and f"{13_761_264_768 / 2**30:.1f}" == "12.8"  # GiB
assert round(weight_bytes(prev)["total"] / 1e9, 1) == 41.8
oss120 = gptoss_np.get_config("gpt-oss-120b")
assert f"{weight_bytes(oss120.replace(expert_quant='none'))['total'] / 1e9:.1f}" == "233.7"  # bf16, against "240"

# %% [markdown]
# ## Figure: does it fit in 16 GB?
#
# Weights plus the KV cache of one sequence (bf16, with the sliding layers capped at 128 tokens), against the
# context length. Activations and the runtime need memory too; they are not counted here, so the curve is a lower
# bound. "16 GB" on a GPU box is usually 16 GiB (17.18 × 10⁹ bytes).

# %%
ctx = np.linspace(0, 131072, 257).astype(int)
assert f"{16 * 2**30 / 1e9:.2f}" == "17.18"  # 16 GiB in bytes
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
fits = {}
for ax, name, cap in ((axes[0], "gpt-oss-20b", 16), (axes[1], "gpt-oss-120b", 80)):
    c = gptoss_np.get_config(name)
    wb = weight_bytes(c)["total"]
    total = np.array([wb + kv_cache_bytes(c, int(n)) for n in ctx])
    ax.plot(ctx, total / 1e9, label="MXFP4 weights + KV cache")
    ax.axhline(wb / 1e9, color="C0", ls=":", lw=1, label=f"MXFP4 weights alone ({wb / 1e9:.2f} GB)")
    ax.axhline(cap * 2**30 / 1e9, color="C2", ls="--", label=f"{cap} GiB = {cap * 2**30 / 1e9:.2f} GB")
    ax.axhline(cap, color="C3", ls="--", label=f"{cap} x 10^9 bytes")
    ax.set_xlabel("tokens in context")
    ax.set_ylabel("GB (10^9 bytes)")
    ax.set_title(f"{name} (bf16 weights would be {weight_bytes(c.replace(expert_quant='none'))['total'] / 1e9:.0f} GB)")
    ax.legend(fontsize=8, loc="center right")
    fits[name] = total
fig.tight_layout()
plt.show()
oss = gptoss_np.get_config("gpt-oss-20b")
full_ctx = oss.context_length
spare = 16e9 - weight_bytes(oss)["total"] - kv_cache_bytes(oss, 128)
per_tok = kv_cache_bytes(oss, 1000) - kv_cache_bytes(oss, 999)  # what one more token costs past the window
print(f"gpt-oss-20b at {full_ctx} tokens: {fits['gpt-oss-20b'][-1] / 2**30:.2f} GiB of weights + KV "
      f"(fits 16 GiB, {16 - fits['gpt-oss-20b'][-1] / 2**30:.2f} GiB to spare for everything else)")
print(f"with 16 x 10^9 bytes the KV cache has room for about {128 + spare // per_tok:,.0f} tokens "
      f"({per_tok:,} bytes per token once the windows are full)")
print(f"gpt-oss-120b at {full_ctx} tokens: {fits['gpt-oss-120b'][-1] / 2**30:.1f} GiB (an 80 GB H100 has 80 GiB)")

# %% [markdown]
# ## The scaled-down step-09 model
#
# A tiny model whose experts are stored packed computes what the same model with the decoded float experts
# computes: quantisation is a storage format, the forward pass is the one of chapter 08. Not bit for bit: the package
# multiplies packed experts a chunk of rows at a time straight from their bytes, which sums in another order, so the
# check runs in float64 with a float64 tolerance. Then the random-weight continuation (gibberish; the 256-token toy
# vocabulary read as bytes).

# %%
small = gptoss_np.scale_down(cfg)
w_packed = gptoss_np.init_weights(small, seed=0)
w_float = {}
for n, w in w_packed.items():
    if n.endswith(".blocks"):
        w_float[n[: -len(".blocks")] + ".weight"] = mxfp4_decode(w, w_packed[n[: -len(".blocks")] + ".scales"])
    elif not n.endswith(".scales"):
        w_float[n] = w
packed_model = gptoss_np.Model(small, w_packed, dtype=np.float64)
float_model = gptoss_np.Model(small.replace(expert_quant="none"), w_float, dtype=np.float64)
prompt = np.frombuffer(b"Hello, world", dtype=np.uint8).astype(np.int64)
diff_packed = np.abs(packed_model(prompt) - float_model(prompt)).max()
print(f"packed experts vs decoded float experts: max |logit diff| = {diff_packed:.1e}")
n_packed = sum(w.nbytes for n, w in w_packed.items() if n.endswith((".blocks", ".scales")))
n_float = sum(w.nbytes for n, w in w_float.items() if gptoss_np.params.is_expert_matrix(n))
print(f"expert bytes: {n_packed:,} packed vs {n_float:,} as float32 ({8 * n_packed / (n_float / 4):.2f} bits/weight)")

packed_model = gptoss_np.Model(small, w_packed)  # float32 for the demo
cache = packed_model.new_cache()
step_logits = packed_model(prompt[:5], cache=cache)
out = []
for _ in range(20):
    out.append(gptoss_np.sample(step_logits[-1], temperature=0))
    step_logits = packed_model(np.array(out[-1:]), cache=cache)
print("greedy ids:", out)
print("as bytes  :", bytes(out))

# %% [markdown]
# ## On trained weights: what MXFP4 costs in loss
#
# Random weights can only show the rounding error. Trained models show what it costs: the ladder (chapter 11)
# encodes each trained step-08 model's experts after training and measures the held-out loss before and after, and
# the shipped chat model (`gptoss_np.default_checkpoint()`) was measured the same way before it was stored. At this
# scale only: a 4-bit grid may cost more in a model whose weights carry more information per parameter.

# %%
import json

ladder = json.load(open(ROOT / "benchmarks" / "training_ladder.json"))
runs = [(r["seed"], r["val_loss_before_mxfp4"], r["val_loss"]) for r in ladder if r["step"] == "09-mxfp4"]
for seed, before, after in runs:
    print(f"ladder seed {seed}: {before:.4f} -> {after:.4f} nats/byte ({after - before:+.5f})")
shipped_info = json.load(open(pathlib.Path(gptoss_np.default_checkpoint()) / "training.json"))
print(f"shipped chat model: {shipped_info['val_loss_float']:.4f} -> {shipped_info['val_loss']:.4f} nats/token "
      f"({shipped_info['val_loss'] - shipped_info['val_loss_float']:+.5f})")
assert runs and all(abs(after - before) < 0.01 for _, before, after in runs)

# %% [markdown]
# The shipped model computes on those packed experts (decoded per token, only the experts it is routed to). Its
# greedy reply to a line of a held-out play (harmony prompt, low effort, decoded with its special tokens), after
# the same architecture's with random weights and packed experts too: MXFP4 storage leaves the trained model
# writing text, where random weights repeat a few tokens.

# %%
from gptoss_np.text.chat import greedy_reply
from gptoss_np.text.corpus import dialogue_pairs, shakespeare_splits

shipped = gptoss_np.load_model(gptoss_np.default_checkpoint(), progress=False)
tok = gptoss_np.get_tokenizer(gptoss_np.default_checkpoint())
question = dialogue_pairs(shakespeare_splits()[1])[5][0][1]  # a line of a held-out play
assert shipped.cfg.expert_quant == "mxfp4"
for name, model in (("random weights", gptoss_np.build_model(shipped.cfg, seed=0)), ("trained", shipped)):
    print(f"--- {name}, MXFP4 experts, greedy ---\n{greedy_reply(model, tok, question)}\n")

# %% [markdown]
# ## On trained weights: the per-block error
#
# Which trained float weights? The shipped gpt-oss stores its experts in MXFP4 already, and decoding and re-encoding
# them gives back the same bytes (decoded values are fixed points, checked above), so they cannot show the error.
# The trained float matrices closest to experts are the FFN matrices of the small GPT-2 that chapter 00 uses
# (`gptoss_np.trained_checkpoint("gpt2-shakespeare")`, chain step 00 trained on Shakespeare: up `[4D, D]` and down
# `[D, 4D]` per layer, trained in float32 and stored in bf16, a rounding of at most 0.4 %, far below MXFP4's).
# Beside them: the same matrices at a random initialisation. Then what the rounding costs: the held-out loss of
# that GPT-2 with its FFN matrices rounded to MXFP4, blocks of 32 along the input axis as gpt-oss stores experts.

# %%
gpt2_dir = gptoss_np.trained_checkpoint("gpt2-shakespeare")
gpt2 = gptoss_np.load_model(gpt2_dir, progress=False)
ffn_names = [n for n in gpt2.params if n.endswith(("mlp.up.weight", "mlp.down.weight"))]
gpt2_ffn = {n: np.ascontiguousarray(gpt2.params[n]) for n in ffn_names}  # [out, in]: blocks run along `in`
init_ffn = {n: w for n, w in gptoss_np.init_weights(gpt2.cfg, seed=0).items() if n in ffn_names}
block_rel = {"random init": np.concatenate([block_stats(w)[0] for w in init_ffn.values()]),
             "trained": np.concatenate([block_stats(w)[0] for w in gpt2_ffn.values()])}

bpe = gptoss_np.get_tokenizer(gpt2_dir)
windows = np.array(bpe.encode_ordinary(shakespeare_splits()[1][:60_000])[:4 * 257]).reshape(4, 257)  # held out


def held_out_loss(model):
    """Mean next-token cross-entropy (nats/token) over the 4 held-out windows of 256 predictions."""
    ce = []
    for w in windows:
        logits = model(w[:-1]).astype(np.float64)  # [256, V]
        m = logits.max(-1)
        ce.append(m + np.log(np.exp(logits - m[:, None]).sum(-1)) - logits[np.arange(256), w[1:]])
    return float(np.mean(ce))


bf16_rounding = float(ml_dtypes.finfo(ml_dtypes.bfloat16).eps) / 2  # round to nearest: half a unit in the last place
print(f"bf16 storage: relative rounding of at most {bf16_rounding:.2%}")
assert bf16_rounding == 2**-8 < 0.004
rounded = gptoss_np.Model(gpt2.cfg, {**gpt2.params, **{n: mxfp4_quantise(w) for n, w in gpt2_ffn.items()}})
loss_float, loss_mx = held_out_loss(gpt2), held_out_loss(rounded)
print(f"trained GPT-2, {sum(w.size for w in gpt2_ffn.values()):,} FFN weights in {len(block_rel['trained']):,} "
      f"blocks of 32; held-out loss {loss_float:.4f} -> {loss_mx:.4f} nats/token ({loss_mx - loss_float:+.4f}) "
      "with them in MXFP4")
fig, ax = plt.subplots(figsize=(7, 3.4))
for (name, rel), col in zip(block_rel.items(), ("C7", "C0")):
    ax.hist(rel, bins=np.linspace(0, 0.25, 76), histtype="step", lw=1.5, color=col, density=True,
            label=f"{name}: median {np.median(rel):.1%}, 99th pct {np.percentile(rel, 99):.1%}")
ax.set_xlabel("block relative error ||w - q(w)|| / ||w||")
ax.set_ylabel("density")
ax.set_title("MXFP4 on GPT-2's FFN matrices, random and trained")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
gpt2_steps = json.load(open(pathlib.Path(gpt2_dir) / "training.json"))["settings"]["steps"]
medians = {name: np.median(rel) for name, rel in block_rel.items()}
print(f"trained for {gpt2_steps} steps; median block error {medians['random init']:.2%} at random init, "
      f"{medians['trained']:.2%} trained; loss change {loss_mx - loss_float:+.5f} nats/token")
assert gpt2_steps == 800 and abs(medians["trained"] - medians["random init"]) < 0.005
assert 1e-4 < abs(loss_mx - loss_float) < 1e-3  # "a few ten-thousandths of a nat"

# %% [markdown]
# The two distributions nearly coincide, and the loss moves by a few ten-thousandths of a nat: 800 small steps left
# these weights close to their Gaussian start, so MXFP4 meets Gaussian-like blocks and rounds them as it rounds
# random ones. Heavier tails, as in the Student-t case above, would cost more; at this scale training has not grown
# them. What a 4-bit grid costs a model trained on trillions of tokens is not something this one can show.

# %% [markdown]
# ## Final check
#
# The decoder matches the package bit for bit; 4.25 bits per expert weight; 41.8 GB → 13.76 GB; the packed model
# equals its decoded twin; on the trained GPT-2's FFN matrices MXFP4 costs under 0.01 nats/token; and the last step of
# the chain is gpt-oss-20b.

# %%
assert np.array_equal(mxfp4_decode(blocks, scales), MX.mxfp4_decode(blocks, scales))
assert MX.mxfp4_bytes(32) * 8 / 32 == 4.25 and 8 * n_packed / (n_float / 4) == 4.25
assert weight_bytes(cfg)["total"] == 13_761_264_768 and round(weight_bytes(prev)["total"] / 1e9, 1) == 41.8
assert gptoss_np.count_params(cfg) == gptoss_np.count_params(prev)
assert fits["gpt-oss-20b"][-1] < 16 * 2**30 and fits["gpt-oss-120b"][-1] < 80 * 2**30
assert 90_000 < 128 + spare // per_tok < 92_000  # "about 91,000 tokens" in 16 x 10^9 bytes
assert diff_packed < 1e-12
assert abs(loss_mx - loss_float) < 0.01 and 0.05 < np.median(block_rel["trained"]) < 0.2
assert np.median(stats["Student-t(3)"][0]) > np.median(stats["Gaussian"][0])
name, last = gptoss_np.chain()[-1]
assert last == gptoss_np.get_config("gpt-oss-20b"), "the chain must end at the published gpt-oss-20b config"
print(f"chain step {name!r} == get_config('gpt-oss-20b'): True")
print(f"all checks passed in {time.time() - T_START:.1f} s")
