"""Every command the README shows runs as typed, in the order shown, from the repository root. Skipped, each with
its reason: the `pip install` prefix (the test environment is that install), the test command itself, full-size
writes (13.8 GB), GPU-only commands, and the benchmarks (they time things; they are not tests)."""

import os
import re
import shlex
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme_commands():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    lines = [line.strip() for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def skip_reason(line):
    if line.startswith("pip install"):
        return "an install: the test environment is one"
    if "pytest" in line:
        return "the test command itself"
    if "13.8 GB" in line or "/tmp/oss20b" in line:
        return "full-size checkpoint (13.8 GB)"
    if "--device cuda" in line:
        return "needs a GPU"
    if line.startswith("python benchmarks/"):
        return "a benchmark"
    if line.startswith("ncu "):
        return "Nsight Compute on a GPU"
    return None


COMMANDS = readme_commands()
# one worker runs them, in order (pyproject.toml: --dist loadgroup spreads the other tests one by one)
pytestmark = pytest.mark.xdist_group("readme")


def test_the_readme_shows_commands():
    assert any("gptoss_np walk" in c for c in COMMANDS) and len(COMMANDS) >= 8


@pytest.mark.parametrize("i", range(len(COMMANDS)), ids=[c[:60] for c in COMMANDS])
def test_readme_command_runs_as_typed(i):
    line = COMMANDS[i]
    reason = skip_reason(line)
    if reason:
        pytest.skip(reason)
    line = re.sub(r"^pip install -r requirements.txt && ", "", line)
    argv = shlex.split(line, comments=True)
    assert argv[0] == "python", line
    env = dict(os.environ, PYTHONPATH=ROOT)
    if "write-checkpoint" in argv:
        argv.append("--overwrite")  # the test may run twice on one machine
    r = subprocess.run([sys.executable] + argv[1:], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"{line}\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
