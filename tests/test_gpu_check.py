"""benchmarks/gpu_check.py --smoke: every stage of the GPU check runs on the CPU with a tiny model (the Triton
kernel in its interpreter), every correctness check passes, and the markdown table names each stage."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_gpu_check_smoke_runs_every_stage_on_the_cpu(tmp_path):
    pytest.importorskip("triton")
    out = tmp_path / "smoke.md"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}  # --smoke must set it itself
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "gpu_check.py"), "--smoke", "--out",
                        str(out)], env=env, capture_output=True, text=True, timeout=300, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    text = out.read_text()
    assert text.startswith("# gpu_check: gptoss_torch on CPU") and "every check passed" in text
    rows = [line.split(" | ")[0].lstrip("| ") for line in text.splitlines() if line.startswith("| ")][2:]
    for stage in ("versions", "kernel", "tiny float32", "tiny bfloat16", "build", "speed", "profile"):
        assert stage in rows, stage
    assert "| build | held bytes = weight_bytes |" in text and "FAIL" not in text
    assert text.count("| kernel | matvec E=") == 4  # odd shapes and the real K = 90 blocks
    assert "| kernel | matvec tiles" in text
    assert text.count("| kernel | decode attention") == 2
    assert "tok/s" in text and "per layer" in text
