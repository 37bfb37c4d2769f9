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
# # 13 · gpt-oss on one page
#
# *Runs on a CPU in under a minute (2 cores). The shipped model (5.5 MB of weights, in the repository) and scaled-down
# checkpoints with random weights written to a temporary folder: no download, no GPU.*
#
# Chapters 00–09 built every piece of gpt-oss and checked each one on its own. This chapter assembles them. The
# whole forward pass fits on one page of NumPy, [`chapters/gpt_oss_one_page.py`](gpt_oss_one_page.py), in the
# spirit of picoGPT's `gpt2.py`:
#
# - **functions named after the math** (`rms_norm`, `yarn`, `rope`, `attention`, `swiglu`, `expert`, `moe`,
#   `mxfp4_decode`, `block`, `gpt_oss`), each with a shape comment on every line that changes a shape;
# - **parameters named after the checkpoint**: the page reads a real Hugging Face gpt-oss checkpoint, and its
#   dotted tensor names become nested dicts, so `model.layers.0.self_attn.q_proj.weight` is
#   `params["model"]["layers"][0]["self_attn"]["q_proj"]["weight"]`, a block is called as `block(x, **layer)`, and a
#   misnamed tensor fails at the call, not deep inside a matmul. The hyperparameters come from `config.json` under
#   its own field names (`sliding_window`, `layer_types`, `rope_scaling`, `swiglu_limit`, ...);
# - **only numpy** in the math; loading (the project's safetensors reader) and text (its tokenizer and the harmony
#   format) sit below a ruler at the bottom of the file.
#
# Then the page is checked against the `gptoss_np` oracle at every trace point, it talks (the shipped model
# `gpt-oss-shakespeare`, after random weights to show what it would say untrained), and Qwen3-30B-A3B is written
# as the same page with every changed line marked.

# %%
import difflib
import pathlib
import sys
import tempfile
import time

ROOT = pathlib.Path.cwd().resolve()
while not (ROOT / "gptoss_np").is_dir() and ROOT != ROOT.parent:  # run from a clone without installing
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "chapters"))  # the two pages

import matplotlib.pyplot as plt
import numpy as np

import gpt_oss_one_page as page
import qwen3_one_page
import gptoss_np
from gptoss_np.checks.compare import TOLERANCES, compare_traces, format_report
from gptoss_np.formats.writer import write_checkpoint
from gptoss_np.model import trace_names
from gptoss_np.text.chat import generate
from gptoss_np.text.harmony import analysis_text, chat_prompt, final_text, parse_reply, stop_tokens

T_START = time.time()
SHIPPED = gptoss_np.default_checkpoint()
tmp = tempfile.TemporaryDirectory()  # the random-weight checkpoints; removed at the end of the chapter

# %% [markdown]
# ## The page
#
# The math section of the file, as it is: about a hundred lines. Each function is the one a chapter built and
# checked, now written against the checkpoint's names:
#
# | function | the piece | chapter |
# |---|---|---|
# | `block`, `gpt_oss` | the pre-norm decoder, no dropout, untied head | 00, 01 |
# | `rms_norm` | RMSNorm | 02 |
# | `yarn`, `rope` | RoPE, half-split, with YaRN's frequencies and attention factor | 03 |
# | `swiglu` | the clamped SwiGLU: interleaved columns, α = 1.702, +1 on the linear half | 04 |
# | `attention` | grouped-query attention (`np.repeat` of the kv heads) | 05 |
# | `attention` | the sliding window, the current token included | 06 |
# | `attention` | the sink: one more softmax column, dropped after | 07 |
# | `moe`, `expert` | top-k of the router logits, softmax over the k | 08 |
# | `mxfp4_decode` | E2M1 codes, low nibble first, E8M0 scales with bias 127 | 09 |
#
# No KV cache: `generate` runs the whole sequence again for every new token, which is simple and, for a model this
# small, fast enough. The oracle's cached decoding must give the same tokens (checked below).

# %%
def math_section(path):
    """The lines of a page between its two rulers."""
    lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith("# ---- the math"))
    return lines[start:next(i for i, s in enumerate(lines) if s.startswith("# ---- loading and running"))]


math_lines = math_section(page.__file__)
print("\n".join(math_lines).rstrip())
n_math = sum(1 for s in math_lines[1:] if s.strip())
print(f"\n{n_math} non-blank lines of math, imports: numpy")
assert 90 <= n_math <= 105  # "about a hundred lines"
weights_mb = sum(f.stat().st_size for f in pathlib.Path(SHIPPED).glob("*.safetensors")) / 1e6
print(f"the shipped model's weights: {weights_mb:.1f} MB")
assert f"{weights_mb:.1f}" == "5.5"

# %% [markdown]
# ## The checkpoint as the page sees it
#
# `page.load` reads the shipped model's safetensors files with the project's reader and nests the names. bf16
# tensors become float32; the MXFP4 experts stay the bytes they are on disk (`*_blocks` uint8 [*E*, out, in/32, 16],
# `*_scales` uint8 [*E*, out, in/32]), and `expert` decodes the matrices of each expert a batch is routed to.

# %%
params, config = page.load(SHIPPED)


def leaves(node, name=""):
    """(path, tensor) for every tensor in the nest; a list of layers is shown once, by its first entry."""
    if isinstance(node, list):
        yield from leaves(node[0], f"{name}[0..{len(node) - 1}]")
    elif isinstance(node, dict):
        for key, child in sorted(node.items()):
            yield from leaves(child, f"{name}[{key!r}]" if name else f"params[{key!r}]")
    else:
        yield name, node


for name, w in leaves(params):
    print(f"{name:<74} {str(list(w.shape)):<17} {w.dtype}")
print({k: config[k] for k in ("hidden_size", "num_attention_heads", "num_key_value_heads", "head_dim",
                              "num_local_experts", "num_experts_per_tok", "sliding_window", "layer_types")})
print("rope_scaling:", config["rope_scaling"])

# %% [markdown]
# ## Check: the page against the oracle, trace point by trace point
#
# The page writes gptoss_np's trace points into a dict as it goes (`tr[pre + "attn.q"] = q = ...`), so the two can
# be compared like a layer debugger: every point, every layer, max absolute and relative error, the worst point of
# each layer. The prompt is a harmony chat of 114 tokens, longer than the 64-token window of the sliding layers.
# In float32 the two differ only by rounding (BLAS summation order, the oracle's chunked MXFP4 products); in
# float64 they agree to within 1e-13 of each point's largest value (the largest such error is printed).

# %%
enc = gptoss_np.get_tokenizer(SHIPPED)
question = "Good morrow, what news?"
prompt = chat_prompt(enc, question)
assert len(prompt) == 114 and config["sliding_window"] == 64  # the two numbers stated above
reports = {}
for dtype in ("float32", "float64"):
    p, _ = page.load(SHIPPED, np.dtype(dtype).type)
    mine = {}
    page.gpt_oss(np.array(prompt), **p, config=config, trace=mine)
    oracle = gptoss_np.load_model(SHIPPED, dtype=dtype, progress=False)
    _, ref = oracle(np.array(prompt), trace=True)
    reports[dtype] = compare_traces(ref, mine, rtol=TOLERANCES[dtype], names=trace_names(oracle.cfg))
print(f"{len(prompt)} tokens, sliding_window {config['sliding_window']}, float32 (tolerance "
      f"{TOLERANCES['float32']:g} of each point's largest value):\n")
print(format_report(reports["float32"], "gptoss_np", "one page"))
worst64 = max(r["max_rel"] for r in reports["float64"])
print(f"\nfloat64: largest relative error over all points {worst64:.1e}")
assert worst64 < 1e-13

# %% [markdown]
# The same errors along the network, in both dtypes (exact zeros drawn at 1e-18): flat, with no layer where they
# start to grow.

# %%
fig, ax = plt.subplots(figsize=(13, 3.4))
for dtype, color in (("float32", "C0"), ("float64", "C3")):
    rows = [r for r in reports[dtype] if r["point"] != "router.experts"]  # chosen experts: equal sets, no error
    ax.semilogy([max(r["max_rel"], 1e-18) for r in rows], ".-", color=color, label=f"{dtype}")
    ax.axhline(TOLERANCES[dtype], color=color, ls=":", lw=1, label=f"{dtype} tolerance")
ax.set_xticks(range(len(rows)), [r["name"].replace("layers.", "") for r in rows], rotation=90, fontsize=6)
ax.set_ylabel("max |page - oracle| / max |oracle|")
ax.set_title("the one-page forward against gptoss_np at every trace point of the shipped model")
ax.legend(fontsize=8, ncol=4)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Random weights first
#
# The same architecture with random weights: the shipped model's config written by the project's checkpoint writer
# in the same layout (bf16, MXFP4 experts), then loaded by the page and decoded greedily. Gibberish, as it should
# be: everything the model says below comes from training.

# %%
random_dir = write_checkpoint(oracle.cfg, f"{tmp.name}/random", seed=0, progress=False)
random_params, random_config = page.load(random_dir)
babble = page.generate(prompt, random_params, random_config, 24, stop_tokens(enc))
print(repr(enc.decode(babble)))

# %% [markdown]
# ## The shipped model talks
#
# Greedy decoding from the page, in the harmony format: the model first says on the analysis channel who answers
# whom (as it was trained to), then answers on the final channel. The oracle, decoding with its KV cache, produces
# the same tokens. From a shell: `python chapters/gpt_oss_one_page.py "Good morrow, what news?"`. Greedy decoding is
# what lets two implementations be compared token for token; for a model this small it is also dull, giving nearly
# the same reply to any line (`python -m gptoss_np chat` samples instead).

# %%
reply = page.generate(prompt, params, config, 40, stop_tokens(enc))
messages = parse_reply(enc, reply)
print("analysis:", analysis_text(messages))
print("final   :", final_text(messages))
oracle32 = gptoss_np.load_model(SHIPPED, progress=False)
oracle_reply = list(generate(oracle32, prompt, 40, temperature=0, stop_tokens=stop_tokens(enc)))
print(f"\n{len(reply)} tokens; the oracle's greedy tokens are the same: {reply == oracle_reply}")

# %% [markdown]
# ## Qwen3-30B-A3B on the same page
#
# [`chapters/qwen3_one_page.py`](qwen3_one_page.py) is the gpt-oss page rewritten for Qwen3-30B-A3B (chapter 10's
# comparison, now as code), every changed or added line marked `# QWEN3:`; `tests/test_one_page.py` checks with
# `difflib` that nothing else differs, loader included. The diff of the math, below, is the architectural
# difference between the two models:
# QK-norm before RoPE; no sinks, no sliding window, no biases; plain RoPE without YaRN; a router that takes the
# softmax over all experts first and renormalises its top k; a plain SwiGLU on separate gate and up matrices; bf16
# experts stored one tensor per expert instead of MXFP4.

# %%
oss_math, qwen_math = math_section(page.__file__), math_section(qwen3_one_page.__file__)
diff = list(difflib.unified_diff(oss_math, qwen_math, "gpt_oss_one_page.py", "qwen3_one_page.py", n=1, lineterm=""))
print("\n".join(diff))
added = [s for s in diff if s.startswith("+") and not s.startswith("+++") and s[1:].strip()]
print(f"\nthe math: {len(added)} lines changed or added, {sum('# QWEN3' in s for s in added)} of them marked; "
      f"{sum(1 for s in qwen_math[1:] if s.strip())} non-blank lines in all")

# %% [markdown]
# The Qwen3 page against the oracle, on a scaled-down Qwen3-MoE checkpoint written with random weights in the
# Hugging Face layout (experts one tensor each, `mlp.gate` for the router, `q_norm`/`k_norm`):

# %%
qwen_dir = write_checkpoint(gptoss_np.scale_down(gptoss_np.get_config("qwen3-30b-a3b")), f"{tmp.name}/qwen3",
                            seed=0, progress=False)
q_params, q_config = qwen3_one_page.load(qwen_dir)
q_tokens = np.arange(24) * 7 % q_config["vocab_size"]
q_mine = {}
qwen3_one_page.qwen3_moe(q_tokens, **q_params, config=q_config, trace=q_mine)
q_oracle = gptoss_np.load_model(qwen_dir, progress=False)
_, q_ref = q_oracle(q_tokens, trace=True)
q_rows = compare_traces(q_ref, q_mine, rtol=TOLERANCES["float32"], names=trace_names(q_oracle.cfg))
print(format_report(q_rows, "gptoss_np", "Qwen3 page").split("\n\n", 1)[1])
q_reply = qwen3_one_page.generate(q_tokens[:5], q_params, q_config, 10)
print("greedy ids, page:  ", q_reply)
print("greedy ids, oracle:", [int(t) for t in generate(q_oracle, q_tokens[:5], 10, temperature=0)])

# %% [markdown]
# ## Final check
#
# The page is about a hundred lines of numpy; it equals the oracle at every trace point of the shipped model in
# float32 and float64 and at every point of a Qwen3 checkpoint; random weights babble; the shipped model's greedy
# reply is the oracle's, token for token; every line the Qwen3 page changes is marked.

# %%
assert n_math <= 105
for dtype in ("float32", "float64"):
    assert all(r["status"] == "[OK]" for r in reports[dtype]), dtype
assert max(r["max_rel"] for r in reports["float64"]) < 1e-13
assert len(prompt) > config["sliding_window"] and "sliding_attention" in config["layer_types"]
assert reply == oracle_reply and final_text(messages)
assert babble != reply[:len(babble)]
assert all(r["status"] == "[OK]" for r in q_rows)
assert q_reply == [int(t) for t in generate(q_oracle, q_tokens[:5], 10, temperature=0)]
assert added and all("# QWEN3" in s for s in added)
tmp.cleanup()
print(f"all checks passed in {time.time() - T_START:.1f} s")
