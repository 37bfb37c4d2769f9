"""Side-by-side block diagrams of two configs, drawn with matplotlib from the config objects alone.

The diagram is data first: `boxes(cfg)` lists the boxes of one model, each a list of facts (one row of text, or a
drawn element: the q/k/v cells with RoPE's bar under q and k only, the layer stack as one band per layer). Both
models get the same boxes and facts in the same order, so row i of one column faces row i of the other, and
`highlights(cfg_a, cfg_b)` marks exactly the rows whose content differs. The drawing only places what the spec
says: a highlighted row gets an orange background (an SVG element with id `diff.<side>.<slot>.<fact>`, which
tests/test_diagrams.py compares with the spec), every other row is plain. Output is deterministic (fixed SVG hash
salt, no dates or software versions in the files).

    boxes(cfg)                            -> [Box(key, facts, stage), ...] (embedding ... storage)
    highlights(cfg_a, cfg_b)              -> {(box key, fact key): the two rows differ}
    drawn_lines(cfg)                      -> every line of text the diagram writes for cfg
    draw_comparison(cfg_a, cfg_b, stem)   -> writes stem.png and stem.svg, returns the paths
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

from ..accounting import count_params, weight_bytes
from ..mxfp4 import mxfp4_bytes

WRAP = 44  # characters per line in a box (the box width below fits this at FONT_SIZE)
WRAP_BAR = 30  # characters per line in RoPE's bar, which spans the q and k cells only
FONT_SIZE = 10.5
BOX_FILL, BOX_EDGE = "#eef2f7", "#5b6b7f"
DIFF_FILL, DIFF_TEXT = "#ffd6a8", "#a02c00"
ROPE_FILL, ROPE_EDGE = "#dcd3f5", "#5a3fb0"
FULL_BAND = "#5b6b7f"
WINDOW_BANDS = ("#46b3a3", "#e0b43c", "#c05fa0")  # one colour per distinct window size
SVG_SALT = "gptoss-from-scratch"


@dataclass(frozen=True)
class Fact:
    """One row of a box. `value` is what is compared with the other model (the text unless given); `style` says how
    it is drawn: a text line, the box title, the q/k/v cells, RoPE's bar under q and k, or the layer bands."""

    key: str
    text: str  # "" = nothing drawn on this side (the other model may have it)
    style: str = "line"  # line | title | qkv | rope | bands
    value: object = None

    @property
    def compared(self):
        return self.text if self.value is None else self.value


@dataclass(frozen=True)
class Box:
    """A box of the diagram. `stage=False`: drawn dashed and empty-looking, a part this model does not have."""

    key: str
    facts: tuple
    stage: bool = True


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


def _norm_cast(cfg) -> str:
    """RMSNorm's one rounding to bf16: after the scale (gpt-oss) or before it (Qwen3); none drawn for LayerNorm."""
    if cfg.norm == "layernorm":
        return ""
    return "in bf16: rounded " + {"after_weight": "after", "before_weight": "before"}[cfg.norm_cast] + " the scale"


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


def boxes(cfg) -> list:
    """The diagram of one model as data: [Box, ...] in drawing order, every fact read from `cfg`. Every model
    gets the same box keys and, within a box, the same fact keys ("" where it lacks the fact)."""
    D, V = cfg.d_model, cfg.vocab_size
    rope = cfg.positions == "rope"
    tied = cfg.tie_embeddings
    out = [Box("embedding", (Fact("title", "Token embedding", "title"), Fact("size", f"{_n(V)} × {_n(D)}"),
                             Fact("tied", "tied: the output head reuses it" if tied else "untied (own table)")))]
    if rope:
        out.append(Box("positions", (Fact("title", "no position table", "title"),
                                     Fact("size", "positions enter attention: RoPE"),), stage=False))
    else:
        out.append(Box("positions", (Fact("title", "Learned absolute positions", "title"),
                                     Fact("size", f"{_n(cfg.context_length)} × {_n(D)} table, added to the "
                                                  "embedding"))))
    out.append(Box("layers", (
        Fact("title", f"Transformer block × {cfg.n_layers}", "title"),
        Fact("bands", window_phrase(cfg), "bands", value=tuple(cfg.layer_windows)),
        Fact("residual", "pre-norm, residual adds"),
        Fact("dropout", f"dropout {cfg.dropout:g}" if cfg.dropout else "no dropout"))))
    out.append(Box("norm", (Fact("title", _norm_name(cfg), "title"), Fact("eps", f"ε = {_eps(cfg.norm_eps)}"),
                            Fact("cast", _norm_cast(cfg)))))
    gqa = cfg.n_kv_heads != cfg.n_heads
    heads = (f"{cfg.n_heads} query / {cfg.n_kv_heads} KV heads × {cfg.head_dim}" if gqa
             else f"{cfg.n_heads} heads × {cfg.head_dim}")
    width = (f"width {_n(cfg.q_dim)} = d_model" if cfg.q_dim == D else
             f"width {_n(cfg.q_dim)} ≠ d_model {_n(D)}")
    if rope:
        y = cfg.rope_scaling
        rot = f"RoPE rotates q and k: θ = {_n(cfg.rope_theta)}, half-split"
        yarn = (f"YaRN ×{y.factor:g}: {_n(y.original_context)} → {_n(cfg.context_length)} tokens" if y
                else "no YaRN scaling")
    else:
        rot, yarn = "no rotation: positions were added at the input", ""
    windows = sorted({w for w in cfg.layer_windows if w is not None})
    mask = ("causal mask: " + " or ".join(f"last {_n(w)} keys" for w in windows) + " on sliding layers, all on "
            "full ones" if windows else "causal mask: all previous keys")
    out.append(Box("attention", (
        Fact("title", "Grouped-query attention" if gqa else "Multi-head attention", "title"),
        Fact("heads", heads), Fact("width", width),
        Fact("qkv", "q|k|v", "qkv"),
        Fact("qk_norm", "QK-norm (RMSNorm per head) on q, k" if cfg.qk_norm else "no QK-norm"),
        Fact("rope", rot, "rope"), Fact("yarn", yarn), Fact("mask", mask),
        Fact("sinks", "learned sink logit per head" if cfg.sinks else "no sinks"),
        Fact("bias", "biases on q, k, v, o" if cfg.attn_bias else "no biases"))))
    bias = "biases" if cfg.mlp_bias else "no biases"
    if cfg.ffn == "dense":
        ffn = (Fact("title", "Dense MLP", "title"), Fact("experts", ""), Fact("shape", _ffn_shape(cfg)),
               Fact("activation", _activation(cfg)), Fact("router", ""), Fact("bias", bias))
    else:
        order = {"topk_softmax": f"router: top-{cfg.top_k} logits, then softmax",
                 "softmax_topk": f"router: softmax over {cfg.n_experts}, top-{cfg.top_k}, renormalise"}[cfg.router]
        ffn = (Fact("title", "Mixture of experts", "title"),
               Fact("experts", f"{cfg.n_experts} experts, top-{cfg.top_k} per token"),
               Fact("shape", f"expert {_ffn_shape(cfg)}"), Fact("activation", _activation(cfg)),
               Fact("router", order), Fact("bias", bias))
    out.append(Box("ffn", ffn))
    out.append(Box("final_norm", (Fact("title", "Final " + _norm_name(cfg), "title"),
                                  Fact("eps", f"ε = {_eps(cfg.norm_eps)}"), Fact("cast", _norm_cast(cfg)))))
    out.append(Box("head", (Fact("title", "Linear output head", "title"), Fact("size", f"{_n(D)} → {_n(V)}"),
                            Fact("tied", "tied to the token embedding" if tied else "separate matrix, no bias"))))
    out.append(Box("vocab", (Fact("size", f"Vocabulary {_n(V)}"),)))
    out.append(Box("context", (Fact("size", f"Context {_n(cfg.context_length)} tokens"),)))
    out.append(Box("storage", (
        Fact("dtype", f"Weights stored as {cfg.weight_dtype}"),
        Fact("experts", f"except experts: MXFP4, {mxfp4_bits_per_weight():g} bits per weight"
             if cfg.expert_quant == "mxfp4" else ""))))
    return out


def highlights(cfg_a, cfg_b) -> dict:
    """{(box key, fact key): True where the two models' rows differ}, for every row of the diagram."""
    a, b = boxes(cfg_a), boxes(cfg_b)
    out = {}
    for box_a, box_b in zip(a, b, strict=True):
        for fa, fb in zip(box_a.facts, box_b.facts, strict=True):
            assert (box_a.key, fa.key) == (box_b.key, fb.key), "boxes() must give every model the same rows"
            out[box_a.key, fa.key] = fa.compared != fb.compared
    return out


def wrapped(text: str, width=WRAP) -> list:
    """The lines a row shows: each text line wrapped at `width` characters."""
    out = []
    for line in text.split("\n"):
        out.extend(textwrap.wrap(line, width) or [""])
    return out


def _lines(fact) -> list:
    """The text lines a fact draws (none for an empty fact; the q/k/v cells draw their letters)."""
    if not fact.text:
        return []
    if fact.style == "qkv":
        return fact.text.split("|")
    return wrapped(fact.text, WRAP_BAR if fact.style == "rope" else WRAP)


def drawn_lines(cfg) -> list:
    """Every line of text the diagram writes for `cfg` (book --check looks for each one in the SVG)."""
    return [line for box in boxes(cfg) for fact in box.facts for line in _lines(fact)]


def headline(cfg) -> str:
    """The line under each column's title: total and active parameters, stored weight bytes."""
    p, wb = count_params(cfg), weight_bytes(cfg)
    return (f"{p['total'] / 1e9:.2f}B params, {p['active'] / 1e9:.2f}B active, "
            f"{wb['total'] / 1e9:.2f} GB of weights")


# ---- drawing ------------------------------------------------------------------------------------------------------

LINE_H = 0.20  # inches per text line at FONT_SIZE
PAD = 0.12  # vertical padding inside a box
GAP = 0.30  # between boxes (room for an arrow)
COL_W = 4.9  # inches per model column
BOX_W = 4.4
MARGIN = 0.35
QKV_H, BAND_H = 0.30, 0.24  # the q/k/v cells; the layer bands


def _row_height(fa, fb) -> float:
    """A row's height: the larger of the two sides, so that the rows of both columns line up."""
    def h(f):
        n = len(_lines(f))
        if f.style == "qkv":
            return QKV_H + 0.08
        if f.style == "rope":
            return LINE_H * n + 0.14 if n else 0
        if f.style == "bands":
            return BAND_H + 0.1 + LINE_H * n
        return LINE_H * n
    return max(h(fa), h(fb))


def _layout(boxes_a, boxes_b):
    """(row heights {(box, fact): h}, box heights {box: h}, top y of every slot, total height). The slots are the
    boxes in forward order, with the block's norm drawn twice (before attention and before the FFN) and a
    residual add after each sub-layer; vocab, context and storage are facts about the whole model, drawn last."""
    rows, heights = {}, {}
    for ba, bb in zip(boxes_a, boxes_b):
        for fa, fb in zip(ba.facts, bb.facts):
            rows[ba.key, fa.key] = _row_height(fa, fb)
        heights[ba.key] = 2 * PAD + sum(rows[ba.key, f.key] for f in ba.facts)
    y, pos = 1.15, {}  # room for the title and headline
    for key in ("embedding", "positions"):
        pos[key] = y
        y += heights[key] + GAP
    pos["frame"] = y
    y += 0.12
    for slot in ("layers", "norm1", "attention", "plus1", "norm2", "ffn", "plus2"):
        pos[slot] = y
        if slot.startswith("plus"):
            y += 0.30 + GAP * 0.6
        else:
            y += heights[slot.rstrip("12")] + GAP
    pos["frame_end"] = y - GAP * 0.6
    y = pos["frame_end"] + GAP
    for key in ("final_norm", "head"):
        pos[key] = y
        y += heights[key] + GAP
    for key in ("vocab", "context", "storage"):
        pos[key] = y
        y += heights[key] + GAP * 0.5
    return rows, heights, pos, y + 0.75  # room for the legend


def _band_colours(*cfgs) -> dict:
    """{window (None = full): colour}, the same in both columns."""
    windows = sorted({w for c in cfgs for w in c.layer_windows if w is not None})
    colours = {w: WINDOW_BANDS[i % len(WINDOW_BANDS)] for i, w in enumerate(windows)}
    colours[None] = FULL_BAND
    return colours


def draw_comparison(cfg_a, cfg_b, path_stem, formats=("png", "svg")):
    """Draw cfg_a (left) and cfg_b (right) box by box; save path_stem.png and .svg (or `formats`); return the
    paths."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle, FancyBboxPatch, Rectangle

    boxes_a, boxes_b = boxes(cfg_a), boxes(cfg_b)
    differs = highlights(cfg_a, cfg_b)
    rows, heights, pos, total_h = _layout(boxes_a, boxes_b)
    colours = _band_colours(cfg_a, cfg_b)
    width = 2 * COL_W + 2 * MARGIN

    rc = {"svg.hashsalt": SVG_SALT, "svg.fonttype": "none", "font.family": "DejaVu Sans", "font.size": FONT_SIZE,
          "path.simplify": False}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(width, total_h))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width)
        ax.set_ylim(total_h, 0)  # y grows downwards, in inches
        ax.axis("off")

        def text(x, y, s, diff, bold=False, **kw):
            ax.text(x, y, s, ha=kw.pop("ha", "center"), va="center", color=DIFF_TEXT if diff else "black",
                    fontweight="bold" if (bold or diff) else "normal", **kw)

        def draw_fact(cfg, fact, x, y, h, diff, gid):
            """One row at top y, height h, across the box at x; highlighted (with an id) when it differs."""
            lines, cx = _lines(fact), x + BOX_W / 2
            if diff:  # inset a little, so that two highlighted rows in a row stay two
                ax.add_patch(Rectangle((x + 0.06, y + 0.015), BOX_W - 0.12, h - 0.03, facecolor=DIFF_FILL,
                                       edgecolor="none", gid=gid))
                if not lines:  # the other model has this row, this one has nothing there
                    text(cx, y + h / 2, "—", True)
                    return
            if fact.style == "qkv":  # three cells; RoPE's bar (the next rows) sits under q and k only
                cw = (BOX_W - 0.6) / 3
                for i, name in enumerate(lines):
                    cx_i = x + 0.3 + cw * (i + 0.5)
                    ax.add_patch(Rectangle((cx_i - cw / 2 + 0.05, y + 0.04), cw - 0.1, QKV_H, facecolor="white",
                                           edgecolor=BOX_EDGE, linewidth=0.8))
                    text(cx_i, y + 0.04 + QKV_H / 2, name, False, bold=True)
                return
            if fact.style == "rope" and lines:
                bw = 2 * (BOX_W - 0.6) / 3 - 0.1  # under the q and k cells
                bx = x + 0.35
                dashed = cfg.positions != "rope"
                ax.add_patch(FancyBboxPatch((bx, y + 0.04), bw, h - 0.08, boxstyle="round,pad=0,rounding_size=0.06",
                                            facecolor="white" if dashed else ROPE_FILL, edgecolor=ROPE_EDGE,
                                            linestyle="--" if dashed else "-", linewidth=0.9))
                top = y + h / 2 - LINE_H * len(lines) / 2
                for i, line in enumerate(lines):
                    text(bx + bw / 2, top + LINE_H * (i + 0.5), line, diff)
                return
            if fact.style == "bands":  # one cell per layer, coloured by its window
                n, bw = cfg.n_layers, BOX_W - 0.5
                for i, w in enumerate(cfg.layer_windows):
                    ax.add_patch(Rectangle((x + 0.25 + bw * i / n, y + 0.05), bw / n, BAND_H, facecolor=colours[w],
                                           edgecolor="white", linewidth=0.6))
                y, h = y + BAND_H + 0.1, h - BAND_H - 0.1
            top = y + h / 2 - LINE_H * len(lines) / 2
            for i, line in enumerate(lines):
                text(cx, top + LINE_H * (i + 0.5), line, diff, bold=fact.style == "title")

        def draw_box(cfg, side, slot, box, x, y):
            h = heights[box.key]
            ax.add_patch(FancyBboxPatch((x, y), BOX_W, h, boxstyle="round,pad=0,rounding_size=0.08",
                                        facecolor=BOX_FILL if box.stage else "white", edgecolor=BOX_EDGE,
                                        linestyle="-" if box.stage else "--", linewidth=0.9))
            ry = y + PAD
            for fact in box.facts:
                rh = rows[box.key, fact.key]
                if rh:
                    diff = differs[box.key, fact.key]
                    draw_fact(cfg, fact, x, ry, rh, diff, f"diff.{side}.{slot}.{fact.key}")
                ry += rh

        def arrow(x, y0, y1):
            ax.annotate("", xy=(x, y1), xytext=(x, y0),
                        arrowprops=dict(arrowstyle="-|>", color="#333333", lw=1.0, shrinkA=0, shrinkB=0))

        for col, (cfg, bxs) in enumerate(((cfg_a, boxes_a), (cfg_b, boxes_b))):
            side = "ab"[col]
            by_key = {b.key: b for b in bxs}
            x0 = MARGIN + col * COL_W
            cx = x0 + COL_W / 2
            bx = cx - BOX_W / 2
            ax.text(cx, 0.38, cfg.name, ha="center", va="center", fontsize=FONT_SIZE + 4, fontweight="bold")
            ax.text(cx, 0.75, headline(cfg), ha="center", va="center", fontsize=FONT_SIZE - 0.5, color="#333333")
            # the block frame around the repeated sub-layers: solid, since dashed means "absent" in the legend
            fx, fw = x0 + 0.1, COL_W - 0.2
            ax.add_patch(Rectangle((fx, pos["frame"]), fw, pos["frame_end"] - pos["frame"], fill=False,
                                   linestyle="-", edgecolor="#b0b0b0", linewidth=0.9))
            order = ("embedding", "positions", "layers", "norm1", "attention", "plus1", "norm2", "ffn", "plus2",
                     "final_norm", "head")
            prev_bottom = None
            for slot in order:
                y = pos[slot]
                if slot.startswith("plus"):  # the residual add: a circled plus, fed by a bypass line on the left
                    r = 0.15
                    ax.add_patch(Circle((cx, y + r), r, facecolor="white", edgecolor="#333333", lw=1.0))
                    ax.text(cx, y + r, "+", ha="center", va="center", fontsize=FONT_SIZE + 2)
                    start = pos["norm1" if slot == "plus1" else "norm2"] - GAP / 2
                    lx = bx - 0.12
                    ax.plot([cx, lx, lx, cx - r], [start, start, y + r, y + r], color="#333333", lw=0.9)
                    arrow(cx, prev_bottom, y)
                    prev_bottom = y + 2 * r
                    continue
                box = by_key[slot.rstrip("12")]
                if prev_bottom is not None:
                    arrow(cx, prev_bottom, y)
                draw_box(cfg, side, slot, box, bx, y)
                prev_bottom = y + heights[box.key]
            for key in ("vocab", "context", "storage"):
                draw_box(cfg, side, key, by_key[key], bx, pos[key])
        # legend: what the colours mean, all of it true by construction (tests/test_diagrams.py checks the ids)
        ly = total_h - 0.55
        items = [(DIFF_FILL, "-", "row differs from the other model's (—: not in this one)"),
                 ("white", "--", "dashed: a part this model does not have")]
        for i, (fill, style, label) in enumerate(items):
            lx = MARGIN + 0.3 + i * 5.0
            ax.add_patch(Rectangle((lx, ly - 0.1), 0.35, 0.2, facecolor=fill, edgecolor=BOX_EDGE, linestyle=style))
            ax.text(lx + 0.5, ly, label, va="center", ha="left")
        ly += 0.32
        bands = [(colours[w], "layer with a sliding window of " + _n(w)) for w in colours if w is not None]
        bands.append((FULL_BAND, "full-causal layer (one band per layer)"))
        for i, (fill, label) in enumerate(bands):
            lx = MARGIN + 0.3 + i * 5.0
            ax.add_patch(Rectangle((lx, ly - 0.1), 0.35, 0.2, facecolor=fill, edgecolor="white"))
            ax.text(lx + 0.5, ly, label, va="center", ha="left")

        stem = Path(path_stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        metadata = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}
        paths = tuple(Path(f"{stem}.{fmt}") for fmt in formats)
        for fmt, path in zip(formats, paths):
            fig.savefig(path, dpi=120, metadata=metadata[fmt])
    return paths
