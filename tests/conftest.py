import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # shared helper modules next to the tests (hf_models, checkpoints)

# Under pytest-xdist each worker gets its share of the cores for torch's and BLAS's threads (set before either is
# imported; subprocesses inherit it): two workers of two threads each on two cores ran the suite 20 % slower.
_workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
if _workers and "OMP_NUM_THREADS" not in os.environ:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // int(_workers)))



def pytest_sessionstart(session):
    """Under GPTOSS_REQUIRE_REFERENCES=1 (.ci/run) a missing or broken reference package stops the run at once."""
    from references import check_references
    check_references()
