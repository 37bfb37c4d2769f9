"""The architecture diagrams tell the truth: a row is highlighted exactly when the two models differ there (in the
spec and in the drawn SVG), each config field shows up in the rows that mean it, and RoPE sits inside attention."""

import dataclasses
import re

import pytest

from gptoss_np import get_config
from gptoss_np.config import ModelConfig
from gptoss_np.book.diagrams import boxes, draw_comparison, drawn_lines, highlights

OSS = get_config("gpt-oss-20b")
PAIRS = (("gpt2-xl", "gpt-oss-20b"), ("gpt-oss-20b", "qwen3-30b-a3b"), ("gpt-oss-20b", "gpt-oss-120b"),
         ("gpt-oss-20b", "gpt-oss-20b"))


def differing_rows(a, b):
    """Rows whose shown content differs, compared here row by row (the bands by the windows they draw)."""
    out = set()
    for ba, bb in zip(boxes(a), boxes(b)):
        for fa, fb in zip(ba.facts, bb.facts):
            same = a.layer_windows == b.layer_windows if fa.style == "bands" else fa.text == fb.text
            if not same:
                out.add((ba.key, fa.key))
    return out


@pytest.mark.parametrize("names", PAIRS, ids=["-vs-".join(p) for p in PAIRS])
def test_highlighted_rows_are_exactly_the_differing_ones(names):
    a, b = (get_config(n) for n in names)
    marked = {row for row, on in highlights(a, b).items() if on}
    assert marked == differing_rows(a, b)
    if a == b:
        assert marked == set()


def svg_highlights(svg):
    """{side: {(box, fact)}} from the ids of the orange rows in a drawn SVG (the norm box is drawn twice)."""
    ids = re.findall(r'id="diff\.([ab])\.(\w+)\.(\w+)"', svg.read_text(encoding="utf-8"))
    return {side: {(s.rstrip("12") if s.startswith("norm") else s, f) for sd, s, f in ids if sd == side}
            for side in "ab"}


def test_the_drawing_highlights_what_the_spec_says(tmp_path):
    # every orange row in the SVG carries the id diff.<side>.<slot>.<fact>; both columns mark the same rows
    a, b = get_config("gpt2-xl"), OSS
    (svg,) = draw_comparison(a, b, tmp_path / "fig", formats=("svg",))
    assert svg_highlights(svg) == {"a": differing_rows(a, b), "b": differing_rows(a, b)}
    assert ("attention", "bias") not in differing_rows(a, b)  # both have biases on q, k, v, o: not highlighted


def test_gpt_oss_120b_differs_only_in_depth_and_experts():
    # the model cards: 36 layers (half of them windowed) and 128 experts against 24 layers and 32; all else equal
    marked = {row for row, on in highlights(OSS, get_config("gpt-oss-120b")).items() if on}
    assert marked == {("layers", "title"), ("layers", "bands"), ("ffn", "experts")}


# one change per config field, and the rows that must light up for it (written from what each field means)
FIELD_ROWS = {
    "vocab_size": (dict(vocab_size=100_000), {("embedding", "size"), ("head", "size"), ("vocab", "size")}),
    "context_length": (dict(context_length=65_536), {("attention", "yarn"), ("context", "size")}),
    "d_model": (dict(d_model=2048), {("embedding", "size"), ("attention", "width"), ("ffn", "shape"),
                                     ("head", "size")}),
    "n_layers": (dict(n_layers=12, layer_windows=OSS.layer_windows[:12]), {("layers", "title"), ("layers", "bands")}),
    "n_heads": (dict(n_heads=32), {("attention", "heads"), ("attention", "width")}),
    "n_kv_heads": (dict(n_kv_heads=64), {("attention", "title"), ("attention", "heads")}),
    "head_dim": (dict(head_dim=128), {("attention", "heads"), ("attention", "width")}),
    "ffn_hidden": (dict(ffn_hidden=1024), {("ffn", "shape")}),
    "norm": (dict(norm="layernorm"), {("norm", "title"), ("final_norm", "title"), ("norm", "cast"),
                                      ("final_norm", "cast")}),
    "norm_eps": (dict(norm_eps=1e-6), {("norm", "eps"), ("final_norm", "eps")}),
    "qk_norm": (dict(qk_norm=True), {("attention", "qk_norm")}),
    "norm_cast": (dict(norm_cast="before_weight"), {("norm", "cast"), ("final_norm", "cast")}),
    "positions": (dict(positions="learned", rope_scaling=None),
                  {("positions", "title"), ("positions", "size"), ("attention", "rope"), ("attention", "yarn")}),
    "rope_theta": (dict(rope_theta=10_000.0), {("attention", "rope")}),
    "rope_scaling": (dict(rope_scaling=None), {("attention", "yarn")}),
    "layer_windows": (dict(layer_windows=(None,) * 24), {("layers", "bands"), ("attention", "mask")}),
    "sinks": (dict(sinks=False), {("attention", "sinks")}),
    "attn_bias": (dict(attn_bias=False), {("attention", "bias")}),
    "activation": (dict(activation="swiglu"), {("ffn", "activation")}),
    "swiglu_alpha": (dict(swiglu_alpha=1.0), {("ffn", "activation")}),
    "swiglu_limit": (dict(swiglu_limit=10.0), {("ffn", "activation")}),
    "ffn": (dict(ffn="dense", expert_quant="none", n_experts=0, top_k=0),
            {("ffn", "title"), ("ffn", "experts"), ("ffn", "shape"), ("ffn", "router"), ("storage", "experts")}),
    "n_experts": (dict(n_experts=64), {("ffn", "experts")}),
    "top_k": (dict(top_k=2), {("ffn", "experts"), ("ffn", "router")}),
    "router": (dict(router="softmax_topk"), {("ffn", "router")}),
    "mlp_bias": (dict(mlp_bias=False), {("ffn", "bias")}),
    "tie_embeddings": (dict(tie_embeddings=True), {("embedding", "tied"), ("head", "tied")}),
    "dropout": (dict(dropout=0.1), {("layers", "dropout")}),
    "weight_dtype": (dict(weight_dtype="float32"), {("storage", "dtype")}),
    "expert_quant": (dict(expert_quant="none"), {("storage", "experts")}),
}


def test_every_config_field_has_its_rows():
    # a new config field must be drawn (and listed above) before the diagrams can claim to show every difference
    fields = {f.name for f in dataclasses.fields(ModelConfig)} - {"name"}
    assert fields == set(FIELD_ROWS)


@pytest.mark.parametrize("field", sorted(FIELD_ROWS))
def test_one_field_changed_lights_exactly_its_rows(field):
    change, rows = FIELD_ROWS[field]
    marked = {row for row, on in highlights(OSS, OSS.replace(**change)).items() if on}
    assert marked == rows


def test_rope_is_inside_attention_not_a_stage():
    for name in ("gpt-oss-20b", "qwen3-30b-a3b"):
        by_key = {b.key: b for b in boxes(get_config(name))}
        assert not by_key["positions"].stage  # drawn dashed: the model has no position stage
        rope = [f for f in by_key["attention"].facts if f.style == "rope"]
        assert len(rope) == 1 and rope[0].text.startswith("RoPE rotates q and k")
    gpt2 = {b.key: b for b in boxes(get_config("gpt2-xl"))}
    assert gpt2["positions"].stage and "added to the embedding" in gpt2["positions"].facts[1].text


def test_draw_comparison_writes_the_config_into_the_svg(tmp_path):
    changed = OSS.replace(n_experts=64, name="oss-64")
    (svg1,) = draw_comparison(OSS, changed, tmp_path / "one", formats=("svg",))
    text = svg1.read_text(encoding="utf-8")
    assert ">32 experts, top-4 per token<" in text and ">64 experts, top-4 per token<" in text
    assert svg_highlights(svg1) == {"a": {("ffn", "experts")}, "b": {("ffn", "experts")}}
    assert all(f">{line}<" in text for line in drawn_lines(changed) if "&" not in line and "<" not in line)
    (svg2,) = draw_comparison(OSS, changed, tmp_path / "two", formats=("svg",))
    assert svg2.read_bytes() == svg1.read_bytes()  # deterministic: the same drawing, the same bytes
