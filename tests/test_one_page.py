"""chapters/gpt_oss_one_page.py and chapters/qwen3_one_page.py: the one-page forwards equal the gptoss_np oracle at
every trace point (the shipped model, a written scaled-down gpt-oss with MXFP4 experts and YaRN truncation, a
written scaled-down Qwen3-MoE), decode the same greedy tokens, stay about 100 lines of numpy-only math, and the
Qwen3 page differs from the gpt-oss page only in lines marked `# QWEN3:`."""

import ast
import dataclasses
import difflib
import importlib.util
import io
import os
from contextlib import redirect_stdout

import numpy as np
import pytest

import gptoss_np
from gptoss_np.checks.compare import compare_traces, format_report
from gptoss_np.errors import CheckpointError
from gptoss_np.formats.writer import write_checkpoint
from gptoss_np.model import trace_names
from gptoss_np.text.chat import generate
from gptoss_np.text.harmony import chat_prompt

CHAPTERS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "chapters")
GPT_OSS_PAGE, QWEN3_PAGE = (os.path.join(CHAPTERS, f) for f in ("gpt_oss_one_page.py", "qwen3_one_page.py"))
MARK = "# QWEN3"
MATH_START, MATH_END = "# ---- the math", "# ---- loading and running"


def _module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oss_page, qwen3_page = _module(GPT_OSS_PAGE), _module(QWEN3_PAGE)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Scaled-down random checkpoints written in the Hugging Face layouts: gpt-oss (MXFP4 experts, a window of 4,
    sinks, YaRN with truncate=True, the other branch from the shipped model's) and Qwen3-MoE."""
    oss = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"))
    oss = oss.replace(rope_scaling=dataclasses.replace(oss.rope_scaling, truncate=True, original_context=64))
    qwen3 = gptoss_np.scale_down(gptoss_np.get_config("qwen3-30b-a3b"))
    root = tmp_path_factory.mktemp("one_page")
    return {name: write_checkpoint(cfg, str(root / name), seed=1, progress=False)
            for name, cfg in (("gpt_oss", oss), ("qwen3", qwen3))}


def check_traces(page, forward, path, tokens, dtype="float64"):
    """Run the page and the oracle on `tokens`; assert every trace point agrees within the dtype's tolerance."""
    params, config = page.load(path, np.dtype(dtype).type)
    mine = {}
    forward(tokens, **params, config=config, trace=mine)
    model = gptoss_np.load_model(path, dtype=dtype, progress=False)
    _, ref = model(tokens, trace=True)
    rtol = {"float64": 1e-10, "float32": 1e-5}[dtype]  # written here, not read from the package under test
    rows = compare_traces(ref, mine, rtol=rtol, names=trace_names(model.cfg))
    assert set(mine) == set(ref)
    assert all(r["status"] == "[OK]" for r in rows), format_report(rows, "gptoss_np", "one page")
    return params, config, model


def test_gpt_oss_page_equals_oracle_on_the_shipped_model():
    """bf16 weights, MXFP4 experts, YaRN, sinks, and 80 tokens: past the 64-token window of the sliding layers."""
    tokens = np.random.default_rng(0).integers(0, 2265, 80)
    params, config, _ = check_traces(oss_page, oss_page.gpt_oss, gptoss_np.default_checkpoint(), tokens)
    assert config["sliding_window"] < len(tokens) and "sliding_attention" in config["layer_types"]
    assert params["model"]["layers"][0]["mlp"]["experts"]["gate_up_proj_blocks"].dtype == np.uint8


def test_gpt_oss_page_equals_oracle_on_a_written_checkpoint(written):
    check_traces(oss_page, oss_page.gpt_oss, written["gpt_oss"], np.arange(20) * 7 % 256)


def test_qwen3_page_equals_oracle_on_a_written_checkpoint(written):
    params, config, model = check_traces(qwen3_page, qwen3_page.qwen3_moe, written["qwen3"], np.arange(20) * 7 % 256)
    prompt = np.array([3, 1, 4, 1, 5])
    assert qwen3_page.generate(prompt, params, config, 6) == list(generate(model, prompt, 6, temperature=0))


def test_greedy_tokens_equal_the_oracles_on_the_shipped_model():
    """float32 as the command runs it; the oracle decodes with its KV cache, the page recomputes everything."""
    path = gptoss_np.default_checkpoint()
    enc = gptoss_np.get_tokenizer(path)
    prompt = enc.encode("ROMEO: Good morrow, cousin.\nBENVOLIO:")
    params, config = oss_page.load(path)
    ref = list(generate(gptoss_np.load_model(path, progress=False), prompt, 8, temperature=0))
    assert oss_page.generate(prompt, params, config, 8) == ref


def test_command_prints_the_greedy_reply():
    """Two tokens only (cheap): no final channel yet, so the command prints the raw reply, the oracle's tokens."""
    path = gptoss_np.default_checkpoint()
    enc = gptoss_np.get_tokenizer(path)
    ref = generate(gptoss_np.load_model(path, progress=False), chat_prompt(enc, "Who goes there?"), 2, temperature=0)
    out = io.StringIO()
    with redirect_stdout(out):
        oss_page.main(["--max-tokens", "2", "Who goes there?"])
    assert out.getvalue() == enc.decode(list(ref)) + "\n"


def test_mxfp4_decode_equals_the_oracles_for_every_byte_and_scale():
    """All 256 code bytes under every scale byte 0..254, bit for bit (scales 253, 254 overflow float32 to inf)."""
    blocks = np.tile(np.arange(256, dtype=np.uint8).reshape(16, 16), (255, 1, 1))  # [255, 16, 16]
    scales = np.repeat(np.arange(255, dtype=np.uint8), 16).reshape(255, 16)  # [255, 16]
    with np.errstate(over="ignore"):
        assert np.array_equal(oss_page.mxfp4_decode(blocks, scales), gptoss_np.mxfp4.mxfp4_decode(blocks, scales))


def test_loader_refuses_other_checkpoints(written):
    with pytest.raises(CheckpointError, match=r"config\.json: model_type 'qwen3_moe'.*expected model_type 'gpt_oss'"):
        oss_page.load(written["qwen3"])
    with pytest.raises(CheckpointError, match=r"config\.json: model_type 'gpt_oss'; expected 'qwen3_moe'"):
        qwen3_page.load(written["gpt_oss"])


# ---- the page itself ------------------------------------------------------------------------------------------------

def after_docstring(path):
    """The file's lines after its module docstring."""
    src = open(path, encoding="utf-8").read()
    return src.splitlines()[ast.parse(src).body[0].end_lineno:]


def unmarked_changes(old, new):
    """Problems in the diff old -> new: a changed or added line without the mark, or lines removed with no marked
    line in their place (blank lines are layout, not change)."""
    problems = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        gone, added = [s for s in old[i1:i2] if s.strip()], [s for s in new[j1:j2] if s.strip()]
        if tag == "equal" or not (gone or added):
            continue
        problems += [f"unmarked: {s!r}" for s in added if MARK not in s]
        if gone and not added:
            problems.append(f"removed without a marked line in their place: {gone}")
    return problems


def test_qwen3_page_differs_only_in_marked_lines():
    old, new = after_docstring(GPT_OSS_PAGE), after_docstring(QWEN3_PAGE)
    assert unmarked_changes(old, new) == []
    assert not any(MARK in s for s in old)
    assert sum(MARK in s for s in new) >= 20  # QK-norm, sinks, window, YaRN, router, SwiGLU, MXFP4, ...
    # the check can fail: an unmarked edit, a silent removal
    edited = [s.replace("/ np.sqrt(head_dim)", "/ head_dim ** 0.5") for s in new]
    assert unmarked_changes(old, edited) == [f"unmarked: {s!r}" for s in edited if "head_dim ** 0.5" in s]
    assert len(unmarked_changes(old, [s for s in new if "def softmax" not in s])) == 1


@pytest.mark.parametrize("path", [GPT_OSS_PAGE, QWEN3_PAGE], ids=["gpt_oss", "qwen3"])
def test_math_is_about_a_hundred_lines_of_numpy(path):
    lines = open(path, encoding="utf-8").read().splitlines()
    start = next(i for i, s in enumerate(lines) if s.startswith(MATH_START))
    end = next(i for i, s in enumerate(lines) if s.startswith(MATH_END))
    math = [s for s in lines[start + 1:end] if s.strip()]
    assert len(math) <= 105, f"{os.path.basename(path)}: the math is {len(math)} lines; the page holds about 100"
    tree = ast.parse("\n".join(lines))
    top = {a.name for n in tree.body if isinstance(n, ast.Import) for a in n.names}
    top |= {n.module for n in tree.body if isinstance(n, ast.ImportFrom)}
    assert top == {"numpy"}, f"{os.path.basename(path)} imports {top} at module level; the math needs numpy only"
    assert not [s for s in lines[start:end] if s.lstrip().startswith(("import ", "from "))]
