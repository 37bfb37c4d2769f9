"""Read and write `.safetensors` checkpoints with NumPy only.

Format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON mapping each tensor
name to {"dtype", "shape", "data_offsets": [begin, end]} (plus an optional
"__metadata__" of str -> str), then the data section; offsets are relative to the
start of the data section at byte 8 + N.

Reading follows the reference reader's rules (huggingface/safetensors, `read_metadata` and
`Metadata::validate`): N at most 100 MB, checked before the header is read; the tensors,
sorted by data_offsets, cover the data section exactly: the first starts at 0, each starts
where the previous one ends (no gap, no overlap), and the last ends at the end of the file
(no trailing bytes). Padding spaces inside the header (8-byte alignment) are legal JSON
whitespace. Only regular files are opened: a FIFO, a device or a directory is refused before
any read.

Reading memory-maps the file, so `get()` costs no copy and no RAM beyond the pages
touched. Writing streams one tensor at a time, so peak memory is one tensor.
"""

from __future__ import annotations

import difflib
import json
import mmap
import math
import os
import struct

import ml_dtypes
import numpy as np

from ..errors import CheckpointError
from .json_io import check_regular_file, parse_json, read_json

__all__ = [
    "DTYPES",
    "dtype_name",
    "SafetensorsFile",
    "TensorStore",
    "save_file",
    "SafetensorsWriter",
]

# Safetensors dtype string -> NumPy dtype. Byte order is spelled out ('<') because the
# format is little-endian whatever the machine.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
    "C64": np.dtype("<c8"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype(bool),
}

# The safetensors package lays tensors out by dtype (its enum order, largest first),
# then by name; matching it keeps every tensor aligned to its itemsize and makes our
# files byte-identical to theirs for the same tensors.
_DTYPE_RANK = {
    name: rank
    for rank, name in enumerate(
        ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "F8_E8M0", "I16", "U16", "F16",
         "BF16", "I32", "U32", "F32", "C64", "F64", "I64", "U64"]
    )
}

_HEADER_LEN_BYTES = 8
MAX_HEADER_BYTES = 100_000_000  # the reference reader's cap (MAX_HEADER_SIZE), checked before reading the header
_METADATA_KEY = "__metadata__"
_INDEX_NAME = "model.safetensors.index.json"
_SINGLE_NAME = "model.safetensors"
# Formats we deliberately refuse: loading them means unpickling, i.e. running code.
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def dtype_name(np_dtype) -> str:
    """The safetensors dtype string for a NumPy dtype (inverse of DTYPES)."""
    dt = np.dtype(np_dtype)
    if dt.byteorder == ">":
        dt = dt.newbyteorder("<")
    for name, known in DTYPES.items():
        # Compare the dtype objects, not .str: ml_dtypes types all print as '<V2' etc.
        if dt == known:
            return name
    raise CheckpointError(
        f"dtype {dt} has no safetensors equivalent; supported: "
        f"{', '.join(str(d) for d in DTYPES.values())}"
    )


def _is_int(x) -> bool:
    # bool is an int subclass in Python, but `true` is not a valid dimension or offset.
    return isinstance(x, int) and not isinstance(x, bool)


def _validate_metadata(metadata, where: str) -> dict[str, str]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()
    ):
        raise CheckpointError(
            f"{where}: {_METADATA_KEY} must be a dict of str -> str, found {metadata!r}"
        )
    return dict(metadata)


class _Entry:
    """One tensor's header record, validated."""

    __slots__ = ("dtype", "shape", "begin", "end")

    def __init__(self, dtype: str, shape: tuple[int, ...], begin: int, end: int):
        self.dtype = dtype
        self.shape = shape
        self.begin = begin
        self.end = end


def _parse_entry(path: str, name: str, info) -> _Entry:
    where = f"{path}: tensor {name!r}"
    if not isinstance(info, dict):
        raise CheckpointError(f"{where}: expected a JSON object, found {info!r}")
    dtype = info.get("dtype")
    if dtype not in DTYPES:
        raise CheckpointError(
            f"{where}: unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}"
        )
    shape = info.get("shape")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise CheckpointError(
            f"{where}: shape must be a list of non-negative ints, found {shape!r}"
        )
    offsets = info.get("data_offsets")
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(o) and o >= 0 for o in offsets)
        or offsets[0] > offsets[1]
    ):
        raise CheckpointError(
            f"{where}: data_offsets must be [begin, end] with 0 <= begin <= end, "
            f"found {offsets!r}"
        )
    begin, end = offsets
    expected = math.prod(shape) * DTYPES[dtype].itemsize
    if end - begin != expected:
        raise CheckpointError(
            f"{where}: data_offsets {offsets} span {end - begin} bytes, but shape "
            f"{tuple(shape)} of {dtype} needs {expected} bytes"
        )
    return _Entry(dtype, tuple(shape), begin, end)


def _unknown_key(name: str, where: str, known) -> CheckpointError:
    close = difflib.get_close_matches(str(name), list(known), n=3)
    hint = f"closest known keys: {close}" if close else f"no similar key among {len(known)}"
    return CheckpointError(f"tensor {name!r} not found in {where}; {hint}")


class SafetensorsFile:
    """One .safetensors file, memory-mapped: get() returns zero-copy read-only views."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.metadata: dict[str, str] = {}
        self._entries: dict[str, _Entry] = {}
        self._data_start = 0
        self._identity = None  # (size, mtime, inode) when the header was read
        self._map: np.memmap | None = None  # opened on first get()
        self._parse_header()

    def _parse_header(self) -> None:
        path = self.path
        check_regular_file(path, "safetensors file")  # before open(): opening a FIFO would block
        try:
            with open(path, "rb") as f:
                st = os.fstat(f.fileno())
                file_size = st.st_size
                head = f.read(_HEADER_LEN_BYTES)
                if len(head) < _HEADER_LEN_BYTES:
                    raise CheckpointError(
                        f"{path}: truncated: file is {file_size} bytes, expected at least "
                        f"{_HEADER_LEN_BYTES} (the header length); not a safetensors file"
                    )
                (n,) = struct.unpack("<Q", head)
                if n > MAX_HEADER_BYTES:
                    raise CheckpointError(
                        f"{path}: header length {n} bytes; expected at most {MAX_HEADER_BYTES} "
                        f"(the reference reader's cap); corrupt or not a safetensors file"
                    )
                if n > file_size - _HEADER_LEN_BYTES:
                    raise CheckpointError(
                        f"{path}: truncated: header length {n} is larger than the "
                        f"{file_size - _HEADER_LEN_BYTES} bytes after it (file has "
                        f"{file_size} bytes); expected a complete safetensors file"
                    )
                raw = f.read(n)
        except OSError as e:
            raise CheckpointError(f"{path}: cannot read safetensors file: {e}") from e

        try:
            header = parse_json(raw, "header")
        except CheckpointError as e:
            raise CheckpointError(f"{path}: header is not valid UTF-8 JSON ({e})") from None
        if not isinstance(header, dict):
            raise CheckpointError(
                f"{path}: header must be a JSON object, found {type(header).__name__}"
            )

        self.metadata = _validate_metadata(header.pop(_METADATA_KEY, None), path)
        self._entries = {name: _parse_entry(path, name, info) for name, info in header.items()}
        self._data_start = _HEADER_LEN_BYTES + n
        self._identity = (st.st_size, st.st_mtime_ns, st.st_ino)
        self._check_bounds(file_size)
        self._check_overlaps()
        self._check_coverage(file_size)

    def _check_bounds(self, file_size: int) -> None:
        if not self._entries:
            return
        last_name, last = max(self._entries.items(), key=lambda kv: kv[1].end)
        needed = self._data_start + last.end
        if needed > file_size:
            # The usual cause is an interrupted download, so say it plainly.
            raise CheckpointError(
                f"{self.path}: truncated: expected at least {needed} bytes (tensor "
                f"{last_name!r} ends at data offset {last.end}), file has {file_size}"
            )

    def _check_overlaps(self) -> None:
        # Empty tensors occupy no bytes, so they cannot overlap anything.
        spans = sorted(
            (e.begin, e.end, name) for name, e in self._entries.items() if e.end > e.begin
        )
        for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
            if b1 < e0:
                raise CheckpointError(
                    f"{self.path}: tensors {n0!r} [{b0}, {e0}) and {n1!r} [{b1}, {e1}) "
                    f"overlap; expected disjoint byte ranges"
                )

    def _check_coverage(self, file_size: int) -> None:
        """The reference reader's rule: sorted by data_offsets, each tensor starts where the previous one ends,
        from 0 to the end of the file. A header length one byte short of padding spaces would otherwise parse
        and shift every tensor by one byte."""
        end, previous = 0, "the data section starts"
        for begin, stop, name in sorted((e.begin, e.end, n) for n, e in self._entries.items()):
            if begin != end:
                kind = f"a gap of {begin - end} bytes" if begin > end else "an overlap"
                raise CheckpointError(
                    f"{self.path}: tensor {name!r} starts at data offset {begin}; expected {end}, where "
                    f"{previous} ({kind}): the tensors, sorted by data_offsets, must cover the data section "
                    f"contiguously"
                )
            end, previous = stop, f"tensor {name!r} ends"
        size = file_size - self._data_start
        if size != end:
            raise CheckpointError(
                f"{self.path}: {size - end} trailing byte(s) after the last tensor (the tensors end at data "
                f"offset {end}, the data section holds {size}); expected the tensors to cover it exactly: a "
                f"wrong header length, appended data or a damaged file"
            )

    def _open_map(self) -> np.memmap:
        """Map the file, refusing one that changed since its header was read: reading a mapped page past the
        end of a file that shrank kills the process with SIGBUS, so the size is checked on the open descriptor
        that is mapped. (A file truncated later, while a model holds the map, still does: see loader.py.)"""
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                now = (st.st_size, st.st_mtime_ns, st.st_ino)
                if now != self._identity:
                    raise CheckpointError(
                        f"{self.path}: file changed since its header was read ({self._identity[0]} bytes, "
                        f"now {st.st_size}); expected it unchanged while loading: load the checkpoint again"
                    )
                return np.memmap(f, dtype=np.uint8, mode="r")
        except OSError as e:
            raise CheckpointError(f"{self.path}: cannot map safetensors file: {e}") from e

    def _entry(self, name) -> _Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise _unknown_key(name, self.path, self._entries) from None

    def keys(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):
        return iter(self.keys())

    def shape(self, name) -> tuple[int, ...]:
        return self._entry(name).shape

    def dtype(self, name) -> str:
        return self._entry(name).dtype

    def get(self, name) -> np.ndarray:
        """A read-only view of the tensor straight into the file map (no copy)."""
        e = self._entry(name)
        if self._map is None:
            self._map = self._open_map()
        start = self._data_start + e.begin
        raw = self._map[start : self._data_start + e.end]
        # np.asarray drops the memmap subclass (whose ops would return memmaps) while
        # keeping the memmap as .base, so the view stays zero-copy and read-only.
        return np.asarray(raw).view(DTYPES[e.dtype]).reshape(e.shape)

    def __repr__(self) -> str:
        return f"SafetensorsFile({self.path!r}, {len(self._entries)} tensors)"


class TensorStore:
    """All tensors of a checkpoint directory, across shards, each resolved lazily to its file."""

    def __init__(self, directory):
        self.directory = os.fspath(directory)
        if not os.path.isdir(self.directory):
            raise CheckpointError(f"checkpoint directory {self.directory} does not exist")
        self._key_to_file: dict[str, str] = {}
        self._files: dict[str, SafetensorsFile] = {}
        self.files: list[str] = []

        index_path = os.path.join(self.directory, _INDEX_NAME)
        single_path = os.path.join(self.directory, _SINGLE_NAME)
        # lexists, not isfile: a directory, FIFO or dangling link under these names is an error, never skipped
        if os.path.lexists(index_path):
            self._load_index(index_path)
        elif os.path.lexists(single_path):
            self._add_file(single_path)
        else:
            names = sorted(n for n in os.listdir(self.directory) if n.endswith(".safetensors"))
            if not names:
                self._raise_no_safetensors()
            for n in names:
                self._add_file(os.path.join(self.directory, n))
        self.files = sorted(self._files)

    def _raise_no_safetensors(self):
        others = sorted(
            n for n in os.listdir(self.directory) if n.lower().endswith(_PICKLE_SUFFIXES)
        )
        if others:
            raise CheckpointError(
                f"{self.directory}: we load safetensors only (unpickling can run "
                f"arbitrary code), but found only pickle checkpoint files {others}; "
                f"convert them to .safetensors first"
            )
        raise CheckpointError(
            f"{self.directory}: no safetensors files (expected {_INDEX_NAME}, "
            f"{_SINGLE_NAME} or *.safetensors)"
        )

    def _open(self, path: str) -> SafetensorsFile:
        if path not in self._files:
            self._files[path] = SafetensorsFile(path)
        return self._files[path]

    def _add_file(self, path: str) -> None:
        """Register every key of an unindexed file, refusing keys seen in another file."""
        sf = self._open(path)
        for key in sf.keys():
            other = self._key_to_file.get(key)
            if other is not None:
                raise CheckpointError(
                    f"{self.directory}: tensor {key!r} is in both {other} and {path}; "
                    f"expected each key in exactly one file"
                )
            self._key_to_file[key] = path

    def _load_index(self, index_path: str) -> None:
        index = read_json(index_path, "shard index")
        weight_map = index.get("weight_map") if isinstance(index, dict) else None
        if not isinstance(weight_map, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
        ):
            raise CheckpointError(
                f"{index_path}: expected a \"weight_map\" object of tensor name -> file name"
            )
        # Headers are small, so check the whole index up front: a missing shard or a
        # wrong mapping should fail at load time, not halfway through a forward pass.
        for key, fname in weight_map.items():
            parts = fname.replace("\\", "/").split("/")
            if not fname or os.path.isabs(fname) or os.pardir in parts:
                raise CheckpointError(
                    f"{index_path}: maps tensor {key!r} to {fname!r}; expected a file name inside "
                    f"{self.directory} (no absolute path, no '..')"
                )
            path = os.path.join(self.directory, fname)
            if path not in self._files and not os.path.lexists(path):
                raise CheckpointError(
                    f"{index_path}: maps tensor {key!r} to {fname}, but {path} does not exist"
                )
            if key not in self._open(path):
                raise CheckpointError(
                    f"{index_path}: maps tensor {key!r} to {fname}, but that file has no "
                    f"such tensor"
                )
            self._key_to_file[key] = path
        # ...and every tensor of a shard must be one the index gives it: a stray or duplicated tensor (perhaps
        # with other values than the copy the index names) means the files and the index disagree.
        for path, sf in self._files.items():
            extra = [k for k in sf.keys() if self._key_to_file.get(k) != path]
            if extra:
                other = self._key_to_file.get(extra[0])
                why = f"the index maps it to {other}" if other else "the index does not list it"
                raise CheckpointError(
                    f"{path}: holds {len(extra)} tensor(s) that {index_path} does not map to this file, "
                    f"e.g. {extra[0]!r} ({why}); expected each shard to hold exactly the tensors the index "
                    f"gives it"
                )

    def _file(self, name) -> SafetensorsFile:
        try:
            return self._files[self._key_to_file[name]]
        except (KeyError, TypeError):
            raise _unknown_key(name, f"checkpoint {self.directory}", self._key_to_file) from None

    def keys(self) -> list[str]:
        return sorted(self._key_to_file)

    def __contains__(self, name) -> bool:
        return name in self._key_to_file

    def __len__(self) -> int:
        return len(self._key_to_file)

    def __iter__(self):
        return iter(self.keys())

    def file_of(self, name) -> str:
        """Path of the file that holds `name`."""
        return self._file(name).path

    def shape(self, name) -> tuple[int, ...]:
        return self._file(name).shape(name)

    def dtype(self, name) -> str:
        return self._file(name).dtype(name)

    def get(self, name) -> np.ndarray:
        return self._file(name).get(name)

    def __repr__(self) -> str:
        return f"TensorStore({self.directory!r}, {len(self)} tensors in {len(self.files)} files)"


class SafetensorsWriter:
    """Streaming writer: declare every tensor's (name, dtype, shape) first, then write each array in turn.
    Peak memory is one tensor, so a multi-GB shard can be written tensor by tensor."""

    def __init__(self, path, specs, metadata=None):
        self.path = os.fspath(path)
        metadata = _validate_metadata(metadata, self.path)
        entries: dict[str, tuple[str, tuple[int, ...]]] = {}
        for spec in specs:
            name, dtype, shape = spec
            if not isinstance(name, str) or name == _METADATA_KEY:
                raise CheckpointError(f"{self.path}: invalid tensor name {name!r}")
            if name in entries:
                raise CheckpointError(f"{self.path}: tensor {name!r} declared twice")
            dname = dtype if isinstance(dtype, str) and dtype in DTYPES else dtype_name(dtype)
            shape = tuple(shape)
            if not all(_is_int(d) or isinstance(d, np.integer) for d in shape) or any(
                d < 0 for d in shape
            ):
                raise CheckpointError(
                    f"{self.path}: tensor {name!r}: shape must be non-negative ints, "
                    f"found {shape!r}"
                )
            entries[name] = (dname, tuple(int(d) for d in shape))

        # Lay out data in the safetensors package's order and compute offsets.
        header: dict = {_METADATA_KEY: metadata} if metadata else {}
        self._spans: dict[str, tuple[str, tuple[int, ...], int]] = {}
        offset = 0
        for name in sorted(entries, key=lambda n: (-_DTYPE_RANK[entries[n][0]], n)):
            dname, shape = entries[name]
            nbytes = math.prod(shape) * DTYPES[dname].itemsize
            header[name] = {"dtype": dname, "shape": list(shape),
                            "data_offsets": [offset, offset + nbytes]}
            self._spans[name] = (dname, shape, offset)
            offset += nbytes

        raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        # Pad with spaces (valid JSON whitespace) so the data section starts 8-aligned.
        raw += b" " * (-(len(raw) + _HEADER_LEN_BYTES) % 8)
        self._data_start = _HEADER_LEN_BYTES + len(raw)
        self._written: set[str] = set()

        # Write to a side file and rename on success, so an interrupted or incomplete
        # write never leaves a well-formed-looking file with zero-filled tensors at `path`.
        self._tmp_path = self.path + ".partial"
        self._f = open(self._tmp_path, "wb")
        self._f.write(struct.pack("<Q", len(raw)))
        self._f.write(raw)
        self._f.truncate(self._data_start + offset)

    def write(self, name, array) -> None:
        """Write one declared tensor; dtype and shape must match the declaration exactly."""
        if self._f is None:
            raise CheckpointError(f"{self.path}: writer is closed")
        if name not in self._spans:
            raise _unknown_key(name, f"declared tensors of {self.path}", self._spans)
        if name in self._written:
            raise CheckpointError(f"{self.path}: tensor {name!r} written twice")
        dname, shape, offset = self._spans[name]
        array = np.asarray(array)
        # No silent casts: a wrong dtype here is a bug in the caller's conversion.
        try:
            got = dtype_name(array.dtype)
        except CheckpointError:
            got = str(array.dtype)
        if got != dname or array.shape != shape:
            raise CheckpointError(
                f"{self.path}: tensor {name!r}: declared {dname} {shape}, "
                f"got {got} {array.shape}"
            )
        # One contiguous little-endian copy at most; written as raw bytes.
        array = np.ascontiguousarray(array, dtype=DTYPES[dname])
        self._f.seek(self._data_start + offset)
        self._f.write(array.reshape(-1).view(np.uint8).data)
        self._written.add(name)

    def close(self) -> None:
        """Finish the file; raises if some declared tensor was never written."""
        if self._f is None:
            return
        missing = sorted(set(self._spans) - self._written)
        if missing:
            self._abort()
            raise CheckpointError(
                f"{self.path}: {len(missing)} declared tensor(s) never written: {missing}"
            )
        self._f.close()
        self._f = None
        os.replace(self._tmp_path, self.path)

    def _abort(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None
            try:
                os.remove(self._tmp_path)
            except OSError:
                pass

    def __enter__(self) -> SafetensorsWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            # Don't mask the original error with a "never written" one.
            self._abort()


def save_file(path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    """Write `tensors` as a standard safetensors file, one tensor at a time."""
    specs = [(name, np.asarray(a).dtype, np.shape(a)) for name, a in tensors.items()]
    with SafetensorsWriter(path, specs, metadata) as w:
        for name, a in tensors.items():
            w.write(name, a)


def mapped_span(arr):
    """(mmap, page-aligned offset, length) covering arr's bytes when arr views a memory-mapped file, else None.
    MADV_DONTNEED on a read-only file mapping only unmaps: the next read maps the same bytes back from the page
    cache."""
    base = arr
    while base is not None and not isinstance(base, mmap.mmap):
        base = getattr(base, "base", None)
    if base is None or not hasattr(base, "madvise") or arr.size == 0:
        return None
    start = np.frombuffer(base, np.uint8).ctypes.data
    lo = arr.ctypes.data - start
    hi = lo + arr.nbytes
    lo -= lo % mmap.PAGESIZE
    return base, lo, min(hi, len(base)) - lo


def release_pages(arr):
    """Unmap the pages of a memory-mapped view once its bytes have been copied elsewhere (e.g. converted to float32):
    they leave this process's RSS and stay in the OS page cache. A no-op for arrays not backed by a file mapping."""
    span = mapped_span(arr)
    if span is not None:
        mm, start, length = span
        mm.madvise(mmap.MADV_DONTNEED, start, length)
