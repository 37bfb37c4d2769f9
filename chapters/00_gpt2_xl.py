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
# # 00 · GPT-2 XL from scratch
#
# *Runs on a CPU in under a minute (2 cores). The models here are scaled-down configs with random weights, and one
# small GPT-2 trained by this project that ships inside the package (2.5 MB): no download, no GPU. Real-size
# numbers come from the configs alone.*
#
# The book walks from GPT-2 XL (OpenAI, 2019, 1.56 billion parameters) to gpt-oss-20b (OpenAI, 2025) one
# architectural change at a time. Each step is a config in `gptoss_np.chain()`; each chapter rebuilds the piece
# that changed and checks it against the NumPy oracle `gptoss_np`. This first chapter is the starting point:
#
# - the whole GPT-2 forward pass on one page of NumPy, checked against `gptoss_np.Model`;
# - what GPT-2 XL costs at real size, computed from its config;
# - reading a GPT-2 checkpoint in the Hugging Face Hub layout, and the transpose trap that comes with it;
# - turning text into GPT-2's tokens with the real vocabulary.
# - random weights, then trained ones: the text they write and what their heads attend to.

# %%
import json
import os
import pathlib
import sys
import tempfile

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import matplotlib.pyplot as plt
import numpy as np

import gptoss_np
from gptoss_np.text.chat import generate
from gptoss_np.accounting import count_params, format_delta_table, summary
from gptoss_np.formats.safetensors_io import save_file

np.set_printoptions(precision=4, suppress=True, linewidth=110)

# %% [markdown]
# ## The chain
#
# Ten configs, each one named change away from the one before (step 08 also reshapes the model to gpt-oss's
# dimensions). The first is GPT-2 XL as released; the last equals the `gpt-oss-20b` preset. Chapters 00–07 keep
# GPT-2's dense shape (06 and 07 add sliding windows and sinks); 08 adds experts at gpt-oss's dimensions, 09 MXFP4,
# and 10 sets the result beside Qwen3.

# %%
for step, what in gptoss_np.config.chain_changes().items():
    print(f"{step:<18} {what}")
print("\nlast step == gpt-oss-20b preset:", gptoss_np.chain()[-1][1] == gptoss_np.get_config("gpt-oss-20b"))
assert len(gptoss_np.chain()) == 10  # "ten configs"

# %% [markdown]
# ## GPT-2 XL at real size
#
# 48 pre-norm blocks of width 1600, 25 heads of 64 dimensions, a 6400-wide GELU MLP, learned positions for 1024
# tokens, a 50257-token vocabulary, and an output head that reuses the token embedding (tied). Every block holds
# $12D^2 + 13D$ parameters: $4D^2$ in attention (q, k, v, out), $8D^2$ in the MLP, and the biases and two
# LayerNorms. The total should be the "1558M" of OpenAI's release folder name (`download_model.py 1558M` in
# [openai/gpt-2](https://github.com/openai/gpt-2/blob/master/DEVELOPERS.md)).

# %%
xl = gptoss_np.get_config("gpt2-xl")
D, L, V, ctx = xl.d_model, xl.n_layers, xl.vocab_size, xl.context_length
by_hand = V * D + ctx * D + L * (12 * D**2 + 13 * D) + 2 * D  # token table + positions + blocks + final norm
n_params = count_params(xl)
print(f"count_params: {n_params['total']:,}   by hand: {by_hand:,}")
for part in ("embedding", "attention", "mlp", "final_norm"):
    print(f"  {part:<11}{n_params[part]:>15,}  {n_params[part] / n_params['total']:6.1%}")
assert n_params["total"] == by_hand == 1_557_611_200 and f"{n_params['total'] / 1e9:.2f}" == "1.56"
assert (L, D, xl.n_heads, xl.head_dim, xl.ffn_hidden, ctx, V) == (48, 1600, 25, 64, 6400, 1024, 50257)
assert xl.norm == "layernorm" and xl.positions == "learned" and xl.tie_embeddings  # the shape stated above

# %% [markdown]
# The same accounting for the first and the last step of the chain, side by side: the whole journey in one
# table. (A chapter normally prints the table between the step before it and its own; this one has no step
# before it.) "Active" parameters are those one token touches: the embedding lookup reads one row and is not
# counted, the tied output head is. KV bytes are per token, averaged over a 4096-token context; FLOPs are those
# of the token at position 4096, whose attention reads 4096 keys (a sliding window caps them). GPT-2 stops at its
# 1024.

# %%
steps = dict(gptoss_np.chain())
print(format_delta_table(steps["00-gpt2-xl"], steps["09-mxfp4"]))
assert format_delta_table(xl, steps["09-mxfp4"]) == format_delta_table(xl, steps["09-mxfp4"], context=4096)

# %% [markdown]
# ## The forward pass on one page
#
# - **Embed**: a row of the token table plus a row of the position table, $x_t = W_E[\text{tok}_t] + W_P[t]$.
# - **Blocks** (pre-norm): $x \leftarrow x + \text{Attn}(\text{LN}(x))$, then
#   $x \leftarrow x + \text{MLP}(\text{LN}(x))$.
# - **Attention**: per head, $\text{softmax}(q k^\top / \sqrt{d} + M)\,v$ with $M$ = −∞ above the diagonal
#   (a token sees itself and the past).
# - **MLP**: $W_2\,\text{gelu}(W_1 x + b_1) + b_2$, GELU in its tanh form (`gelu_new`).
# - **Head**: final LayerNorm, then logits $= x W_E^\top$ (tied).
#
# The functions below are named after the math and take parameters named after `gptoss_np`'s canonical weight
# dict (`layers.{i}.attn.q.weight`, ... documented in `gptoss_np/params.py`), so a block is called as
# `block(x, **layer)` and a renamed weight fails at the call. Matrices are stored `[out, in]` as `nn.Linear` does.
# Dropout is left out: inference never uses it (chapter 01).

# %%
def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))  # subtract the row max: exp never overflows
    return e / e.sum(axis=-1, keepdims=True)


def layer_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=-1, keepdims=True)  # [T, 1]
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)  # [T, 1], biased variance as torch computes it
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def linear(x, weight, bias):
    return x @ weight.T + bias  # weight [out, in]: [T, in] -> [T, out]


def ffn(x, up, down):
    return linear(gelu(linear(x, **up)), **down)  # [T, D] -> [T, 4D] -> [T, D]


def causal_attention(q, k, v):
    T, d = q.shape
    mask = np.triu(np.full((T, T), -np.inf), k=1)  # [T, T]: -inf on the future
    return softmax(q @ k.T / np.sqrt(d) + mask) @ v  # [T, T] @ [T, d] -> [T, d]


def mha(x, q, k, v, o, n_heads):
    q, k, v = linear(x, **q), linear(x, **k), linear(x, **v)  # [T, D] each
    heads = [causal_attention(qh, kh, vh)  # n_heads x [T, d]
             for qh, kh, vh in zip(*(np.split(t, n_heads, axis=-1) for t in (q, k, v)))]
    return linear(np.concatenate(heads, axis=-1), **o)  # [T, D]


def block(x, attn_norm, attn, ffn_norm, mlp, n_heads):
    x = x + mha(layer_norm(x, **attn_norm), **attn, n_heads=n_heads)  # [T, D]
    return x + ffn(layer_norm(x, **ffn_norm), **mlp)  # [T, D]


def gpt2(tokens, embed, pos_embed, layers, final_norm, n_heads):
    x = embed["weight"][tokens] + pos_embed["weight"][np.arange(len(tokens))]  # [T] -> [T, D]
    for layer in layers:
        x = block(x, **layer, n_heads=n_heads)  # [T, D]
    return layer_norm(x, **final_norm) @ embed["weight"].T  # [T, D] -> [T, V]: the head is the token table


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
# ### Check: the page equals `gptoss_np.Model`
#
# A scaled-down GPT-2 (`scale_down` keeps every structural feature: LayerNorm, learned positions, tied head,
# biases, GELU) with random weights. The vocabulary of the small configs has 256 entries, so a token is a byte
# and the prompt can be written as text. Both sides run in float64, so the check can be strict.
#
# "Why doesn't my output match?" is best answered layer by layer, not from the logits alone: the loop below
# compares the residual stream after each block with the oracle's trace, the way a layer debugger would.

# %%
small = gptoss_np.scale_down(xl)
print(small)
weights = gptoss_np.init_weights(small, seed=0)  # canonical names, float32
params = nest({k: v.astype(np.float64) for k, v in weights.items()})
tokens = np.frombuffer(b"The quick brown fox", dtype=np.uint8).astype(np.int64)  # [T] byte tokens

oracle = gptoss_np.Model(small, weights, dtype=np.float64)
ref_logits, trace = oracle(tokens, trace=True)
ours = gpt2(tokens, **params, n_heads=small.n_heads)  # [T, V]

def report(name, value):
    err = np.abs(value - trace[name]).max()
    print(f"{name:<20}{str(value.shape):<12} max abs err {err:.1e}  {'[OK]' if err < 1e-12 else '[DIFF]'}")


x = params["embed"]["weight"][tokens] + params["pos_embed"]["weight"][np.arange(len(tokens))]  # [T, D]
report("embed", x)
for i, layer in enumerate(params["layers"]):
    x = block(x, **layer, n_heads=small.n_heads)
    report(f"layers.{i}.residual", x)
report("logits", ours)
assert np.abs(ours - ref_logits).max() < 1e-12

# %% [markdown]
# ## Reading a GPT-2 checkpoint
#
# The real GPT-2 XL file (`openai-community/gpt2-xl`, `model.safetensors`, 6.2 GB of float32 parameters) names
# its tensors `wte.weight`, `wpe.weight`, `h.{i}.ln_1.weight`, `h.{i}.attn.c_attn.weight`, ... with no
# `transformer.` prefix and no `lm_head.weight` (the head is tied). Two conventions differ from ours:
#
# - **Conv1D stores matrices `[in, out]`** and computes $x W + b$; `nn.Linear` (and our canonical dict) stores
#   `[out, in]` and computes $x W^\top + b$. Four matrices per block need a transpose: `c_attn`,
#   `attn.c_proj`, `mlp.c_fc`, `mlp.c_proj`.
# - **q, k and v are fused** into one `c_attn` of width $3D$, columns in the order q | k | v.
#
# A Hub GPT-2 file may also carry `h.{i}.attn.bias` in each block, a `[1, 1, ctx, ctx]` causal-mask buffer that is
# not a parameter (whether the XL file does is not checked here). A loader skips it when it is there:
# `gptoss_np.load_model` does, and so does [nanoGPT's](https://github.com/karpathy/nanoGPT/blob/master/model.py)
# `from_pretrained`. Our tiny file carries one, so the skipping is tested.
#
# We write a tiny checkpoint in exactly that layout (random weights, the real names and shapes, a real
# `config.json`), read it with `gptoss_np.load_model`, and also with a converter written here on the page.

# %%
def tiny_gpt2_checkpoint(D=64, L=2, H=4, V=256, ctx=64, seed=1):
    """(tensors in the Hub's GPT-2 layout, config.json dict)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape, s=0.02: s * rng.standard_normal(shape)
    hub = {"wte.weight": normal(V, D), "wpe.weight": normal(ctx, D, s=0.01)}
    for i in range(L):
        h = f"h.{i}."
        hub |= {h + "ln_1.weight": 1 + normal(D, s=0.1), h + "ln_1.bias": normal(D, s=0.1),
                h + "attn.c_attn.weight": normal(D, 3 * D), h + "attn.c_attn.bias": normal(3 * D),  # [in, out]
                h + "attn.c_proj.weight": normal(D, D), h + "attn.c_proj.bias": normal(D),
                h + "attn.bias": np.tril(np.ones((ctx, ctx)))[None, None],  # mask buffer, not a parameter
                h + "ln_2.weight": 1 + normal(D, s=0.1), h + "ln_2.bias": normal(D, s=0.1),
                h + "mlp.c_fc.weight": normal(D, 4 * D), h + "mlp.c_fc.bias": normal(4 * D),  # [D, 4D]
                h + "mlp.c_proj.weight": normal(4 * D, D), h + "mlp.c_proj.bias": normal(D)}  # [4D, D]
    hub |= {"ln_f.weight": 1 + normal(D, s=0.1), "ln_f.bias": normal(D, s=0.1)}
    config = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "vocab_size": V, "n_positions": ctx,
              "n_ctx": ctx, "n_embd": D, "n_layer": L, "n_head": H, "n_inner": None,
              "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.1,
              "embd_pdrop": 0.1, "attn_pdrop": 0.1, "bos_token_id": V - 1, "eos_token_id": V - 1}
    return {k: v.astype(np.float32) for k, v in hub.items()}, config


hub, config = tiny_gpt2_checkpoint()
tmp = tempfile.TemporaryDirectory()  # removed at the end of the chapter
save_file(os.path.join(tmp.name, "model.safetensors"), hub)
with open(os.path.join(tmp.name, "config.json"), "w") as f:
    json.dump(config, f, indent=1)
for name in list(hub)[:8]:
    print(f"{name:<24}{str(hub[name].shape):<18}{hub[name].dtype}")

loaded = gptoss_np.load_model(tmp.name, dtype="float64")
print("\nloaded config == scale_down(gpt2-xl):", loaded.cfg == small)
xl_bytes = 4 * n_params["total"]  # the real file's float32 parameters
print(f"GPT-2 XL's parameters in float32: {xl_bytes:,} bytes ({xl_bytes / 1e9:.1f} GB)")
assert f"{xl_bytes / 1e9:.1f}" == "6.2"

# %% [markdown]
# The converter a reader would write ([nanoGPT's](https://github.com/karpathy/nanoGPT/blob/master/model.py)
# `from_pretrained` keeps the same list of transposed matrices):

# %%
def from_hub(hub, n_layers):
    """GPT-2 Hub tensors -> canonical names; Conv1D [in, out] -> [out, in]; c_attn split into q, k, v."""
    w = {"embed.weight": hub["wte.weight"], "pos_embed.weight": hub["wpe.weight"],
         "final_norm.weight": hub["ln_f.weight"], "final_norm.bias": hub["ln_f.bias"]}
    for i in range(n_layers):
        h, p = f"h.{i}.", f"layers.{i}."
        for ours, theirs in (("attn_norm", "ln_1"), ("ffn_norm", "ln_2")):
            w[p + ours + ".weight"], w[p + ours + ".bias"] = hub[h + theirs + ".weight"], hub[h + theirs + ".bias"]
        q_k_v = np.split(hub[h + "attn.c_attn.weight"], 3, axis=1)  # [D, 3D] -> 3 x [D, D], columns q | k | v
        for name, wt, b in zip("qkv", q_k_v, np.split(hub[h + "attn.c_attn.bias"], 3)):
            w[p + f"attn.{name}.weight"], w[p + f"attn.{name}.bias"] = wt.T, b  # .T: [in, out] -> [out, in]
        for ours, theirs in (("attn.o", "attn.c_proj"), ("mlp.up", "mlp.c_fc"), ("mlp.down", "mlp.c_proj")):
            w[p + ours + ".weight"], w[p + ours + ".bias"] = hub[h + theirs + ".weight"].T, hub[h + theirs + ".bias"]
    return w  # h.{i}.attn.bias, the mask buffer, is skipped


tokens = np.frombuffer(b"Hello, my name is", dtype=np.uint8).astype(np.int64)
page = gpt2(tokens, **nest({k: v.astype(np.float64) for k, v in from_hub(hub, 2).items()}), n_heads=4)
err = np.abs(page - loaded(tokens)).max()
print(f"page forward on our conversion vs gptoss_np.load_model: max abs err {err:.1e}")
assert err < 1e-12

# %% [markdown]
# ### The transpose trap
#
# Forget one transpose and what happens depends on the shape. `mlp.c_fc` is `[D, 4D]`, so a missing transpose
# gives a `[D, 4D]` tensor where `[4D, D]` is expected and the shape check names the culprit. `attn.c_proj` is
# square: nothing complains, the model runs, and every logit is wrong. Only a comparison against a reference
# catches it, which is why every chapter carries one.

# %%
bad = from_hub(hub, 2)
bad["layers.0.attn.o.weight"] = hub["h.0.attn.c_proj.weight"]  # square [D, D]: forgot the .T
wrong = gptoss_np.Model(small, bad, dtype=np.float64)(tokens)  # runs without a complaint
print(f"square matrix not transposed: runs, max abs logit error {np.abs(wrong - page).max():.2e}")

bad = from_hub(hub, 2)
bad["layers.0.mlp.up.weight"] = hub["h.0.mlp.c_fc.weight"]  # [D, 4D] where [4D, D] belongs
try:
    gptoss_np.Model(small, bad)
except gptoss_np.CheckpointError as e:
    print("non-square matrix not transposed:", e)

# %% [markdown]
# With the real file the same call reads GPT-2 XL: `gptoss_np.load_model("path/to/gpt2-xl")` (the directory
# holding `config.json` and `model.safetensors`); the tensors are memory-mapped and the transposes are views.

# %% [markdown]
# ## Text to tokens: the real GPT-2 vocabulary
#
# The scaled-down models use 256 tokens, one per byte, so any text can be fed to them. The real model reads
# GPT-2's byte-level BPE: 256 byte tokens, 50,000 merges learned from text, and `<|endoftext|>` (id 50256), 50,257
# ids in all, the `vocab_size` of the config. `gptoss_np.get_tokenizer("gpt2")` builds it offline from a vocabulary
# file whose SHA-256 it checks against the one tiktoken expects. Common words are one token; rarer strings
# split into pieces.

# %%
tok = gptoss_np.get_tokenizer("gpt2")
text = "Hello, my name is GPT-2 XL."
ids = tok.encode(text)
print(ids)
print([tok.decode([i]) for i in ids])
print(f"n_vocab {tok.n_vocab} == vocab_size {xl.vocab_size}; 'hello world' -> {tok.encode('hello world')}")
assert tok.n_vocab == xl.vocab_size and tok.decode(ids) == text
assert tok.encode("hello world") == [31373, 995]  # the ids tiktoken's own tests expect
assert tok.encode("<|endoftext|>", allowed_special="all") == [50256]
assert tok.special_tokens_set == {"<|endoftext|>"} and tok.n_vocab - 256 - 1 == 50_000  # bytes + merges + 1

# %% [markdown]
# ## A figure: where the parameters live, and what the mask does
#
# Left: GPT-2 XL's 1.56 B parameters by part, at real size. Nearly two thirds sit in the MLPs, the part that later
# chapters shrink (SwiGLU, chapter 04) and then multiply into experts (chapter 08). Right: the attention
# probabilities of one head of the tiny random model; the causal mask leaves the upper triangle empty, and with
# random weights each row is close to uniform over the tokens it may see.

# %%
parts = {"token table\n(tied head)": V * D, "positions": ctx * D, "attention\n(+ its LN)": n_params["attention"],
         "MLP\n(+ its LN)": n_params["mlp"]}  # the final LayerNorm's 3,200 would not show
assert 0.6 < n_params["mlp"] / n_params["total"] < 2 / 3  # "nearly two thirds"
layer0 = nest({k: v.astype(np.float64) for k, v in from_hub(hub, 2).items()})["layers"][0]
h = layer_norm(loaded.params["embed.weight"][tokens] + loaded.params["pos_embed.weight"][:len(tokens)],
               **layer0["attn_norm"])
q, k = linear(h, **layer0["attn"]["q"])[:, :16], linear(h, **layer0["attn"]["k"])[:, :16]  # head 0: [T, d]
probs = softmax(q @ k.T / np.sqrt(16) + np.triu(np.full((len(tokens),) * 2, -np.inf), k=1))  # [T, T]

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.3, 1]})
bars = ax1.barh(list(parts), [v / 1e6 for v in parts.values()], color="tab:blue")
ax1.bar_label(bars, [f"{v / 1e6:,.1f} M" for v in parts.values()], padding=3)
ax1.set_xlabel("parameters (millions)")
ax1.set_xlim(0, 1200)
ax1.set_title("GPT-2 XL, 1,557,611,200 parameters")
ax1.invert_yaxis()
im = ax2.imshow(probs, cmap="viridis")
labels = [chr(t) for t in tokens]
ax2.set_xticks(range(len(tokens)), labels, fontsize=7)
ax2.set_yticks(range(len(tokens)), labels, fontsize=7)
ax2.set_xlabel("key token")
ax2.set_ylabel("query token")
ax2.set_title("tiny GPT-2, layer 0, head 0: attention")
fig.colorbar(im, ax=ax2, fraction=0.046)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Random weights, random text
#
# Greedy decoding from the tiny model, with a KV cache (each new token attends to the cached keys and values of
# the ones before it instead of recomputing them). The weights are random, so the continuation is noise, and
# greedy decoding of a random model soon locks onto one token; the point is that the pipeline runs end to end,
# and that the cached decode gives the same logits as a full forward over the same tokens.

# %%
def greedy(model, prompt, n_new):
    """The prompt and n_new greedy tokens, decoded with the KV cache by the package's generate()."""
    return np.concatenate([prompt, list(generate(model, prompt, n_new, temperature=0))]).astype(np.int64)


def as_text(ids):
    """Byte tokens as text; a byte that does not print shows as '·'."""
    return "".join(chr(t) if chr(t).isprintable() else "·" for t in ids)


generated = greedy(loaded, tokens, 24)
print(as_text(generated))
full = loaded(generated[:-1])  # [T, V] in one pass
cache = loaded.new_cache()  # the model holds no state; the cache does
cached = np.concatenate([loaded(generated[i:i + 1], cache=cache) for i in range(len(generated) - 1)])
print(f"cached decode vs full forward: max abs err {np.abs(cached - full).max():.1e}")

# %% [markdown]
# ## Random weights, then trained ones: text and attention
#
# The same architecture, trained. `gptoss_np.trained_checkpoint("gpt2-shakespeare")` is chain step 00 at the
# ladder's scale of chapter 11 (width 128, 4 layers of 4 heads, learned positions, tied head) with a byte-level BPE
# of 2,000 merges learned on Shakespeare, trained by this project (800 steps of 4 × 256 tokens, about eight
# minutes on one CPU thread) and stored in the Hub's GPT-2 layout above: Conv1D matrices, fused `c_attn`, bf16. Its
# `training.json` holds the held-out loss and the command that retrains it. First the architecture with random
# weights and the same tokenizer, then the trained weights, both decoded greedily from the opening of a play that
# training never saw.

# %%
from gptoss_np.text.corpus import shakespeare_splits

GPT2_DIR = gptoss_np.trained_checkpoint("gpt2-shakespeare")
trained = gptoss_np.load_model(GPT2_DIR, progress=False)
untrained = gptoss_np.build_model(trained.cfg, seed=0)
bpe = gptoss_np.get_tokenizer(GPT2_DIR)
info = json.load(open(os.path.join(GPT2_DIR, "training.json")))
held_out = shakespeare_splits()[1]  # whole plays held out of training
opening = bpe.encode_ordinary(held_out[:held_out.index("play on;") + len("play on;\n")])
print(f"{info['params_total']:,} parameters, vocabulary {bpe.n_vocab:,}, {info['train_tokens']:,} training tokens, "
      f"held-out loss {info['val_loss']:.2f} nats/token (ln V = {np.log(bpe.n_vocab):.2f} knows nothing)")
c, st = trained.cfg, info["settings"]
size = sum(f.stat().st_size for f in pathlib.Path(GPT2_DIR).iterdir())  # the checkpoint directory
print(f"{size / 1e6:.1f} MB on disk; {st['steps']} steps of {st['batch_size']} x {st['context']} tokens, "
      f"{info['seconds'] / 60:.0f} minutes on {st['threads']} CPU thread\n")
assert (c.d_model, c.n_layers, c.n_heads, c.positions, c.tie_embeddings) == (128, 4, 4, "learned", True)
assert bpe.n_vocab - 256 - len(bpe.special_tokens_set) == 2000  # 256 byte tokens, 2,000 merges, the specials
assert (st["steps"], st["batch_size"], st["context"], st["threads"]) == (800, 4, 256, 1)
assert info["train_tokens"] == 800 * 4 * 256 == 819_200 and round(info["seconds"] / 60) == 8
assert f"{size / 1e6:.1f}" == "2.5"  # the "2.5 MB" at the top of the chapter
replies = {}
for name, model in (("random weights", untrained), ("trained", trained)):
    replies[name] = list(generate(model, opening, 40, temperature=0))
    print(f"--- {name}, greedy ---\n{bpe.decode(opening)}{bpe.decode(replies[name])}\n")

# %% [markdown]
# What the heads do, recomputed from the trace: each head's softmax weights over one held-out passage, with the
# causal mask (checked against the trace's attention output). Three scores per head, each the mean weight a query
# puts on: the token just before it (a *previous-token* head, the kind induction heads build on in trained
# transformers: [Olsson et al., 2022](https://arxiv.org/abs/2209.11895)), the first token (where large trained
# models park weight they have nowhere to put, the habit chapter 07's sinks make explicit), and the line breaks.
# Beside each, what a head that spreads its weight evenly over the past would score.

# %%
passage = np.array(bpe.encode_ordinary(held_out[:2000])[:48])  # [T]


def attention_maps(model, tokens):
    """[L, H, T, T] causal softmax weights of every head, from the trace's q and k; checked against attn.out."""
    c = model.cfg
    _, tr = model(tokens, trace=True)
    mask = np.triu(np.full((len(tokens),) * 2, -np.inf), k=1)  # [T, T]
    maps = []
    for i in range(c.n_layers):
        q, k, v = (tr[f"layers.{i}.attn.{n}"] for n in "qkv")  # [T, H, d] each
        w = softmax(np.einsum("thd,shd->hts", q, k) / np.sqrt(c.head_dim) + mask)  # [H, T, T]
        heads = np.einsum("hts,shd->thd", w, v).reshape(len(tokens), -1)  # [T, H * d]
        out = linear(heads, model.params[f"layers.{i}.attn.o.weight"], model.params[f"layers.{i}.attn.o.bias"])
        assert np.abs(out - tr[f"layers.{i}.attn.out"]).max() < 1e-4  # the maps are what the model computed
        maps.append(w)
    return np.stack(maps)


def head_scores(maps, tokens):
    """{kind: [..., L, H] mean weight (over queries 8..T-1) on the previous token, the first one, the line breaks}."""
    q = np.arange(8, len(tokens))
    breaks = np.array(["\n" in bpe.decode([t]) for t in tokens])  # [T]
    return {"previous token": maps[..., q, q - 1].mean(-1), "first token": maps[..., 8:, 0].mean(-1),
            "line breaks": maps[..., 8:, :][..., breaks].sum(-1).mean(-1)}


maps = {"random weights": attention_maps(untrained, passage), "trained": attention_maps(trained, passage)}
scores = {name: head_scores(m, passage) for name, m in maps.items()}
T = len(passage)
even = head_scores(np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None], passage)  # a uniform causal map
print("mean weight per head (4 heads per layer) on: " + " | ".join(f"{k} (even spread {v:.2f})"
                                                                   for k, v in even.items()))
for name, sc in scores.items():
    for i in range(trained.cfg.n_layers):
        print(f"  {name:14s} layer {i}: " + "  |  ".join(" ".join(f"{v:.2f}" for v in sc[k][i]) for k in sc))
best = {k: np.unravel_index(scores["trained"][k].argmax(), (trained.cfg.n_layers, trained.cfg.n_heads))
        for k in ("line breaks", "previous token")}  # (layer, head) of the trained model's top scorer

fig, axes = plt.subplots(2, 2, figsize=(10, 9.5))
labels = [bpe.decode([t]).replace("\n", "\\n") for t in passage]
for row, name in enumerate(maps):
    for col, (kind, (layer, head)) in enumerate(best.items()):
        ax = axes[row, col]
        ax.imshow(maps[name][layer, head], cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"{name}: layer {layer}, head {head}\n(trained model's top '{kind}' head: "
                     f"{scores[name][kind][layer, head]:.2f})", fontsize=10)
        ax.set_yticks(range(0, T, 3), labels[::3], fontsize=7)
        ax.set_xticks(range(0, T, 3), labels[::3], fontsize=7, rotation=90)
        ax.set_xlabel("key token")
        ax.set_ylabel("query token")
fig.suptitle("GPT-2 (chain step 00) attention weights over a held-out passage", y=1.0)
fig.tight_layout()
plt.show()

# %% [markdown]
# Random weights spread every head evenly over the past: all three scores sit at the even spread. The trained
# model's clearest habit is neither of the famous two: several heads put most of their weight on the line breaks,
# above all on the first one, the `:\n` that closes the speaker's name. Whether that is a place to park weight
# (what large models do with the first token, chapter 07) or a way to read who speaks and where the verse line
# began, the maps alone cannot tell. Previous-token and first-token heads have not formed at this budget (819 k
# tokens, eight CPU minutes; GPT-2 was trained on 40 GB of web text, [the GPT-2
# paper](https://cdn.openai.com/better-language-models/language_models_are_unsupervised_multitask_learners.pdf)
# says): the strongest previous-token head is only a little above even.

# %% [markdown]
# ## Checks
#
# The claims of this chapter, as asserts: GPT-2 XL has 1,557,611,200 parameters; the forward on the page equals
# the oracle in float64; a Hub-layout checkpoint loads into the chapter's first config and gives the page's
# logits; a square matrix left untransposed runs and is wrong, a non-square one is refused; cached decoding
# equals the full forward; the real GPT-2 vocabulary has the config's 50,257 ids and gives the known ids; the
# trained GPT-2 writes Shakespeare's words where the random one repeats a fragment; its line-break heads stand far
# above an even spread, while every random head sits at it.

# %%
assert count_params(xl)["total"] == 1_557_611_200
assert summary(xl)["KV bytes/token"] == 2 * 48 * 1600 * 4  # k and v, every layer, float32
assert np.abs(gpt2(tokens, **nest({k: v.astype(np.float64) for k, v in weights.items()}), n_heads=4)
              - gptoss_np.Model(small, weights, dtype=np.float64)(tokens)).max() < 1e-12
assert steps["00-gpt2-xl"] == xl and loaded.cfg == small == gptoss_np.scale_down(steps["00-gpt2-xl"])
assert np.abs(page - loaded(tokens)).max() < 1e-12
assert np.abs(wrong - page).max() > 1e-3
try:
    gptoss_np.Model(small, bad)
    raise AssertionError("an untransposed [D, 4D] c_fc was accepted")
except gptoss_np.CheckpointError as e:
    assert "mlp.up.weight" in str(e)
assert np.abs(cached - full).max() < 1e-10
assert tok.encode("hello world") == [31373, 995] and tok.n_vocab == 50257
words = {name: [w for w in bpe.decode(ids).lower().split() if any(c.isalpha() for c in w)]
         for name, ids in replies.items()}
known = {name: np.mean([w.strip(",.;:!?'") in held_out.lower() for w in ws]) for name, ws in words.items()}
assert known["trained"] > 0.9 and known["random weights"] < 0.5, known  # share of its words found in the plays
assert info["val_loss"] < np.log(bpe.n_vocab) - 2
trained_sc, random_sc = scores["trained"], scores["random weights"]
assert trained_sc["line breaks"].max() > 5 * even["line breaks"]
assert all(np.abs(random_sc[k] - even[k]).max() < 0.02 for k in even)
tmp.cleanup()
print("all checks passed")
