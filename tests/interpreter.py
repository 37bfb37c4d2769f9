"""Run a check script in a fresh Python with Triton's CPU interpreter on: TRITON_INTERPRET is read when Triton is
imported, so the Triton kernel tests run their checks in a subprocess. A plain helper module (not a conftest)."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_interpreted(script, marker, timeout=300):
    """Run `script`; it must exit 0 and print `marker` (the stderr tail is the failure message)."""
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=ROOT)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0 and marker in r.stdout, r.stderr[-3000:]
