"""The independent references the suite checks against (requirements.txt installs them). A test skips where one is
missing, so that part of the suite can run without it; under GPTOSS_REQUIRE_REFERENCES=1 (what .ci/run sets) a missing
or broken one fails the run instead, so CI cannot go green with the comparisons against transformers, safetensors or
openai-harmony quietly skipped."""

import importlib
import os
import sys

import pytest

REFERENCES = ["torch", "transformers", "safetensors", "openai_harmony", "accelerate", "jupytext", "nbclient"]
if sys.platform == "linux" and os.uname().machine == "x86_64":
    REFERENCES.append("triton")  # requirements.txt installs it on Linux x86_64 only


def required():
    return os.environ.get("GPTOSS_REQUIRE_REFERENCES") == "1"


def check_references():
    """Import every reference package when they are required; a pytest.UsageError naming each that fails."""
    if not required():
        return
    broken = []
    for name in REFERENCES:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - an import that raises anything leaves the comparison unrun
            broken.append(f"{name} ({type(e).__name__}: {e})")
    if broken:
        raise pytest.UsageError("GPTOSS_REQUIRE_REFERENCES=1: reference packages missing or broken: "
                                + "; ".join(broken) + ". Install requirements.txt.")


def unavailable(reason):
    """A reference that could not be used at run time: skip, or fail when references are required."""
    if required():
        pytest.fail(f"{reason} (GPTOSS_REQUIRE_REFERENCES=1)")
    pytest.skip(reason)
