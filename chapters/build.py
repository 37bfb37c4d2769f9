"""Build the chapter notebooks from their percent-format sources.

    python chapters/build.py            # every chapters/[0-9][0-9]_*.py
    python chapters/build.py 03 05      # only those chapters (by number or file name)

Each `chapters/NN_slug.py` (jupytext percent format, the source of truth) is read with jupytext, executed top to
bottom with nbclient in a fresh `python3` kernel whose working directory is `chapters/` (where Jupyter runs a
notebook opened from there), and written next to it as `NN_slug.ipynb` WITH its outputs, so the notebook reads
well on a code host while reviews look at the `.py`. Prints each chapter's wall-clock time against the 60 s
budget; exits 1 if any chapter raised or ran over budget (the notebook of a failing chapter is written anyway,
with the error in it, so it can be inspected).
"""

import argparse
import glob
import hashlib
import os
import sys
import time

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

HERE = os.path.dirname(os.path.abspath(__file__))
BUDGET_S = 60  # a chapter runs top to bottom within this on 2 CPU cores
CELL_TIMEOUT_S = 120
KERNEL = "python3"


def chapter_sources(selected=None):
    """Sorted chapters/NN_*.py paths; `selected` filters by number ('03') or file name/stem ('03_rope_yarn')."""
    paths = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))
    if not selected:
        return paths
    out = []
    for want in selected:
        want = os.path.basename(want)
        hits = [p for p in paths if os.path.basename(p)[:2] == want or os.path.basename(p) in (want, want + ".py")]
        if not hits:
            raise SystemExit(f"build.py: no chapter matches {want!r}; have {[os.path.basename(p) for p in paths]}")
        out += [h for h in hits if h not in out]
    return out


def stable_cell_ids(nb):
    """Cell ids from each cell's content instead of jupytext's random ones, so that rebuilding an unchanged
    chapter rewrites an identical notebook and an edit changes only the ids of the cells it touched."""
    seen = {}
    for cell in nb.cells:
        digest = hashlib.sha1(f"{cell.cell_type}\n{cell.source}".encode()).hexdigest()[:10]
        seen[digest] = seen.get(digest, 0) + 1
        cell.id = digest if seen[digest] == 1 else f"{digest}-{seen[digest]}"


def execute(path, timeout=CELL_TIMEOUT_S):
    """(executed notebook, wall-clock seconds, error or None) for one percent-format chapter source."""
    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": KERNEL}
    stable_cell_ids(nb)
    client = NotebookClient(nb, timeout=timeout, kernel_name=KERNEL, record_timing=False,
                            resources={"metadata": {"path": os.path.dirname(os.path.abspath(path))}})
    t0 = time.perf_counter()
    error = None
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as e:
        error = e
    return nb, time.perf_counter() - t0, error


def notebook_path(source):
    return os.path.splitext(source)[0] + ".ipynb"


def build(path):
    nb, seconds, error = execute(path)
    nbformat.write(nb, notebook_path(path))
    return seconds, error


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("chapters", nargs="*", help="chapter numbers or file names (default: all)")
    args = ap.parse_args(argv)
    failed = []
    for path in chapter_sources(args.chapters):
        name = os.path.basename(path)
        seconds, error = build(path)
        over = seconds > BUDGET_S
        status = "FAILED" if error else ("OVER BUDGET" if over else "ok")
        print(f"{name:<28}{seconds:6.1f} s  (budget {BUDGET_S} s)  {status:<11} -> "
              f"{os.path.basename(notebook_path(path))}", flush=True)
        if error:
            print("    " + str(error).strip().splitlines()[-1][:300])
        if error or over:
            failed.append(name)
    if failed:
        print(f"\n{len(failed)} chapter(s) failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
