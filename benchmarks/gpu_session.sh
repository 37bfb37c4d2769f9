#!/usr/bin/env bash
# One GPU session's checks in one call, under ten minutes by its timeouts (450 + 100 + 15 + 15 s at most): the
# GPU's identity, benchmarks/gpu_check.py (its table and log), then Nsight Compute's counters for each Triton kernel
# (benchmarks/ncu_kernels.py) as CSV and a table of them (ncu_kernels.py --summary). Results go to $OUT (default /tmp/gpu_out); the counters' table and then
# gpu_check's rows are printed at the end.
#
#     bash benchmarks/gpu_session.sh
set -u
cd "$(dirname "$0")/.."
out=${OUT:-/tmp/gpu_out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=$(command -v python3 || command -v python)
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,power.limit --format=csv > "$out/smi.txt" 2>&1
timeout 450 "$py" benchmarks/gpu_check.py --budget 370 --out "$out/gpu_check.md" > "$out/gpu_check.log" 2>&1
echo "gpu_check exit status $?"
if command -v ncu > /dev/null; then
    # the report itself can pass the 16 MiB a file that comes back; its CSV is what is read
    timeout 100 ncu --clock-control none --set full -k regex:'mxfp4|attention' -f -o /tmp/kernels \
        "$py" benchmarks/ncu_kernels.py > "$out/ncu.log" 2>&1
    echo "ncu exit status $?"
    timeout 15 ncu --import /tmp/kernels.ncu-rep --page details --csv > "$out/kernels.csv" 2>> "$out/ncu.log"
    timeout 15 "$py" benchmarks/ncu_kernels.py --summary "$out/kernels.csv" > "$out/ncu_summary.md" 2>&1
    cut -c1-400 "$out/ncu_summary.md"
else
    echo "ncu is not on the PATH: no hardware counters" | tee "$out/ncu.log"
fi
grep -E '^\[' "$out/gpu_check.log" | cut -c1-220 | tail -c 9000
