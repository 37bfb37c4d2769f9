"""Every trace point the transformers modules expose, layer by layer, and the report that shows it."""

import numpy as np
import pytest

import gptoss_np
from gptoss_np.cli import main
from gptoss_np.checks.compare import compare_traces, format_report
from gptoss_np.checks.hf_reference import hf_trace
from hf_models import tiny_gpt2, tiny_gpt_oss, tiny_qwen3_moe

TOKENS = (np.arange(20) * 7 + 3) % 100


@pytest.mark.parametrize("build", [tiny_gpt2, tiny_gpt_oss, tiny_qwen3_moe], ids=["gpt2", "gpt_oss", "qwen3_moe"])
def test_every_exposed_trace_point_matches_transformers(tmp_path, build):
    hf = build()
    hf.save_pretrained(tmp_path)
    _, ours = gptoss_np.load_model(tmp_path, progress=False)(TOKENS, trace=True)
    _, ref = hf_trace(hf, TOKENS)
    names = [n for n in ours if n in ref]
    expected_points = {"attn_norm", "attn.out", "attn_residual", "ffn_norm", "ffn.out", "residual"}
    if hf.config.model_type != "gpt2":
        expected_points |= {"router.logits", "router.experts", "router.weights"}
    assert {n.split(".", 2)[2] for n in names if n.startswith("layers.0.")} == expected_points
    rows = compare_traces(ref, ours, rtol=1e-5, names=names)
    assert all(r["status"] == "[OK]" for r in rows), format_report(rows)


def test_report_points_at_the_first_diverging_layer(tmp_path):
    """A wrong sink in layer 1 must leave layer 0 [OK] and make layer 1's attention the first [DIFF]."""
    hf = tiny_gpt_oss()
    hf.save_pretrained(tmp_path)
    model = gptoss_np.load_model(tmp_path, progress=False)
    model.params["layers.1.attn.sinks"] = model.params["layers.1.attn.sinks"] + 1.0
    _, ours = model(TOKENS, trace=True)
    _, ref = hf_trace(hf, TOKENS)
    rows = compare_traces(ref, ours, rtol=1e-5, names=[n for n in ours if n in ref])
    bad = [r for r in rows if r["status"] != "[OK]"]
    assert bad[0]["name"] == "layers.1.attn.out"
    assert all(r["status"] == "[OK]" for r in rows if r["layer"] == 0)
    report = format_report(rows)
    assert "first diverging point: layers.1.attn.out [DIFF]" in report


def test_report_marks_shape_and_missing_points():
    ref = {"embed": np.zeros((3, 4)), "layers.0.residual": np.ones((3, 4)), "logits": np.ones((3, 5))}
    test = {"embed": np.zeros((3, 4)), "layers.0.residual": np.ones((3, 5))}
    rows = {r["name"]: r["status"] for r in compare_traces(ref, test)}
    assert rows == {"embed": "[OK]", "layers.0.residual": "[SHAPE]", "logits": "[MISSING]"}


def test_compare_command_runs_on_a_checkpoint(tmp_path, capsys):
    tiny_qwen3_moe().save_pretrained(tmp_path)
    assert main(["compare", "--checkpoint", str(tmp_path), "--tokens", "12"]) == 0
    out = capsys.readouterr().out
    assert "all" in out and "trace points agree" in out and "layers.1.router.experts" in out
