"""Damaged safetensors files and shard indexes: each must fail at load, in the NumPy oracle and in the torch twin
(whose loader reads through gptoss_np.formats), with a CheckpointError naming the file and what was expected.

The rules are the safetensors reference reader's (huggingface/safetensors `read_metadata` / `Metadata::validate`):
the header at most 100 MB; the tensors, sorted by data_offsets, cover the data section exactly. Where the reference
package can read the file without hanging, each case also asserts that it refuses the file too: the independent
witness that the file is bad, not just unusual. Truncation, a header cut short, a missing shard and an index that
is not JSON are in test_bad_input.py.
"""

import json
import os
import struct

import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")
safetensors = pytest.importorskip("safetensors")

import gptoss_np  # noqa: E402
import gptoss_torch  # noqa: E402
from checkpoints import INDEX, SINGLE, build_tiny, clone, shard  # noqa: E402
from gptoss_np import CheckpointError  # noqa: E402
from gptoss_np.formats.safetensors_io import SafetensorsFile, TensorStore, save_file  # noqa: E402


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory):
    return build_tiny("gpt2", tmp_path_factory.mktemp("tiny") / "gpt2")


@pytest.fixture
def ckpt(tiny_gpt2, tmp_path):
    """A private copy of the tiny gpt2 checkpoint (one model.safetensors) to damage."""
    return clone(tiny_gpt2, tmp_path / "ckpt")


def both_refuse(directory, *fragments):
    """Both loaders raise a CheckpointError whose message holds every fragment."""
    for load in (lambda: gptoss_np.load_model(directory, progress=False),
                 lambda: gptoss_torch.load_model(directory, device="cpu", progress=False)):
        with pytest.raises(CheckpointError) as info:
            load()
        for frag in fragments:
            assert str(frag) in str(info.value), f"{frag!r} not in error message: {info.value}"


def reference_refuses(path):
    """The safetensors package's own reader refuses the file (the independent witness)."""
    from safetensors import safe_open
    with pytest.raises(Exception):
        with safe_open(path, framework="np") as f:
            for k in f.keys():
                f.get_tensor(k)


def read_raw(path):
    """(header dict, data section bytes) of a safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        return header, f.read()


def write_raw(path, header, data, n_delta=0, pad=8):
    """Write a safetensors file by hand: the header JSON plus `pad` spaces, its length field off by `n_delta`."""
    raw = json.dumps(header).encode() + b" " * pad
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw) + n_delta) + raw + data)


def tensors_by_offset(header):
    return sorted((k for k in header if k != "__metadata__"), key=lambda k: header[k]["data_offsets"])


# ---- the data section must be covered exactly ----------------------------------------------------------------

def test_header_length_one_byte_short_of_padding(ckpt):
    """The JSON still parses (a padding space dropped), but every tensor would be read one byte off."""
    path = os.path.join(ckpt, SINGLE)
    header, data = read_raw(path)
    write_raw(path, header, data, n_delta=-1)
    reference_refuses(path)
    both_refuse(ckpt, path, "1 trailing byte(s) after the last tensor")


def test_trailing_garbage(ckpt):
    path = os.path.join(ckpt, SINGLE)
    with open(path, "ab") as f:
        f.write(b"garbage")
    reference_refuses(path)
    both_refuse(ckpt, path, "7 trailing byte(s)")


def test_appended_payload(ckpt):
    """A whole extra tensor's bytes appended (8-aligned, so nothing else looks off) are refused too."""
    path = os.path.join(ckpt, SINGLE)
    header, data = read_raw(path)
    write_raw(path, header, data + np.arange(64, dtype=np.float32).tobytes())
    reference_refuses(path)
    both_refuse(ckpt, path, "256 trailing byte(s)")


@pytest.mark.parametrize("at", [0, 3])
def test_gap_before_a_tensor(ckpt, at):
    """4 unused bytes before the `at`-th tensor (by offset): the tensors after it are shifted, the sizes agree."""
    path = os.path.join(ckpt, SINGLE)
    header, data = read_raw(path)
    names = tensors_by_offset(header)
    cut = header[names[at]]["data_offsets"][0]
    for k in names[at:]:
        header[k]["data_offsets"] = [o + 4 for o in header[k]["data_offsets"]]
    write_raw(path, header, data[:cut] + bytes(4) + data[cut:])
    reference_refuses(path)
    both_refuse(ckpt, path, repr(names[at]), "a gap of 4 bytes", f"expected {cut}")


def test_empty_tensor_inside_another(ckpt):
    """A zero-size tensor placed in the middle of another's bytes: the reference reader refuses it (InvalidOffset)."""
    path = os.path.join(ckpt, SINGLE)
    header, data = read_raw(path)
    first = header[tensors_by_offset(header)[0]]["data_offsets"]
    header["zz.empty"] = {"dtype": "F32", "shape": [0], "data_offsets": [first[0] + 4] * 2}
    write_raw(path, header, data)
    reference_refuses(path)
    both_refuse(ckpt, path, "'zz.empty'", "an overlap")


# ---- bounded reads: header cap, JSON depth, regular files only ------------------------------------------------

def test_header_over_100_mb_refused_before_reading(ckpt):
    """A header length of 150 MB in a sparse file of that size: refused on the length, not read and parsed."""
    path = os.path.join(ckpt, SINGLE)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", 150_000_000))
        f.truncate(8 + 150_000_000)  # sparse: no disk used, and all zeros, so parsing it would fail differently
    reference_refuses(path)
    both_refuse(ckpt, path, "header length 150000000", "at most 100000000")


def test_deeply_nested_header(ckpt):
    path = os.path.join(ckpt, SINGLE)
    with open(path, "wb") as f:
        raw = b'{"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
        f.write(struct.pack("<Q", len(raw)) + raw)
    reference_refuses(path)
    both_refuse(ckpt, path, "nested")


def test_deeply_nested_index(ckpt):
    shard(ckpt)
    with open(os.path.join(ckpt, INDEX), "w") as f:
        f.write('{"weight_map": ' + "[" * 100_000 + "]" * 100_000 + "}")
    both_refuse(ckpt, os.path.join(ckpt, INDEX), "nested")


@pytest.mark.parametrize("kind, expect", [("fifo", "a FIFO"), ("dev_zero", "a device"), ("directory", "a directory")])
@pytest.mark.parametrize("where", [SINGLE, INDEX, "model-00002-of-00002.safetensors"])
def test_only_regular_files_are_read(ckpt, kind, expect, where):
    """A FIFO would hang the reader, /dev/zero exhaust memory, a directory was skipped: each fails fast by name."""
    if where != SINGLE:  # sharded; without the index, the listing of *.safetensors finds the odd shard
        shard(ckpt)
        os.remove(os.path.join(ckpt, INDEX))
    path = os.path.join(ckpt, where)
    if os.path.exists(path):
        os.remove(path)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev_zero":
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero")
        os.symlink("/dev/zero", path)
    else:
        os.mkdir(path)
    both_refuse(ckpt, path, expect, "expected a regular file")


# ---- shard indexes --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("escape", ["../other/{}", "/abs/{}", "sub/../../other/{}"])
def test_index_entry_outside_the_directory(ckpt, tmp_path, escape):
    names = shard(ckpt)
    other = tmp_path / "other"  # a real file there: it must be refused by its path, not for being absent
    other.mkdir()
    os.replace(os.path.join(ckpt, names[1]), other / names[1])
    index_path = os.path.join(ckpt, INDEX)
    with open(index_path) as f:
        index = json.load(f)
    fname = escape.format(names[1]).replace("/abs", str(other))
    index["weight_map"] = {k: fname if v == names[1] else v for k, v in index["weight_map"].items()}
    with open(index_path, "w") as f:
        json.dump(index, f)
    both_refuse(ckpt, index_path, repr(fname), "expected a file name inside", "no '..'")


def _shard_then_edit(ckpt, edit):
    """Shard the checkpoint in two, then edit(tensors of shard 2, tensors of shard 1) and rewrite shard 2 (the
    index unchanged); returns shard 2's path."""
    names = shard(ckpt)
    path = os.path.join(ckpt, names[1])
    store = TensorStore(ckpt)
    tensors = {k: np.array(store.get(k)) for k in store.keys() if store.file_of(k) == path}
    first = {k: np.array(store.get(k)) for k in store.keys() if store.file_of(k) != path}
    edit(tensors, first)
    del store
    save_file(path, tensors)
    return path


def test_shard_holds_a_tensor_the_index_does_not_list(ckpt):
    path = _shard_then_edit(ckpt, lambda t, _: t.update({"transformer.h.0.extra": np.zeros(3, np.float32)}))
    both_refuse(ckpt, path, "'transformer.h.0.extra'", "does not list it", INDEX)


def test_same_tensor_in_two_shards_with_different_values(ckpt):
    def edit(tensors, first):
        key = sorted(first)[0]
        tensors[key] = first[key] + 1.0  # the index keeps it in shard 1; shard 2 now holds another version

    path = _shard_then_edit(ckpt, edit)
    both_refuse(ckpt, path, "does not map to this file", "the index maps it to")


# ---- a file that changes under the loader ----------------------------------------------------------------------

def test_file_truncated_between_header_and_mapping(ckpt):
    """Mapping a file that shrank since its header was read would end in SIGBUS on the first read past its end."""
    path = os.path.join(ckpt, SINGLE)
    sf = SafetensorsFile(path)
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size - 64)
    with pytest.raises(CheckpointError) as info:
        sf.get(sf.keys()[0])
    for frag in (path, "changed since its header was read", str(size), str(size - 64)):
        assert frag in str(info.value), info.value
