"""A fuzz test of the loaders: a fixed-seed stream of mutated tiny checkpoints (header bytes, header length,
offsets, dtypes, shapes, trailing and missing bytes, data bytes, config values, index entries), each loaded with
`gptoss_np.load_model` and `gptoss_torch.load_model` and run on a few tokens.

Every outcome must be one of two things, the same in both loaders, within a time and memory bound:
- a `GptOssError` (the package's named error), or
- a correct load: every tensor our reader returns is byte-for-byte what the reference reader (the `safetensors`
  package, an independent implementation of the format) returns for that file, and the reference reader accepts
  every file we accepted. Accepting a file the reference refuses is a failure: that is how a header one byte short
  used to load every tensor one byte off.
When only config.json or the index changed, the weights are intact, so a load must also give finite logits and an
index that lists exactly the tensors its shards hold.
Anything else (a NumPy traceback, a KeyError, a hang, a runaway allocation) fails the test and prints the mutation,
so a failure reproduces from its case number.
"""

import json
import os
import shutil
import signal
import struct
import tracemalloc

import numpy as np
import pytest

torch = pytest.importorskip("torch")
safetensors = pytest.importorskip("safetensors")

import gptoss_np  # noqa: E402
import gptoss_torch  # noqa: E402
from gptoss_np import GptOssError  # noqa: E402
from gptoss_np.formats.safetensors_io import SafetensorsFile  # noqa: E402
from gptoss_np.formats.writer import write_checkpoint  # noqa: E402

N_CASES = 240
SEED = 2026
TIME_LIMIT_S = 10  # per case: a tiny checkpoint loads and runs in well under a second
MEMORY_LIMIT = 64 * 2**20  # per case, Python + NumPy allocations (tracemalloc): the whole checkpoint is ~0.3 MB
TOKENS = np.array([1, 2, 3, 4])
INDEX = "model.safetensors.index.json"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny gpt-oss checkpoint in the Hugging Face layout (MXFP4 experts, bf16), in three shards plus an index."""
    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), d_model=32, n_layers=2, n_heads=4, head_dim=8,
                               vocab_size=64, n_experts=4, window=4)
    out = tmp_path_factory.mktemp("fuzz") / "base"
    write_checkpoint(cfg, out, layout="hf", seed=0, progress=False, max_shard_bytes=20_000)
    shards = [f for f in os.listdir(out) if f.endswith(".safetensors")]
    assert len(shards) >= 2 and os.path.exists(out / INDEX), shards  # the index mutations need shards
    assert outcome(str(out)) == "loaded"  # the unmutated checkpoint loads and runs (and torch's first load is paid)
    return str(out)


# ---- the raw file, as the format defines it: 8-byte little-endian header length, JSON header, data -------------

def split(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw, n


def rewrite_header(path, edit):
    """Parse the header, apply `edit(header_dict)`, write it back (re-serialised, its new length) before the data."""
    raw, n = split(path)
    header = json.loads(raw[8:8 + n])
    edit(header)
    text = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def tensor_names(header):
    return [k for k in header if k != "__metadata__"]


def rewrite_entry(path, rng, edit):
    """rewrite_header with `edit(entry)` applied to the header entry of one tensor picked by `rng`; returns the
    tensor's name and its edited entry."""
    picked = []

    def edit_header(h):
        name = tensor_names(h)[rng.integers(len(tensor_names(h)))]
        edit(h[name])
        picked.append((name, h[name]))

    rewrite_header(path, edit_header)
    return picked[0]


# ---- mutations: each takes (directory, rng) and returns a one-line description --------------------------------

def pick_shard(d, rng):
    shards = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
    return os.path.join(d, shards[rng.integers(len(shards))])


def flip_header_byte(d, rng):
    p = pick_shard(d, rng)
    raw, n = split(p)
    i = 8 + int(rng.integers(n))
    b = bytearray(raw)
    b[i] ^= 1 << int(rng.integers(8))
    open(p, "wb").write(bytes(b))
    return f"{os.path.basename(p)}: header byte {i} flipped"


def header_length(d, rng):
    p = pick_shard(d, rng)
    raw, n = split(p)
    delta = int(rng.choice([-9, -8, -2, -1, 1, 2, 8, 1 << 20, 1 << 40]))
    open(p, "wb").write(struct.pack("<Q", max(n + delta, 0)) + raw[8:])
    return f"{os.path.basename(p)}: header length {n} -> {n + delta}"


def shift_offset(d, rng):
    p = pick_shard(d, rng)
    which, delta = int(rng.integers(2)), int(rng.choice([-3, -1, 1, 2, 64, 10**6]))

    def edit(entry):
        entry["data_offsets"][which] += delta

    name, _ = rewrite_entry(p, rng, edit)
    return f"{os.path.basename(p)}: {name} data_offsets[{which}] += {delta}"


def swap_offsets(d, rng):
    p = pick_shard(d, rng)
    state = {}

    def edit(h):
        a, b = rng.choice(tensor_names(h), 2, replace=False)
        h[a]["data_offsets"], h[b]["data_offsets"] = h[b]["data_offsets"], h[a]["data_offsets"]
        state["pair"] = (a, b)

    rewrite_header(p, edit)
    return f"{os.path.basename(p)}: offsets of {state['pair']} swapped"


def change_dtype(d, rng):
    p = pick_shard(d, rng)
    new = str(rng.choice(["F16", "F32", "BF16", "U8", "I8", "I32", "F64", "BOOL", "F8_E4M3", "Q4", ""]))
    name, _ = rewrite_entry(p, rng, lambda entry: entry.update(dtype=new))
    return f"{os.path.basename(p)}: {name} dtype -> {new!r}"


def change_shape(d, rng):
    p = pick_shard(d, rng)

    def edit(entry):
        shape = list(entry["shape"])
        kind = int(rng.integers(4))
        if kind == 0 and shape:
            i = int(rng.integers(len(shape)))
            shape[i], shape[-1 - i] = shape[-1 - i], shape[i]  # same element count, other shape
        elif kind == 1:
            shape = shape + [1]
        elif kind == 2 and shape:
            shape[int(rng.integers(len(shape)))] = int(rng.choice([0, -1, 2**62, 3]))
        else:
            shape = [int(np.prod(shape))] if shape else [1]
        entry["shape"] = shape

    name, entry = rewrite_entry(p, rng, edit)
    return f"{os.path.basename(p)}: {name} shape -> {entry['shape']}"


def add_or_drop_bytes(d, rng):
    p = pick_shard(d, rng)
    raw, _ = split(p)
    kind = int(rng.integers(3))
    if kind == 0:
        k = int(rng.choice([1, 7, 8, 100]))
        open(p, "wb").write(raw + bytes(rng.integers(0, 256, k, dtype=np.uint8)))
        return f"{os.path.basename(p)}: {k} trailing bytes appended"
    cut = int(rng.choice([1, 2, 100])) if kind == 1 else int(rng.integers(1, len(raw)))
    open(p, "wb").write(raw[:-cut] if kind == 1 else raw[:cut])
    return f"{os.path.basename(p)}: cut to {len(raw) - cut if kind == 1 else cut} of {len(raw)} bytes"


def flip_data_byte(d, rng):
    p = pick_shard(d, rng)
    raw, n = split(p)
    i = 8 + n + int(rng.integers(len(raw) - 8 - n))
    b = bytearray(raw)
    b[i] = int(rng.integers(256))
    open(p, "wb").write(bytes(b))
    return f"{os.path.basename(p)}: data byte {i} set to {b[i]}"


CONFIG_JUNK = [0, -1, 1, 2**40, 0.5, -0.0, float("nan"), float("inf"), True, False, None, "7", "sliding_attn",
               [], [1, 2], {}, 1e308]


def change_config(d, rng):
    p = os.path.join(d, "config.json")
    cfg = json.load(open(p))
    key = str(rng.choice(sorted(cfg)))
    kind = int(rng.integers(3))
    if kind == 0:
        del cfg[key]
        what = f"config.json: {key} removed"
    elif kind == 1 and isinstance(cfg[key], list) and cfg[key]:
        cfg[key][int(rng.integers(len(cfg[key])))] = CONFIG_JUNK[rng.integers(len(CONFIG_JUNK))]
        what = f"config.json: an item of {key} -> {cfg[key]!r}"[:200]
    else:
        cfg[key] = CONFIG_JUNK[rng.integers(len(CONFIG_JUNK))]
        what = f"config.json: {key} -> {cfg[key]!r}"
    json.dump(cfg, open(p, "w"))
    return what


def change_index(d, rng):
    p = os.path.join(d, INDEX)
    index = json.load(open(p))
    wm = index["weight_map"]
    name = str(rng.choice(sorted(wm)))
    kind = int(rng.integers(5))
    if kind == 0:
        others = sorted(set(wm.values()) - {wm[name]})
        wm[name] = others[0]
        what = f"index: {name} -> the wrong shard {others[0]}"
    elif kind == 1:
        wm[name] = "../" + wm[name]
        what = f"index: {name} -> a path outside the directory"
    elif kind == 2:
        wm[name] = os.path.join(d, wm[name])
        what = f"index: {name} -> an absolute path"
    elif kind == 3:
        del wm[name]
        what = f"index: {name} removed (its shard still holds it)"
    else:
        wm[name] = "missing-00009.safetensors"
        what = f"index: {name} -> a file that does not exist"
    json.dump(index, open(p, "w"))
    return what


MUTATIONS = [flip_header_byte, header_length, shift_offset, swap_offsets, change_dtype, change_shape,
             add_or_drop_bytes, flip_data_byte, change_config, change_index]


# ---- the oracle ---------------------------------------------------------------------------------------------

def reference_reads(path):
    """Raw bytes of every tensor of one file as the reference reader (safetensors, torch backend) gives them, or
    None when it refuses the file."""
    try:
        with safetensors.safe_open(path, framework="pt") as f:
            return {k: f.get_tensor(k).contiguous().view(-1).view(torch.uint8).numpy().tobytes() for k in f.keys()}
    except Exception:  # the reference's own error types; refusing is all that matters here
        return None


def ours_reads(path):
    f = SafetensorsFile(path)
    return {k: np.ascontiguousarray(f.get(k)).tobytes() for k in f.keys()}


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def outcome(d):
    """'error: ...' when both loaders raise a GptOssError, 'loaded' when both load and run a forward; anything else
    (one loader accepting what the other refuses included) propagates or is returned as the failure."""
    results = []
    for load, run in ((gptoss_np.load_model, lambda m: m(TOKENS)),
                      (gptoss_torch.load_model, lambda m: m(torch.as_tensor(TOKENS)).detach().numpy())):
        try:
            logits = run(load(d, progress=False))
            results.append("loaded" if np.isfinite(logits).all() else "loaded, non-finite logits")
        except GptOssError as e:
            results.append(f"error: {e}")
    kinds = {r.split(":")[0] for r in results}
    if len(kinds) > 1:
        return f"the loaders disagree: numpy {results[0][:150]!r}, torch {results[1][:150]!r}"
    return results[0]


def check_case(base, tmp_path, case, seed):
    """None if mutation `case` ends in a GptOssError or a correct load within the bounds, else what went wrong."""
    rng = np.random.default_rng(seed)
    mutate = MUTATIONS[case % len(MUTATIONS)]
    d = str(tmp_path / f"case{case}")
    shutil.copytree(base, d)
    label = f"case {case} ({mutate.__name__}): {mutate(d, rng)}"
    tracemalloc.start()
    signal.alarm(TIME_LIMIT_S)
    try:
        result = outcome(d)
    except Timeout:
        return f"{label}: no result within {TIME_LIMIT_S} s"
    except Exception as e:  # noqa: BLE001 - any non-GptOssError escaping is the failure this test looks for
        return f"{label}: {type(e).__name__} escaped instead of a GptOssError: {str(e)[:200]}"
    finally:
        signal.alarm(0)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    if peak > MEMORY_LIMIT:
        return f"{label}: {peak / 2**20:.0f} MiB allocated"
    if result.startswith("the loaders disagree"):
        return f"{label}: {result}"
    if result.startswith("error"):
        return f"{label}: an error message of {len(result)} characters" if len(result) > 2000 else None
    if result != "loaded" and mutate in (change_config, change_index):  # the weights are intact: so must be logits
        return f"{label}: {result}"
    index = json.load(open(os.path.join(d, INDEX)))["weight_map"]
    held = {k: f for f in os.listdir(d) if f.endswith(".safetensors") for k in safetensors.safe_open(
        os.path.join(d, f), framework="pt").keys()} if mutate is change_index else index
    if held != index:  # the index must list every tensor of every shard, each in the file that holds it
        return f"{label}: loaded, but the index and the shards disagree on {sorted(set(held.items()) ^ set(index.items()))[:3]}"
    for f in sorted(x for x in os.listdir(d) if x.endswith(".safetensors")):
        ref = reference_reads(os.path.join(d, f))
        if ref is None:
            return f"{label}: we loaded {f}, which the reference reader refuses"
        if ours_reads(os.path.join(d, f)) != ref:
            return f"{label}: {f} reads differently from the reference"
    shutil.rmtree(d)
    return None


# A data byte set at random can make a finite weight of 1e38, whose products overflow: NumPy warns, as it should.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("chunk", range(4))
def test_mutated_checkpoints_load_correctly_or_fail_by_name(base, tmp_path, chunk):
    seeds = np.random.default_rng(SEED).integers(2**32, size=N_CASES)
    old = signal.signal(signal.SIGALRM, _alarm)
    try:
        failures = [f for case in range(chunk, N_CASES, 4) if (f := check_case(base, tmp_path, case, seeds[case]))]
    finally:
        signal.signal(signal.SIGALRM, old)
    assert not failures, f"{len(failures)} of {len(range(chunk, N_CASES, 4))} cases:\n" + "\n".join(failures)


def test_oracle_can_fail(base, tmp_path):
    """The oracle sees the bug this test exists for: a header length one byte short is refused by the reference
    reader (had we loaded it, the test above would fail), and the reference reads an intact file as we do."""
    d = shutil.copytree(base, tmp_path / "short")
    p = pick_shard(str(d), np.random.default_rng(0))
    raw, n = split(p)
    assert reference_reads(p) is not None and reference_reads(p) == ours_reads(p)
    open(p, "wb").write(struct.pack("<Q", n - 1) + raw[8:])
    assert reference_reads(p) is None
