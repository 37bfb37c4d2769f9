"""Launch each Triton kernel of gptoss_torch at gpt-oss-20b's real decode and prompt shapes a few times, for NVIDIA
Nsight Compute to read its hardware counters (gpu_check.py times the kernels; this says why they take that long:
memory throughput against the peak, occupancy, issue-slot use, what the warps stall on).

    ncu --clock-control none --set full -k regex:'mxfp4|attention' -o /tmp/kernels python benchmarks/ncu_kernels.py
    ncu --import /tmp/kernels.ncu-rep --page details --csv > /tmp/kernels.csv
    python benchmarks/ncu_kernels.py --summary /tmp/kernels.csv   # a table of it: a row a launch (any machine)
    python benchmarks/ncu_kernels.py --smoke     # the same launches, tiny, in Triton's CPU interpreter (tests run it)

Each call is launched twice (14 kernel launches: the decode attention is two kernels). Weights are random bytes:
speed does not depend on their values.
"""

import argparse
import csv
import os
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
if "--smoke" in sys.argv:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import torch  # noqa: E402

from gptoss_torch.fast import attention_triton, mxfp4_triton  # noqa: E402


def launches(device, smoke):
    """(name, zero-argument call) for every kernel at gpt-oss-20b's shapes (tiny ones with smoke)."""
    g = torch.Generator(device=device).manual_seed(0)
    E, D, F, G, k = (4, 64, 64, 2, 4) if smoke else (32, 2880, 2880, 90, 4)
    T = 40 if smoke else 2048

    def experts(rows):
        return (torch.randint(0, 256, (E, rows, G, 16), dtype=torch.uint8, device=device, generator=g),
                torch.randint(118, 130, (E, rows, G), dtype=torch.uint8, device=device, generator=g),
                torch.randn(E, rows, device=device, generator=g).bfloat16())

    up, down = experts(2 * F), experts(D)
    # as a decode step hands them over: float32 times 2^64 (the add + norm kernel's copy of the bf16 input; the up
    # kernel's output for the down one)
    x = torch.randn(1, D, device=device, generator=g).bfloat16().float() * 2.0 ** 64
    act = torch.randn(k, F, device=device, generator=g) * 2.0 ** 64
    ids = torch.randperm(E, device=device, generator=g)[:k]
    w = torch.rand(k, device=device, generator=g)
    calls = [("matvec up (SwiGLU epilogue)", lambda: mxfp4_triton.mxfp4_matvec(
                 *up[:2], ids, x, up[2], topk=k, swiglu=(1.702, 7.0), tile=mxfp4_triton.TILE_UP, x_scaled=True,
                 out_scaled=True)),
             ("matvec down", lambda: mxfp4_triton.mxfp4_matvec(*down[:2], ids, act, down[2], w,
                                                                tile=mxfp4_triton.TILE_DOWN, x_scaled=True))]
    slots = 64 if smoke else 4096
    q = torch.randn(1, 1, 64, 64, device=device, generator=g).bfloat16()
    kv = [torch.randn(1, slots, 8, 64, device=device, generator=g).bfloat16() for _ in range(2)]
    kpos, pos = torch.arange(slots, device=device), torch.tensor([slots - 1], device=device)
    sinks = torch.randn(64, device=device, generator=g)
    calls.append(("decode attention, full layer", lambda: attention_triton.decode_attention_triton(
        q, *kv, kpos, pos, None, sinks)))
    ids_p = torch.randint(0, E, (T * k,), device=device, generator=g)
    grouped = mxfp4_triton.group_pairs(ids_p, E, mxfp4_triton.GROUP_TILE[0])
    xp = torch.randn(T, D, device=device, generator=g).bfloat16()
    calls.append(("grouped MoE up, prompt", lambda: mxfp4_triton.mxfp4_grouped(
        *up[:2], *grouped, xp, up[2], topk=k, swiglu=(1.702, 7.0))))
    calls.append(("dequantise one expert's up projection", lambda: mxfp4_triton.mxfp4_dequantize(
        up[0][0], up[1][0], torch.bfloat16)))
    qp = torch.randn(1, T, 64, 64, device=device, generator=g).bfloat16()
    kvp = [torch.randn(1, T, 8, 64, device=device, generator=g).bfloat16() for _ in range(2)]
    ppos = torch.arange(T, device=device)
    calls.append(("prompt attention", lambda: attention_triton.prefill_attention_triton(
        qp, *kvp, ppos, ppos, None, sinks)))
    return calls


# (section, metric) of Nsight Compute's details page -> column of the summary
SUMMARY = [(("GPU Speed Of Light Throughput", "Duration"), "duration (us)"),
           (("GPU Speed Of Light Throughput", "DRAM Throughput"), "DRAM % of peak"),
           (("GPU Speed Of Light Throughput", "Memory Throughput"), "memory % of peak"),
           (("Occupancy", "Achieved Occupancy"), "achieved occupancy %"),
           (("Launch Statistics", "Registers Per Thread"), "registers"),
           (("Warp State Statistics", "Warp Cycles Per Issued Instruction"), "warp cycles an issue"),
           (("Compute Workload Analysis", "Issue Slots Busy"), "issue slots busy %")]
# a duration's unit as Nsight Compute writes it (older releases spell it out, newer ones abbreviate) -> microseconds
MICROSECONDS = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6,
                "ns": 1e-3, "us": 1.0, "\u00b5s": 1.0, "ms": 1e3, "s": 1e6}


def summarise(text):
    """The CSV of `ncu --import R --page details --csv` (anything before its header line skipped) -> a markdown
    table, a row a profiled launch in order: its grid and block, SUMMARY's metrics as written (a duration in
    microseconds, or as written with its unit when the unit is not one MICROSECONDS knows), then the first sentence of each of the launch's stall rules (Nsight Compute's advice on what its
    warps wait for)."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        raise ValueError("no CSV header line starting with \"ID\": not the details page of an Nsight Compute report")
    launches = {}
    for row in csv.DictReader(lines[start:]):
        one = launches.setdefault(row["ID"], {"kernel": row.get("Kernel Name", "?"), "rules": [],
                                              "grid": row.get("Grid Size", "-"), "block": row.get("Block Size", "-")})
        key, value = (row.get("Section Name"), row.get("Metric Name")), row.get("Metric Value", "")
        if key[1] == "Duration":
            unit = row.get("Metric Unit", "")
            try:
                value = f"{float(value.replace(',', '')) * MICROSECONDS[unit]:,.1f}"
            except ValueError:  # "n/a": kept as written
                pass
            except KeyError:  # a unit this table does not know: kept, with its unit, never passed off as us
                value = f"{value} {unit}".strip()
        one.setdefault(key, value)
        if "stall" in (row.get("Rule Name") or "").lower() and row.get("Rule Description"):
            sentence = row["Rule Description"].split(". ")[0].strip()
            if sentence not in one["rules"]:
                one["rules"].append(sentence)
    out = ["| launch | kernel | grid | block | " + " | ".join(c for _, c in SUMMARY) + " | stall rules |",
           "|---|---|---|---|" + "---:|" * len(SUMMARY) + "---|"]
    for launch, one in launches.items():
        cells = [one.get(key, "-") for key, _ in SUMMARY]
        rules = "; ".join(r[:200] for r in one["rules"]) or "-"
        out.append(f"| {launch} | {one['kernel'][:48]} | {one['grid']} | {one['block']} | " + " | ".join(cells)
                   + f" | {rules} |")
    return "\n".join(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny shapes in Triton's CPU interpreter")
    ap.add_argument("--summary", metavar="CSV", help="print a table of an Nsight Compute details CSV, launch nothing")
    args = ap.parse_args(argv)
    if args.summary:
        try:
            with open(args.summary, encoding="utf-8", errors="replace") as f:
                print(summarise(f.read()))
        except (OSError, ValueError) as e:
            ap.error(f"--summary {args.summary}: {e}")
        return 0
    if not args.smoke and not torch.cuda.is_available():
        ap.error("no CUDA device: run with --smoke for the CPU rehearsal")
    device = torch.device("cpu" if args.smoke else "cuda")
    for name, call in launches(device, args.smoke):
        for _ in range(2):
            call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        print(f"launched twice: {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
