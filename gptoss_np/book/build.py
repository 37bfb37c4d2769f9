"""The book's generated parts: tables, per-step deltas, figures and the fact-check of the seed article.

    python -m gptoss_np book            rewrite every generated region of book.md and every figure
    python -m gptoss_np book --check    exit 1 if book.md or a figure is out of date (nothing is written)

book.md is hand-written narrative with regions between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->`; only this file fills them. Every number in the book comes from here, computed from
the configs and the accounting: the narrative outside the regions holds no numbers (tests/test_book.py checks).
"""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from html import escape
from pathlib import Path

from ..accounting import (DTYPE_BYTES, count_params, flops_per_token, format_delta_table, kv_bytes_per_token,
                         kv_cache_bytes, summary, weight_bytes)
from ..config import chain, chain_changes, get_config
from . import ladder
from .diagrams import _eps, draw_comparison, drawn_lines, mxfp4_bits_per_weight, window_phrase
from ..params import param_shapes
from ..errors import InputError

ROOT = Path(__file__).resolve().parents[2]
KV_CONTEXT = 4096  # the context at which the tables measure KV bytes and FLOPs per token
PRESET_NAMES = ("gpt2-xl", "gpt-oss-20b", "gpt-oss-120b", "qwen3-30b-a3b")
FIGURES = (  # (region/file name, left model, right model)
    ("gpt2-xl-vs-gpt-oss-20b", "gpt2-xl", "gpt-oss-20b"),
    ("gpt-oss-20b-vs-qwen3-30b-a3b", "gpt-oss-20b", "qwen3-30b-a3b"),
    ("gpt-oss-20b-vs-gpt-oss-120b", "gpt-oss-20b", "gpt-oss-120b"),
)
CHAPTERS = (  # (notebook stem, chain step or None)
    ("00_gpt2_xl", "00-gpt2-xl"), ("01_no_dropout", "01-no-dropout"), ("02_rmsnorm", "02-rmsnorm"),
    ("03_rope_yarn", "03-rope"), ("04_swiglu", "04-swiglu"), ("05_gqa", "05-gqa"),
    ("06_sliding_window", "06-sliding-window"), ("07_attention_sinks", "07-sinks"), ("08_moe", "08-moe"),
    ("09_mxfp4", "09-mxfp4"), ("10_gpt_oss_vs_qwen3", None), ("11_training_the_chain", None),
    ("12_harmony_and_torch", None), ("13_gpt_oss_on_one_page", None),
)

# The seed article's numbers, as it states them (the claims under test; the sentences are paraphrased below).
SEED = dict(
    gpt2_xl_params=1.5e9,
    swiglu_example=dict(d=1024, gelu_hidden=4096, swiglu_hidden=2048), swiglu_saving_pct=25.0,
    window=128, windowed_share=0.5,
    oss_experts=32, oss_top_k=4, qwen_experts=128, qwen_top_k=8,
    oss_width=2880, qwen_layers=48, oss_layers=24,
    no_mxfp4_gb={"gpt-oss-20b": 48, "gpt-oss-120b": 240},
    gpu_gb={"gpt-oss-20b": 16, "gpt-oss-120b": 80},
    qwen_active=3e9,
)
GPU_CONTEXTS = (4096, 8192, 32768)  # the contexts at which "fits on the GPU" is checked, plus the full context
CLOSE = 0.05  # a claimed size within 5 % of ours counts as "close" (rounding, GB vs GiB is 7 %)
RUNTIME_RESERVE_GIB = 1.0  # what we leave for activations, the CUDA context and allocator slack: below it, "tight"


# ---- small formatting helpers -----------------------------------------------------------------------------------

def B(n):
    """Parameters in billions (or millions below 1e9)."""
    return f"{n / 1e9:.2f}B" if abs(n) >= 1e9 else f"{n / 1e6:.2f}M"


def GB(nbytes):
    return f"{nbytes / 1e9:.2f} GB"


def GiB(nbytes):
    return f"{nbytes / 2**30:.2f} GiB"


def pct(x, digits=1):
    return f"{x:+.{digits}f} %"


def chapter_link(stem):
    return f"[`chapters/{stem}.ipynb`](chapters/{stem}.ipynb)"


def _ctx(cfg):
    return min(KV_CONTEXT, cfg.context_length)


def fmt_value(name, value):
    """One config field's value as the book prints it."""
    if name == "layer_windows":
        cfg_like = type("W", (), {"layer_windows": value, "n_layers": len(value)})
        return window_phrase(cfg_like).replace("\n", "; ")
    if name == "rope_scaling":
        return "none" if value is None else (f"YaRN ×{value.factor:g} from {value.original_context:,} tokens")
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def config_diff(a, b):
    """[(field, before, after)] for every field that differs between two configs (name excluded)."""
    out = []
    for f in dataclasses.fields(a):
        if f.name == "name":
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if x != y:
            out.append((f.name, fmt_value(f.name, x), fmt_value(f.name, y)))
    return out


def md_table(header, rows, align=None):
    align = align or ["---"] * len(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


# ---- quantities the accounting does not name directly ---------------------------------------------------------------

def params_matching(cfg, *needles):
    """Parameters whose canonical name contains any of `needles` (e.g. '.mlp.', 'attn.k.')."""
    return sum(math.prod(s) for n, s in param_shapes(cfg).items() if any(k in n for k in needles))


def mlp_params_per_layer(cfg):
    return params_matching(cfg.replace(n_layers=1, layer_windows=()), ".mlp.")


def expert_params(cfg):
    """Parameters of one expert (its two matrices and their biases)."""
    one = cfg.replace(n_layers=1, layer_windows=())
    return params_matching(one, ".mlp.experts.") // cfg.n_experts


def swiglu_example():
    """The seed's 1024-dim example: GELU MLP d -> 4d -> d against SwiGLU with three d x 2d matrices.
    Returns {'gelu', 'swiglu'} weights without biases and {'gelu_b', 'swiglu_b'} with nn.Linear's default
    biases, each counted through the package's own parameter shapes (one layer, dense FFN)."""
    ex = SEED["swiglu_example"]
    base = get_config("gpt2-xl").replace(d_model=ex["d"], n_layers=1, layer_windows=(), n_heads=16, n_kv_heads=16)
    out = {}
    for bias in (False, True):
        gelu = base.replace(activation="gelu_tanh", ffn_hidden=ex["gelu_hidden"], mlp_bias=bias)
        glu = base.replace(activation="swiglu", ffn_hidden=ex["swiglu_hidden"], mlp_bias=bias)
        suffix = "_b" if bias else ""
        out["gelu" + suffix] = params_matching(gelu, ".mlp.")
        # a SwiGLU with its three separate Linear layers has one bias per output: gate + up (2 x hidden) + down
        out["swiglu" + suffix] = params_matching(glu, ".mlp.")
    return out


NORM_OPS = {"layernorm": 7, "rmsnorm": 4}  # per element: LN mean, subtract, square, sum, rsqrt-mul, scale, shift


def norm_flops(cfg):
    """A rough count of the normalisation arithmetic per token: (2 per block + final) norms x d_model x ops."""
    return (2 * cfg.n_layers + 1) * cfg.d_model * NORM_OPS[cfg.norm]


def no_window(cfg):
    return cfg.replace(layer_windows=())


# ---- generated regions ----------------------------------------------------------------------------------------------

def region_headline():
    a, b = get_config("gpt2-xl"), get_config("gpt-oss-20b")
    pa, pb = count_params(a), count_params(b)
    n_steps = len(chain()) - 1
    return (f"The chain has {len(chain())} configs, {n_steps} changes. It starts at {a.name} ({B(pa['total'])} "
            f"parameters, {GB(weight_bytes(a)['total'])} in {a.weight_dtype}) and ends at {b.name} ({B(pb['total'])} "
            f"parameters of which {B(pb['active'])} are active per token, {GB(weight_bytes(b)['total'])} "
            f"as stored).")


def region_chain_table():
    changes = chain_changes()
    stems = {step: stem for stem, step in CHAPTERS if step}
    rows = []
    for step, cfg in chain():
        p, wb, ctx = count_params(cfg), weight_bytes(cfg), _ctx(cfg)
        kv_bf16 = kv_bytes_per_token(cfg, ctx, DTYPE_BYTES["bfloat16"])
        rows.append([f"[{step}](chapters/{stems[step]}.ipynb)", changes[step], B(p["total"]), B(p["active"]),
                     f"{wb['total'] / 1e9:.2f}", f"{kv_bytes_per_token(cfg, ctx):,.0f} ({cfg.weight_dtype})",
                     f"{kv_bf16:,.0f}", f"{ctx:,}", f"{flops_per_token(cfg, ctx) / 1e9:.2f}"])
    header = ["step", "what changed", "params", "active", "weights GB", "KV bytes/token (cache dtype)",
              "KV bytes/token in bfloat16", "at context", "GFLOP/token"]
    size = lambda c: (count_params(c)["total"], weight_bytes(c)["total"])
    grew = [f"{step} ({count_params(b)['total'] - count_params(a)['total']:+,} parameters)"
            for (_, a), (step, b) in zip(chain(), chain()[1:]) if any(y > x for x, y in zip(size(a), size(b)))]
    note = (f"Steps where parameters or stored bytes grow: {', '.join(grew) or 'none'}. KV bytes per token are "
            f"averaged over a context of {KV_CONTEXT:,} tokens, or the model's whole context when it is shorter. "
            f"The cache is kept in the weights' dtype, named in brackets, so that column also drops when the dtype "
            f"shrinks; the bfloat16 column holds every step to one dtype, so it moves only with layers, KV heads "
            f"and windows. GFLOP/token is the forward cost of one token at that position (matrix multiplies, plus "
            f"attention's q·k and p·v over the keys each layer reads). GB = 10⁹ bytes. The last step's config equals the gpt-oss-20b preset: "
            f"{chain()[-1][1] == get_config('gpt-oss-20b')}.")
    return md_table(header, rows, ["---", "---"] + ["--:"] * 7) + "\n\n" + note


def _step_facts(step, prev, cfg):
    """Bullet points with the numbers that matter for one step, beyond the delta table."""
    facts = []
    if step == "00-gpt2-xl":
        p = count_params(cfg)
        facts.append(f"{p['total']:,} parameters (the tied output head counted once), stored in {cfg.weight_dtype}: "
                     f"{GB(weight_bytes(cfg)['total'])}.")
        facts.append(f"KV cache: {kv_cache_bytes(cfg, 1):,} bytes per token in {cfg.weight_dtype}; "
                     f"{GB(kv_cache_bytes(cfg, cfg.context_length))} for the full {cfg.context_length:,}-token "
                     f"context.")
        facts.append(f"Dropout p = {cfg.dropout:g} at four sites (embeddings, attention probabilities, both residual "
                     f"branches); {cfg.n_layers} blocks of {cfg.n_heads} heads "
                     f"× {cfg.head_dim}; MLP hidden size {cfg.ffn_hidden:,} = {cfg.ffn_hidden / cfg.d_model:g} × "
                     f"d_model.")
    elif step == "01-no-dropout":
        d = count_params(cfg)["total"] - count_params(prev)["total"]
        facts.append(f"Parameter change: {d:,}; FLOP change: "
                     f"{flops_per_token(cfg, _ctx(cfg)) - flops_per_token(prev, _ctx(prev)):,}. At inference "
                     f"dropout is the identity, so the logits of both steps agree exactly.")
    elif step == "02-rmsnorm":
        d = count_params(prev)["total"] - count_params(cfg)["total"]
        n_norms = 2 * cfg.n_layers + 1
        facts.append(f"{n_norms} norms lose their shift vector: {d:,} parameters fewer "
                     f"({d / count_params(prev)['total'] * 100:.3f} % of the model).")
    elif step == "03-rope":
        table = cfg.d_model * prev.context_length
        facts.append(f"The learned position table ({prev.context_length:,} × {prev.d_model:,} = {table:,} "
                     f"parameters) is gone; RoPE itself has no parameters.")
        y = cfg.rope_scaling
        facts.append(f"Context {prev.context_length:,} → {cfg.context_length:,} tokens: RoPE θ = "
                     f"{fmt_value('rope_theta', cfg.rope_theta)}, YaRN ×{y.factor:g} over a native "
                     f"{y.original_context:,}. The FLOP column rises only because the table now measures at "
                     f"{_ctx(cfg):,} tokens instead of {_ctx(prev):,}.")
    elif step == "04-swiglu":
        a, b = mlp_params_per_layer(prev), mlp_params_per_layer(cfg)
        facts.append(f"MLP parameters per block: {a:,} → {b:,} ({pct((b - a) / a * 100, 2)}); hidden size "
                     f"{prev.ffn_hidden:,} → {cfg.ffn_hidden:,}, with two input projections instead of one.")
        ta, tb = count_params(prev)["total"], count_params(cfg)["total"]
        facts.append(f"Whole model: {B(ta)} → {B(tb)} ({pct((tb - ta) / ta * 100)}).")
    elif step == "05-gqa":
        group = cfg.n_heads // cfg.n_kv_heads
        kv_a, kv_b = kv_cache_bytes(prev, 1), kv_cache_bytes(cfg, 1)
        facts.append(f"{cfg.n_heads} query heads share {cfg.n_kv_heads} key/value heads (groups of {group}). "
                     f"KV cache per token: {kv_a:,} → {kv_b:,} bytes ({pct((kv_b - kv_a) / kv_a * 100)}).")
        pa, pb = params_matching(prev, "attn.k.", "attn.v."), params_matching(cfg, "attn.k.", "attn.v.")
        facts.append(f"Key and value projections: {pa:,} → {pb:,} parameters "
                     f"(the saving is {(pa - pb) / count_params(prev)['total'] * 100:.1f} % of the model).")
    elif step == "06-sliding-window":
        facts.append("Pattern: " + window_phrase(cfg).replace("\n", "; ") + ".")
        for n in (KV_CONTEXT, cfg.context_length):
            a, b = kv_cache_bytes(prev, n), kv_cache_bytes(cfg, n)
            facts.append(f"KV cache at {n:,} tokens: {GB(a)} → {GB(b)} ({pct((b - a) / a * 100)}).")
    elif step == "07-sinks":
        n = params_matching(cfg, "attn.sinks")
        facts.append(f"One learned logit per head and block: {cfg.n_heads} × {cfg.n_layers} = {n:,} parameters.")
    elif step == "08-moe":
        changed = [f for f, _, _ in config_diff(prev, cfg)]
        facts.append(f"This step changes {len(changed)} fields at once ({', '.join(f'`{f}`' for f in changed)}), "
                     f"so its deltas are not the MoE's alone.")
        p = count_params(cfg)
        facts.append(f"{cfg.n_experts} experts of {expert_params(cfg):,} parameters per block, {cfg.top_k} used per "
                     f"token: experts hold {p['experts'] / p['total'] * 100:.1f} % of all parameters; "
                     f"{B(p['active'])} of {B(p['total'])} are active per token.")
    elif step == "09-mxfp4":
        wa, wb = weight_bytes(prev), weight_bytes(cfg)
        p = count_params(cfg)
        facts.append(f"MXFP4 stores {mxfp4_bits_per_weight():g} bits per expert weight (4-bit codes plus one "
                     f"shared 8-bit scale per 32); everything else stays {cfg.weight_dtype}.")
        facts.append(f"Experts: {p['experts'] / p['total'] * 100:.1f} % of the parameters, "
                     f"{wb['mxfp4'] / wb['total'] * 100:.1f} % of the stored bytes after quantisation. "
                     f"Weights: {GB(wa['total'])} → {GB(wb['total'])} ({GiB(wb['total'])}).")
    return facts


def region_step(step):
    steps = chain()
    i = [n for n, _ in steps].index(step)
    cfg = steps[i][1]
    out = []
    if i == 0:
        out.append("Starting point; the table's numbers for this config:")
        s = summary(cfg)
        out.append("\n```text\n" + "\n".join(f"{k:<16}{v:>20,.0f}" for k, v in s.items()) + "\n```")
    else:
        prev = steps[i - 1][1]
        diff = config_diff(prev, cfg)
        out.append("Config fields changed: " + "; ".join(f"`{f}` {a} → {b}" for f, a, b in diff) + ".")
        out.append(f"\n```text\n{format_delta_table(prev, cfg, KV_CONTEXT)}\n```")
    facts = _step_facts(step, steps[i - 1][1] if i else None, cfg)
    out.append("\n" + "\n".join(f"- {f}" for f in facts))
    return "\n".join(out)


def region_presets():
    cfgs = [get_config(n) for n in PRESET_NAMES]

    def row(label, fn):
        return [label] + [fn(c) for c in cfgs]

    def ffn(c):
        if c.ffn == "dense":
            return f"dense {c.activation}, hidden {c.ffn_hidden:,}"
        return f"MoE {c.n_experts} experts, top-{c.top_k}, {c.activation}, hidden {c.ffn_hidden:,}"

    rows = [
        row("layers", lambda c: c.n_layers),
        row("d_model", lambda c: f"{c.d_model:,}"),
        row("query / KV heads × head_dim", lambda c: f"{c.n_heads} / {c.n_kv_heads} × {c.head_dim}"),
        row("norm, ε", lambda c: f"{c.norm}, {_eps(c.norm_eps)}" + (", QK-norm" if c.qk_norm else "")
            + (", rounded to bf16 before the scale" if c.norm_cast == "before_weight" else "")),
        row("positions", lambda c: "learned" if c.positions == "learned" else
            f"RoPE θ {fmt_value('rope_theta', c.rope_theta)}"
            + (f", YaRN ×{c.rope_scaling.factor:g}" if c.rope_scaling else "")),
        row("attention pattern", lambda c: window_phrase(c).replace("\n", "; ")),
        row("sinks / attention biases", lambda c: f"{'yes' if c.sinks else 'no'} / {'yes' if c.attn_bias else 'no'}"),
        row("FFN", ffn),
        row("router", lambda c: {"topk_softmax": "top-k, then softmax",
                                 "softmax_topk": "softmax, top-k, renormalise"}[c.router] if c.ffn == "moe" else "—"),
        row("dropout", lambda c: f"{c.dropout:g}"),
        row("tied embeddings", lambda c: "yes" if c.tie_embeddings else "no"),
        row("vocab", lambda c: f"{c.vocab_size:,}"),
        row("context", lambda c: f"{c.context_length:,}"),
        row("weights stored as", lambda c: c.weight_dtype + (" + MXFP4 experts" if c.expert_quant == "mxfp4" else "")),
        row("params", lambda c: B(count_params(c)["total"])),
        row("active params (no embedding lookup)", lambda c: B(count_params(c)["active"])),
        row("weights", lambda c: f"{GB(weight_bytes(c)['total'])} ({GiB(weight_bytes(c)['total'])})"),
        row(f"KV bytes/token at {KV_CONTEXT:,} (or full context)", lambda c: f"{kv_bytes_per_token(c, _ctx(c)):,.0f}"),
        row("KV cache at full context", lambda c: GB(kv_cache_bytes(c, c.context_length))),
        row(f"GFLOP/token at {KV_CONTEXT:,} (or full context)", lambda c: f"{flops_per_token(c, _ctx(c)) / 1e9:.2f}"),
    ]
    return md_table(["", *PRESET_NAMES], rows)


def region_figure(name):
    for fig, a, b in FIGURES:
        if fig == name:
            return (f"![{a} and {b} block by block](figures/{fig}.png)\n\n"
                    f"*{a} (left) and {b} (right), drawn by `gptoss_np.book.diagrams` from the two configs; an orange "
                    f"row differs from the same row of the other model, a plain one is the same in both, a dashed box is a part the model does not have. RoPE is the "
                    f"bar under q and k inside attention; the bands in the block are its layers, coloured by "
                    f"attention window. Vector version: "
                    f"[figures/{fig}.svg](figures/{fig}.svg).*")
    raise KeyError(name)


def region_qwen3():
    a, b = get_config("gpt-oss-20b"), get_config("qwen3-30b-a3b")
    pa, pb = count_params(a), count_params(b)
    per_block = lambda c, p: (p["total"] - p["embedding"] - p["final_norm"]) // c.n_layers
    ea, eb = expert_params(a), expert_params(b)
    active_experts = lambda c: expert_params(c) * c.top_k * c.n_layers
    rows = [
        ["d_model (residual width)", f"{a.d_model:,}", f"{b.d_model:,}"],
        ["layers", a.n_layers, b.n_layers],
        ["attention width (heads × head_dim)", f"{a.q_dim:,}", f"{b.q_dim:,}"],
        ["parameters per block", f"{per_block(a, pa):,}", f"{per_block(b, pb):,}"],
        ["experts / active per token", f"{a.n_experts} / {a.top_k}", f"{b.n_experts} / {b.top_k}"],
        ["parameters per expert", f"{ea:,}", f"{eb:,}"],
        ["active expert parameters per token (all layers)", B(active_experts(a)), B(active_experts(b))],
        ["active parameters (without / with the embedding lookup)",
         f"{B(pa['active'])} / {B(pa['active_with_embedding'])}",
         f"{B(pb['active'])} / {B(pb['active_with_embedding'])}"],
        [f"KV cache per token, {KV_CONTEXT:,}-token context", f"{kv_bytes_per_token(a, KV_CONTEXT):,.0f} B",
         f"{kv_bytes_per_token(b, KV_CONTEXT):,.0f} B"],
        [f"GFLOP per token at {KV_CONTEXT:,}", f"{flops_per_token(a, KV_CONTEXT) / 1e9:.2f}",
         f"{flops_per_token(b, KV_CONTEXT) / 1e9:.2f}"],
    ]
    return (md_table(["", a.name, b.name], rows, ["---", "--:", "--:"])
            + f"\n\n```text\n{format_delta_table(a, b, KV_CONTEXT)}\n```")


# ---- the fact-check ----------------------------------------------------------------------------------------------

def fact_check():
    """[{'claim', 'ours', 'verdict', 'ok'}]: each of the seed's checkable claims against the numbers computed here.
    `ok` is True (holds), False (does not hold) or None (holds in part / needs a qualification)."""
    rows = []
    add = lambda claim, ours, verdict, ok: rows.append(dict(claim=claim, ours=ours, verdict=verdict, ok=ok))
    steps = dict(chain())
    oss, oss120, qwen, xl = (get_config(n) for n in ("gpt-oss-20b", "gpt-oss-120b", "qwen3-30b-a3b", "gpt2-xl"))

    # GPT-2 XL size
    n = count_params(xl)["total"]
    claim = SEED["gpt2_xl_params"]
    holds = math.floor(n / 1e8) / 10 == claim / 1e9
    add(f"GPT-2 XL has {claim / 1e9:g}B parameters.", f"{n:,} ({B(n)})",
        f"holds, truncated: the release calls it {round(n / 1e6)}M" if holds else "does not hold", holds)

    # dropout
    a, b = steps["00-gpt2-xl"], steps["01-no-dropout"]
    same = summary(a) == summary(b)
    add("gpt-oss drops dropout.", f"dropout {xl.dropout:g} → {oss.dropout:g}; parameters, bytes and FLOPs "
        f"{'unchanged' if same else 'changed'}",
        "holds for the architecture; the cited training-quality evidence is not something code can check", True)

    # RoPE adds no parameters
    a, b = steps["02-rmsnorm"], steps["03-rope"]
    d = count_params(b)["total"] - count_params(a)["total"]
    add("RoPE replaces absolute position embeddings without adding parameters.",
        f"parameter change at step 03: {d:,} (the position table removed)",
        "holds" if d <= 0 else "does not hold", d <= 0)

    # RMSNorm
    a, b = steps["01-no-dropout"], steps["02-rmsnorm"]
    d = count_params(a)["total"] - count_params(b)["total"]
    na, nb = norm_flops(a), norm_flops(b)
    share = na / flops_per_token(a, _ctx(a)) * 100
    add("RMSNorm saves computation by skipping the mean subtraction.",
        f"{d:,} shift parameters fewer ({d / count_params(a)['total'] * 100:.3f} %); norm arithmetic about "
        f"{na / 1e6:.2f} → {nb / 1e6:.2f} MFLOP per token (our estimate, {NORM_OPS['layernorm']} vs "
        f"{NORM_OPS['rmsnorm']} operations per element), against {flops_per_token(a, _ctx(a)) / 1e9:.2f} GFLOP of "
        f"matrix work",
        f"holds in kind, small in size: the norms were {share:.2f} % of the arithmetic to begin with", None)

    # SwiGLU: the seed's example
    ex, s = SEED["swiglu_example"], swiglu_example()
    saving = (1 - s["swiglu"] / s["gelu"]) * 100
    saving_b = (1 - s["swiglu_b"] / s["gelu_b"]) * 100
    same_hidden = 3 * ex["d"] * ex["gelu_hidden"] / (2 * ex["d"] * ex["gelu_hidden"]) * 100 - 100
    holds = round(saving, 1) == SEED["swiglu_saving_pct"]
    add(f"SwiGLU (three {ex['d']:,}×{ex['swiglu_hidden']:,} layers) has {SEED['swiglu_saving_pct']:g} % fewer "
        f"parameters than a GELU MLP {ex['d']:,}→{ex['gelu_hidden']:,}→{ex['d']:,}.",
        f"{s['gelu']:,} → {s['swiglu']:,} weights: {saving:.1f} % fewer ({saving_b:.2f} % with nn.Linear's "
        f"default biases)",
        f"holds; the saving comes from halving the hidden size, not from the gate: at equal hidden size a SwiGLU "
        f"has {same_hidden:.0f} % more weights" if holds else "does not hold", holds)

    # SwiGLU at GPT-2 XL size
    a, b = steps["03-rope"], steps["04-swiglu"]
    ma, mb = mlp_params_per_layer(a), mlp_params_per_layer(b)
    ta, tb = count_params(a)["total"], count_params(b)["total"]
    add(f"The {SEED['swiglu_saving_pct']:g} % carries over to GPT-2 XL's MLP (chain step 04, hidden halved).",
        f"MLP per block {ma:,} → {mb:,} ({(ma - mb) / ma * 100:.2f} % fewer, biases included); whole model "
        f"{(ta - tb) / ta * 100:.1f} % fewer",
        "holds for the MLP; the model shrinks less because attention and embeddings stay", True)

    # GQA
    a, b = steps["04-swiglu"], steps["05-gqa"]
    ka, kb = kv_cache_bytes(a, 1), kv_cache_bytes(b, 1)
    mha = oss.replace(n_kv_heads=oss.n_heads)
    ko, km = kv_cache_bytes(oss, 1), kv_cache_bytes(mha, 1)
    pk = params_matching(mha, "attn.k.", "attn.v.") - params_matching(oss, "attn.k.", "attn.v.")
    add("Grouped-query attention cuts memory by sharing keys and values across heads.",
        f"KV cache per token: step 05 {ka:,} → {kb:,} B ({(ka - kb) / ka * 100:.1f} % less); gpt-oss "
        f"{oss.n_heads}/{oss.n_kv_heads} heads vs {oss.n_heads} KV heads: {km:,} → {ko:,} B "
        f"({(km - ko) / km * 100:.1f} % less); the key/value weights it removes are "
        f"{pk / count_params(mha)['total'] * 100:.1f} % of the multi-head model's parameters",
        "holds for the KV cache; the weights it saves are a small share", True)

    # sliding window on half the layers
    rows_w = []
    holds = True
    for c in (oss, oss120):
        nw = sum(w is not None for w in c.layer_windows)
        size = {w for w in c.layer_windows if w is not None}
        holds &= nw == c.n_layers * SEED["windowed_share"] and size == {SEED["window"]}
        rows_w.append(f"{c.name}: {nw} of {c.n_layers} layers, window {', '.join(map(str, sorted(size)))}")
    savings = []
    for ctx in (KV_CONTEXT, oss.context_length):
        a_, b_ = kv_cache_bytes(no_window(oss), ctx), kv_cache_bytes(oss, ctx)
        savings.append(f"{(a_ - b_) / a_ * 100:.2f} % at {ctx:,} tokens")
    add(f"Half the layers use a sliding window of {SEED['window']} tokens.",
        "; ".join(rows_w) + "; KV cache saved vs all-full: " + ", ".join(savings),
        "holds; the saving approaches but never reaches half of the KV cache" if holds else "does not hold", holds)

    # experts
    holds = (oss.n_experts, oss.top_k, qwen.n_experts, qwen.top_k) == (
        SEED["oss_experts"], SEED["oss_top_k"], SEED["qwen_experts"], SEED["qwen_top_k"])
    ea, eb = expert_params(oss), expert_params(qwen)
    act = lambda c: expert_params(c) * c.top_k * c.n_layers
    add(f"gpt-oss uses fewer, larger experts ({SEED['oss_experts']}, {SEED['oss_top_k']} active) than Qwen3 "
        f"({SEED['qwen_experts']}, {SEED['qwen_top_k']} active).",
        f"{oss.n_experts}/{oss.top_k} vs {qwen.n_experts}/{qwen.top_k}; one expert {ea:,} vs {eb:,} parameters "
        f"({ea / eb:.1f}×); active expert parameters per token {B(act(oss))} vs {B(act(qwen))}; "
        f"gpt-oss-120b has {oss120.n_experts} experts, top-{oss120.top_k}",
        ("holds for the 20b; the 120b has as many experts as Qwen3, each still larger" if holds and ea > eb
         else "does not hold"), holds and ea > eb)

    # width vs depth
    pa, pb = count_params(oss), count_params(qwen)
    blk = lambda c, p: (p["total"] - p["embedding"] - p["final_norm"]) // c.n_layers
    holds = (oss.d_model == SEED["oss_width"] and oss.n_layers == SEED["oss_layers"]
             and qwen.n_layers == SEED["qwen_layers"] and oss.d_model > qwen.d_model)
    same_att = oss.q_dim == qwen.q_dim
    add(f"gpt-oss is wider (d_model {SEED['oss_width']:,}) and Qwen3 deeper ({SEED['qwen_layers']} vs "
        f"{SEED['oss_layers']} layers).",
        f"d_model {oss.d_model:,} vs {qwen.d_model:,}; layers {oss.n_layers} vs {qwen.n_layers}; parameters per "
        f"block {B(blk(oss, pa))} vs {B(blk(qwen, pb))}; attention width (heads × head_dim) "
        + (f"{oss.q_dim:,} in both" if same_att else f"{oss.q_dim:,} vs {qwen.q_dim:,}"),
        ("holds for the residual stream; the attention width is the same" if same_att else "holds") if holds
        else "does not hold", holds)

    # sinks and biases
    sinks, bias = params_matching(oss, "attn.sinks"), params_matching(oss, "attn.q.bias", "attn.k.bias",
                                                                      "attn.v.bias", "attn.o.bias")
    holds = oss.sinks and oss.attn_bias and not qwen.sinks and not qwen.attn_bias
    add("gpt-oss has attention sinks and attention biases; Qwen3 has neither.",
        f"sinks {sinks:,} parameters, attention biases {bias:,} parameters in gpt-oss; Qwen3: "
        f"{params_matching(qwen, 'attn.sinks', '.bias'):,} sink or bias parameters",
        "holds" if holds else "does not hold", holds)

    # Qwen3 active
    pq = count_params(qwen)
    add("Qwen3-30B-A3B activates about 3B parameters per token.",
        f"{B(pq['active'])} without the embedding lookup, {B(pq['active_with_embedding'])} with it "
        f"(the model card counts it); {B(pq['total'])} in total",
        "holds", abs(pq["active"] / SEED["qwen_active"] - 1) < 0.15)

    # memory without MXFP4
    parts, oks, units = [], [], []
    for name, claimed in SEED["no_mxfp4_gb"].items():
        c = get_config(name)
        bf16 = weight_bytes(c.replace(expert_quant="none"))["total"]
        err = bf16 / (claimed * 1e9) - 1
        oks.append(abs(err) <= CLOSE)
        units.append([u for u, div in (("GB", 1e9), ("GiB", 2**30)) if abs(bf16 / div / claimed - 1) <= CLOSE])
        parts.append(f"{name}: {GB(bf16)} = {GiB(bf16)} in bf16 vs the claimed {claimed} GB ({pct(err * 100)})")
    unit_note = "; ".join(f"{n.split('-')[-1]} matches in " + (" and ".join(u) if u else "neither GB nor GiB")
                          for n, u in zip(SEED["no_mxfp4_gb"], units))
    verdict = {(True, True): "holds", (False, False): "does not hold",
               (False, True): "too high for the 20b, close for the 120b",
               (True, False): "close for the 20b, off for the 120b"}[tuple(oks)]
    claimed = " and ".join(f"{gb} GB ({n.split('-')[-1]})" for n, gb in SEED["no_mxfp4_gb"].items())
    add(f"Without MXFP4 the weights need {claimed}.",
        "; ".join(parts) + f". bf16 and fp16 both take {DTYPE_BYTES['bfloat16']} bytes per weight. Within "
        f"{CLOSE * 100:g} %, {unit_note}",
        verdict, all(oks) if len(set(oks)) == 1 else None)

    # fits on one GPU
    for name in ("gpt-oss-20b", "gpt-oss-120b"):
        c, cap_gb = get_config(name), SEED["gpu_gb"][name]
        cap = cap_gb * 2**30  # GPU memory is built in binary units: a "16 GB" card holds 16 GiB
        w = weight_bytes(c)["total"]
        totals = [(ctx, w + kv_cache_bytes(c, ctx)) for ctx in (*GPU_CONTEXTS, c.context_length)]
        spare = [(ctx, cap - t) for ctx, t in totals]
        roomy = [ctx for ctx, left in spare if left >= RUNTIME_RESERVE_GIB * 2**30]
        tight = [(ctx, left) for ctx, left in spare if 0 < left < RUNTIME_RESERVE_GIB * 2**30]
        gpu = {"gpt-oss-20b": f"a {cap_gb} GB consumer GPU", "gpt-oss-120b": f"a single {cap_gb} GB H100"}[name]
        ours = (f"weights {GB(w)} = {GiB(w)}; with a bf16 KV cache for one sequence: "
                + ", ".join(f"{GiB(t)} at {ctx:,}" for ctx, t in totals)
                + f" tokens, against the card's {cap_gb} GiB")
        if len(roomy) == len(spare):
            verdict = (f"holds with the experts kept in MXFP4: {GiB(spare[-1][1])} spare even at full context")
        elif roomy:
            verdict = (f"holds with the experts kept in MXFP4, up to {roomy[-1]:,} tokens "
                       f"({GiB(dict(spare)[roomy[-1]])} spare)")
            if tight:
                verdict += (f"; at {tight[-1][0]:,} tokens only {GiB(tight[-1][1])} is left, less than the "
                            f"{RUNTIME_RESERVE_GIB:g} GiB we reserve for activations and the runtime")
            else:
                verdict += f"; not at {[ctx for ctx, left in spare if left <= 0][0]:,} tokens"
        else:
            verdict = "does not hold"
        add(f"gpt-oss-{name.split('-')[-1]} runs on {gpu}.", ours, verdict, bool(roomy))
    return rows


def region_fact_check():
    mark = {True: "✅", False: "❌", None: "⚠️"}
    checks = fact_check()
    rows = [[i + 1, r["claim"], r["ours"], f"{mark[r['ok']]} {r['verdict']}"] for i, r in enumerate(checks)]
    count = {k: sum(r["ok"] is k for r in checks) for k in (True, None, False)}
    return (md_table(["#", "the article's claim (paraphrased)", "computed here", "verdict"], rows,
                     ["--:", "---", "---", "---"])
            + f"\n\n{len(checks)} claims: {count[True]} hold, {count[None]} hold in part, {count[False]} do not.")


def regions():
    """{region name: generated markdown}: everything book.md does not write by hand."""
    out = {"headline": region_headline(), "chain-table": region_chain_table(), "presets": region_presets(),
           "qwen3-comparison": region_qwen3(), "fact-check": region_fact_check()}
    for step, _ in chain():
        out[f"step-{step}"] = region_step(step)
    for fig, _, _ in FIGURES:
        out[f"figure-{fig}"] = region_figure(fig)
    records = ladder.load(ROOT)
    out["ladder-table"] = ladder.region_table(records)
    out["ladder-long-context"] = ladder.region_long_context(records)
    out["ladder-verdicts"] = ladder.region_verdicts(records, ROOT)
    return out


# ---- filling book.md ------------------------------------------------------------------------------------------------

REGION_RE = re.compile(r"<!-- BEGIN GENERATED: (?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- END GENERATED: (?P=name) -->",
                       re.S)


def region_names(text):
    return [m.group("name") for m in REGION_RE.finditer(text)]


def render(text, generated=None):
    """book.md's text with every generated region refilled. Raises ValueError for an unknown region name or a
    BEGIN without its END (a typo there would otherwise leave stale text in place silently)."""
    generated = regions() if generated is None else generated
    begins = re.findall(r"<!-- BEGIN GENERATED: ([^ ]+) -->", text)
    found = region_names(text)
    if begins != found:
        raise ValueError(f"book.md: unmatched BEGIN/END for region(s) {sorted(set(begins) - set(found))}")
    unknown = [n for n in found if n not in generated]
    if unknown:
        raise ValueError(f"book.md: unknown generated region(s) {unknown}; known: {sorted(generated)}")

    def fill(m):
        name = m.group("name")
        return f"<!-- BEGIN GENERATED: {name} -->\n{generated[name].rstrip()}\n<!-- END GENERATED: {name} -->"

    return REGION_RE.sub(fill, text)


def narrative(text):
    """book.md with the generated regions, code, link targets, chapter numbers in headings and model names
    removed: what remains is hand-written prose, which must carry no numbers of its own."""
    text = REGION_RE.sub("", text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)
    text = re.sub(r"^(#+) \d\d\b", r"\1", text, flags=re.M)
    names = r"GPT-2 XL|GPT-2|GPT-3|GPT-5|gpt-oss-20b|gpt-oss-120b|Qwen3-30B-A3B|Qwen3|MXFP4|FP4|E2M1|E8M0|H100|" \
            r"bf16|fp16|fp32|float32|float64|bfloat16|Gemma 2|Python 3"
    return re.sub(names, "", text)


def narrative_numbers(text):
    """Digits in the hand-written prose (should be empty)."""
    return [m.group(0) for m in re.finditer(r"\S*\d\S*", narrative(text))]


def figure_paths(root=ROOT):
    return {fig: (root / "figures" / f"{fig}.png", root / "figures" / f"{fig}.svg") for fig, _, _ in FIGURES}


def draw_figures(root=ROOT):
    out = []
    for fig, a, b in FIGURES:
        out += draw_comparison(get_config(a), get_config(b), root / "figures" / fig)
    return out + ladder.draw(ladder.load(root), root)


def stale_figures(root=ROOT):
    """Problems with the figures on disk: a missing file, or an SVG lacking a line of its configs' current text
    (cheap, and independent of the matplotlib version, unlike comparing bytes)."""
    problems = []
    for fig, a, b in FIGURES:
        png, svg = figure_paths(root)[fig]
        for p in (png, svg):
            if not p.exists():
                problems.append(f"{p} is missing")
        if svg.exists():
            text = svg.read_text(encoding="utf-8")
            for name in (a, b):
                for line in drawn_lines(get_config(name)):
                    if f">{escape(line, quote=False)}<" not in text:
                        problems.append(f"{svg.name}: lacks {line!r} ({name})")
    if ladder.load(root):
        for fig in (ladder.FIGURE_CURVES, ladder.FIGURE_BARS):
            path = root / "figures" / f"{fig}.png"
            if not path.exists() or path.stat().st_mtime < (root / ladder.LADDER_JSON).stat().st_mtime - 1:
                problems.append(f"{path} is missing or older than {ladder.LADDER_JSON}")
    return problems


def check(root=ROOT):
    """Everything out of date, as a list of messages (empty: book.md and figures are current)."""
    text = (root / "book.md").read_text(encoding="utf-8")
    problems = [] if render(text) == text else ["book.md: generated regions out of date"]
    missing = sorted(set(regions()) - set(region_names(text)))
    if missing:
        problems.append(f"book.md lacks generated region(s) {missing}")
    return problems + stale_figures(root)


def add_arguments(ap):
    """The `book` verb's arguments (gptoss_np.cli)."""
    ap.add_argument("--check", action="store_true", help="exit 1 if book.md or a figure would change")
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository root (holds book.md and figures/)")


def run(args):
    """Rewrite book.md's generated regions and the figures, or (--check) report what is out of date."""
    if not (args.root / "book.md").is_file():
        raise InputError(f"--root {args.root}: holds no book.md; expected the repository root (book.md, figures/)")
    if args.check:
        problems = check(args.root)
        for p in problems:
            print(p, file=sys.stderr)
        print("book.md and figures are up to date" if not problems else
              "out of date: run python -m gptoss_np book")
        return 1 if problems else 0
    path = args.root / "book.md"
    text = path.read_text(encoding="utf-8")
    new = render(text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    figs = draw_figures(args.root)
    print(f"{path}: {len(region_names(new))} generated regions ({'rewritten' if new != text else 'unchanged'}); "
          f"{len(figs)} figure files under {args.root / 'figures'}")
    return 0

