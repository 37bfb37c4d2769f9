"""Checkpoint loading: read a checkpoint directory (config.json + safetensors, single or sharded), turn its config
into a ModelConfig and its tensors into the canonical weight dict (see params.py), lazily.

Layouts, detected from config.json: Hugging Face ("model_type" gpt2 / gpt_oss / qwen3_moe) and OpenAI's original
gpt-oss format (the `original/` directory of a gpt-oss download: no model_type, the field set of ORIGINAL_FIELDS).
A real download has the HF layout at its root and the original one beneath, so pointing at the root loads the HF
layout and pointing at `original/` loads the original one.

Name translation lives in one table per layout (layouts.py); config.json is parsed in config_json.py. Tensors are memory-mapped: float tensors are
converted to the compute dtype once, with a progress bar; MXFP4 expert blocks/scales stay packed and mapped, and
float experts are converted only for the experts a token is routed to.

Values are checked at load (check_values): every float tensor the model reads must be finite, and every MXFP4 scale
at most MAX_FINITE_SCALE, so a corrupt file fails here with the tensor named, never as NaN logits later.

Files that change under a running model: the loader re-checks each file's size, mtime and inode when it maps it, so a
file rewritten between reading its header and mapping it is refused. Afterwards the NumPy model keeps some tensors
mapped (MXFP4 experts, an untied embedding, float experts): replacing a file by renaming a new one over it, as
downloads and our writer do, is harmless (the map keeps the old file), but truncating or rewriting it in place kills
the process with SIGBUS on the next read of a vanished page, and other in-place edits change the weights silently.
Don't edit checkpoint files in place while a model runs. The torch twin copies every tensor at load and is immune.
"""

import bisect
import os

import ml_dtypes
import numpy as np

from ..errors import CheckpointError
from ..model import Model
from ..params import check_weights, storage_shapes
from .config_json import config_from_canonical, config_from_hf, config_from_original, detect_layout, read_config
from .layouts import FLOAT_DTYPES, FUSED_QKV, IGNORED, NAMES, ORIGINAL_DTYPES, QKV_KEYS, ST_DTYPES, TRANSPOSED, _layer_key
from .json_io import read_json
from .safetensors_io import TensorStore, release_pages


# ---- tensors -> canonical weights ------------------------------------------------------------------------

class StackedExperts:
    """Qwen3 stores each expert as its own tensors; this presents them as one [E, rows, cols] array whose
    indexing reads only the experts asked for (and concatenates [gate | up] for the fused up projection)."""

    def __init__(self, store, names_per_expert, part, cfg_name):
        """Each stored tensor must have shape `part`, what config `cfg_name` gives one piece: gate and up [F, D]
        each (not only their sum), down [D, F]."""
        self.store, self.names = store, names_per_expert  # [E] lists of tensor names, concatenated on rows
        self._cache = {}
        self.shape = (len(names_per_expert), part[0] * len(names_per_expert[0]), part[1])
        first = names_per_expert[0][0]
        self.dtype = store.get(first).dtype
        for names in names_per_expert:
            for n in names:
                if store.shape(n) != part:
                    raise CheckpointError(f"{store.directory}: tensor {n!r} has shape {store.shape(n)}; config "
                                          f"{cfg_name!r} expects {part}")
                if store.dtype(n) not in FLOAT_DTYPES:
                    raise CheckpointError(f"{store.directory}: tensor {n!r} has dtype {store.dtype(n)}; expected a "
                                          f"float dtype ({', '.join(FLOAT_DTYPES)})")
                if store.dtype(n) != store.dtype(first):  # stacking F16 with BF16 fails (no common dtype)
                    raise CheckpointError(f"{store.file_of(n)}: tensor {n!r} has dtype {store.dtype(n)}; expected "
                                          f"{store.dtype(first)} like {first!r}: one dtype for all experts of a layer")

    CACHE_BYTES = 1 << 30  # fused [gate | up] copies kept for reuse, up to 1 GiB per stack

    def __getitem__(self, ids):
        if np.ndim(ids) == 0:  # one expert: [rows, cols]
            e = int(ids)
            if e in self._cache:
                return self._cache[e]
            fused = np.concatenate([self.store.get(n) for n in self.names[e]])
            if (len(self._cache) + 1) * fused.nbytes <= self.CACHE_BYTES:
                self._cache[e] = fused
            return fused
        return np.stack([self[e] for e in ids])  # [n, rows, cols]


def _other_layout_hint(store, layout):
    """A hint when the tensors belong to the other gpt-oss layout than the one config.json describes."""
    if layout == "original" and "model.embed_tokens.weight" in store:
        return (" — the tensors are in the Hugging Face layout (model.embed_tokens.weight, model.layers.N...) but "
                "config.json is OpenAI's original format; the two do not belong together")
    if layout != "original" and "embedding.weight" in store and "block.0.attn.qkv.weight" in store:
        return (" — the tensors are in OpenAI's original layout (embedding.weight, block.N...) but config.json is a "
                f"Hugging Face {layout!r} config; use the original config.json (the original/ directory of a download)")
    return ""


def _fused_qkv(store, src, key, cfg, layout):
    """One of q, k, v as a view into the fused tensor `src` (rows q | k | v of [out, in]; gpt2's Conv1D [in, out]
    holds them as columns), after checking the fused tensor's shape."""
    part, kind = key.split(".")[3], key.split(".")[4]
    sizes = (cfg.q_dim, cfg.kv_dim, cfg.kv_dim)
    total, D = sum(sizes), cfg.d_model
    cols = kind == "weight" and any(key.endswith(t) for t in TRANSPOSED.get(layout, ()))
    want = (total,) if kind == "bias" else ((D, total) if cols else (total, D))
    got = tuple(store.shape(src))
    if got != want:
        raise CheckpointError(f"{store.directory}: tensor {src!r} has shape {got}; config {cfg.name!r} expects {want}"
                              f" (q | k | v {'columns' if cols else 'rows'} of {sizes[0]}, {sizes[1]}, {sizes[2]})")
    t = store.get(src)
    lo = sum(sizes[:"qkv".index(part)])
    hi = lo + sizes["qkv".index(part)]
    return t[:, lo:hi].T if cols else t[lo:hi]


def _map_tensors(store, cfg, layout):
    """canonical name -> array (or lazy expert stack) for every parameter the config expects."""
    table = NAMES[layout]
    prefix = ""
    if layout == "gpt2" and "transformer.wte.weight" in store:  # save_pretrained adds it; the Hub file has none
        prefix = "transformer."
    weights, used = {}, set()
    expected = storage_shapes(cfg)
    for name, (want, _kind) in expected.items():
        key, i = _layer_key(name)
        if key not in table:
            raise CheckpointError(f"{store.directory}: no {layout} checkpoint tensor maps to {name!r}")
        src = table[key].replace("{i}", str(i))
        if layout == "qwen3_moe" and "{e}" in src:
            names = [[src.replace("{e}", str(e)).replace("{gate,up}", part) for part in
                      (("gate", "up") if "{gate,up}" in src else ("",))] for e in range(cfg.n_experts)]
            names = [[n.replace("..", ".") for n in ns] for ns in names]
            for ns in names:
                for n in ns:
                    if n not in store:
                        store.get(n)  # raises a CheckpointError naming the missing tensor and close matches
                    used.add(n)
            weights[name] = StackedExperts(store, names, (want[1] // len(names[0]), want[2]), cfg.name)
            continue
        src = prefix + src
        if src not in store:
            hint = ""
            if name.endswith(".weight") and ".experts." in name and (src + "_blocks") in store:
                hint = (" — the checkpoint has MXFP4 '_blocks'/'_scales' experts but config.json has no "
                        "quantization_config {quant_method: mxfp4}; refusing to guess")
            if name.endswith((".blocks", ".scales")) and src.rsplit("_", 1)[0] in store:
                hint = (" — config.json's quantization_config says mxfp4 but the checkpoint holds float experts "
                        f"({src.rsplit('_', 1)[0]!r}); remove quantization_config or quantise the experts")
            hint = hint or _other_layout_hint(store, layout)
            raise CheckpointError(f"{store.directory}: missing tensor {src!r} (for {name!r}){hint}")
        used.add(src)
        if layout in FUSED_QKV and key in QKV_KEYS:
            weights[name] = _fused_qkv(store, src, key, cfg, layout)
            continue
        arr = store.get(src)
        transposed = any(key.endswith(t) for t in TRANSPOSED.get(layout, ()))
        if transposed:
            arr = arr.T if arr.ndim == 2 else arr.transpose(0, 2, 1)
        if tuple(arr.shape) != tuple(want):
            stored = f" (stored transposed as {tuple(store.shape(src))})" if transposed else ""
            raise CheckpointError(f"{store.directory}: tensor {src!r} read as {name!r} has shape {tuple(arr.shape)}"
                                  f"{stored}; config {cfg.name!r} expects {tuple(want)}")
        weights[name] = arr
    ignored = IGNORED.get(layout, ())
    extra = [k for k in store.keys() if k not in used and not k.endswith(ignored)]
    if extra:
        raise CheckpointError(f"{store.directory}: {len(extra)} tensor(s) not used by config {cfg.name!r} "
                              f"(layout {layout}), e.g. {extra[:5]}; config.json and the weights disagree")
    return weights


def check_dtypes_json(path, store):
    """dtypes.json beside an original config is optional (OpenAI's loader never reads it: the safetensors headers
    carry the dtypes); when present it must agree with them, so a mixed-up download is caught by name."""
    dpath = os.path.join(os.fspath(path), "dtypes.json")
    if not os.path.lexists(dpath):
        return
    table = read_json(dpath, "dtypes.json")
    if not isinstance(table, dict):
        raise CheckpointError(f"{dpath}: expected a JSON object of tensor name -> dtype, found {type(table).__name__}")
    for name, kind in table.items():
        if kind not in ORIGINAL_DTYPES:
            raise CheckpointError(f"{dpath}: tensor {name!r} has dtype {kind!r}; expected one of "
                                  f"{sorted(ORIGINAL_DTYPES)}")
        if name not in store:
            raise CheckpointError(f"{dpath}: lists tensor {name!r}, which the safetensors files do not hold")
        if store.dtype(name) != ORIGINAL_DTYPES[kind]:
            raise CheckpointError(f"{dpath}: tensor {name!r} is {kind} here but {store.dtype(name)} in "
                                  f"{store.file_of(name)}; expected safetensors dtype {ORIGINAL_DTYPES[kind]}")


def load_weights(path):
    """(ModelConfig, canonical weight dict of lazy arrays) for a checkpoint directory; names, shapes and values
    checked (check_values)."""
    hf, cpath = read_config(path)
    layout = detect_layout(hf, cpath)
    store = TensorStore(path)
    probe = {"gpt2": ["wte.weight", "transformer.wte.weight"], "original": ["embedding.weight"],
             "canonical": ["embed.weight"]}.get(
        layout, ["model.embed_tokens.weight"])
    st = next((store.dtype(p) for p in probe if p in store), None)
    if st is not None and st not in ST_DTYPES:
        raise CheckpointError(f"{path}: embedding dtype {st}; expected one of {sorted(ST_DTYPES)}")
    name = os.path.basename(os.path.normpath(path))
    if layout == "original":
        if name == "original":  # a download's original/ directory: name it after the download
            name = os.path.basename(os.path.dirname(os.path.normpath(os.path.abspath(path)))) + "/original"
        check_dtypes_json(path, store)
        quant = "mxfp4" if "block.0.mlp.mlp1_weight.blocks" in store else "none"
        cfg = config_from_original(hf, weight_dtype=ST_DTYPES.get(st, "bfloat16"), expert_quant=quant, name=name,
                                   where=cpath)
    elif layout == "canonical":
        cfg = config_from_canonical(hf, where=cpath).replace(name=name)
    else:
        cfg = config_from_hf(hf, weight_dtype=ST_DTYPES.get(st, "float32"), name=name, where=cpath)
    weights = _map_tensors(store, cfg, layout)
    check_values(store, weights)
    return cfg, weights


# ---- values -------------------------------------------------------------------------------------------------

# A float is NaN or +-inf iff its exponent bits are all ones, i.e. iff its bit pattern, read as a signed integer, is
# above the largest positive finite one (+inf, NaN) or, read as unsigned, above the largest negative finite one
# (-inf, -NaN). Two max-reductions per chunk, no temporaries: ~15x faster than np.isfinite on bfloat16.
_FINITE_BITS = {  # dtype -> (signed view, largest finite positive pattern, unsigned view, largest finite negative)
    "BF16": (np.int16, 0x7F7F, np.uint16, 0xFF7F),
    "F16": (np.int16, 0x7BFF, np.uint16, 0xFBFF),
    "F32": (np.int32, 0x7F7F_FFFF, np.uint32, 0xFF7F_FFFF),
    "F64": (np.int64, 0x7FEF_FFFF_FFFF_FFFF, np.uint64, 0xFFEF_FFFF_FFFF_FFFF),
}
# The largest E8M0 scale whose decoded values, up to E2M1's 6.0 * 2**(s - 127), stay finite in float32 and bfloat16
# (both top out near 2**128): 252. 253 and 254 overflow to inf, 255 is NaN.
MAX_FINITE_SCALE = 127 + int(np.floor(np.log2(min(float(np.finfo(np.float32).max),
                                                  float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)) / 6.0)))
_CHUNK_BYTES = 1 << 22  # scanned at a time, its file pages released after: RSS stays flat on a 20b load


def _chunks(a):
    """Flat pieces of the contiguous mapped tensor `a`, each one's file pages released once it has been read."""
    flat = a.reshape(-1)
    step = max(1, _CHUNK_BYTES // a.itemsize)
    for start in range(0, flat.size, step):
        piece = flat[start:start + step]
        yield start, piece
        release_pages(piece)


def _sources(store, weights):
    """stored tensor name -> the canonical names read from it. Each canonical weight is a view (slice, transpose)
    into one stored tensor, whose first byte tells which, or a lazy stack of stored tensors (StackedExperts)."""
    spans = sorted((a.ctypes.data, k) for k in store.keys() if (a := store.get(k)).nbytes)
    starts = [p for p, _ in spans]
    out = {}
    for name, w in weights.items():
        if isinstance(w, StackedExperts):
            keys = [k for ks in w.names for k in ks]
        else:
            keys = [spans[bisect.bisect_right(starts, w.ctypes.data) - 1][1]] if w.size else []
        for k in keys:
            out.setdefault(k, []).append(name)
    return out


def _first_bad(a, bad):
    """(count, index, value) of the elements of stored tensor `a` where bad(piece) is True, read in chunks."""
    count, first = 0, None
    for start, piece in _chunks(a):
        hits = np.flatnonzero(bad(piece))
        if hits.size and first is None:
            first = start + int(hits[0])
        count += hits.size
    index = tuple(int(i) for i in np.unravel_index(first, a.shape))
    return count, index, a[index]


def check_values(store, weights):
    """Every float tensor the model reads must be finite and every MXFP4 scale at most MAX_FINITE_SCALE: scanned
    once at load, in chunks straight from the file map, so a corrupt tensor fails here, named, rather than as NaN
    logits in a generation that happens to route to it. Cost: 2.5-8 GB/s on one core of a busy 2-vCPU VM (warm
    page cache), i.e. 0.5-1.5 s for gpt-oss-20b's 3.6 GB of bf16 tensors and 0.6 GB of scales."""
    for key, names in _sources(store, weights).items():
        dtype, a = store.dtype(key), store.get(key)
        read_as = f"(read as {', '.join(sorted(set(names)))})"
        if dtype == "U8" and names[0].endswith(".scales"):
            if max((int(p.max()) for _, p in _chunks(a)), default=0) > MAX_FINITE_SCALE:
                count, index, value = _first_bad(a, lambda p: p > MAX_FINITE_SCALE)
                why = "NaN in E8M0" if value == 255 else \
                    f"its values up to 6.0 * 2**{int(value) - 127} overflow float32 to inf"
                raise CheckpointError(
                    f"{store.file_of(key)}: MXFP4 scales {key!r} {read_as} hold {count} byte(s) above "
                    f"{MAX_FINITE_SCALE}, first {int(value)} at index {index} ({why}); expected exponents "
                    f"0..{MAX_FINITE_SCALE}, whose decoded values stay finite")
        elif dtype in _FINITE_BITS:
            signed, top, unsigned, utop = _FINITE_BITS[dtype]
            if any(p.view(signed).max() > top or p.view(unsigned).max() > utop for _, p in _chunks(a)):
                count, index, value = _first_bad(a, lambda p: (p.view(signed) > top) | (p.view(unsigned) > utop))
                raise CheckpointError(
                    f"{store.file_of(key)}: tensor {key!r} {read_as} holds {count} NaN/inf value(s), first "
                    f"{float(value)} at index {index}; expected finite weights")


def float_max(dtype) -> float:
    """The largest finite value of a NumPy float dtype (bfloat16 included)."""
    return float(ml_dtypes.finfo(dtype).max)


def overflow_error(source, name, stored, target, target_max):
    """The error for a finite stored tensor that overflows to inf in the compute dtype (float64 -> float32,
    float32 -> bfloat16 or float16): the loaders check the converted copy whenever the compute dtype is narrower."""
    return CheckpointError(f"{source}: tensor {name!r} ({stored}) holds values beyond {target}'s range "
                           f"(+-{target_max:.4g}), which become inf when converted; expected weights that fit the "
                           f"compute dtype")


def load_model(path, dtype="float32", progress=True):
    """Model for a checkpoint directory; float tensors converted to `dtype` once (with a progress bar)."""
    cfg, weights = load_weights(path)
    check_weights(cfg, weights, source=str(path))  # names, shapes, dtypes: before anything is converted
    dtype = np.dtype(dtype)
    names = [n for n in weights if not n.endswith((".blocks", ".scales")) and ".mlp.experts." not in n or
             n.endswith(".bias")]
    if not cfg.tie_embeddings:  # the model converts only the rows it looks up (see Model._lookup_only)
        names.remove("embed.weight")
    try:
        from tqdm import tqdm
        it = tqdm(names, desc=f"loading {cfg.name}", unit="tensor", disable=not progress or len(names) < 50)
    except ImportError:  # pragma: no cover
        it = names
    for n in it:
        src = weights[n]
        with np.errstate(over="ignore"):  # checked just below, with the tensor named
            weights[n] = np.asarray(src, dtype=dtype)
        if float_max(dtype) < float_max(src.dtype) and not np.isfinite(weights[n]).all():
            raise overflow_error(path, n, src.dtype, dtype, float_max(dtype))
        if weights[n] is not src and not np.shares_memory(weights[n], src):
            release_pages(src)  # the bf16 pages were read once for the copy: drop them from RSS (page cache keeps them)
    return Model(cfg, weights, dtype=dtype, source=str(path))
