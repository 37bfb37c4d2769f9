"""The book's generated parts: book.md and figures/ are current, every number comes from code, and the
fact-check verdicts follow from the accounting (re-derived here from the shapes, independently of book.py)."""

from fractions import Fraction

import pytest

from gptoss_np.cli import main as cli_main
from gptoss_np import config, count_params, get_config, kv_cache_bytes, weight_bytes
from gptoss_np.book import build as book

BOOK = book.ROOT / "book.md"


@pytest.fixture(scope="module")
def text():
    return BOOK.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def checks():
    return {i: r for i, r in enumerate(book.fact_check())}


def _row(checks, words):
    hits = [r for r in checks.values() if words in r["claim"]]
    assert len(hits) == 1, f"{words!r} matched {len(hits)} fact-check rows"
    return hits[0]


# ---- book.md and figures are what the code generates ---------------------------------------------------------------

def test_book_md_is_regenerated(text):
    # a config or accounting change without `python -m gptoss_np book` fails here
    assert book.render(text) == text, "book.md is stale: run python -m gptoss_np.book"


def test_every_generated_region_exists_once(text):
    names = book.region_names(text)
    assert sorted(names) == sorted(book.regions()), "book.md and book.regions() disagree on the region names"
    assert len(names) == len(set(names))


def test_a_config_change_makes_book_md_stale(text, monkeypatch):
    oss = get_config("gpt-oss-20b")
    monkeypatch.setitem(config.PRESETS, "gpt-oss-20b", oss.replace(n_experts=64, name="gpt-oss-20b"))
    assert book.render(text) != text


def test_figures_exist_and_show_the_current_configs():
    for png, svg in book.figure_paths().values():
        assert png.exists() and png.stat().st_size > 10_000, png
        assert svg.exists(), svg
    assert book.stale_figures() == []
    assert cli_main(["book", "--check"]) == 0


def test_render_refuses_unknown_or_unclosed_regions():
    with pytest.raises(ValueError, match="unknown"):
        book.render("<!-- BEGIN GENERATED: nope -->\n<!-- END GENERATED: nope -->\n", {"x": ""})
    with pytest.raises(ValueError, match="unmatched"):
        book.render("<!-- BEGIN GENERATED: x -->\nno end\n", {"x": ""})


def test_the_narrative_types_no_numbers(text):
    # every number in the book comes from a generated region; prose refers to them in words
    assert book.narrative_numbers(text) == []


def test_every_chapter_notebook_is_linked(text):
    for stem, _ in book.CHAPTERS:
        assert f"(chapters/{stem}.ipynb)" in text, stem


# ---- the chain table names the KV cache's dtype -----------------------------------------------------------------

def test_chain_table_kv_columns_name_the_dtype():
    table = book.region_chain_table()
    rows = {line.split("|")[1].strip().split("]")[0].lstrip("["): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| [")}
    kv, kv_bf16 = 4, 5  # columns after "step": what changed, params, active, weights GB, KV (dtype), KV in bf16
    # GPT-2 XL: k and v, 48 layers x 1,600 wide, 4 bytes in float32 (2 in bfloat16); every layer is full
    assert rows["00-gpt2-xl"][kv] == f"{2 * 48 * 1600 * 4:,} (float32)"
    assert rows["00-gpt2-xl"][kv_bf16] == f"{2 * 48 * 1600 * 2:,}"
    # gpt-oss-20b at 4,096 tokens: 12 full layers hold 4,096 keys, 12 windowed ones 128; 8 KV heads x 64, bf16
    oss = 2 * 8 * 64 * 2 * (12 * 4096 + 12 * 128) / 4096
    assert rows["09-mxfp4"][kv] == f"{oss:,.0f} (bfloat16)" == rows["09-mxfp4"][kv_bf16] + " (bfloat16)"
    # in one dtype, the MoE step's reshape (48 -> 24 layers, 5 -> 8 KV heads) cuts the cache by a fifth only
    before, after = (int(rows[s][kv_bf16].replace(",", "")) for s in ("07-sinks", "08-moe"))
    assert round(1 - after / before, 2) == 0.2


# ---- fact-check verdicts, re-derived from the shapes ---------------------------------------------------------------

def test_swiglu_saving_is_exactly_a_quarter_at_1024(checks):
    d, gelu_h, glu_h = 1024, 4096, 2048
    gelu = d * gelu_h + gelu_h * d  # fc1, fc2
    glu = 3 * d * glu_h  # fc1, fc2 (gate, up) and fc3
    assert Fraction(gelu - glu, gelu) == Fraction(1, 4)
    ex = book.swiglu_example()
    assert (ex["gelu"], ex["swiglu"]) == (gelu, glu)
    assert ex["swiglu_b"] == glu + 2 * glu_h + d and ex["gelu_b"] == gelu + gelu_h + d  # nn.Linear biases
    row = _row(checks, "fewer parameters than a GELU MLP")
    assert row["ok"] is True and "25.0 % fewer" in row["ours"]
    assert "50 % more" in row["verdict"]  # same hidden size: 3 d h vs 2 d h


def test_swiglu_at_gpt2_xl_size(checks):
    D, F = 1600, 6400
    gelu = 2 * D * F + F + D
    glu = 3 * D * (F // 2) + 2 * (F // 2) + D
    assert book.mlp_params_per_layer(get_config("03-rope")) == gelu
    assert book.mlp_params_per_layer(get_config("04-swiglu")) == glu
    assert f"{(gelu - glu) / gelu * 100:.2f} % fewer" in _row(checks, "GPT-2 XL's MLP")["ours"]


def test_gqa_kv_saving(checks):
    ours = _row(checks, "Grouped-query")["ours"]
    assert "(80.0 % less)" in ours  # 25 -> 5 kv heads
    assert "(87.5 % less)" in ours  # 64 -> 8 kv heads


def test_half_the_layers_slide(checks):
    oss = get_config("gpt-oss-20b")
    assert sum(w == 128 for w in oss.layer_windows) * 2 == oss.n_layers == 24
    row = _row(checks, "sliding window")
    assert row["ok"] is True and "12 of 24 layers" in row["ours"] and "18 of 36 layers" in row["ours"]
    full = 24 * 2 * 8 * 64 * 2  # bytes per token with no window
    at_4k = (full * 4096 - (full // 2) * (4096 - 128)) / (full * 4096)
    assert f"{(1 - at_4k) * 100:.2f} % at 4,096 tokens" in row["ours"]


def test_experts_and_width(checks):
    e_oss = 3 * 2880 * 2880 + 2 * 2880 + 2880  # gate+up [2F, D], down [D, F], their biases
    e_qwen = 3 * 2048 * 768
    assert book.expert_params(get_config("gpt-oss-20b")) == e_oss
    assert book.expert_params(get_config("qwen3-30b-a3b")) == e_qwen
    assert _row(checks, "fewer, larger experts")["ok"] is True
    assert _row(checks, "is wider")["ok"] is True


def test_bf16_sizes_without_mxfp4(checks):
    for name, expected_gb in (("gpt-oss-20b", 41.8), ("gpt-oss-120b", 233.7)):
        cfg = get_config(name)
        bf16 = count_params(cfg)["total"] * 2  # every weight in 2 bytes
        assert weight_bytes(cfg.replace(expert_quant="none"))["total"] == bf16
        assert round(bf16 / 1e9, 1) == expected_gb
    row = _row(checks, "Without MXFP4")
    assert row["ok"] is None and "too high for the 20b" in row["verdict"] and "41.83 GB" in row["ours"]


def test_single_gpu_claims(checks):
    oss, big = get_config("gpt-oss-20b"), get_config("gpt-oss-120b")
    for cfg, cap in ((oss, 16), (big, 80)):
        for ctx in (4096, 8192, 32768):
            assert weight_bytes(cfg)["total"] + kv_cache_bytes(cfg, ctx) < cap * 2**30 - 2**30
    r20 = _row(checks, "16 GB")
    assert r20["ok"] is True and "13.76 GB" in r20["ours"] and "131,072 tokens only" in r20["verdict"]
    r120 = _row(checks, "80 GB")
    assert r120["ok"] is True and "65.25 GB" in r120["ours"] and "even at full context" in r120["verdict"]
