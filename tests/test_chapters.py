"""The chapters: every chapters/NN_*.py runs top to bottom in a fresh kernel without an error and within its
wall-clock budget, and its executed .ipynb is in sync with it.

One test per chapter and check, parametrised by file, so one chapter can be selected:
    python -m pytest -q tests/test_chapters.py -k 03
    python -m pytest -q tests/test_chapters.py -k "runs and (00 or 01)"
A notebook out of sync is rebuilt with `python chapters/build.py NN`.
"""

import glob
import importlib.util
import os

import jupytext
import nbformat
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHAPTERS = os.path.join(ROOT, "chapters")
SOURCES = sorted(glob.glob(os.path.join(CHAPTERS, "[0-9][0-9]_*.py")))
IDS = [os.path.splitext(os.path.basename(p))[0] for p in SOURCES]


def _load_build():
    """chapters/build.py: the one definition of how a chapter is executed (kernel, working directory, timeouts)."""
    spec = importlib.util.spec_from_file_location("chapters_build", os.path.join(CHAPTERS, "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build = _load_build()


def _errors(nb):
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def test_chapters_exist():
    assert SOURCES, f"no chapters/[0-9][0-9]_*.py under {CHAPTERS}"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_chapter_runs(source):
    """Executed like build.py does (nbclient, kernel python3, cwd chapters/, 120 s per cell): no error, < 60 s."""
    nb, seconds, error = build.execute(source, timeout=build.CELL_TIMEOUT_S)
    name = os.path.basename(source)
    assert error is None, f"{name} raised:\n{str(error)[-3000:]}"
    assert not _errors(nb), f"{name}: error outputs {_errors(nb)}"
    assert seconds < build.BUDGET_S, f"{name} took {seconds:.1f} s; the budget is {build.BUDGET_S} s on 2 CPU cores"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_notebook_in_sync(source):
    """The .ipynb next to the .py has the same cells (type and source, in order), every code cell executed, and
    no error output: it is what `python chapters/build.py NN` writes."""
    name = os.path.basename(source)
    ipynb = build.notebook_path(source)
    rebuild = f"rebuild it: python chapters/build.py {name[:2]}"
    assert os.path.exists(ipynb), f"{os.path.basename(ipynb)} is missing; {rebuild}"
    want = [(c.cell_type, c.source) for c in jupytext.read(source).cells]
    have = [(c.cell_type, c.source) for c in nbformat.read(ipynb, as_version=4).cells]
    want_code = [s for t, s in want if t == "code"]
    have_code = [s for t, s in have if t == "code"]
    for i, (w, h) in enumerate(zip(want_code, have_code)):
        assert w == h, f"{name}: code cell {i} differs from the notebook's; {rebuild}\n--- .py:\n{w}\n--- .ipynb:\n{h}"
    assert len(want_code) == len(have_code), \
        f"{name}: {len(want_code)} code cells, the notebook has {len(have_code)}; {rebuild}"
    assert want == have, f"{name}: a markdown cell differs from the notebook's; {rebuild}"
    nb = nbformat.read(ipynb, as_version=4)
    unexecuted = [i for i, c in enumerate(c for c in nb.cells if c.cell_type == "code") if c.execution_count is None]
    assert not unexecuted, f"{name}: code cells {unexecuted} of the notebook were never executed; {rebuild}"
    assert not _errors(nb), f"{name}: the notebook holds error outputs {_errors(nb)}; {rebuild}"


@pytest.mark.parametrize("source", SOURCES, ids=IDS)
def test_stored_outputs_carry_no_local_paths_or_warnings(source):
    """What a reader sees on a code host: no path of the machine that built it, no warning text."""
    nb = nbformat.read(source[:-3] + ".ipynb", as_version=4)
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    for needle in ("/root/", "/home/", "/work/", "/tmp/", "site-packages", "Warning:", "warnings.warn"):
        assert needle not in text, f"{os.path.basename(source)}: stored output contains {needle!r}"
