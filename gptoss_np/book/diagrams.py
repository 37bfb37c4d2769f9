"""Side-by-side block diagrams of two configs, drawn with matplotlib from the config objects alone.

Every word and number in a box comes from `block_parts(cfg)`; the layout only stacks the boxes. Boxes whose text
differs between the two models are highlighted, so a config change shows up in the figure without anyone
touching this file. Output is deterministic (fixed SVG hash salt, no dates or software versions in the files).

    block_labels(cfg)                     -> [box text, ...] in a fixed order (embedding ... context)
    draw_comparison(cfg_a, cfg_b, stem)   -> writes stem.png and stem.svg, returns the two paths
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from ..accounting import count_params, weight_bytes
from ..mxfp4 import mxfp4_bytes

# the order of the boxes; every model gets the same keys so that row i of one column faces row i of the other
PART_KEYS = ("embedding", "positions", "layers", "norm", "attention", "ffn", "final_norm", "head", "vocab",
             "context", "storage")

WRAP = 44  # characters per line in a box (the box width below fits this at FONT_SIZE)
FONT_SIZE = 10.5
SAME_FILL, SAME_EDGE = "#eef2f7", "#5b6b7f"
DIFF_FILL, DIFF_EDGE, DIFF_TEXT = "#ffe3c2", "#c05600", "#a02c00"
SVG_SALT = "gptoss-from-scratch"


# ---- the text of each box ---------------------------------------------------------------------------------------

def _n(x) -> str:
    """An integer with thousands separators; floats that are whole numbers print as integers."""
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def _eps(e: float) -> str:
    return f"{e:.0e}".replace("e-0", "e-").replace("e+0", "e+")


def _norm_name(cfg) -> str:
    return {"layernorm": "LayerNorm (scale + shift)", "rmsnorm": "RMSNorm (scale only)"}[cfg.norm]


def window_phrase(cfg) -> str:
    """The attention pattern from `layer_windows`, e.g. 'sliding 128 on 12 of 24 layers (even)' and a second
    line 'full causal on the other 12'."""
    n = cfg.n_layers
    windows = sorted({w for w in cfg.layer_windows if w is not None})
    if not windows:
        return f"full causal on all {n} layers"
    parts = []
    for w in windows:
        idx = [i for i, x in enumerate(cfg.layer_windows) if x == w]
        if idx == list(range(0, n, 2)):
            where = " (even)"
        elif idx == list(range(1, n, 2)):
            where = " (odd)"
        else:
            where = ""
        parts.append(f"sliding {_n(w)} on {len(idx)} of {n} layers{where}")
    n_full = sum(w is None for w in cfg.layer_windows)
    return "\n".join(parts + ([f"full causal on the other {n_full}"] if n_full else []))


def _activation(cfg) -> str:
    if cfg.activation == "gelu_tanh":
        return "GELU (tanh approximation)"
    if cfg.activation == "swiglu":
        return "SwiGLU: SiLU(gate) × up"
    return (f"SwiGLU: gate ≤ {cfg.swiglu_limit:g}, linear in ±{cfg.swiglu_limit:g}, α = {cfg.swiglu_alpha:g}, "
            "linear + 1")


def _ffn_shape(cfg) -> str:
    d, f = _n(cfg.d_model), _n(cfg.ffn_hidden)
    return f"{d} → 2×{f} → {d}" if cfg.glu else f"{d} → {f} → {d}"


def mxfp4_bits_per_weight() -> float:
    return mxfp4_bytes(32) * 8 / 32


def block_parts(cfg) -> list:
    """[(key, box text), ...] in PART_KEYS order, every value read from `cfg`."""
    D, V = cfg.d_model, cfg.vocab_size
    parts = {}
    parts["embedding"] = (f"Token embedding {_n(V)} × {_n(D)}\n"
                          + ("tied: the output head reuses it" if cfg.tie_embeddings else "untied (own table)"))
    if cfg.positions == "learned":
        parts["positions"] = (f"Learned absolute positions\n{_n(cfg.context_length)} × {_n(D)} table, "
                              "added to the embedding")
    else:
        pos = f"RoPE θ = {_n(cfg.rope_theta)} (half-split)\nno position parameters"
        y = cfg.rope_scaling
        if y is not None:
            pos += f"\nYaRN ×{y.factor:g}: {_n(y.original_context)} → {_n(cfg.context_length)} tokens"
        else:
            pos += "\nno YaRN scaling"
        parts["positions"] = pos
    parts["layers"] = (f"Transformer block × {cfg.n_layers}\npre-norm, residual adds, "
                       + (f"dropout {cfg.dropout:g}" if cfg.dropout else "no dropout"))
    parts["norm"] = f"{_norm_name(cfg)}, ε = {_eps(cfg.norm_eps)}"
    if cfg.n_kv_heads == cfg.n_heads:
        att = f"Multi-head attention\n{cfg.n_heads} heads × {cfg.head_dim}"
    else:
        att = (f"Grouped-query attention\n{cfg.n_heads} query / {cfg.n_kv_heads} KV heads × {cfg.head_dim}")
    if cfg.q_dim != D:
        att += f"\nattention width {_n(cfg.q_dim)} ≠ d_model {_n(D)}"
    att += "\n" + window_phrase(cfg)
    att += "\n" + ("learned sink logit per head" if cfg.sinks else "no sinks")
    att += "\n" + ("biases on q, k, v, o" if cfg.attn_bias else "no biases")
    att += "\n" + ("QK-norm (RMSNorm per head)" if cfg.qk_norm else "no QK-norm")
    parts["attention"] = att
    bias = "biases" if cfg.mlp_bias else "no biases"
    if cfg.ffn == "dense":
        parts["ffn"] = f"Dense MLP {_ffn_shape(cfg)}\n{_activation(cfg)}\n{bias}"
    else:
        order = {"topk_softmax": f"router: top-{cfg.top_k} logits, then softmax",
                 "softmax_topk": f"router: softmax over {cfg.n_experts}, top-{cfg.top_k}, renormalise"}[cfg.router]
        parts["ffn"] = (f"MoE: {cfg.n_experts} experts, top-{cfg.top_k} per token\n"
                        f"expert {_ffn_shape(cfg)}\n{_activation(cfg)}\n{order}\n{bias}")
    parts["final_norm"] = f"Final {_norm_name(cfg)}, ε = {_eps(cfg.norm_eps)}"
    parts["head"] = (f"Linear output head {_n(D)} → {_n(V)}\n"
                     + ("tied to the token embedding" if cfg.tie_embeddings else "separate matrix, no bias"))
    parts["vocab"] = f"Vocabulary {_n(V)}"
    parts["context"] = f"Context {_n(cfg.context_length)} tokens"
    storage = f"Weights stored as {cfg.weight_dtype}"
    if cfg.expert_quant == "mxfp4":
        storage += f"\nexcept experts: MXFP4, {mxfp4_bits_per_weight():g} bits per weight"
    parts["storage"] = storage
    return [(k, parts[k]) for k in PART_KEYS]


def block_labels(cfg) -> list:
    """The text of each box, in PART_KEYS order (embedding, positions, layers, norm, attention, ffn, final norm,
    output head, vocab, context, storage)."""
    return [text for _, text in block_parts(cfg)]


def wrapped(text: str) -> list:
    """The lines a box shows: each label line wrapped at WRAP characters."""
    out = []
    for line in text.split("\n"):
        out.extend(textwrap.wrap(line, WRAP) or [""])
    return out


def headline(cfg) -> str:
    """The line under each column's title: total and active parameters, stored weight bytes."""
    p, wb = count_params(cfg), weight_bytes(cfg)
    return (f"{p['total'] / 1e9:.2f}B params, {p['active'] / 1e9:.2f}B active, "
            f"{wb['total'] / 1e9:.2f} GB of weights")


# ---- drawing ------------------------------------------------------------------------------------------------------

LINE_H = 0.20  # inches per text line at FONT_SIZE
PAD = 0.16  # vertical padding inside a box
GAP = 0.30  # between boxes (room for an arrow)
COL_W = 4.9  # inches per model column
BOX_W = 4.4
MARGIN = 0.35


def _rows(parts_a, parts_b):
    """Row heights shared by both columns, so that the same part sits at the same height in both."""
    la, lb = dict(parts_a), dict(parts_b)
    return {k: PAD * 2 + LINE_H * max(len(wrapped(la[k])), len(wrapped(lb[k]))) for k in PART_KEYS}


def _layout(heights):
    """Top y (inches from the top) of every drawn element: embedding, positions, block frame (header, norm,
    attention, norm, ffn), final norm, head, then vocab | context side by side, then storage."""
    y, pos = 1.15, {}  # room for the title and headline
    for key in ("embedding", "positions"):
        pos[key] = y
        y += heights[key] + GAP
    pos["frame"] = y
    y += 0.12
    pos["layers"] = y
    y += heights["layers"] + GAP
    for key in ("norm1", "attention", "plus1", "norm2", "ffn", "plus2"):
        pos[key] = y
        if key.startswith("plus"):
            y += 0.30 + GAP * 0.6
        else:
            y += heights[key.rstrip("12")] + GAP
    pos["frame_end"] = y - GAP * 0.6
    y = pos["frame_end"] + GAP
    for key in ("final_norm", "head"):
        pos[key] = y
        y += heights[key] + GAP
    for key in ("vocab", "context", "storage"):  # facts about the whole model, not steps of the forward
        pos[key] = y
        y += heights[key] + GAP * 0.5
    y += 0.45  # legend below
    return pos, y


def draw_comparison(cfg_a, cfg_b, path_stem):
    """Draw cfg_a (left) and cfg_b (right) block by block; save path_stem.png and path_stem.svg; return paths."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyBboxPatch, Rectangle

    parts_a, parts_b = block_parts(cfg_a), block_parts(cfg_b)
    heights = _rows(parts_a, parts_b)
    heights["norm1"] = heights["norm2"] = heights["norm"]
    pos, total_h = _layout(heights)
    width = 2 * COL_W + 2 * MARGIN

    rc = {"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": FONT_SIZE,
          "path.simplify": False}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(width, total_h))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(total_h, 0)  # y grows downwards, in inches
        ax.axis("off")

        def box(x, y, w, h, text, other, bold=False):
            """A box; lines absent from the other model's box are drawn bold in the highlight colour."""
            diff = text != other
            fill, edge = (DIFF_FILL, DIFF_EDGE) if diff else (SAME_FILL, SAME_EDGE)
            ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.08",
                                        facecolor=fill, edgecolor=edge, linewidth=1.3 if diff else 0.9))
            lines, theirs = wrapped(text), set(wrapped(other))
            top = y + h / 2 - LINE_H * len(lines) / 2
            for i, line in enumerate(lines):
                new = line not in theirs
                ax.text(x + w / 2, top + LINE_H * (i + 0.5), line, ha="center", va="center",
                        color=DIFF_TEXT if new else "black",
                        fontweight="bold" if (bold or new) else "normal")

        def arrow(x, y0, y1):
            ax.annotate("", xy=(x, y1), xytext=(x, y0),
                        arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.0, shrinkA=0, shrinkB=0))

        for col, (cfg, parts) in enumerate(((cfg_a, parts_a), (cfg_b, parts_b))):
            labels = dict(parts)
            others = dict(parts_b if col == 0 else parts_a)
            x0 = MARGIN + col * COL_W
            cx = x0 + COL_W / 2
            bx = cx - BOX_W / 2
            ax.text(cx, 0.38, cfg.name, ha="center", va="center", fontsize=FONT_SIZE + 4, fontweight="bold")
            ax.text(cx, 0.75, headline(cfg), ha="center", va="center", fontsize=FONT_SIZE - 0.5,
                    color="#333333")
            # the block frame: a dashed rectangle around the repeated sub-layers
            fx, fw = x0 + 0.1, COL_W - 0.2
            ax.add_patch(Rectangle((fx, pos["frame"]), fw, pos["frame_end"] - pos["frame"], fill=False,
                                   linestyle="--", edgecolor="#7a7a7a", linewidth=0.9))
            order = [("embedding", "embedding"), ("positions", "positions"), ("layers", "layers"),
                     ("norm1", "norm"), ("attention", "attention"), ("plus1", None), ("norm2", "norm"),
                     ("ffn", "ffn"), ("plus2", None), ("final_norm", "final_norm"), ("head", "head")]
            prev_bottom = None
            for slot, key in order:
                y = pos[slot]
                if key is None:  # the residual add: a circled plus, fed by a bypass line on the left
                    r = 0.15
                    ax.add_patch(Circle((cx, y + r), r, facecolor="white", edgecolor="#333333", lw=1.0))
                    ax.text(cx, y + r, "+", ha="center", va="center", fontsize=FONT_SIZE + 2)
                    start = pos["norm1" if slot == "plus1" else "norm2"] - GAP / 2
                    lx = bx - 0.12
                    ax.plot([cx, lx, lx, cx - r], [start, start, y + r, y + r], color="#333333", lw=0.9)
                    arrow(cx, prev_bottom, y)
                    prev_bottom = y + 2 * r
                    continue
                h = heights[slot]
                if prev_bottom is not None:
                    arrow(cx, prev_bottom, y)
                box(bx, y, BOX_W, h, labels[key], others[key], bold=(slot == "layers"))
                prev_bottom = y + h
            for key in ("vocab", "context", "storage"):
                box(bx, pos[key], BOX_W, heights[key], labels[key], others[key])
        # legend
        ly = total_h - 0.32
        legend = ((DIFF_FILL, DIFF_EDGE, "box differs (bold: lines the other model lacks)"),
                  (SAME_FILL, SAME_EDGE, "same in both"))
        for i, (fill, edge, text) in enumerate(legend):
            lx = MARGIN + 0.3 + i * 5.2
            ax.add_patch(Rectangle((lx, ly - 0.1), 0.35, 0.2, facecolor=fill, edgecolor=edge))
            ax.text(lx + 0.5, ly, text, va="center", ha="left")

        stem = Path(path_stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        png, svg = Path(f"{stem}.png"), Path(f"{stem}.svg")
        fig.savefig(png, dpi=120, metadata={"Software": None})
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg
