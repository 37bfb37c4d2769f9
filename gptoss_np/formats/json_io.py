"""JSON files of a checkpoint (config.json, the shard index, tokenizer files, safetensors headers), read with
bounds: regular files only, a size cap checked before reading, nesting depth bounded, and every failure a
CheckpointError that names the file and what was expected."""

import json
import os
import stat

from ..errors import CheckpointError

MAX_JSON_BYTES = 100 * 1024 * 1024  # 100 MiB: far above any real config, index or tokenizer.json (tens of MB)
MAX_JSON_DEPTH = 64  # real configs, indexes and tokenizer files nest fewer than 10 levels


def check_regular_file(path, what="file") -> int:
    """Size in bytes of `path`, which must be a regular file (a symlink to one is fine): never a FIFO, a device
    such as /dev/zero, a socket or a directory, which would hang or exhaust memory when read."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read {what}: {e.strerror or e}") from e
    if not stat.S_ISREG(st.st_mode):
        kind = ("a directory" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) else "not a regular file")
        raise CheckpointError(f"{path}: {what} is {kind}; expected a regular file")
    return st.st_size


def _depth(value, limit) -> int:
    """Nesting depth of a parsed JSON value, stopping early once it passes `limit`."""
    stack, deepest = [(value, 1)], 0
    while stack:
        v, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return deepest


def parse_json(raw, where, max_depth=MAX_JSON_DEPTH):
    """Parse JSON bytes/str from `where`; invalid UTF-8, invalid JSON or nesting deeper than `max_depth` raise
    CheckpointError naming `where` (deep nesting would otherwise escape as RecursionError)."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray, memoryview)) else raw
        value = json.loads(text)
    except UnicodeDecodeError as e:
        raise CheckpointError(f"{where}: not valid UTF-8 ({e}); expected a UTF-8 JSON document") from e
    except RecursionError:
        raise CheckpointError(f"{where}: JSON nested too deeply; expected at most {max_depth} levels") from None
    except ValueError as e:
        raise CheckpointError(f"{where}: not valid JSON: {e}") from e
    if _depth(value, max_depth) > max_depth:
        raise CheckpointError(f"{where}: JSON nested more than {max_depth} levels deep; expected at most {max_depth}")
    return value


def read_json(path, what="JSON file", max_bytes=MAX_JSON_BYTES, max_depth=MAX_JSON_DEPTH):
    """The parsed content of the JSON file `path`: a regular file of at most `max_bytes`, nesting at most
    `max_depth` levels; anything else is a CheckpointError naming the file."""
    size = check_regular_file(path, what)
    if size > max_bytes:
        raise CheckpointError(f"{path}: {what} is {size} bytes; expected at most {max_bytes}")
    try:
        with open(path, "rb") as f:
            raw = f.read(size + 1)  # a buffer of the file's size (one of max_bytes would be allocated whole)
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read {what}: {e.strerror or e}") from e
    return parse_json(raw, path, max_depth)
