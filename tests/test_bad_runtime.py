"""Bad runtime inputs, in both packages: token ids of every kind, KV-cache sizes, sampling arguments, command-line
values and text the tokenizer's regex engine cannot split. Each ends in an InputError naming the argument and what
was expected (the command lines: one `error: ...` line and exit status 2), or in the documented behaviour.

References are independent of the code under test: Python's own ints, tiktoken's unchunked encoding, the
definition of softmax's limit for +inf logits.
"""

import itertools
import math
import re

import numpy as np
import pytest
import tiktoken

import gptoss_np
from gptoss_np import InputError, sample
from gptoss_np.text import tokenizer as tk
from gptoss_np.text.chat import generate

torch = pytest.importorskip("torch")

from gptoss_torch.model import Model as TorchModel  # noqa: E402

CFG = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"))
V = CFG.vocab_size
IDS = [1, 5, V - 1]


@pytest.fixture(scope="module")
def models():
    """{'np': the oracle, 'torch': the twin}, same random weights."""
    weights = gptoss_np.init_weights(CFG, seed=0)
    return {"np": gptoss_np.Model(CFG, weights), "torch": TorchModel.from_numpy(CFG, weights)}


def run(model, tokens, **kw):
    out = model(tokens, **kw)
    return out.numpy() if isinstance(out, torch.Tensor) else out


def expect(fn, *fragments):
    """fn() raises InputError whose message holds every fragment (the argument's name first)."""
    with pytest.raises(InputError) as info:
        fn()
    for frag in fragments:
        assert frag in str(info.value), f"{frag!r} not in {info.value}"


# ---- token ids --------------------------------------------------------------------------------------------------

NP_INTS = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@pytest.mark.parametrize("kind", ["np", "torch"])
@pytest.mark.parametrize("dtype", NP_INTS + [f"torch.{d}" for d in NP_INTS])
def test_every_integer_dtype_gives_the_int64_logits(models, kind, dtype):
    ids = [1, 5, 100]  # fits int8
    tokens = torch.tensor(ids, dtype=getattr(torch, dtype[6:])) if dtype.startswith("torch.") else \
        np.array(ids, dtype=dtype)
    np.testing.assert_array_equal(run(models[kind], tokens), run(models[kind], np.array(ids, dtype=np.int64)))


BAD_TOKENS = {  # case: (tokens, fragments both models' messages hold)
    "python int past 64 bits": ([1, 2 ** 70], ["tokens", str(2 ** 70), "vocab_size"]),
    "negative python int past 64 bits": ([-2 ** 70, 1], ["tokens", str(-2 ** 70), "vocab_size"]),
    "uint64 past int64": (np.array([2 ** 63 + 5], np.uint64), ["tokens", str(2 ** 63 + 5), "vocab_size"]),
    "id = vocab_size": (np.array([0, V], np.uint16), ["tokens", str(V), "vocab_size"]),
    "floats": ([1.0, 2.0], ["tokens", "integer", "float64"]),
    "bools": ([True, False], ["tokens", "integer", "bool"]),
    "strings": (["a", "b"], ["tokens", "integer"]),
    "None": (None, ["tokens"]),
    "objects": (np.array([1, None], dtype=object), ["tokens", "integer", "object"]),
    "ragged": ([[1], [1, 2]], ["tokens", "not an array"]),
    "empty": ([], ["tokens", "non-empty"]),
    "3-D": (np.zeros((1, 1, 2), np.int64), ["tokens", "(1, 1, 2)"]),
}


@pytest.mark.parametrize("kind", ["np", "torch"])
@pytest.mark.parametrize("case", sorted(BAD_TOKENS))
def test_bad_tokens_name_the_argument(models, kind, case):
    tokens, fragments = BAD_TOKENS[case]
    expect(lambda: models[kind](tokens), *fragments)


def test_a_batch_is_the_twins_and_refused_by_the_oracle(models):
    batch = np.array([IDS, IDS[::-1]])
    expect(lambda: models["np"](batch), "tokens", "1-D", "(2, 3)", "gptoss_torch")
    out = run(models["torch"], batch)  # [B, T, V]: each row as its own sequence
    np.testing.assert_allclose(out[1], run(models["torch"], np.array(IDS[::-1])), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("positions, fragments", [
    (torch.arange(2), ["positions", "[T=3]", "(2,)"]),                        # one short
    ([0.0, 1.0, 2.0], ["positions", "integer", "torch.float32"]),             # floats
    (torch.arange(3) + 10 ** 9, ["positions: 1000000002 is out of range", f"{CFG.context_length - 1}"]),
    (torch.tensor([0, -1, 2]), ["positions: -1 is out of range"]),
    (["a", "b", "c"], ["positions", "integer tensor"]),
])
def test_bad_positions_are_refused_by_the_twin(models, positions, fragments):
    """Model.forward(positions=): a shape error deep in RoPE, an AttributeError on a list, or logits silently made
    for positions past the context before; now one InputError naming the argument."""
    expect(lambda: models["torch"](torch.tensor(IDS), positions=positions), *fragments)


def test_positions_past_the_cache_and_a_bad_prefill_chunk_are_refused(models):
    twin = models["torch"]
    expect(lambda: twin(torch.tensor(IDS), cache=twin.new_cache(8), positions=torch.tensor([6, 7, 8])),
           "positions: 8 is out of range", "cache max_tokens=8")
    for chunk in (0, -1, 2.5, True):
        expect(lambda: twin(torch.tensor(IDS), prefill_chunk=chunk), f"prefill_chunk={chunk!r}", ">= 1")
    good = twin(torch.tensor(IDS), positions=torch.arange(3), prefill_chunk=1)  # as given by default: the same logits
    torch.testing.assert_close(good, twin(torch.tensor(IDS)))


# ---- KV-cache sizes ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["np", "torch"])
@pytest.mark.parametrize("max_tokens", [0, -1, 1.5, True, "8", CFG.context_length + 1, 10 ** 12])
def test_bad_cache_sizes_are_refused(models, kind, max_tokens):
    expect(lambda: models[kind].new_cache(max_tokens), f"max_tokens={max_tokens!r}", "1 to context_length")


@pytest.mark.parametrize("batch", [0, -2, 2.0, True])
def test_bad_cache_batch_is_refused(models, batch):
    expect(lambda: models["torch"].new_cache(8, batch), f"batch={batch!r}", ">= 1")


def test_a_cache_larger_than_memory_is_refused_before_allocating(models):
    # 2**31 sequences of 16 tokens: far past any machine's memory; allocating would raise or hang, not InputError
    expect(lambda: models["torch"].new_cache(16, 2 ** 31), "max_tokens=16", "batch=2147483648", "GiB")


def test_the_memory_check_counts_what_the_cache_allocates(models):
    """The size refused above is accounting's kv_cache_bytes per sequence: it must be the bytes a cache holds."""
    for max_tokens in (3, 64):  # within and past the sliding window (4 tokens)
        cache = models["torch"].new_cache(max_tokens, 2)
        assert cache.nbytes() == 2 * gptoss_np.kv_cache_bytes(CFG, max_tokens, 4)  # float32


@pytest.mark.parametrize("kind", ["np", "torch"])
def test_the_cache_holds_max_tokens(models, kind):
    cache = models[kind].new_cache(4)
    run(models[kind], np.array([1, 2, 3, 4]), cache=cache)
    expect(lambda: models[kind](np.array([5]), cache=cache), "tokens", "4 cached", "max_tokens=4")


# ---- sampling -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("temperature", [-1.0, float("nan"), float("inf"), "1", None, True])
def test_bad_temperature(temperature):
    expect(lambda: sample(np.zeros(4), temperature=temperature), "temperature", ">= 0")


@pytest.mark.parametrize("top_p", [0.0, -0.1, 1.5, float("nan"), "0.5", None])
def test_bad_top_p(top_p):
    expect(lambda: sample(np.zeros(4), top_p=top_p), "top_p", "0 < top_p <= 1")


@pytest.mark.parametrize("rng", [-1, 1.5, "seed", True])
def test_bad_rng(rng):
    expect(lambda: sample(np.zeros(4), rng=rng), "rng", "integer >= 0")


@pytest.mark.parametrize("seed", [-1, 2.5, "7"])
def test_bad_generation_seed_is_refused_before_any_token(models, seed):
    expect(lambda: generate(models["np"], [1, 2], 4, seed=seed), "seed", "integer >= 0")


@pytest.mark.parametrize("logits, fragments", [
    ([0.0, np.nan], ["logits", "NaN"]),
    ([-np.inf, -np.inf], ["logits", "-inf"]),
    (np.zeros((2, 3)), ["logits", "1-D", "(2, 3)"]),
    ([], ["logits", "non-empty"]),
    (["a", "b"], ["logits", "numbers"]),
])
def test_bad_logits(logits, fragments):
    expect(lambda: sample(logits, rng=0), *fragments)


def test_temperature_zero_is_greedy():
    assert sample([0.0, 3.0, 1.0, 3.0], temperature=0, rng=0) == 1  # argmax, lowest id on ties


def test_minus_inf_logits_are_never_drawn():
    logits = [-np.inf, 0.0, -np.inf, 0.0]
    draws = {sample(logits, rng=seed) for seed in range(50)}
    assert draws == {1, 3}


def test_plus_inf_logits_are_certain_and_drawn_uniformly():
    """softmax's limit as a logit goes to +inf: all the mass on the +inf ids, split evenly between them."""
    logits = [0.0, np.inf, 5.0, np.inf]
    g = np.random.default_rng(0)
    draws = [sample(logits, temperature=0.7, top_p=0.9, rng=g) for _ in range(400)]
    assert set(draws) == {1, 3} and 150 < draws.count(1) < 250  # binomial(400, 1/2): 5 sigma is +-50
    assert sample(logits, temperature=0) == 1


# ---- the command lines ---------------------------------------------------------------------------------------

def one_error_line(capsys, rc, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), (rc, err)
    for frag in fragments:
        assert frag in err[0], f"{frag!r} not in {err[0]}"


@pytest.mark.parametrize("argv, fragments", [
    (["walk", "--no-demo", "--tokens", "0"], ["--tokens 0", "from 1"]),
    (["walk", "--no-demo", "--tokens", "100000"], ["--tokens 100000", "context length"]),
    (["walk", "--no-demo", "--seed", "-1"], ["--seed -1", ">= 0"]),
    (["chat", "--seed", "-1", "hi"], ["--seed -1", ">= 0"]),
    (["chat", "--temperature", "nan", "--max-tokens", "1", "hi"], ["temperature=nan"]),
    (["chat", "--top-p", "0", "--max-tokens", "1", "hi"], ["top_p=0.0"]),
    (["chat", "--max-tokens", "-1", "hi"], ["max_new_tokens=-1"]),
    (["walk", "--demo-tokens", "-3"], ["--demo-tokens -3", ">= 1"]),  # before the demo prints anything
    (["chat", "--checkpoint", "", "hi"], ["checkpoint path '' (empty)"]),  # not the shipped model in its place
    (["book", "--check", "--root", "/nonexistent"], ["--root /nonexistent", "no book.md"]),
    *[(["write-checkpoint", "--preset", "gpt-oss-20b", "--scale-down", "--out", "/nonexistent/x", flag, value],
       [f"{flag} {value}", ">= 1"]) for flag, value in (("--layers", "-2"), ("--layers", "0"), ("--experts", "0"),
                                                        ("--vocab-size", "0"), ("--d-model", "0"),
                                                        ("--max-shard-bytes", "0"))],
    (["write-checkpoint", "--preset", "gpt2-xl", "--scale-down", "--experts", "4", "--out", "/nonexistent/x"],
     ["--experts 4", "gpt2-xl is dense"]),
    (["write-checkpoint", "--preset", "gpt-oss-20b", "--scale-down", "--out", __file__], ["is a file"]),
    (["write-checkpoint", "--preset", "gpt-oss-20b", "--scale-down", "--out", "/proc/no/such"], ["cannot create"]),
])
def test_numpy_cli_bad_values(capsys, argv, fragments):
    from gptoss_np.cli import main
    one_error_line(capsys, main(argv), *fragments)


@pytest.mark.parametrize("argv, fragments", [
    (["chat", "--device", "nosuch", "hi"], ["--device 'nosuch'", "expected cpu, cuda or cuda:N"]),
    (["chat", "--device", "cuda:x", "hi"], ["--device 'cuda:x'"]),
    (["chat", "--device", "cuda:99", "hi"], ["--device cuda:99"]),
    (["compare", "--checkpoint", "x", "--device", "xla"], ["--device xla", "not supported"]),
    # torch takes cpu:N for any N and means the one CPU: these ran silently before
    (["chat", "--device", "cpu:1", "hi"], ["--device cpu:1", "torch has one cpu device", "expected cpu or cpu:0"]),
    (["compare", "--checkpoint", "x", "--device", "cpu:3"], ["--device cpu:3", "expected cpu or cpu:0"]),
    # more cache than the model holds: silently capped at its context length before
    (["chat", "--context", "8193", "--device", "cpu", "hi"], ["--context 8193", "expected an integer from 1 to "
                                                              "gpt-oss-shakespeare's context length, 8,192"]),
    (["chat", "--context", "0", "hi"], ["--context 0", ">= 1"]),
    (["chat", "--threads", "0", "hi"], ["--threads 0", ">= 1"]),
    (["compare", "--checkpoint", "x", "--tokens", "0"], ["--tokens 0", ">= 1"]),
    (["compare", "--checkpoint", "x", "--seed", "-5"], ["--seed -5", ">= 0"]),
    (["train", "--release", "--quiet"], ["--release without --out", "expected --out DIR"]),
    (["chat", "--checkpoint", "", "hi"], ["checkpoint path '' (empty)"]),
    (["compare", "--checkpoint", "", "--quiet"], ["checkpoint path '' (empty)"]),
    (["chat", "--context", "20", "--device", "cpu", "a long question " * 10], ["no room in context_length=20",
                                                                             "a larger --context"]),
])
def test_torch_cli_bad_values(capsys, argv, fragments):
    from gptoss_torch.cli import main
    one_error_line(capsys, main(argv), *fragments)


@pytest.mark.parametrize("kw, fragments", [(dict(dtype="float17"), ["dtype 'float17'", "expected one of"]),
                                           (dict(dtype=3), ["dtype 3"]),
                                           (dict(device="gpu"), ["device 'gpu'", "not a torch device name"]),
                                           (dict(device="cpu:1"), ["device cpu:1", "expected cpu or cpu:0"]),
                                           (dict(device="cuda:99"), ["device cuda:99"]),  # with or without CUDA
                                           (dict(device="meta"), ["device meta", "not supported"])])
def test_torch_load_model_names_a_bad_dtype_or_device(kw, fragments):
    """gptoss_torch.load_model, the library call: a KeyError or torch's RuntimeError before, now a named error,
    raised before the checkpoint is read."""
    import gptoss_torch
    with pytest.raises(InputError) as e:
        gptoss_torch.load_model("/nonexistent", progress=False, **kw)
    for frag in fragments:
        assert frag in str(e.value)


def test_torch_compare_refuses_tokens_past_the_context_before_loading_the_oracle(capsys, monkeypatch):
    from gptoss_torch.cli import main
    monkeypatch.setattr(gptoss_np, "load_model", lambda *a, **k: pytest.fail("the oracle was loaded"))
    path = gptoss_np.trained_checkpoint("gpt2-shakespeare")
    one_error_line(capsys, main(["compare", "--checkpoint", path, "--tokens", "100000000", "--device", "cpu",
                                 "--quiet"]), "--tokens 100000000", "context length")


@pytest.mark.parametrize("package", ["gptoss_np", "gptoss_torch"])
def test_compare_refuses_more_tokens_than_it_can_hold_before_loading_the_reference(capsys, monkeypatch, package):
    """compare --tokens inside the context but past COMPARE_MAX_TOKENS (every activation of every position, full
    attention in both models) is one line, not a run that a 100k-token prompt never finishes."""
    import importlib
    if package == "gptoss_torch":  # its reference is the oracle (gptoss_np's is transformers, patched below)
        monkeypatch.setattr(gptoss_np, "load_model", lambda *a, **k: pytest.fail("the oracle was loaded"))
    pytest.importorskip("transformers")
    import transformers
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained",
                        lambda *a, **k: pytest.fail("transformers was loaded"))
    main = importlib.import_module(f"{package}.cli").main
    path = gptoss_np.default_checkpoint()  # gpt-oss-shakespeare: context 8,192
    argv = ["compare", "--checkpoint", path, "--tokens", "8000"] + (["--quiet"] if package == "gptoss_torch" else [])
    rc, err = main(argv), capsys.readouterr().err.strip().splitlines()  # (gptoss_np's compare shows its loading bar)
    assert rc == 2 and err[-1].startswith("error: --tokens 8000: expected at most 4096"), err[-1]
    assert "context length is 8192" in err[-1] and "Traceback" not in "\n".join(err)


def test_torch_cli_cuda_absent(capsys, monkeypatch):
    from gptoss_torch.cli import main
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    one_error_line(capsys, main(["chat", "--device", "cuda", "hi"]), "--device cuda", "CUDA is not available")


def test_torch_cli_mps_has_one_device(capsys, monkeypatch):
    from gptoss_torch.cli import main
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    one_error_line(capsys, main(["chat", "--device", "mps:1", "hi"]), "--device mps:1", "expected mps or mps:0")


def test_torch_chat_context_up_to_the_models_runs(capsys):
    """--context at the model's context length is taken as asked; none is 4096 (that length, if shorter)."""
    from gptoss_torch.cli import main
    assert main(["chat", "--context", "8192", "--device", "cpu:0", "--max-tokens", "1", "hi"]) == 0
    assert "1 tokens" in capsys.readouterr().err


def test_torch_chat_model_refuses_a_cache_past_the_models_context(models):
    from gptoss_torch.chat import DEFAULT_CONTEXT, ChatModel
    n = CFG.context_length
    assert ChatModel(models["torch"]).max_tokens == min(DEFAULT_CONTEXT, n)
    assert ChatModel(models["torch"], n).max_tokens == n
    for bad in (n + 1, 0):
        with pytest.raises(InputError, match=f"max_tokens={bad}: expected an integer from 1 to .*context length"):
            ChatModel(models["torch"], bad)


def test_chat_with_a_megabyte_of_spaces_is_one_error_line(capsys):
    """The question that made the encoder panic past the CLI's handler: now it is tokenized, and too long."""
    from gptoss_np.cli import main
    one_error_line(capsys, main(["chat", "--max-tokens", "1", " " * 1_000_000]), "prompt_tokens", "context_length")


# ---- the tokenizer on text its regex engine cannot split in one go ----------------------------------------------

@pytest.fixture(scope="module")
def shakespeare():
    """A few KB of a play, raw Markdown and in the corpus format (both keep their real whitespace)."""
    from gptoss_np.text import corpus
    try:
        path, slug = corpus.play_files()[0]
    except InputError as e:
        pytest.skip(str(e))
    markdown = open(path, encoding="utf-8").read()
    return [markdown[:6000], corpus.render_scenes(corpus.play_scenes(markdown, slug)[1])[:6000]]


@pytest.mark.parametrize("name, texts", [
    ("o200k_harmony", [" " * 1_000_000]),
    ("gpt2", [" " * 1_000_000, "To be" + " \n" * 600_000 + "or not"]),  # gpt2's split panics on newlines too
])
def test_a_megabyte_run_of_whitespace_encodes(name, texts):
    enc = tk.get_tokenizer(name)
    for text in texts:
        ids = enc.encode_ordinary(text)
        assert enc.decode(ids) == text
        assert enc.encode(text) == ids


@pytest.mark.parametrize("name", ["o200k_harmony", "gpt2"])
@pytest.mark.parametrize("max_run", [tk.MAX_WHITESPACE_RUN, 8])
def test_chunking_leaves_real_text_as_tiktoken_encodes_it(shakespeare, monkeypatch, name, max_run):
    """max_run 8 sends the play through the run scanner (it has runs of 2-4 blanks, none over 8)."""
    monkeypatch.setattr(tk, "MAX_WHITESPACE_RUN", max_run)
    enc = tk.get_tokenizer(name)
    for text in shakespeare:
        text = text * 20  # 120 KB: longer than the default max_run, so the scan runs there too
        assert tk.whitespace_chunks(text) == [text]
        assert enc.encode_ordinary(text) == tiktoken.Encoding.encode_ordinary(enc, text)
        assert enc.encode(text) == tiktoken.Encoding.encode(enc, text)


@pytest.mark.parametrize("name", ["o200k_harmony", "gpt2"])
def test_encode_with_unstable_after_a_long_run_leaves_only_the_last_word_open(name):
    """Short text: tiktoken's own answer (completions compared as sets: tiktoken orders them by a hash set); after a
    250 KB run of blanks (three chunks): the same completions, and stable tokens that spell all but ' ques'."""
    enc = tk.get_tokenizer(name)
    short = "or not to be: that is the ques"
    stable, completions = tiktoken.Encoding.encode_with_unstable(enc, short)
    ours = enc.encode_with_unstable(short)
    assert ours[0] == stable and sorted(ours[1]) == sorted(completions)
    text = "To be," + " " * 250_000 + short
    ours = enc.encode_with_unstable(text)
    assert enc.decode(ours[0]) == text[:-len(" ques")] and sorted(ours[1]) == sorted(completions)


def test_whitespace_chunks_cut_only_inside_long_runs(shakespeare):
    """Cuts fall inside whitespace runs longer than max_run, as few as leave no run longer; nothing else moves."""
    words = shakespeare[1][:400].split()
    runs = [" " * 9, "\n" * 10, " \t" * 6, " " * 31, "\u3000" * 11]  # 9, 10, 12, 31 and 11 blanks; max_run 10
    text = "".join(w + runs[i % len(runs)] for i, w in enumerate(words))
    chunks = tk.whitespace_chunks(text, max_run=10)
    assert "".join(chunks) == text
    cuts = list(itertools.accumulate(len(c) for c in chunks[:-1]))
    long_runs = [m.span() for m in re.finditer(r"\s+", text) if m.end() - m.start() > 10]
    assert all(any(a < cut < b for a, b in long_runs) for cut in cuts)
    assert len(cuts) == sum(math.ceil((b - a) / 10) - 1 for a, b in long_runs)
    assert all(len(run) <= 10 for chunk in chunks for run in re.findall(r"\s+", chunk))


def test_a_panic_of_the_encoder_becomes_an_input_error(monkeypatch):
    """pyo3's PanicException derives from BaseException: a plain `except Exception` handler never sees it."""
    panic = type("PanicException", (BaseException,), {"__module__": "pyo3_runtime"})

    def explode(self, text):
        raise panic("called `Result::unwrap()` on an `Err` value: RuntimeError(StackOverflow)")

    enc = tk.get_tokenizer("gpt2")
    monkeypatch.setattr(tiktoken.Encoding, "encode_ordinary", explode)
    expect(lambda: enc.encode_ordinary("hello"), "text (5 characters)", "panicked", "StackOverflow")

    def interrupt(self, text):
        raise KeyboardInterrupt

    monkeypatch.setattr(tiktoken.Encoding, "encode_ordinary", interrupt)
    with pytest.raises(KeyboardInterrupt):  # only panics are translated
        enc.encode_ordinary("hello")


def test_at_least_is_argparse_one_line_error_naming_the_range():
    """gptoss_np.cli.at_least, the benchmark scripts' numeric flags: a value below the range, a non-number and nan
    are argparse errors (the flag, the value, the range), never a traceback later."""
    import argparse

    from gptoss_np.cli import at_least
    assert at_least(1)("3") == 3 and at_least(0.5, float)("0.5") == 0.5
    for kind, low, text in ((int, 1, "0"), (int, 1, "-2"), (int, 0, "x"), (float, 1.0, "nan"), (float, 1.0, "-1")):
        with pytest.raises(argparse.ArgumentTypeError, match=f"'{re.escape(text)}': expected .* >= {low}"):
            at_least(low, kind)(text)


@pytest.mark.parametrize("script, argv, fragment", [
    ("torch_bench.py", ["--checkpoint", "/nonexistent"], "error: /nonexistent: does not exist"),
    ("torch_bench.py", ["--checkpoint", "x", "--decode-tokens", "0"], "--decode-tokens: '0': expected an integer >= 1"),
    # refused before --write-preset writes 13.8 GB (into /proc: should that regress, it fails, not fills a disk)
    ("torch_bench.py", ["--checkpoint", "/proc/none", "--write-preset", "gpt-oss-20b", "--device", "cpu:2"],
     "--device cpu:2: torch has one cpu device"),
    ("np_20b.py", ["alternate", "--ckpt", "/nonexistent", "--variant", "THREADS=abc"], "--variant THREADS=abc"),
    ("np_20b.py", ["alternate", "--ckpt", "/nonexistent", "--variant", "THREADS=2"], "--ckpt /nonexistent"),
    ("gpu_check.py", ["--smoke", "--budget", "-1"], "--budget: '-1': expected a number >= 0.0"),
])
def test_benchmark_scripts_refuse_bad_flags_in_one_line(script, argv, fragment):
    """The scripts under benchmarks/ (run by hand, so a reader's typo meets them first): their last line names the
    flag or file, exit status non-zero, no traceback."""
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    r = subprocess.run([sys.executable, os.path.join(root, "benchmarks", script), *argv], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert fragment in r.stderr.strip().splitlines()[-1], r.stderr[-500:]


def test_chat_on_a_small_vocabulary_checkpoint_names_the_flag_that_fixes_it(capsys, tmp_path):
    """The README's promise: a scaled-down checkpoint written without --vocab-size 201088 (no tokenizer files, so
    o200k_harmony) gets one line naming that flag, not 'tokenizer files absent' (what the tokenizer loader alone
    says)."""
    from gptoss_np.cli import main
    out = str(tmp_path / "tiny")
    assert main(["write-checkpoint", "--preset", "gpt-oss-20b", "--scale-down", "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    rc = main(["chat", "--checkpoint", out, "--max-tokens", "1", "hi"])
    note, error = capsys.readouterr().err.strip().splitlines()  # the random-weights note, then the error
    assert rc == 2 and "random weights" in note and error.startswith("error: ")
    assert "vocab_size 256" in error and "--vocab-size 201088" in error and "absent" not in error
