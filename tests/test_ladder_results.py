"""benchmarks/training_ladder.json, the shipped results of `python -m gptoss_torch ladder`: the fields outside checks
rely on, three seeds for every chain step, and a command per record that the train command parses back into the
record's exact settings (rerunning one takes minutes, so the parse is checked here and the run by hand)."""

import json
import math
import os
import shlex

import pytest

from gptoss_np import chain, count_params
from gptoss_torch.cli import main  # noqa: F401  (the command must be importable)
from gptoss_torch.train.commands import add_train_arguments, settings_from
from gptoss_torch.train.ladder import ladder_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDS = json.load(open(os.path.join(ROOT, "benchmarks", "training_ladder.json"), encoding="utf-8"))
STEPS = [name for name, _ in chain()]


def test_every_step_has_three_seeds_and_the_required_fields():
    for step in STEPS:
        seeds = sorted(r["seed"] for r in RECORDS if r["step"] == step and not r.get("variant"))
        assert len(seeds) >= 3, (step, seeds)
    for r in RECORDS:
        assert r["step"] in STEPS
        for field, kind in (("seed", int), ("params_total", int), ("params_active", int), ("tokens", int),
                            ("val_loss", float), ("command", str)):
            assert isinstance(r[field], kind), (field, r)
        assert 1.0 < r["val_loss"] < 5.6  # nats per byte: below ln(256) = 5.55, above any sane limit


@pytest.mark.parametrize("r", RECORDS, ids=[f"{r['step']}-{r.get('variant')}-{r['seed']}" for r in RECORDS])
def test_each_command_parses_back_into_its_record(r):
    import argparse
    argv = shlex.split(r["command"])
    assert argv[:4] == ["python", "-m", "gptoss_torch", "train"]
    ap = argparse.ArgumentParser()
    add_train_arguments(ap)
    args = ap.parse_args(argv[4:])
    assert (args.step, args.variant, args.seed) == (r["step"], r.get("variant"), r["seed"])
    s = settings_from(args)
    assert s.tokens == r["tokens"] and s.steps == r["settings"]["steps"] and s.lr == r["settings"]["lr"]
    cfg = ladder_config(args.step, args.variant)
    assert count_params(cfg)["total"] == r["params_total"] and count_params(cfg)["active"] == r["params_active"]


def test_mxfp4_records_carry_the_loss_before_encoding():
    for r in RECORDS:
        if r["step"] == "09-mxfp4":
            assert abs(r["val_loss"] - r["val_loss_before_mxfp4"]) < 0.05
            twin = [q for q in RECORDS if q["step"] == "08-moe" and q["seed"] == r["seed"] and not q.get("variant")]
            assert twin and twin[0]["val_loss"] == r["val_loss_before_mxfp4"]


def test_the_rmsnorm_verdict_quotes_the_side_by_side_step_time(tmp_path):
    """The book's RMSNorm verdict takes its speed from benchmarks/train_throughput_cpu.md (steps timed side by side
    on a quiet machine), not from the ladder's tokens/s, which shared the cores with other runs; read here from the
    table's own row, and a file without it gives no speed at all."""
    import re

    from gptoss_np.book import ladder
    text = open(os.path.join(ROOT, "benchmarks", "train_throughput_cpu.md"), encoding="utf-8").read()
    row = next(line for line in text.splitlines() if line.startswith("| twin 02-rmsnorm "))
    ratio = float(re.findall(r"([0-9.]+)x", row)[-1])  # the last column: time vs the previous row (01-no-dropout)
    times = ladder.step_times(ROOT)
    assert times["02-rmsnorm"] == ratio
    claim, measured, verdict = ladder.verdicts(RECORDS, times)[1]
    assert claim.startswith("RMSNorm") and f"{ratio:.2f}x LayerNorm's" in measured
    assert ("no cheaper" in verdict) == (ratio >= 1)
    _, _, verdict = ladder.verdicts(RECORDS, {"02-rmsnorm": 0.9})[1]
    assert verdict.endswith("; cheaper in this implementation on the CPU")
    assert ladder.step_times(tmp_path) == {}
    _, measured, _ = ladder.verdicts(RECORDS, {})[1]
    assert "training step" not in measured and "tok" not in measured


def test_verdicts_use_students_t_for_three_seeds():
    """The ladder's 'better' / 'worse' needs a two-sided Welch t-test at 95 %: with 3 seeds a side that is 2.78 to
    4.30 standard errors (published t tables: df 4 -> 2.776, df 2 -> 4.303), not the normal's 1.96 or a flat 2."""
    from gptoss_np.book.ladder import difference, t_critical, word
    for df, table in ((1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042), (math.inf, 1.960)):
        assert abs(t_critical(df) - table) < 1e-3, (df, t_critical(df))
    a, b = dict(mean=2.1133, std=0.0212, n=3), dict(mean=2.1563, std=0.0206, n=3)  # 07-sinks, 08-moe: 2.5 SE apart
    d, se, df = difference(a, b)
    assert 3.9 < df <= 4 and 2.4 < d / se < 2.6
    assert word(d, se, df) == "within noise" and word(d, se) == "worse"  # the normal would have called it
