"""The training ladder in the book: tables, verdicts and figures computed from benchmarks/training_ladder.json
(written by `python -m gptoss_torch ladder`). Nothing here trains; it reads the shipped results."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ..config import chain, chain_changes

LADDER_JSON = Path("benchmarks") / "training_ladder.json"
THROUGHPUT_MD = Path("benchmarks") / "train_throughput_cpu.md"  # `python benchmarks/train_throughput.py --write`
FIGURE_CURVES = "training-ladder-curves"
FIGURE_BARS = "training-ladder-bars"
CONFIDENCE = 0.95  # a difference counts when a two-sided Welch t-test at this level says it is not zero


def load(root):
    path = Path(root) / LADDER_JSON
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else []


def step_times(root):
    """{step: its training step's time / the previous step's} from THROUGHPUT_MD, the steps timed side by side on a
    quiet machine (the ladder's own tokens/s share the cores with other runs); {} when the file is not there."""
    path = Path(root) / THROUGHPUT_MD
    if not path.exists():
        return {}
    lines = [line.strip().strip("|").split("|") for line in path.read_text(encoding="utf-8").splitlines()
             if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0]]
    col = header.index("time vs previous row")
    return {cells[0].strip().split()[1]: float(cells[col].strip().rstrip("x")) for cells in lines[1:]
            if cells[0].strip().startswith("twin ") and cells[col].strip()}


def mean_std(values):
    m = sum(values) / len(values)
    return m, (math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0)


def summarize(records):
    """[(key, row)] in chain order, key = step or step-variant; row: n, params, tokens, mean, std, tok/s, long."""
    order = {s: i for i, (s, _) in enumerate(chain())}
    groups = {}
    for r in records:
        key = r["step"] + (f"-{r['variant']}" if r.get("variant") else "")
        groups.setdefault(key, []).append(r)
    out = []
    for key, rs in sorted(groups.items(), key=lambda kv: (order[kv[1][0]["step"]], kv[1][0].get("variant") or "")):
        vals = [r["val_loss"] for r in rs]
        m, s = mean_std(vals)
        long = {}
        for k in rs[0].get("long_context", {}):
            long[k] = mean_std([r["long_context"][k] for r in rs if k in r.get("long_context", {})])
        speeds = sorted(r["tokens_per_s"] for r in rs)
        row = dict(step=rs[0]["step"], variant=rs[0].get("variant"), matched=rs[0].get("matched"), n=len(rs),
                   seeds=sorted(r["seed"] for r in rs), params_total=rs[0]["params_total"],
                   params_active=rs[0]["params_active"], tokens=rs[0]["tokens"], mean=m, std=s, values=vals,
                   tokens_per_s=speeds[len(speeds) // 2], long=long, records=rs)
        if rs[0].get("val_loss_before_mxfp4") is not None:
            diffs = [r["val_loss"] - r["val_loss_before_mxfp4"] for r in rs]
            row["mxfp4_cost"] = mean_std(diffs)
        out.append((key, row))
    return out


def difference(a, b):
    """(b.mean - a.mean, its standard error sqrt(sa^2/na + sb^2/nb), Welch-Satterthwaite degrees of freedom
    se^4 / ((sa^2/na)^2/(na-1) + (sb^2/nb)^2/(nb-1)))."""
    va, vb = a["std"] ** 2 / a["n"], b["std"] ** 2 / b["n"]
    tail = (va ** 2 / (a["n"] - 1) if a["n"] > 1 else 0.0) + (vb ** 2 / (b["n"] - 1) if b["n"] > 1 else 0.0)
    return b["mean"] - a["mean"], math.sqrt(va + vb), ((va + vb) ** 2 / tail if tail > 0 else math.inf)


def t_critical(df, confidence=CONFIDENCE):
    """t such that P(|T| <= t) = confidence for Student's t with `df` (> 0, may be fractional) degrees of freedom:
    the density Gamma((df+1)/2) / (sqrt(df pi) Gamma(df/2)) (1 + t^2/df)^(-(df+1)/2) integrated (Simpson) and
    bisected. df = inf: the normal's."""
    if math.isinf(df):
        return math.sqrt(2) * _erfinv(confidence)
    c = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def central(t, n=2000):  # P(|T| <= t) = 2 * integral of the density from 0 to t
        h = t / n
        f = [c * (1 + (i * h) ** 2 / df) ** (-(df + 1) / 2) for i in range(n + 1)]
        return 2 * h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))

    lo, hi = 0.0, 1.0
    while central(hi) < confidence:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if central(mid) < confidence else (lo, mid)
    return (lo + hi) / 2


def _erfinv(y):
    """x with erf(x) = y, by bisection (erf is increasing)."""
    lo, hi = 0.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if math.erf(mid) < y else (lo, mid)
    return (lo + hi) / 2


def word(delta, se, df=math.inf):
    """'better' / 'worse' when |delta| > t_critical(df) standard errors (a two-sided Welch t-test at CONFIDENCE),
    else 'within noise'."""
    if abs(delta) <= t_critical(df) * se:
        return "within noise"
    return "better" if delta < 0 else "worse"


def region_table(records):
    rows = summarize(records)
    if not rows:
        return "*No results yet: run `python -m gptoss_torch ladder`.*"
    by = dict(rows)
    changes = chain_changes()
    lines = ["| step | what changed | parameters (active) | val loss, nats/byte (mean ± std) | vs previous step "
             "| training tokens/s |", "|---|---|--:|--:|--:|--:|"]
    prev = None
    for key, r in rows:
        what = changes[r["step"]] if not r["variant"] else f"variant matched in {r['matched']}"
        base = by.get(prev) if not r["variant"] else by.get(_previous(r["step"]))
        if r["step"] == "09-mxfp4":
            dm, ds = r["mxfp4_cost"]
            vs = f"{dm:+.4f} ± {ds:.4f} (paired, same runs)"
        elif base is None:
            vs = "—"
        else:
            d, se, df = difference(base, r)
            vs = f"{d:+.4f} ± {se:.4f} ({word(d, se, df)})"
        params = f"{r['params_total']:,}" + (f" ({r['params_active']:,})" if r["params_active"] != r["params_total"]
                                             else "")
        lines.append(f"| {key} | {what} | {params} | {r['mean']:.4f} ± {r['std']:.4f} | {vs} | "
                     f"{r['tokens_per_s']:,.0f} |")
        if not r["variant"]:
            prev = key
    first = rows[0][1]
    lines.append("")
    runs = sum(1 for r in records if r["step"] != "09-mxfp4")
    lines.append(f"{runs} training runs ({len(records)} records: each 09-mxfp4 record is an 08-moe run's model with its "
                 f"experts encoded); each trains {first['tokens']:,} byte tokens ({first['records'][0]['settings']['steps']} "
                 f"steps of {first['records'][0]['settings']['batch_size']} × {first['records'][0]['settings']['context']}), "
                 f"seeds {', '.join(map(str, first['seeds']))}, at the ladder's scale (d_model 128, 4 layers, "
                 "context 256; \"what changed\" describes the step at full size); ± is the sample standard deviation over seeds, and a "
                 f"difference's ± its standard error; \"within noise\" means a two-sided Welch t-test at "
                 f"{CONFIDENCE:.0%} cannot tell the two apart (with {first['n']} seeds a side, within "
                 f"{t_critical(2 * first['n'] - 2):.1f} to {t_critical(first['n'] - 1):.1f} standard errors, by how the "
                 "two spreads compare). "
                 f"Tokens/s: median over the seeds, 1 CPU thread per run, on {first['records'][0]['machine']}, with "
                 "other training runs sharing the cores, so they compare steps only roughly; "
                 "`benchmarks/train_throughput_cpu.md` times the steps side by side.")
    return "\n".join(lines)


def _previous(step):
    names = [s for s, _ in chain()]
    return names[names.index(step) - 1]


def region_long_context(records):
    rows = summarize(records)
    if not rows:
        return "*No results yet.*"
    cols = [("1x", "1× (256)"), ("2x_tail", "2×: positions 256-511"), ("4x_tail", "4×: positions 256-1023"),
            ("streaming_4x", "4×, streaming (every layer keeps 256 keys)")]
    lines = ["| step | " + " | ".join(c for _, c in cols) + " |", "|---|" + "--:|" * len(cols)]
    for key, r in rows:
        if r["variant"]:
            continue
        cells = [f"{r['long'][k][0]:.3f} ± {r['long'][k][1]:.3f}" if k in r["long"] else "—" for k, _ in cols]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Validation loss (nats/byte, mean ± std over seeds) on 16 windows per length; the tail columns "
                 "average only the positions the model never saw in training.")
    return "\n".join(lines)


def verdicts(records, times=None):
    """[(claim, measured, verdict)] for the article's claims the ladder speaks to; times: step_times()."""
    rows = dict(summarize(records))
    if "09-mxfp4" not in rows:
        return []
    out = []

    def pair(a, b):
        d, se, df = difference(rows[a], rows[b])
        return d, se, word(d, se, df)

    def fmt(d, se):
        return f"{d:+.3f} ± {se:.3f} nats/byte"

    d, se, w = pair("00-gpt2-xl", "01-no-dropout")
    out.append(("Dropout hurts single-epoch training; gpt-oss drops it.", f"no dropout vs dropout 0.1: {fmt(d, se)}",
                {"better": "supported at this scale", "within noise": "not resolved at this scale (within noise)",
                 "worse": "not supported at this scale"}[w]))
    d, se, w = pair("01-no-dropout", "02-rmsnorm")
    t = (times or {}).get("02-rmsnorm")
    out.append(("RMSNorm is cheaper than LayerNorm without hurting quality.",
                f"{fmt(d, se)}" + (f"; a training step {t:.2f}x LayerNorm's (`{THROUGHPUT_MD.as_posix()}`, "
                                   "steps timed side by side on the CPU)" if t else ""),
                ("quality unchanged at this scale" if w != "worse" else "quality worse at this scale")
                + ("" if not t else "; no cheaper in this implementation on the CPU" if t >= 1 else
                   "; cheaper in this implementation on the CPU")))
    d, se, w = pair("02-rmsnorm", "03-rope")
    out.append(("RoPE works better than learned absolute positions.", f"{fmt(d, se)} ({abs(d) / max(se, 1e-12):.0f} "
                "standard errors)", "supported at this scale" if w == "better" else "not supported at this scale"))
    d, se, w = pair("03-rope", "04-swiglu")
    d2, se2, w2 = pair("03-rope", "04-swiglu-params") if "04-swiglu-params" in rows else (0, 0, "—")
    out.append(("SwiGLU is more expressive than a GELU MLP.",
                f"with the chain's halved width (25 % fewer FFN weights): {fmt(d, se)}; matched in parameters: "
                f"{fmt(d2, se2)}", f"halved: {w}; parameter-matched: {w2} (at this scale)"))
    d, se, w = pair("04-swiglu", "05-gqa")
    out.append(("Grouped-query attention saves memory at little cost in quality.", f"{fmt(d, se)} (KV heads 4 → 2)",
                f"{w} at this scale"))
    d, se, w = pair("05-gqa", "06-sliding-window")
    t5, t6 = rows["05-gqa"]["long"].get("4x_tail"), rows["06-sliding-window"]["long"].get("4x_tail")
    tail = (f"; past the training context (positions 256-1023 of 4× windows) {t5[0]:.3f} → {t6[0]:.3f}"
            if t5 and t6 else "")
    extrapolates = t5 and t6 and word(t6[0] - t5[0], *difference(dict(mean=t5[0], std=t5[1], n=3),
                                                                 dict(mean=t6[0], std=t6[1], n=3))[1:]) == "better"
    out.append(("A sliding window on every other layer costs little quality.", fmt(d, se) + tail,
                f"{w} at the training context at this scale" + ("; beyond it, at this scale too, the windowed layers "
                                                                  "keep the loss down where full attention degrades"
                                                                  if extrapolates else "")))
    d, se, w = pair("06-sliding-window", "07-sinks")
    s6, s7 = rows["06-sliding-window"]["long"].get("streaming_4x"), rows["07-sinks"]["long"].get("streaming_4x")
    stream = f"; streaming at 4× context {s6[0]:.3f} → {s7[0]:.3f}" if s6 and s7 else ""
    out.append(("Attention sinks stabilise attention.", f"{fmt(d, se)} at the training context{stream}",
                f"{w} at this scale; the attention collapse sinks are meant to prevent is not something these "
                "short runs test"
                if w == "within noise" else f"{w} at this scale"))
    d, se, w = pair("07-sinks", "08-moe")
    out.append(("A mixture of experts adds capacity at the same compute per token.",
                f"8 experts top-4 vs dense, equal active FFN parameters: {fmt(d, se)}", f"{w} at this scale"))
    dm, ds = rows["09-mxfp4"]["mxfp4_cost"]
    out.append(("MXFP4 experts cost little quality.", f"encoding the trained experts: {dm:+.4f} ± {ds:.4f} nats/byte "
                "(paired over seeds)", "supported at this scale" if dm < 0.01 else "not supported at this scale"))
    return out


def region_verdicts(records, root=None):
    rows = verdicts(records, step_times(root) if root is not None else None)
    if not rows:
        return "*No results yet.*"
    lines = ["| the article's claim (paraphrased) | measured on the ladder | verdict |", "|---|---|---|"]
    lines += [f"| {c} | {m} | {v} |" for c, m, v in rows]
    return "\n".join(lines)


def draw(records, root):
    """figures/training-ladder-curves.png (validation loss against tokens, mean over seeds, per step) and
    figures/training-ladder-bars.png (final loss ± std per step and variant). Returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = summarize(records)
    if not rows:
        return []
    out = []
    fig, ax = plt.subplots(figsize=(8, 4.5))
    steps = [(key, r) for key, r in rows if not r["variant"]]
    for n, (key, r) in enumerate(steps):
        curves = [rec["curve"] for rec in r["records"]]
        xs = curves[0]["tokens"]
        ys = [sum(c["val_loss"][i] for c in curves) / len(curves) for i in range(len(xs))]
        # steps that learn alike lie on top of each other: a marker and a dash of their own keep each one visible
        ax.plot(xs, ys, marker="osD^v<>xP*"[n % 10], ms=4, mfc="none", ls=["-", "--", ":", "-."][n % 4],
                label=key)
    ax.set_xlabel("training tokens (bytes)")
    ax.set_ylabel("validation loss (nats/byte)")
    ax.set_title("The chain learning Shakespeare: validation loss, mean over seeds\n"
                 "(points on a few validation batches; the table's final losses use more)", fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(root) / "figures" / f"{FIGURE_CURVES}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    out.append(path)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    keys = [k for k, _ in rows]
    means = [r["mean"] for _, r in rows]
    stds = [r["std"] for _, r in rows]
    ax.bar(range(len(keys)), means, yerr=stds, capsize=3, color=["C1" if r["variant"] else "C0" for _, r in rows])
    ax.set_xticks(range(len(keys)), keys, rotation=60, ha="right", fontsize=8)
    lo = min(m - s for m, s in zip(means, stds))
    hi = max(m + s for m, s in zip(means, stds))
    ax.set_ylim(lo - 0.1 * (hi - lo) - 0.01, hi + 0.1 * (hi - lo) + 0.01)
    ax.set_ylabel("final validation loss (nats/byte)")
    ax.set_title("Final loss per step (± std over seeds; orange: matched variants)")
    fig.tight_layout()
    path = Path(root) / "figures" / f"{FIGURE_BARS}.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    out.append(path)
    return out
