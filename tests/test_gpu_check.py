"""benchmarks/gpu_check.py --smoke: every stage of the GPU check runs on the CPU with a tiny model (the Triton
kernels in its interpreter), every correctness check passes, and the markdown table names each stage; a failing
stage is a row; benchmarks/ncu_kernels.py --smoke launches every kernel."""

import importlib.util
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
    assert text.count("| kernel | matvec E=") == 4 and text.count("| kernel | matvec + SwiGLU E=") == 2
    assert "| kernel | matvec up tiles" in text and "| kernel | matvec down tiles" in text
    assert text.count("| kernel | dequantize every code") == 2 and "| kernel | dequantize tiles" in text
    assert text.count("| kernel | decode attention") == 5 and "split 16, tensor cores | rel err" in text
    assert text.count("a step, elementwise | rel err") == 2
    assert "| kernel | attention for a full + a sliding layer" in text
    assert text.count("| kernel | grouped MoE") == 6 and text.count("| kernel | prompt attention") == 6
    assert text.count(" tokens tiles | best (") == 2 and text.count(" tiles | best (") == 4  # + prompt attention
    assert "| kernel | prompt tiles for the prefill timings" in text
    for stage in ("shipped float32", "shipped bfloat16"):
        assert stage in rows, stage
    assert "tok/s" in text and "per layer" in text
    assert "Checks that could not run on this machine:" in text and "- speed: decode bs1 at 8 context, graphed" in text


def test_a_failing_stage_is_a_row_and_the_run_goes_on(tmp_path, monkeypatch):
    """An exception inside a stage becomes a FAIL row (pipes escaped as \\|), the next stages still run or are
    recorded as not run, the markdown file is written and the exit status is 1; past --budget no stage starts."""
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "benchmarks", "gpu_check.py"))
    gc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gc)

    def boom(*args):
        raise RuntimeError("Triton said | no\nsecond line")

    monkeypatch.setattr(gc, "kernel_check", boom)
    monkeypatch.setattr(gc, "decode_rate", boom)
    monkeypatch.setattr(gc, "tiny_checks", lambda rep, device: rep.add("tiny", "ran after the failure", "yes"))
    out = tmp_path / "fail.md"
    assert gc.main(["--smoke", "--out", str(out), "--no-transformers"]) == 1
    text = out.read_text()
    assert "| kernel | stage stopped by an error | RuntimeError: Triton said \\| no | see stderr | FAIL |" in text
    assert "| tiny | ran after the failure | yes |" in text
    # a failing check inside a stage is a row of its own, and the stage goes on
    assert "| speed | decode bs1 at 24 context, eager | RuntimeError: Triton said \\| no | see stderr | FAIL |" in text
    assert "| speed | peak memory, prefill included |" in text and "| profile |" in text
    assert "- transformers: side by side: --no-transformers" in text and "INCOMPLETE" not in text
    monkeypatch.setattr(gc, "build_full", boom)
    assert gc.main(["--smoke", "--out", str(out), "--no-transformers"]) == 1
    assert "| speed | whole stage | no model: the build stage did not finish |  | not run |" in out.read_text()
    assert gc.main(["--smoke", "--out", str(out), "--no-transformers", "--budget", "0"]) == 0
    text = out.read_text()
    assert text.count("the time budget of 0 s was spent") == 2 * 5 and "Checks that could not run" in text


def test_a_sweep_past_its_share_of_the_budget_times_only_the_default():
    """Each tile of a sweep compiles kernels of its own, so past rep.sweep_until seconds a sweep times its default
    tile alone and its row counts the tiles it left, keeping time for the decode and prefill timings after it."""
    import torch
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "benchmarks", "gpu_check.py"))
    gc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gc)
    tried = []

    def call(tile):
        tried.append(tile)
        return torch.ones(1)

    def ok(out):
        return True

    for until, want in ((float("inf"), ["a", "b", "c"]), (-1.0, ["a"])):
        rep, tried[:] = gc.Report(sweep_until=until), []
        times = gc.sweep(rep, torch.device("cpu"), "tiles", ["a", "b", "c"], call, ok, str)
        assert list(dict.fromkeys(tried)) == want and list(times) == want  # (checked, then timed)
        assert ("2 tiles untried: past -1 s of the run" in rep.rows[0][3]) == (until < 0), rep.rows[0]
    assert gc.Report().sweep_until == float("inf")


def test_timed_kernels_take_inputs_that_the_l2_cannot_hold(monkeypatch):
    """On CUDA the sweeps' calls take their inputs in turn from copies that together exceed the L2 (the model reads
    every layer's weights and KV cache from memory); each copy is its own storage, equal to the first; InTurn walks
    them in order and names the one it gave last (the sweep checks a tile's output against that input's)."""
    import types

    import torch
    spec = importlib.util.spec_from_file_location("gpu_check", os.path.join(ROOT, "benchmarks", "gpu_check.py"))
    gc = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gc)
    monkeypatch.setattr(gc, "L2_BYTES", 1000)
    k, v = torch.randn(10, 5), torch.randn(10, 5)  # 400 bytes together -> 3 sets hold 1,200 > 1,000
    sets = gc.cold_copies(types.SimpleNamespace(type="cuda"), (k, v))
    assert len(sets) == 3 and sets[0][0] is k and sets[0][1] is v
    assert len({t.data_ptr() for kv in sets for t in kv}) == 6
    assert all(torch.equal(a, k) and torch.equal(b, v) for a, b in sets)
    assert len(gc.cold_copies(torch.device("cpu"), (k, v))) == 1
    turn = gc.InTurn(["a", "b", "c"])
    assert [turn.next() for _ in range(4)] == ["a", "b", "c", "a"] and turn.last == 0


def ncu_row(launch, kernel, section, metric, unit, value, rule=("", "", "")):
    """One row of Nsight Compute's details CSV (its columns as `ncu --import R --page details --csv` writes them)."""
    grid, block = ("(4, 360, 1)", "(32, 1, 1)") if launch == 0 else ("(8, 1, 1)", "(128, 1, 1)")
    cells = [str(launch), "1", "p", "h", kernel, "1", "7", block, grid, "0", "9.0", section, metric, unit, value, *rule]
    return ",".join(f'"{c}"' for c in cells)


NCU_CSV = "\n".join([
    "==PROF== Connected to process 1",
    ",".join(f'"{c}"' for c in ("ID", "Process ID", "Process Name", "Host Name", "Kernel Name", "Context", "Stream",
                                "Block Size", "Grid Size", "Device", "CC", "Section Name", "Metric Name", "Metric Unit",
                                "Metric Value", "Rule Name", "Rule Type", "Rule Description")),
    ncu_row(0, "_mxfp4_matvec_kernel", "GPU Speed Of Light Throughput", "Duration", "msecond", "1,234.5"),
    ncu_row(0, "_mxfp4_matvec_kernel", "Memory Workload Analysis", "Memory Throughput", "Gbyte/s", "1,980.00"),
    ncu_row(0, "_mxfp4_matvec_kernel", "GPU Speed Of Light Throughput", "Memory Throughput", "%", "43.00"),
    ncu_row(0, "_mxfp4_matvec_kernel", "Warp State Statistics", "", "", "",
            ("CPIStall", "WRN", "Each warp waits 20 cycles on a scoreboard. It is 60 % of all.")),
    ncu_row(1, "_decode_attention_kernel", "GPU Speed Of Light Throughput", "Duration", "nsecond", "n/a"),
    ncu_row(2, "_mxfp4_grouped_kernel", "GPU Speed Of Light Throughput", "Duration", "us", "2,500.25"),
    ncu_row(3, "_mxfp4_dequant_kernel", "GPU Speed Of Light Throughput", "Duration", "ms", "1.5"),
    ncu_row(4, "_prefill_attention_kernel", "GPU Speed Of Light Throughput", "Duration", "cycle", "77")]) + "\n"


def test_ncu_summary_reads_a_details_csv(tmp_path):
    """ncu_kernels.py --summary: a row a launch with its grid, block and metrics (a duration in microseconds from any
    unit, spelled out or abbreviated, an unknown one kept as written; the speed-of-light memory throughput in %, not the memory section's GB/s; a metric it lacks as -), and
    its stall rules' first sentence; a file that is not such a CSV is refused by name."""
    spec = importlib.util.spec_from_file_location("ncu_kernels", os.path.join(ROOT, "benchmarks", "ncu_kernels.py"))
    ncu = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ncu)
    rows = ncu.summarise(NCU_CSV).splitlines()
    assert rows[0].startswith("| launch | kernel | grid | block | duration (us) | DRAM % of peak | memory % of peak")
    assert rows[2] == ("| 0 | _mxfp4_matvec_kernel | (4, 360, 1) | (32, 1, 1) | 1,234,500.0 | - | 43.00 | - | - | - "
                       "| - | Each warp waits 20 cycles on a scoreboard |")
    assert rows[3].startswith("| 1 | _decode_attention_kernel | (8, 1, 1) | (128, 1, 1) | n/a | - |") and len(rows) == 7
    # newer Nsight Compute abbreviates its units; one it does not know stays as written, with its unit
    assert [r.split(" | ")[4] for r in rows[4:]] == ["2,500.2", "1,500.0", "77 cycle"]
    bad = tmp_path / "kernels.csv"
    bad.write_text("ncu: no kernels were profiled\n")
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "ncu_kernels.py"), "--summary", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and f"--summary {bad}: no CSV header line" in r.stderr and "Traceback" not in r.stderr


def test_ncu_launcher_runs_every_kernel_on_the_cpu():
    """benchmarks/ncu_kernels.py --smoke: every launch Nsight Compute is meant to read runs (tiny shapes, Triton's
    interpreter), so the launcher cannot rot between GPU sessions."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "ncu_kernels.py"), "--smoke"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert r.stdout.count("launched twice:") == 6
