"""Compare two traces point by point, layer by layer: the report reads like a layer debugger.

    status  [OK]       max abs error within tolerance        [DIFF]     over tolerance
            [SHAPE]    shapes differ                          [MISSING]  one side lacks the point

max rel = max |a - b| / max |reference| over the whole tensor (element-wise ratios explode near zero).
Chosen experts are compared as sets per token (their order among equal weights is not meaningful).
"""

import re

import numpy as np

# tolerance (max abs error relative to the reference's largest magnitude) per compute dtype, with its reason
TOLERANCES = {
    "float64": 1e-10,  # same math in double precision: only summation order differs
    "float32": 1e-5,  # float32 rounding through ~a dozen ops per layer, BLAS summation order
    "bfloat16": 3e-2,  # 8-bit mantissa (2^-8 ~ 4e-3 per rounding), accumulated through the layers
}


def split_name(name):
    """'layers.3.attn.q' -> (3, 'attn.q'); 'logits' -> (None, 'logits')."""
    m = re.match(r"layers\.(\d+)\.(.+)", name)
    return (int(m.group(1)), m.group(2)) if m else (None, name)


def compare_point(ref, test, rtol):
    """(status, max abs, max rel) for one trace point."""
    if ref is None or test is None:
        return "[MISSING]", np.nan, np.nan
    ref, test = np.asarray(ref), np.asarray(test)
    if ref.shape != test.shape:
        return "[SHAPE]", np.nan, np.nan
    if np.issubdtype(ref.dtype, np.integer):  # chosen experts: same set per token?
        wrong = int((np.sort(ref, -1) != np.sort(test, -1)).any(-1).sum())
        return ("[OK]" if wrong == 0 else "[DIFF]"), float(wrong), float(wrong) / max(1, ref.shape[0])
    err = float(np.abs(ref.astype(np.float64) - test.astype(np.float64)).max()) if ref.size else 0.0
    scale = float(np.abs(ref.astype(np.float64)).max()) if ref.size else 0.0
    rel = err / scale if scale > 0 else err
    return ("[OK]" if rel <= rtol else "[DIFF]"), err, rel


def compare_traces(ref, test, rtol=1e-5, names=None):
    """Rows (name, layer, point, shape, status, max abs, max rel) in model order for every point of either trace."""
    names = list(names) if names is not None else list(ref) + [n for n in test if n not in ref]
    rows = []
    for name in names:
        layer, point = split_name(name)
        status, err, rel = compare_point(ref.get(name), test.get(name), rtol)
        shape = tuple(np.shape(ref[name])) if name in ref else tuple(np.shape(test[name]))
        rows.append(dict(name=name, layer=layer, point=point, shape=shape, status=status, max_abs=err, max_rel=rel))
    return rows


def format_report(rows, ref_label="reference", test_label="test"):
    """The table, then per-layer worst errors (worst layer first) and the first diverging point."""
    lines = [f"{'trace point':<26} {'shape':<16} {'max abs':>10} {'max rel':>10}  status   ({test_label} vs "
             f"{ref_label})"]
    for r in rows:
        lines.append(f"{r['name']:<26} {str(list(r['shape'])):<16} {r['max_abs']:>10.2e} {r['max_rel']:>10.2e}  "
                     f"{r['status']}")
    worst = {}
    for r in rows:
        if r["layer"] is not None and np.isfinite(r["max_rel"]):
            w = worst.get(r["layer"])
            if w is None or r["max_rel"] > w["max_rel"]:
                worst[r["layer"]] = r
    if worst:
        lines.append("\nworst point per layer, worst layer first:")
        for layer, r in sorted(worst.items(), key=lambda kv: -kv[1]["max_rel"]):
            lines.append(f"  layer {layer:>3}: {r['point']:<16} max rel {r['max_rel']:.2e}  {r['status']}")
    bad = [r for r in rows if r["status"] != "[OK]"]
    lines.append(f"\nfirst diverging point: {bad[0]['name']} {bad[0]['status']}" if bad else
                 f"\nall {len(rows)} trace points agree")
    return "\n".join(lines)
