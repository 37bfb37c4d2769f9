"""The rules of the house (README.md, "Layout"), read from the source's import statements:

- the math (gptoss_np's top-level modules) imports numpy, ml_dtypes, a few pure standard-library modules and other
  math modules only: no file I/O, threads, CLI, text, book, checks or speed paths;
- gptoss_torch's model modules import from gptoss_np only its config, params, errors, accounting, formats and text,
  never the NumPy math; its speed paths live in gptoss_torch/fast;
- nothing in the packages imports chapters/ or tests/;
- no import cycles among the packages' modules.
"""

import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MATH = {"config", "params", "accounting", "errors", "norms", "rope", "attention", "ffn", "moe", "mxfp4", "model",
        "kv_cache", "sampling", "kernels"}
MATH_EXTERNAL = {"numpy", "ml_dtypes", "math", "dataclasses", "typing", "__future__", "functools"}
# what gptoss_torch may take from gptoss_np (everything else is the NumPy math or its tools)
TORCH_MAY_USE = ("gptoss_np", "gptoss_np.config", "gptoss_np.params", "gptoss_np.errors", "gptoss_np.accounting",
                 "gptoss_np.formats", "gptoss_np.text")
# gptoss_torch modules whose job is to run the oracle beside the twin (the compare verb), exempt from that rule
TORCH_CHECKS = {"gptoss_torch.cli"}


def modules():
    """{dotted module name: path} for every .py file of both packages."""
    out = {}
    for pkg in ("gptoss_np", "gptoss_torch"):
        for d, _, files in os.walk(os.path.join(ROOT, pkg)):
            for f in files:
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(d, f), ROOT)[:-3].replace(os.sep, ".")
                    out[rel[:-len(".__init__")] if rel.endswith(".__init__") else rel] = os.path.join(d, f)
    return out


MODULES = modules()


def imports(name, module_level_only=False):
    """The absolute names `name` imports (relative imports resolved); with module_level_only, only those executed
    at import time (not inside functions)."""
    path = MODULES[name]
    tree = ast.parse(open(path, encoding="utf-8").read())
    package = name if path.endswith("__init__.py") else name.rsplit(".", 1)[0]
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            subs = {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in MODULES}
            out |= subs or {mod}  # `from . import kernels` imports the submodule, not the package's names
    return out


def test_the_packages_have_the_rooms_the_readme_names():
    for room in ("gptoss_np.formats", "gptoss_np.text", "gptoss_np.checks", "gptoss_np.book", "gptoss_np.fast",
                 "gptoss_torch.fast"):
        assert room in MODULES, room
    assert {f"gptoss_np.{m}" for m in MATH} <= set(MODULES)


@pytest.mark.parametrize("name", sorted(f"gptoss_np.{m}" for m in MATH))
def test_math_imports_only_numpy_and_math(name):
    bad = []
    for imp in imports(name):
        top = imp.split(".")[0]
        if top == "gptoss_np":
            if imp == "gptoss_np" or imp.split(".")[1] not in MATH:
                bad.append(imp)
        elif top not in MATH_EXTERNAL:
            bad.append(imp)
    assert not bad, f"{name} (math) imports {sorted(bad)}: I/O, text, book, checks and speed live in their own rooms"


@pytest.mark.parametrize("name", sorted(n for n in MODULES if n.startswith("gptoss_torch") and n not in TORCH_CHECKS))
def test_torch_twin_never_imports_the_numpy_math(name):
    bad = [imp for imp in imports(name) if imp.split(".")[0] == "gptoss_np"
           and not any(imp == ok or imp.startswith(ok + ".") for ok in TORCH_MAY_USE[1:]) and imp != "gptoss_np"]
    assert not bad, f"{name} imports {sorted(bad)} from the NumPy side; allowed: {TORCH_MAY_USE[1:]}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_packages_never_import_chapters_or_tests(name):
    bad = [imp for imp in imports(name) if imp.split(".")[0] in ("chapters", "tests", "conftest", "checkpoints")]
    assert not bad, f"{name} imports {bad}"


def test_no_import_cycles():
    graph = {n: {i for i in imports(n, module_level_only=True) if i in MODULES and i != n} for n in MODULES}
    # importing a package's submodule runs the package's __init__ first: that is an edge too, except for the package
    # itself and its own submodules (an __init__ importing its children is how packages work)
    state, stack = {}, []

    def visit(n):
        state[n] = "open"
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == "open":
                cycle = stack[stack.index(m):] + [m]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if m not in state:
                visit(m)
        stack.pop()
        state[n] = "done"

    for n in sorted(graph):
        if n not in state:
            visit(n)


def test_the_checker_sees_a_broken_rule(tmp_path, monkeypatch):
    """The rules can fail: a math module that imports json is caught."""
    bad = tmp_path / "norms.py"
    bad.write_text("import json\nfrom .formats import loader\n")
    monkeypatch.setitem(MODULES, "gptoss_np.norms", str(bad))
    with pytest.raises(AssertionError, match="json"):
        test_math_imports_only_numpy_and_math("gptoss_np.norms")
