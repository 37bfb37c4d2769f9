"""benchmarks/train_throughput.py: the quick run prints its table, and its nanoGPT-style reference is a sane GPT."""

import importlib.util
import math
import os
import subprocess
import sys

import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPT = os.path.join(ROOT, "benchmarks", "train_throughput.py")


def load_benchmark():
    spec = importlib.util.spec_from_file_location("train_throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_the_table_with_both_models():
    out = subprocess.run([sys.executable, SCRIPT, "--quick"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = out.stdout.splitlines()
    assert any(line.startswith("| model |") for line in lines), out.stdout
    ref = [line for line in lines if line.startswith("| ref-nanogpt (dropout 0.1)")]
    twin = [line for line in lines if line.startswith("| twin 00-gpt2-xl")]
    assert len(ref) == 1 and len(twin) == 1, out.stdout
    for row in ref + twin:
        tok_s = float(row.split("|")[4])
        assert tok_s > 0
    assert "twin step time / reference step time" in out.stdout


def test_reference_logits_shape_and_initial_loss():
    bench = load_benchmark()
    torch.manual_seed(0)
    model = bench.RefGPT(bench.RefConfig(), seed=0).eval()
    B, T = 3, 64
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (B, T), generator=g)
    y = torch.randint(0, 256, (B, T), generator=g)
    with torch.no_grad():
        logits = model(x)
        logits2, loss = model(x, y)
    assert logits.shape == (B, T, 256)
    assert torch.equal(logits, logits2)
    assert abs(float(loss) - math.log(256)) < 0.1, float(loss)
    # GPT-2's tied head and causal attention: changing a later token leaves earlier logits alone
    x2 = x.clone()
    x2[:, -1] = (x2[:, -1] + 1) % 256
    with torch.no_grad():
        assert torch.allclose(model(x2)[:, :-1], logits[:, :-1], atol=1e-6)
    assert model.lm_head.weight is model.wte.weight


def test_reference_matches_the_twin_in_size():
    bench = load_benchmark()
    from gptoss_np import chain
    from gptoss_torch.model import Model
    cfg = bench.twin_config(chain()[0][1])
    twin = Model(cfg)
    ref = bench.RefGPT(bench.RefConfig(dropout=cfg.dropout))
    assert bench.n_params(ref) == bench.n_params(twin)
