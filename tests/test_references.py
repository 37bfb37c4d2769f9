"""tests/references.py: under GPTOSS_REQUIRE_REFERENCES=1 (.ci/run) a reference package that cannot be imported or
used stops the run instead of skipping the comparisons against it; without it, the tests that need it skip."""

import pytest

import references


def test_a_missing_reference_fails_only_when_references_are_required(monkeypatch):
    monkeypatch.setattr(references, "REFERENCES", ["torch", "no_such_reference_package"])
    monkeypatch.setenv("GPTOSS_REQUIRE_REFERENCES", "1")
    with pytest.raises(pytest.UsageError, match="no_such_reference_package .ModuleNotFoundError"):
        references.check_references()
    with pytest.raises(pytest.fail.Exception, match="could not load"):
        references.unavailable("could not load")
    monkeypatch.delenv("GPTOSS_REQUIRE_REFERENCES")
    references.check_references()  # not required: nothing raised
    with pytest.raises(pytest.skip.Exception, match="could not load"):
        references.unavailable("could not load")


def test_every_reference_is_installed_by_requirements_txt():
    """The list names packages requirements.txt installs (a name missing there would fail every CI run)."""
    import os
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    wanted = {line.split("==")[0].split(">=")[0].split(";")[0].strip().lower().replace("-", "_")
              for line in open(os.path.join(root, "requirements.txt")) if line.strip() and not line.startswith("#")}
    assert set(references.REFERENCES) <= wanted, set(references.REFERENCES) - wanted
