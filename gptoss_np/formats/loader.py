"""Checkpoint loading: read a checkpoint directory (config.json + safetensors, single or sharded), turn its config
into a ModelConfig and its tensors into the canonical weight dict (see params.py), lazily.

Layouts, detected from config.json: Hugging Face ("model_type" gpt2 / gpt_oss / qwen3_moe) and OpenAI's original
gpt-oss format (the `original/` directory of a gpt-oss download: no model_type, the field set of ORIGINAL_FIELDS).
A real download has the HF layout at its root and the original one beneath, so pointing at the root loads the HF
layout and pointing at `original/` loads the original one.

Name translation lives in one table per layout (layouts.py); config.json is parsed in config_json.py. Tensors are memory-mapped: float tensors are
converted to the compute dtype once, with a progress bar; MXFP4 expert blocks/scales stay packed and mapped, and
float experts are converted only for the experts a token is routed to.
"""

import json
import os

import numpy as np

from ..errors import CheckpointError
from ..model import Model
from ..params import check_weights, storage_shapes
from .config_json import config_from_canonical, config_from_hf, config_from_original, detect_layout, read_config
from .layouts import FLOAT_DTYPES, FUSED_QKV, IGNORED, NAMES, ORIGINAL_DTYPES, QKV_KEYS, ST_DTYPES, TRANSPOSED, _layer_key
from .safetensors_io import TensorStore, release_pages


# ---- tensors -> canonical weights ------------------------------------------------------------------------

class StackedExperts:
    """Qwen3 stores each expert as its own tensors; this presents them as one [E, rows, cols] array whose
    indexing reads only the experts asked for (and concatenates [gate | up] for the fused up projection)."""

    def __init__(self, store, names_per_expert):
        self.store, self.names = store, names_per_expert  # [E] lists of tensor names, concatenated on rows
        self._cache = {}
        shapes = [store.shape(n) for n in names_per_expert[0]]
        self.shape = (len(names_per_expert), sum(s[0] for s in shapes), shapes[0][1])
        self.dtype = store.get(names_per_expert[0][0]).dtype
        for names in names_per_expert:
            for n, want in zip(names, shapes):
                if store.shape(n) != want:
                    raise CheckpointError(f"{store.directory}: tensor {n!r} has shape {store.shape(n)}; expected "
                                          f"{want} like expert 0")
                if store.dtype(n) not in FLOAT_DTYPES:
                    raise CheckpointError(f"{store.directory}: tensor {n!r} has dtype {store.dtype(n)}; expected a "
                                          f"float dtype ({', '.join(FLOAT_DTYPES)})")

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
            weights[name] = StackedExperts(store, names)
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
    if not os.path.exists(dpath):
        return
    try:
        with open(dpath, encoding="utf-8") as f:
            table = json.load(f)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{dpath}: not valid JSON ({e})") from None
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
    """(ModelConfig, canonical weight dict of lazy arrays) for a checkpoint directory."""
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
    return cfg, _map_tensors(store, cfg, layout)


def check_mxfp4_scales(weights, source):
    """E8M0 255 is NaN: scan every MXFP4 scale once at load (they are 1/16 of the blocks' bytes), so a corrupt
    expert fails here rather than in the middle of a generation that happens to route to it."""
    for name, w in weights.items():
        if name.endswith(".scales"):
            bad = np.flatnonzero(np.asarray(w).reshape(-1) == 255)
            if bad.size:
                where = tuple(int(i) for i in np.unravel_index(bad[0], w.shape))
                raise CheckpointError(f"{source}: MXFP4 scales {name!r} hold {bad.size} byte(s) of 255 (NaN in E8M0),"
                                      f" first at index {where}; expected exponents 0..254")


def load_model(path, dtype="float32", progress=True):
    """Model for a checkpoint directory; float tensors converted to `dtype` once (with a progress bar)."""
    cfg, weights = load_weights(path)
    check_weights(cfg, weights, source=str(path))  # names, shapes, dtypes: before anything is converted
    check_mxfp4_scales(weights, source=str(path))
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
        weights[n] = np.asarray(src, dtype=dtype)
        if weights[n] is not src and not np.shares_memory(weights[n], src):
            release_pages(src)  # the bf16 pages were read once for the copy: drop them from RSS (page cache keeps them)
    return Model(cfg, weights, dtype=dtype, source=str(path))
