"""Tests for gptoss_np.formats.safetensors_io, using the `safetensors` package as an independent reference."""

import json
import os
import struct

import ml_dtypes
import numpy as np
import pytest

from gptoss_np.errors import CheckpointError
from gptoss_np.formats.safetensors_io import (
    DTYPES,
    SafetensorsFile,
    SafetensorsWriter,
    TensorStore,
    dtype_name,
    save_file,
)

st_numpy = pytest.importorskip("safetensors.numpy")
torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")
from safetensors import safe_open  # noqa: E402


def _rng_arrays():
    rng = np.random.default_rng(0)
    return {
        "f32": rng.standard_normal((3, 5)).astype(np.float32),
        "f16": rng.standard_normal((7,)).astype(np.float16),
        "i64": rng.integers(-(2**40), 2**40, size=(2, 2, 3), dtype=np.int64),
        "u8": rng.integers(0, 256, size=(9,), dtype=np.uint8),
        "scalar": np.array(1.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }


def _bf16(shape, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(ml_dtypes.bfloat16)


def _write_raw(path, header, data=b"", pad=True):
    """A safetensors file built by hand, so the header can be anything."""
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    if pad:
        raw += b" " * (-(len(raw) + 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)
    return str(path)


def _torch_bits(t):
    """A bf16 torch tensor's bit pattern as a uint16 NumPy array."""
    return t.view(torch.int16).numpy().view(np.uint16)


# --- dtype table -------------------------------------------------------------------


def test_dtype_name_inverts_dtypes():
    for name, dt in DTYPES.items():
        assert dtype_name(dt) == name
    assert dtype_name(np.float32) == "F32"
    assert dtype_name(ml_dtypes.bfloat16) == "BF16"
    assert DTYPES["BF16"] == np.dtype(ml_dtypes.bfloat16)
    with pytest.raises(CheckpointError, match="object"):
        dtype_name(object)


# --- reading files written by the reference package --------------------------------


def test_reads_numpy_reference_file_bit_exact(tmp_path):
    arrays = _rng_arrays()
    path = tmp_path / "ref.safetensors"
    st_numpy.save_file(arrays, str(path), metadata={"format": "np", "note": "ü"})
    sf = SafetensorsFile(path)
    assert sf.keys() == sorted(arrays)
    assert sf.metadata == {"format": "np", "note": "ü"}
    for name, a in arrays.items():
        assert name in sf
        got = sf.get(name)
        assert got.dtype == a.dtype and got.shape == a.shape == sf.shape(name)
        assert sf.dtype(name) == dtype_name(a.dtype)
        assert got.tobytes() == a.tobytes()
    assert "missing" not in sf


def test_reads_torch_bf16_reference_file_bit_exact(tmp_path):
    g = torch.Generator().manual_seed(0)
    tensors = {
        "w": torch.randn(4, 6, generator=g).to(torch.bfloat16),
        "b": torch.randn(6, generator=g).to(torch.bfloat16),
        "f": torch.randn(3, generator=g),
    }
    path = tmp_path / "bf16.safetensors"
    st_torch.save_file(tensors, str(path))
    sf = SafetensorsFile(path)
    for name in ("w", "b"):
        assert sf.dtype(name) == "BF16"
        got = sf.get(name)
        assert got.dtype == ml_dtypes.bfloat16 and got.shape == tuple(tensors[name].shape)
        np.testing.assert_array_equal(got.view(np.uint16), _torch_bits(tensors[name]))
    np.testing.assert_array_equal(sf.get("f"), tensors["f"].numpy())


def test_get_is_zero_copy_read_only_memmap_view(tmp_path):
    path = tmp_path / "m.safetensors"
    st_numpy.save_file({"a": np.arange(12, dtype=np.float32).reshape(3, 4)}, str(path))
    sf = SafetensorsFile(path)
    x = sf.get("a")
    assert type(x) is np.ndarray
    assert not x.flags.writeable
    with pytest.raises(ValueError):
        x[0, 0] = 1.0
    # The view's memory is the file map's memory, and a memmap sits in its base chain.
    assert np.shares_memory(x, sf._map)
    base = x
    while base is not None and not isinstance(base, np.memmap):
        base = base.base
    assert isinstance(base, np.memmap)
    # A second get() maps the same pages again (no copy, same address).
    assert sf.get("a").__array_interface__["data"][0] == x.__array_interface__["data"][0]


# --- writing files read by the reference package -----------------------------------


def test_save_file_read_by_reference_package(tmp_path):
    arrays = _rng_arrays()
    arrays["bool"] = np.array([True, False, True])
    arrays["noncontig"] = np.arange(20, dtype=np.int32).reshape(4, 5).T
    path = tmp_path / "ours.safetensors"
    save_file(str(path), arrays, metadata={"format": "np", "k": "v"})
    loaded = st_numpy.load_file(str(path))
    assert sorted(loaded) == sorted(arrays)
    for name, a in arrays.items():
        assert loaded[name].dtype == a.dtype and loaded[name].shape == a.shape
        assert loaded[name].tobytes() == np.ascontiguousarray(a).tobytes()
    with safe_open(str(path), framework="np") as f:
        assert f.metadata() == {"format": "np", "k": "v"}
    # Data section is 8-byte aligned, as the reference writer does.
    (n,) = struct.unpack("<Q", path.read_bytes()[:8])
    assert (8 + n) % 8 == 0


def test_save_file_is_byte_identical_to_reference(tmp_path):
    arrays = {"z": np.ones(3, np.uint8), "a": np.ones((2, 2), np.float16),
              "m": np.ones(5, np.float64), "b": np.ones(1, np.int32)}
    save_file(tmp_path / "ours.safetensors", arrays, metadata={"format": "np"})
    st_numpy.save_file(arrays, str(tmp_path / "ref.safetensors"), metadata={"format": "np"})
    assert (tmp_path / "ours.safetensors").read_bytes() == (tmp_path / "ref.safetensors").read_bytes()


def test_bf16_written_by_us_read_by_torch(tmp_path):
    w = _bf16((5, 3))
    path = tmp_path / "bf.safetensors"
    save_file(path, {"w": w, "s": np.arange(3, dtype=np.int64)}, metadata={"format": "pt"})
    with safe_open(str(path), framework="pt") as f:
        t = f.get_tensor("w")
        assert t.dtype == torch.bfloat16
        np.testing.assert_array_equal(_torch_bits(t), w.view(np.uint16))
        assert f.get_tensor("s").tolist() == [0, 1, 2]
        assert f.metadata() == {"format": "pt"}


def test_writer_read_by_reference_package(tmp_path):
    w, b = _bf16((4, 2)), np.arange(6, dtype=np.float32)
    path = tmp_path / "w.safetensors"
    specs = [("w", ml_dtypes.bfloat16, (4, 2)), ("b", "F32", (6,))]
    with SafetensorsWriter(path, specs, metadata={"a": "1"}) as wr:
        wr.write("b", b)  # any order
        wr.write("w", w)
    with safe_open(str(path), framework="pt") as f:
        np.testing.assert_array_equal(_torch_bits(f.get_tensor("w")), w.view(np.uint16))
        np.testing.assert_array_equal(f.get_tensor("b").numpy(), b)
        assert f.metadata() == {"a": "1"}
    assert not os.path.exists(str(path) + ".partial")


# --- streaming writer errors --------------------------------------------------------


def test_writer_rejects_wrong_shape_and_dtype(tmp_path):
    path = tmp_path / "w.safetensors"
    with SafetensorsWriter(path, [("x", np.float32, (2, 3))]) as wr:
        with pytest.raises(CheckpointError, match=r"'x'.*F32 \(2, 3\).*F32 \(3, 2\)"):
            wr.write("x", np.zeros((3, 2), np.float32))
        with pytest.raises(CheckpointError, match=r"'x'.*F32.*F64"):
            wr.write("x", np.zeros((2, 3), np.float64))
        with pytest.raises(CheckpointError, match="nope"):
            wr.write("nope", np.zeros(1, np.float32))
        wr.write("x", np.ones((2, 3), np.float32))
        with pytest.raises(CheckpointError, match="twice"):
            wr.write("x", np.ones((2, 3), np.float32))
    assert SafetensorsFile(path).get("x").sum() == 6


def test_writer_close_with_missing_tensor_raises(tmp_path):
    path = tmp_path / "w.safetensors"
    wr = SafetensorsWriter(path, [("a", "F32", (2,)), ("b", "I8", (3,))])
    wr.write("a", np.zeros(2, np.float32))
    with pytest.raises(CheckpointError, match=r"never written.*'b'"):
        wr.close()
    # No well-formed-looking file with a zero-filled tensor is left behind.
    assert not path.exists()
    assert not os.path.exists(str(path) + ".partial")


def test_two_shard_streamed_write_round_trips(tmp_path):
    rng = np.random.default_rng(1)
    tensors = {f"layers.{i}.w": rng.standard_normal((8, 4)).astype(ml_dtypes.bfloat16)
               for i in range(4)}
    tensors["embed"] = rng.standard_normal((16, 4)).astype(np.float32)
    shards = {"model-00001-of-00002.safetensors": ["embed", "layers.0.w", "layers.1.w"],
              "model-00002-of-00002.safetensors": ["layers.2.w", "layers.3.w"]}
    weight_map = {}
    for fname, names in shards.items():
        specs = [(n, tensors[n].dtype, tensors[n].shape) for n in names]
        with SafetensorsWriter(tmp_path / fname, specs, metadata={"format": "pt"}) as wr:
            for n in names:  # one tensor in memory at a time
                wr.write(n, tensors[n])
                weight_map[n] = fname
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}))

    store = TensorStore(tmp_path)
    assert store.keys() == sorted(tensors) and len(store) == 5 and list(store) == store.keys()
    assert len(store.files) == 2
    for n, a in tensors.items():
        assert store.file_of(n) == str(tmp_path / weight_map[n])
        assert store.get(n).view(np.uint8).tobytes() == a.tobytes()
        assert store.dtype(n) == dtype_name(a.dtype) and store.shape(n) == a.shape
    # And the reference package agrees on the second shard.
    with safe_open(str(tmp_path / "model-00002-of-00002.safetensors"), framework="pt") as f:
        np.testing.assert_array_equal(_torch_bits(f.get_tensor("layers.3.w")),
                                      tensors["layers.3.w"].view(np.uint16))


# --- TensorStore layouts --------------------------------------------------------------


def test_store_single_model_file(tmp_path):
    save_file(tmp_path / "model.safetensors", {"a": np.ones(2, np.float32)})
    # A stray extra file is ignored when model.safetensors exists.
    save_file(tmp_path / "other.safetensors", {"a": np.zeros(2, np.float32)})
    store = TensorStore(tmp_path)
    assert store.files == [str(tmp_path / "model.safetensors")]
    assert "a" in store and "b" not in store
    assert store.get("a").tolist() == [1.0, 1.0]


def test_store_unindexed_directory_of_shards(tmp_path):
    # OpenAI's `original/` layout: plain *.safetensors files, no index.
    save_file(tmp_path / "b.safetensors", {"block.0.w": np.ones(3, np.uint8)})
    save_file(tmp_path / "a.safetensors", {"embedding.weight": np.ones(2, np.float32)})
    (tmp_path / "config.json").write_text("{}")
    store = TensorStore(tmp_path)
    assert store.files == [str(tmp_path / "a.safetensors"), str(tmp_path / "b.safetensors")]
    assert store.keys() == ["block.0.w", "embedding.weight"]
    assert store.file_of("block.0.w") == str(tmp_path / "b.safetensors")
    assert store.get("block.0.w").tolist() == [1, 1, 1]


def test_store_index_names_missing_file(tmp_path):
    save_file(tmp_path / "s1.safetensors", {"a": np.ones(2, np.float32)})
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}))
    with pytest.raises(CheckpointError, match=r"'b'.*s2\.safetensors.*does not exist"):
        TensorStore(tmp_path)


def test_store_index_maps_key_to_shard_without_it(tmp_path):
    save_file(tmp_path / "s1.safetensors", {"a": np.ones(2, np.float32)})
    save_file(tmp_path / "s2.safetensors", {"b": np.ones(2, np.float32)})
    (tmp_path / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"a": "s2.safetensors", "b": "s2.safetensors"}}))
    with pytest.raises(CheckpointError, match=r"'a'.*s2\.safetensors.*no such tensor"):
        TensorStore(tmp_path)


def test_store_duplicate_key_across_unindexed_files(tmp_path):
    save_file(tmp_path / "x.safetensors", {"w": np.ones(2, np.float32)})
    save_file(tmp_path / "y.safetensors", {"w": np.ones(2, np.float32)})
    with pytest.raises(CheckpointError, match=r"'w'.*x\.safetensors.*y\.safetensors"):
        TensorStore(tmp_path)


def test_store_unknown_key_suggests_close_match(tmp_path):
    save_file(tmp_path / "model.safetensors",
              {"model.layers.0.mlp.up_proj.weight": np.ones(1, np.float32),
               "lm_head.weight": np.ones(1, np.float32)})
    store = TensorStore(tmp_path)
    for fn in (store.get, store.shape, store.dtype, store.file_of):
        with pytest.raises(CheckpointError) as ei:
            fn("model.layers.0.mlp.up_proj.weights")
        msg = str(ei.value)
        assert "'model.layers.0.mlp.up_proj.weights'" in msg
        assert str(tmp_path) in msg
        assert "'model.layers.0.mlp.up_proj.weight'" in msg


def test_store_pickle_only_directory(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x02not really a pickle")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"safetensors only.*pytorch_model\.bin"):
        TensorStore(tmp_path)


def test_store_empty_directory_names_it(tmp_path):
    with pytest.raises(CheckpointError, match="no safetensors") as ei:
        TensorStore(tmp_path)
    assert str(tmp_path) in str(ei.value)
    with pytest.raises(CheckpointError, match="does not exist"):
        TensorStore(tmp_path / "nowhere")


# --- header / truncation validation ------------------------------------------------

GOOD = {"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}


def _bad_entry(**kw):
    entry = dict(GOOD["t"], **kw)
    return {"bad_tensor": entry}


@pytest.mark.parametrize(
    "header, data, expect",
    [
        (_bad_entry(dtype="F99"), bytes(16), r"unknown dtype 'F99'"),
        (_bad_entry(shape=[2, -1]), bytes(16), r"shape .*\[2, -1\]"),
        (_bad_entry(shape="22"), bytes(16), r"shape"),
        (_bad_entry(shape=[True, 2]), bytes(16), r"shape"),
        (_bad_entry(data_offsets=[16, 0]), bytes(16), r"data_offsets.*\[16, 0\]"),
        (_bad_entry(data_offsets=[0]), bytes(16), r"data_offsets"),
        (_bad_entry(data_offsets=[0, 12]), bytes(16), r"12 bytes.*needs 16 bytes"),
        (_bad_entry(shape=[2, 3]), bytes(16), r"16 bytes.*\(2, 3\).*needs 24 bytes"),
        ({"bad_tensor": "F32"}, b"", r"JSON object"),
    ],
)
def test_bad_tensor_entries(tmp_path, header, data, expect):
    path = _write_raw(tmp_path / "broken.safetensors", header, data)
    with pytest.raises(CheckpointError, match=expect) as ei:
        SafetensorsFile(path)
    assert "broken.safetensors" in str(ei.value)
    assert "'bad_tensor'" in str(ei.value)


def test_file_shorter_than_header_length_field(tmp_path):
    path = tmp_path / "tiny.safetensors"
    path.write_bytes(b"\x01\x02\x03")
    with pytest.raises(CheckpointError, match=r"tiny\.safetensors.*3 bytes.*at least 8"):
        SafetensorsFile(path)


def test_header_length_larger_than_file(tmp_path):
    path = tmp_path / "big.safetensors"
    path.write_bytes(struct.pack("<Q", 10**6) + b"{}")
    with pytest.raises(CheckpointError, match=r"big\.safetensors.*header length 1000000"):
        SafetensorsFile(path)


@pytest.mark.parametrize("raw, expect", [
    (b"{not json", "not valid UTF-8 JSON"),
    (b"\xff\xfe{}", "not valid UTF-8 JSON"),
    (b"[1, 2]", "must be a JSON object"),
    (b'{"__metadata__": {"k": 1}}', "__metadata__"),
])
def test_bad_header_json(tmp_path, raw, expect):
    path = _write_raw(tmp_path / "hdr.safetensors", raw)
    with pytest.raises(CheckpointError, match=expect) as ei:
        SafetensorsFile(path)
    assert "hdr.safetensors" in str(ei.value)


def test_truncated_download(tmp_path):
    path = tmp_path / "model-00001-of-00002.safetensors"
    st_numpy.save_file({"a": np.ones(100, np.float32), "last": np.ones(50, np.float32)},
                       str(path))
    full = path.read_bytes()
    path.write_bytes(full[:-10])
    with pytest.raises(CheckpointError) as ei:
        SafetensorsFile(path)
    msg = str(ei.value)
    assert "model-00001-of-00002.safetensors" in msg and "truncated" in msg
    assert f"expected at least {len(full)} bytes" in msg and f"file has {len(full) - 10}" in msg
    # The same error surfaces through a TensorStore.
    with pytest.raises(CheckpointError, match="truncated"):
        TensorStore(tmp_path)


def test_overlapping_ranges(tmp_path):
    header = {"first": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
              "second": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},
              "empty": {"dtype": "F32", "shape": [0], "data_offsets": [4, 4]}}
    path = _write_raw(tmp_path / "ov.safetensors", header, bytes(24))
    with pytest.raises(CheckpointError, match=r"ov\.safetensors.*'first'.*'second'.*overlap"):
        SafetensorsFile(path)


def test_file_unknown_key_error(tmp_path):
    path = _write_raw(tmp_path / "k.safetensors", GOOD, bytes(16))
    sf = SafetensorsFile(path)
    assert sf.get("t").shape == (2, 2)
    with pytest.raises(CheckpointError, match=r"'tt'.*k\.safetensors.*'t'"):
        sf.get("tt")
