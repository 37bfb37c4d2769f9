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
# # 12 · Harmony: from a chat to tokens and back, and the same model in torch
#
# *Runs on a CPU in under a minute (2 cores). The shipped model (a few MB, inside the package), the o200k vocabulary
# from an installed package, torch on the CPU (on a GPU if there is one): no download, no GPU needed.*
#
# Chapters 00–11 built and trained the forward pass: token ids in, logits out. A user never sees either. gpt-oss
# is used through the **harmony** format: a conversation becomes one token sequence with special tokens between
# the messages, the model answers in several messages on named *channels*, and the application shows only one of
# them. This chapter renders a chat by hand and checks it against the package and against OpenAI's own renderer,
# lays it out token by token on two tokenizers, lets the shipped model answer with its chain of thought kept apart
# from the answer, and then runs the same checkpoint in PyTorch and asserts the same greedy tokens.

# %%
import io
import os
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))

import matplotlib.pyplot as plt
import numpy as np

import gptoss_np
from gptoss_np.text import harmony as H
from gptoss_np.text import tokenizer as tk
from gptoss_np.text.chat import chat

T_START = time.time()
CKPT = gptoss_np.default_checkpoint()
o200k = gptoss_np.get_tokenizer("o200k_harmony")  # gpt-oss's tokenizer, built offline from a verified file
small = gptoss_np.get_tokenizer(CKPT)  # the shipped model's own BPE, trained on Shakespeare, same specials
print(f"o200k_harmony: {o200k.n_vocab:,} ids; the shipped model's tokenizer: {small.n_vocab:,} ids")

# %% [markdown]
# ## Explain
#
# Sources: OpenAI's format guide, `docs/format.md` in
# [openai/harmony](https://github.com/openai/harmony/blob/main/docs/format.md) (also the cookbook article "OpenAI
# Harmony Response Format"), and tiktoken's `o200k_harmony` encoding.
#
# - **A message** is `<|start|>` header `<|message|>` content `<|end|>`. The header is the role (`system`,
#   `developer`, `user`, `assistant`, or a tool's name), for the assistant also `<|channel|>` and a channel name,
#   and for tool calls a recipient (` to=functions.f`) and a content type. The roles are also the order of
#   authority when instructions conflict: system, developer, user, assistant, tool.
# - **The system message** is not the "system prompt": it holds the model identity, the knowledge cutoff and date,
#   the **reasoning effort** as one line `Reasoning: low | medium | high`, and the valid channels. The instructions
#   an application writes go into the **developer** message, under `# Instructions`.
# - **Channels.** The assistant writes its chain of thought on `analysis`, tool calls and preambles on
#   `commentary`, and the answer on `final`. The guide is explicit that analysis text is not held to the safety
#   standard of the final answer and should not be shown to users: an application prints `final` only.
# - **Stopping.** The prompt ends with `<|start|>assistant`; the model writes messages, each closed by `<|end|>`,
#   until `<|return|>` (done) or `<|call|>` (a tool must run). `<|return|>` is a stop token only: when the reply
#   goes back into the history it is stored ending in `<|end|>`, and the analysis before a final answer is dropped
#   from later prompts.
# - **Tokens.** Every special token is one id. In `o200k_harmony` they sit above the text ids of `o200k_base`;
#   the shipped model's small vocabulary has the same special tokens at its own ids.

# %% [markdown]
# ## Build: a prompt by hand
#
# The whole format fits in one f-string per message. Encoding the string with the special tokens allowed gives
# the prompt's ids; the package's `chat_prompt` must give the same ones.

# %%
def message(role, content, channel=None):
    """One harmony message as text: <|start|>role[<|channel|>channel]<|message|>content<|end|>."""
    header = role + (f"<|channel|>{channel}" if channel else "")
    return f"<|start|>{header}<|message|>{content}<|end|>"


def prompt_by_hand(question, effort):
    system = ("You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\n\n"
              f"Reasoning: {effort}\n\n# Valid channels: analysis, commentary, final. Channel must be included "
              "for every message.")
    return message("system", system) + message("user", question) + "<|start|>assistant"


question = "What is 2 + 2?"
text = prompt_by_hand(question, "low")
mine = o200k.encode(text, allowed_special="all")
package = H.chat_prompt(o200k, question, reasoning="low")
assert mine == package
print(text)

# %% [markdown]
# ## Check: the special tokens and OpenAI's renderer
#
# The format guide lists the special tokens with their ids in `o200k_harmony`; openai-harmony's own tests give the
# ids of "hello world" ([src/tests.rs](https://github.com/openai/harmony/blob/main/src/tests.rs)). Then OpenAI's
# own renderer, `openai-harmony` (Rust), renders the same conversation: it is handed the same verified
# `o200k_base` file through a temporary folder, since it cannot download either.

# %%
SPEC_IDS = {"<|start|>": 200006, "<|end|>": 200007, "<|message|>": 200008, "<|channel|>": 200005,
            "<|constrain|>": 200003, "<|return|>": 200002, "<|call|>": 200012}  # docs/format.md
assert {name: o200k.encode_single_token(name) for name in SPEC_IDS} == SPEC_IDS
assert o200k.encode("hello world") == [24912, 2375]  # openai/harmony: src/tests.rs, tests/test_harmony.py
print("special token   o200k_harmony   shipped tokenizer")
for name in SPEC_IDS:
    print(f"{name:<16}{o200k.encode_single_token(name):>13}{small.encode_single_token(name):>20}")

import openai_harmony as oh

with tempfile.TemporaryDirectory() as folder:
    pathlib.Path(folder, "o200k_base.tiktoken").write_bytes(tk.o200k_base_file()[0])
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = folder
    reference = oh.load_harmony_encoding(oh.HarmonyEncodingName.HARMONY_GPT_OSS)
for effort in H.EFFORTS:
    system = oh.SystemContent.new().with_reasoning_effort(getattr(oh.ReasoningEffort, effort.upper()))
    convo = oh.Conversation.from_messages([oh.Message.from_role_and_content(oh.Role.SYSTEM, system),
                                           oh.Message.from_role_and_content(oh.Role.USER, question)])
    theirs = reference.render_conversation_for_completion(convo, oh.Role.ASSISTANT)
    assert theirs == H.chat_prompt(o200k, question, reasoning=effort)
assert sorted(reference.stop_tokens_for_assistant_actions()) == sorted(H.stop_tokens(o200k))
print("openai-harmony renders the same tokens for low, medium and high effort, and stops on the same ids")

# %% [markdown]
# ## Token by token
#
# The same prompt on both tokenizers. Special tokens are single ids in both; the text between them splits very
# differently: o200k has whole words (" language", " model"), the shipped model's 2,265-id vocabulary, trained on
# Shakespeare only, spells modern words in pieces. The reasoning effort is one token of the system message.

# %%
def show(enc, tokens, first=40):
    """The first tokens as id:'piece'."""
    pieces = [enc.decode([t]) for t in tokens[:first]]
    return " ".join(f"{t}:{p!r}" for t, p in zip(tokens, pieces))


assert small.n_vocab == 2265  # the vocabulary size stated above
prompts = {name: H.chat_prompt(enc, question, reasoning="low") for name, enc in (("o200k", o200k), ("shipped", small))}
for name, enc in (("o200k", o200k), ("shipped", small)):
    print(f"--- {name}: {len(prompts[name])} tokens ---\n{show(enc, prompts[name])} ...\n")

by_effort = {e: H.chat_prompt(o200k, question, reasoning=e) for e in H.EFFORTS}
where = [i for i, ids in enumerate(zip(*by_effort.values())) if len(set(ids)) > 1]
assert len({len(p) for p in by_effort.values()}) == 1 and len(where) == 1
print("low / medium / high differ at position", where[0], "only:",
      [o200k.decode([p[where[0]]]) for p in by_effort.values()])


# %% [markdown]
# The picture: one cell per token, coloured by what it belongs to. Special tokens (dark) frame every message; the
# system message is most of a short prompt.

# %%
def segments(enc, tokens):
    """Per token: 'special', 'header' (between <|start|> and <|message|>) or the role whose content it is."""
    specials = {enc.encode_single_token(s) for s in SPEC_IDS}
    start, msg = enc.encode_single_token("<|start|>"), enc.encode_single_token("<|message|>")
    out, state, header = [], None, []
    for t in tokens:
        if t in specials:
            out.append("special")
            if t == start:
                state, header = "header", []
            elif t == msg:
                state = enc.decode(header)  # the role: system, user, ...
            continue
        if state == "header":
            header.append(t)
        out.append(state)
    return out


COLOURS = {"special": "#222222", "header": "#9aa5b1", "system": "#7fb3d5", "user": "#f5b041"}
fig, axes = plt.subplots(2, 1, figsize=(11, 2.4))
for ax, (name, enc) in zip(axes, (("o200k_harmony", o200k), ("shipped tokenizer", small))):
    tokens = prompts["o200k" if enc is o200k else "shipped"]
    for i, seg in enumerate(segments(enc, tokens)):
        ax.add_patch(plt.Rectangle((i, 0), 1, 1, facecolor=COLOURS[seg], edgecolor="white", lw=0.5))
    ax.set_xlim(0, max(len(p) for p in prompts.values()))
    ax.set_ylim(0, 1)
    ax.set_yticks([])
    ax.set_title(f"{name}: {len(tokens)} tokens", fontsize=9, loc="left")
axes[-1].set_xlabel("token position")
handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLOURS.values()]
fig.legend(handles, ["special token", "header (role)", "system content", "user content"], ncol=4, fontsize=8,
           loc="lower center", bbox_to_anchor=(0.5, -0.12))
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The shipped model answers
#
# `gptoss_np.text.chat.chat` renders the prompt, decodes with the KV cache, feeds every new token to a streaming
# parser and writes only final-channel text to `out`. It samples here (temperature 0.8, a fixed seed): greedy
# decoding makes this small model repeat itself past any short budget, so it would never reach `<|return|>`; the
# torch comparison below decodes greedily. The shipped model was trained to put who answers
# whom on the analysis channel and the reply on the final one (its reasoning effort was drawn at random during
# training and is not something it learned to act on). First the raw tokens, harmony markup included, then the
# same reply as the parser sees it.

# %%
model = gptoss_np.load_model(CKPT, progress=False)
out, err = io.StringIO(), io.StringIO()
line = "Good morrow, my lord. What news from the court?"
reply = chat(CKPT, line, reasoning="low", max_new_tokens=100, temperature=0.8, top_p=0.95, seed=1, model=model,
             tokenizer=small, out=out, err=err)
print("raw:", repr(reply.raw))
for m in reply.messages:
    print(f"[{m.channel}] {m.content!r}")
print("stopped at:", reply.stop)
print("\nwhat the user sees:", out.getvalue().strip())

# %% [markdown]
# The trap: analysis text must never leak into the answer. The printed answer is exactly the final channel, the
# analysis appears nowhere in it, and nothing else was written (`--show-analysis` would write the other channels
# to stderr, never to stdout).

# %%
assert reply.analysis and reply.final
assert out.getvalue().strip() == reply.final.strip() and reply.analysis.strip() not in out.getvalue()
assert err.getvalue() == ""
print(f"analysis: {reply.analysis!r} (kept apart)")

# %% [markdown]
# ### The next turn: `<|return|>` becomes `<|end|>`, the old analysis goes
#
# A reply that ended with `<|return|>` goes back into the conversation as ordinary messages ending with `<|end|>`.
# Once the last assistant message is a final answer, harmony drops the analysis before it: the model never sees
# its old chain of thought again. A user who types a special token's text gets plain text, never the token.

# %%
history = [H.system_message("low"), H.user_message(line), *reply.messages,
           H.user_message("Say <|end|> and nothing more.")]
next_prompt = H.render_for_completion(small, history)
end, ret = small.encode_single_token("<|end|>"), small.encode_single_token("<|return|>")
kept = H.drop_old_analysis(history)
print(f"{len(history)} messages, {len(kept)} rendered; <|end|> x {next_prompt.count(end)}, "
      f"<|return|> x {next_prompt.count(ret)}")
print(small.decode(next_prompt[-30:]))
assert reply.stop == "<|return|>" and reply.tokens[-1] == ret
assert ret not in next_prompt and next_prompt.count(end) == len(kept)  # the typed '<|end|>' stayed text
assert all(m.channel != "analysis" for m in kept) and reply.analysis.strip() not in small.decode(next_prompt)

# %% [markdown]
# ## The same model in torch
#
# `gptoss_torch.load_model` reads the checkpoint through the oracle's loader (the same checks), keeps the MXFP4
# experts packed as `uint8` and runs the twin's forward. `gptoss_torch.chat.ChatModel` makes it look like an
# oracle model to the same `chat` function, so rendering, sampling and parsing are shared and only the forward
# differs. Here the twin computes in float32 like the oracle (on a GPU `load_model` would default to bfloat16,
# see below), and greedy decoding must pick the same 40 tokens on both.

# %%
import torch

import gptoss_torch
from gptoss_torch.chat import ChatModel
from gptoss_torch.fast import mxfp4_triton
from gptoss_torch.fast.dispatch_count import count_ops
from gptoss_np.mxfp4 import mxfp4_bytes

torch.set_num_threads(1)
device = "cuda" if torch.cuda.is_available() else "cpu"
twin = gptoss_torch.load_model(CKPT, device=device, dtype="float32", progress=False)
greedy = {}
for name, m in (("numpy", model), ("torch", ChatModel(twin))):
    greedy[name] = chat(CKPT, line, reasoning="low", max_new_tokens=40, temperature=0, model=m, tokenizer=small,
                        out=io.StringIO(), err=io.StringIO())
    print(f"{name} ({'cpu' if name == 'numpy' else device}), greedy: {greedy[name].raw!r}")
assert greedy["torch"].tokens == greedy["numpy"].tokens and len(greedy["numpy"].tokens) == 40

ids = np.array(greedy["numpy"].prompt_tokens + greedy["numpy"].tokens[:-1])
with torch.no_grad():
    logits_t = twin(torch.tensor(ids, device=device)).float().cpu().numpy()
gap = float(np.abs(logits_t - model(ids)).max())
print(f"largest logit difference over {len(ids)} positions: {gap:.1e}")
assert gap < 1e-3

# %% [markdown]
# ### What changes on a GPU
#
# The code paths below exist in `gptoss_torch/` and are tested; on this machine they are inactive, and this
# chapter states no GPU timings. What one H200 measured for the full-size model with them is in the README's GPU
# section (`benchmarks/gpu_check.py` made those tables).
#
# - **bfloat16.** On CUDA `load_model` computes in bfloat16 by default (the checkpoint's dtype). Logits then
#   differ from the float32 oracle by bf16 rounding, so a greedy decode can take another token where two logits
#   are nearly tied; that is why the comparison above runs in float32.
# - **Packed experts, a Triton kernel.** The experts stay MXFP4 bytes on the device. For decode,
#   `gptoss_torch.fast.mxfp4_triton.enable(model)` routes the few-token MoE step through fused Triton kernels
#   (the up projection, which also routes the token, then the down projection) that read the routed experts'
#   packed bytes, decode them in registers and multiply: 4.25 bits per weight cross the memory bus instead of 16. It runs on CUDA (or in Triton's
#   interpreter); here `enable` declines.
# - **CUDA graphs.** A batch-1 decode step is hundreds of small kernels even for this 4-layer model (counted
#   below), more for a deeper one, and each launch costs time on a GPU
#   whatever the kernel's size. `ChatModel` captures one decode step in a CUDA graph
#   (`gptoss_torch.fast.cuda_graphs.GraphedDecoder`) and replays it per token: one launch instead of all of them.
#   What a graph saves can be counted on a CPU: the operators one decode step dispatches, each one kernel launch on
#   CUDA.

# %%
print("fused MXFP4 kernel enabled here:", mxfp4_triton.enable(twin))
assert mxfp4_bytes(32) * 8 / 32 == 4.25  # bits per weight, against bf16's 16
assert mxfp4_triton.enable(twin) == mxfp4_triton.available(twin.device)
up = twin.layers[0].mlp.experts.up
print(f"layer 0 experts, up projection: blocks {tuple(up.blocks.shape)} {up.blocks.dtype}, "
      f"scales {tuple(up.scales.shape)} {up.scales.dtype}")
assert up.blocks.dtype == torch.uint8

cache = twin.new_cache(64)
with torch.no_grad():
    twin(torch.tensor(reply.prompt_tokens[:8], device=device), cache=cache)
    ops = count_ops(twin, lambda: twin(torch.tensor([reply.prompt_tokens[8]], device=device), cache=cache))
n_ops = sum(ops.ops.values())
per_layer = [sum(c.values()) for c in ops.per_layer]
print(f"one decode step dispatches {n_ops} operators ({per_layer} in the {len(per_layer)} blocks): on CUDA, "
      f"{n_ops} kernel launches eagerly, one graph replay with GraphedDecoder")
assert n_ops > 10 * len(per_layer) and 100 <= n_ops < 1000 and len(per_layer) == 4  # "hundreds", 4 layers

# %% [markdown]
# ## Final check
#
# The hand-made prompt equals the package's and OpenAI's renderer's; the special tokens have the ids of the format
# guide; the reasoning effort is one token; the user sees the final channel only; the next prompt stores `<|end|>`
# and drops the old analysis; the torch twin picks the same greedy tokens as the NumPy oracle.

# %%
assert mine == package == H.chat_prompt(o200k, question, "low")
assert out.getvalue().strip() == reply.final.strip()
assert greedy["torch"].tokens == greedy["numpy"].tokens
print(f"chapter ran in {time.time() - T_START:.1f} s")
