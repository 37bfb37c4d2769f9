"""Write random checkpoints in the real published layouts, streaming, from a config alone.

    python -m gptoss_np write-checkpoint --preset gpt-oss-20b --layout hf --out DIR [--seed N]
    python -m gptoss_np write-checkpoint --preset gpt-oss-20b --layout original --out DIR/original --scale-down

    write_checkpoint(cfg, out_dir, layout="hf", seed=0, progress=True)   # Python API
    checkpoint_plan(cfg, layout="hf")  # [(shard_file, name, shape, dtype, nbytes), ...] without writing anything

What a layout looks like on disk (names, dtypes, shapes, shard files, index) follows the published repositories:

  gpt-oss, "hf"        config.json (with quantization_config when the experts are MXFP4), generation_config.json,
                       model.safetensors.index.json and shards model-0000k-of-0000{n-1}.safetensors -- named from 0
                       with "of" = the number of shards minus one, as OpenAI's converter names them. The converter walks
                       the ORIGINAL keys in lexicographic order (block.0, block.1, block.10, ..., embedding, norm,
                       unembedding; qkv split into q, k, v) and starts a new shard when the next tensor would take the
                       shard past 4.8e9 bytes; for gpt-oss-20b that gives the published three shards exactly.
  gpt-oss, "original"  config.json (OpenAI's fields), dtypes.json and model.safetensors. Above 16 GiB (gpt-oss-120b)
                       shards model--0000k-of-0000n.safetensors (1-based, double hyphen) of at most 10e9 bytes with an
                       index; the 120b file names and count are published, its boundaries are not (our rule).
  GPT-2, "hf"          one model.safetensors, F32, keys without the "transformer." prefix, Conv1D matrices [in, out],
                       fused c_attn (columns q | k | v), like the Hub file (we write no attn.bias mask buffers).
  Qwen3-MoE, "hf"      per-expert tensors, shards model-0000k-of-0000n.safetensors (1-based) of at most 4e9 bytes
                       with an index (save_pretrained's greedy rule, in module order), or one model.safetensors.

Weights are random (see RandomWeights): every tensor, and every expert of an expert tensor, has its own random stream
keyed by (seed, canonical name, expert), so the same config and seed give the same weights in every layout and the
files are identical run to run. Experts of an MXFP4 config are drawn in float32 and MXFP4-encoded, exactly as
mxfp4.mxfp4_encode rounds (a faster equivalent is used here; the tests check they agree bit for bit).

Memory: tensors are generated, written and freed one at a time (big ones in row chunks, experts one by one), so the
peak is about the largest tensor (the 1.16 GB embedding of gpt-oss) plus a few chunks, whatever the checkpoint size.
Name translation comes from layouts.NAMES (one table per layout), so writer and loader cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from collections import namedtuple

import numpy as np

from ..config import PRESETS, get_config, scale_down
from ..errors import CheckpointError, ConfigError, InputError
from .config_json import canonical_config_json
from .layouts import FUSED_QKV, NAMES, ORIGINAL_FIELDS, QKV_KEYS, TRANSPOSED, _layer_key
from ..params import param_shapes, storage_shapes
from .safetensors_io import DTYPES, SafetensorsWriter

__all__ = ["LAYOUTS", "PlanEntry", "checkpoint_plan", "family", "write_checkpoint", "add_arguments", "run",
           "RandomWeights", "GivenWeights", "mxfp4_encode_fast"]

LAYOUTS = ("hf", "original", "canonical")
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"

GPT_OSS_SHARD_BYTES = 4_800_000_000  # OpenAI's converter (convert_gpt_oss_weights_to_hf.py)
QWEN_SHARD_BYTES = 4_000_000_000  # save_pretrained(max_shard_size="4GB"): 16 shards for Qwen3-30B-A3B, as published
ORIGINAL_SINGLE_FILE_MAX = 1 << 34  # 20b's 13.8 GB is one file, 120b's 65 GB is seven (rule: ours)
ORIGINAL_SHARD_BYTES = 10_000_000_000

PlanEntry = namedtuple("PlanEntry", "file name shape dtype nbytes")

# ---- which configs each layout can express ------------------------------------------------------------------

FAMILIES = {
    "gpt2": dict(norm="layernorm", norm_cast="after_weight", positions="learned", activation="gelu_tanh", ffn="dense",
                 qk_norm=False, sinks=False, attn_bias=True, mlp_bias=True, tie_embeddings=True, expert_quant="none"),
    "gpt_oss": dict(norm="rmsnorm", norm_cast="after_weight", positions="rope", activation="swiglu_oss", ffn="moe",
                    router="topk_softmax", qk_norm=False, sinks=True, attn_bias=True, mlp_bias=True,
                    tie_embeddings=False, swiglu_alpha=1.702),
    "qwen3_moe": dict(norm="rmsnorm", norm_cast="before_weight", positions="rope", activation="swiglu", ffn="moe",
                      router="softmax_topk", qk_norm=True, sinks=False, attn_bias=False, mlp_bias=False,
                      tie_embeddings=False, expert_quant="none"),
}


def _family_misses(cfg, fam):
    misses = [f"{f}={getattr(cfg, f)!r} (expected {v!r})" for f, v in FAMILIES[fam].items() if getattr(cfg, f) != v]
    windows = {w for w in cfg.layer_windows if w is not None}
    if fam == "gpt2":
        if cfg.n_kv_heads != cfg.n_heads or cfg.q_dim != cfg.d_model:
            misses.append(f"n_kv_heads={cfg.n_kv_heads}, n_heads*head_dim={cfg.q_dim} (expected n_heads and d_model)")
    if fam in ("gpt2", "qwen3_moe") and windows:
        misses.append(f"layer_windows={cfg.layer_windows!r} (expected no sliding window)")
    if fam == "gpt_oss" and len(windows) > 1:
        misses.append(f"layer_windows={cfg.layer_windows!r} (expected one window size)")
    return misses


def family(cfg):
    """'gpt2' | 'gpt_oss' | 'qwen3_moe': the published model whose checkpoint layout can hold `cfg`, or a
    ConfigError naming the fields that no layout can express (e.g. a chain step halfway between GPT-2 and gpt-oss)."""
    misses = {fam: _family_misses(cfg, fam) for fam in FAMILIES}
    best = min(misses, key=lambda f: len(misses[f]))
    if misses[best]:
        raise ConfigError(f"{cfg.name}: no checkpoint layout holds this config; closest is {best!r}, which needs "
                          f"{'; '.join(misses[best])}")
    return best


def _check_original(cfg):
    """OpenAI's original format can only say what its config fields say: raise ConfigError otherwise."""
    y = cfg.rope_scaling
    problems = []
    if cfg.norm_eps != 1e-5:
        problems.append(f"norm_eps={cfg.norm_eps} (hard-coded 1e-5)")
    if y is None or y.truncate:
        problems.append(f"rope_scaling={y!r} (expected YaRN with truncate=False)")
    elif cfg.context_length != y.original_context * y.factor:
        problems.append(f"context_length={cfg.context_length} (expected original_context * factor = "
                        f"{y.original_context * y.factor:g})")
    windows = {w for w in cfg.layer_windows if w is not None}
    pattern = tuple((next(iter(windows)) if windows else None) if i % 2 == 0 else None for i in range(cfg.n_layers))
    if not windows or cfg.layer_windows != pattern:
        problems.append(f"layer_windows={cfg.layer_windows!r} (expected a window on the even layers only)")
    if problems:
        raise ConfigError(f"{cfg.name}: OpenAI's original layout cannot express {'; '.join(problems)}")


# ---- the tensor plan ----------------------------------------------------------------------------------------

_WEIGHT_ST = {"bfloat16": "BF16", "float32": "F32"}
_QWEN_ORDER = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "self_attn.q_norm",
               "self_attn.k_norm", "mlp.gate.", "mlp.experts.", "input_layernorm", "post_attention_layernorm")


def _stored(cfg, table_name):
    """{stored name: (shape, safetensors dtype, recipe, canonical storage name)} in canonical order. A recipe says
    how to build the tensor from the canonical random weights (see RandomWeights.make)."""
    table = NAMES[table_name]
    transposed_keys = TRANSPOSED.get(table_name, ())
    wdt = _WEIGHT_ST[cfg.weight_dtype]
    shapes = param_shapes(cfg)
    out = {}
    for cname, (shape, kind) in storage_shapes(cfg).items():
        key, i = _layer_key(cname)
        src = table[key].replace("{i}", str(i))
        transposed = any(key.endswith(t) for t in transposed_keys)
        if "{e}" in src:  # Qwen3: one tensor per expert (and the fused up = [gate | up] split in two)
            E, rows, cols = shape
            parts = (("gate", 0, rows // 2), ("up", rows // 2, rows)) if "{gate,up}" in src else (("", 0, rows),)
            for e in range(E):
                for part, lo, hi in parts:
                    name = src.replace("{e}", str(e)).replace("{gate,up}", part).replace("..", ".")
                    out[name] = ((hi - lo, cols), wdt, ("expert", cname, e, lo, hi), cname)
            continue
        if table_name in FUSED_QKV and key in QKV_KEYS:  # q, k, v concatenated along the output axis
            if src not in out:
                out[src] = (None, wdt, ("cat", [], transposed), cname)
            out[src][2][1].append(cname)
            continue
        if kind == "uint8":
            base = cname.rsplit(".", 1)[0] + ".weight"
            out[src] = (shape, "U8", (cname.rsplit(".", 1)[1], base), cname)
        elif cname in shapes and len(shape) == 3:  # float experts [E, out, in] (HF gpt-oss: [E, in, out])
            out[src] = ((shape[0], shape[2], shape[1]) if transposed else shape, wdt, ("experts", cname, transposed),
                        cname)
        else:
            out[src] = (shape[::-1] if transposed else shape, wdt, ("tensor", cname, transposed), cname)
    for name, (shape, dt, recipe, cname) in out.items():  # the fused shapes, now that every part is known
        if recipe[0] == "cat":
            parts = [shapes[c] for c in recipe[1]]
            fused = (sum(p[0] for p in parts),) + tuple(parts[0][1:])
            out[name] = (fused[::-1] if recipe[2] else fused, dt, recipe, cname)
    return out


def _greedy(names, nbytes, limit):
    """save_pretrained's / OpenAI's converter's rule: a new shard when the next tensor would pass `limit` bytes."""
    shards, size = [[]], 0
    for n in names:
        if shards[-1] and size + nbytes[n] > limit:
            shards.append([])
            size = 0
        shards[-1].append(n)
        size += nbytes[n]
    return shards


def _plan(cfg, layout="hf", max_shard_bytes=None):
    """(plan entries in writing order, {name: recipe}, family, sharded?)."""
    if layout not in LAYOUTS:
        raise ConfigError(f"layout={layout!r}; expected one of {LAYOUTS}")
    if layout == "canonical":  # this project's own layout: canonical names, one file, any config
        stored = _stored(cfg, "canonical")
        plan = [PlanEntry(SINGLE, n, tuple(s), dt, math.prod(s) * DTYPES[dt].itemsize)
                for n, (s, dt, _, _) in stored.items()]
        return plan, {n: v[2] for n, v in stored.items()}, None, False
    fam = family(cfg)
    if layout == "original":
        if fam != "gpt_oss":
            raise ConfigError(f"{cfg.name}: layout 'original' is OpenAI's gpt-oss format; a {fam!r} config is "
                              "written with layout 'hf'")
        _check_original(cfg)
    table = "original" if layout == "original" else fam
    stored = _stored(cfg, table)
    nbytes = {n: math.prod(s) * DTYPES[dt].itemsize for n, (s, dt, _, _) in stored.items()}
    total = sum(nbytes.values())
    if table == "original":
        order = sorted(stored)
    elif table == "gpt_oss":  # the converter walks the original keys in lexicographic order, q, k, v in turn
        orig = NAMES["original"]

        def walk(name):
            key, i = _layer_key(stored[name][3])
            return orig[key].replace("{i}", str(i)), "qkv".find(key.split(".")[2]) if key in QKV_KEYS else -1
        order = sorted(stored, key=walk)
    elif table == "qwen3_moe":  # transformers' module order (the state dict save_pretrained shards)
        def module(name):
            if not name.startswith("model.layers."):
                return (("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight").index(name) * 2, 0, 0)
            rest = name.split(".", 3)[3]
            rank = next(j for j, p in enumerate(_QWEN_ORDER) if rest.startswith(p))
            e, proj = 0, 0
            if rest.startswith("mlp.experts."):
                _, _, e, proj = rest.split(".", 3)
                e, proj = int(e), ("gate_proj", "up_proj", "down_proj").index(proj.split(".")[0])
            return (1, int(name.split(".")[2]), rank, e, proj)
        order = sorted(stored, key=module)
    else:
        order = list(stored)

    if table == "gpt_oss":
        shards = _greedy(order, nbytes, max_shard_bytes or GPT_OSS_SHARD_BYTES)
        files = [f"model-{k:05d}-of-{len(shards) - 1:05d}.safetensors" for k in range(len(shards))]
        sharded = True  # the converter always writes an index, even for one shard
    elif table == "original":
        if max_shard_bytes is None and total <= ORIGINAL_SINGLE_FILE_MAX:
            shards = [order]
        else:
            shards = _greedy(order, nbytes, max_shard_bytes or ORIGINAL_SHARD_BYTES)
        files = [f"model--{k + 1:05d}-of-{len(shards):05d}.safetensors" for k in range(len(shards))]
        sharded = len(shards) > 1
    else:
        limit = max_shard_bytes or (QWEN_SHARD_BYTES if table == "qwen3_moe" else float("inf"))
        shards = _greedy(order, nbytes, limit)
        files = [f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors" for k in range(len(shards))]
        sharded = len(shards) > 1
    if not sharded:
        files = [SINGLE]
    plan = [PlanEntry(f, n, tuple(stored[n][0]), stored[n][1], nbytes[n]) for f, names in zip(files, shards)
            for n in names]
    return plan, {n: v[2] for n, v in stored.items()}, fam, sharded


def checkpoint_plan(cfg, layout="hf", max_shard_bytes=None):
    """Every tensor write_checkpoint would write, in order, without writing: [PlanEntry(file, name, shape, dtype,
    nbytes)] (PlanEntry is a tuple). dtype is the safetensors string (BF16, F32, U8)."""
    return _plan(cfg, layout, max_shard_bytes)[0]


# ---- random weights ---------------------------------------------------------------------------------------------

_E2M1_UP = ((0.25, False), (0.75, True), (1.25, False), (1.75, True), (2.5, False), (3.5, True), (5.0, False))


def mxfp4_encode_fast(w, blocks_out=None, scales_out=None):
    """mxfp4.mxfp4_encode for finite float32 [R, K] (K % 32 == 0), bit for bit, several times faster: the block
    exponent from frexp, the scaling as a multiplication by an exact power of two, and the E2M1 rounding (nearest,
    ties to the even code) as seven comparisons against the midpoints between neighbouring magnitudes (>= where the
    upper neighbour is the even code). Writes into blocks_out [R, K/32, 16] / scales_out [R, K/32] when given."""
    w = np.asarray(w, dtype=np.float32)
    R, K = w.shape
    G = K // 32
    w = w.reshape(R, G, 32)
    mag = np.abs(w)
    amax = mag.max(axis=-1)
    m, p = np.frexp(np.where(amax > 0, amax, np.float32(6.0)))
    e = np.clip(p.astype(np.int32) - 3 + (m > 0.75), -127, 127)  # smallest e with amax <= 6 * 2**e
    mag *= np.ldexp(np.float32(1.0), -e)[..., None]  # exact power of two (2**-127 is a float32 subnormal)
    code = np.zeros(mag.shape, np.uint8)
    for mid, up in _E2M1_UP:
        code += (mag >= mid) if up else (mag > mid)
    code |= np.signbit(w).view(np.uint8) << 3
    blocks = blocks_out if blocks_out is not None else np.empty((R, G, 16), np.uint8)
    np.bitwise_or(code[..., 0::2], code[..., 1::2] << 4, out=blocks)
    scales = scales_out if scales_out is not None else np.empty((R, G), np.uint8)
    scales[...] = e + 127
    return blocks, scales


class RandomWeights:
    """The random canonical weights of one (config, seed), made tensor by tensor and expert by expert.

    Laws: every matrix [.., out, in] (embeddings, positions, q/k/v/o, router, experts, dense MLP, unembedding) is
    N(0, 1/in): 0.015-0.019 at gpt-oss's widths (the usual 0.02), and at any width it keeps each branch's output O(1)
    after the norms, so biases never dominate and the router logits (std ~1) spread the tokens over the experts.
    Norm scales 1 + N(0, 0.1), norm shifts N(0, 0.1), biases N(0, 0.02), attention sinks N(0, 1). Each tensor (and
    each expert) draws from its own stream keyed by (seed, canonical name, expert), in row chunks of CHUNK values."""

    CHUNK = 1 << 20  # values per generated piece: bounds the float32 temporaries to a few MB

    def __init__(self, cfg, seed=0):
        if not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ConfigError(f"seed={seed!r}; expected a non-negative int")
        self.cfg, self.seed = cfg, int(seed)
        self.shapes = param_shapes(cfg)
        self.dtype = DTYPES[_WEIGHT_ST[cfg.weight_dtype]]
        self._pending = {}  # tensors made together with an earlier one (the scales made with their blocks)
        self._last_expert = (None, None)

    def _rng(self, name, e=None):
        h = hashlib.sha256(name.encode()).digest()
        words = [int.from_bytes(h[j:j + 4], "little") for j in range(0, 16, 4)]
        return np.random.default_rng([self.seed, *words, 0 if e is None else e + 1])

    def _law(self, name):
        """(mean, std) of a canonical parameter."""
        if "norm" in name:  # attn_norm, ffn_norm, final_norm, q_norm, k_norm
            return (1.0, 0.1) if name.endswith("weight") else (0.0, 0.1)
        if name.endswith("sinks"):
            return 0.0, 1.0
        if name.endswith("bias"):
            return 0.0, 0.02
        return 0.0, 1.0 / math.sqrt(self.shapes[name][-1])

    def _rows(self, rng, n_rows, n_cols, mean, std):
        """(first row, float32 [rows, n_cols]) pieces of one stream, CHUNK values at a time."""
        step = max(1, self.CHUNK // max(1, n_cols))
        for r in range(0, n_rows, step):
            x = rng.standard_normal((min(step, n_rows - r), n_cols), dtype=np.float32)
            x *= np.float32(std)
            if mean:
                x += np.float32(mean)
            yield r, x

    def tensor(self, name):
        """A canonical non-expert parameter in the storage dtype."""
        shape = self.shapes[name]
        out = np.empty(shape, self.dtype)
        flat = out.reshape(shape[0], -1) if len(shape) > 1 else out.reshape(1, -1)
        for r, x in self._rows(self._rng(name), *flat.shape, *self._law(name)):
            flat[r:r + len(x)] = x
        return out

    def _expert_rows(self, name, e):
        _, rows, cols = self.shapes[name]
        return self._rows(self._rng(name, e), rows, cols, *self._law(name))

    def expert(self, name, e):
        """Expert e of expert matrix `name` in float32 [out, in] (the last one is kept: Qwen3 splits it in two)."""
        if self._last_expert[0] != (name, e):
            _, rows, cols = self.shapes[name]
            w = np.empty((rows, cols), np.float32)
            for r, x in self._expert_rows(name, e):
                w[r:r + len(x)] = x
            self._last_expert = ((name, e), w)
        return self._last_expert[1]

    def experts(self, name, transposed=False):
        """All experts of `name` in the storage dtype: [E, out, in], or [E, in, out] when transposed."""
        E, rows, cols = self.shapes[name]
        out = np.empty((E, cols, rows) if transposed else (E, rows, cols), self.dtype)
        for e in range(E):
            for r, x in self._expert_rows(name, e):
                if transposed:
                    out[e, :, r:r + len(x)] = x.T
                else:
                    out[e, r:r + len(x)] = x
        return out

    def mxfp4(self, name):
        """(blocks u8 [E, out, in/32, 16], scales u8 [E, out, in/32]) of the float experts of `name`, encoded."""
        E, rows, cols = self.shapes[name]
        blocks = np.empty((E, rows, cols // 32, 16), np.uint8)
        scales = np.empty((E, rows, cols // 32), np.uint8)
        for e in range(E):
            for r, x in self._expert_rows(name, e):
                mxfp4_encode_fast(x, blocks[e, r:r + len(x)], scales[e, r:r + len(x)])
        return blocks, scales

    def make(self, recipe):
        """The stored tensor a plan recipe describes."""
        kind = recipe[0]
        if kind == "tensor":
            a = self.tensor(recipe[1])
            return a.T if recipe[2] else a
        if kind == "cat":
            a = np.concatenate([self.tensor(c) for c in recipe[1]])
            return a.T if recipe[2] else a
        if kind == "experts":
            return self.experts(recipe[1], recipe[2])
        if kind == "expert":
            _, name, e, lo, hi = recipe
            return self.expert(name, e)[lo:hi].astype(self.dtype)
        if kind in ("blocks", "scales"):
            key = (kind, recipe[1])
            if key not in self._pending:
                blocks, scales = self.mxfp4(recipe[1])
                self._pending[("blocks", recipe[1])], self._pending[("scales", recipe[1])] = blocks, scales
            return self._pending.pop(key)  # its sibling waits (1/16 of the bytes) until its own turn
        raise ValueError(f"unknown recipe {recipe!r}")


class GivenWeights(RandomWeights):
    """Canonical weights given as arrays (a trained model), served to the writer in the same recipes as RandomWeights:
    float tensors cast to the storage dtype; MXFP4 experts passed through when given packed, else encoded here."""

    def __init__(self, cfg, weights):
        self.cfg, self.seed, self.w = cfg, None, weights
        self.shapes = param_shapes(cfg)
        self.dtype = DTYPES[_WEIGHT_ST[cfg.weight_dtype]]
        self._pending, self._last_expert = {}, (None, None)
        want = storage_shapes(cfg)
        for name, (shape, kind) in want.items():
            float_form = name.rsplit(".", 1)[0] + ".weight"
            have = name if name in weights else (float_form if kind == "uint8" and float_form in weights else None)
            if have is None:
                raise CheckpointError(f"weights: missing tensor {name!r} for config {cfg.name!r}")
            expected = tuple(shape) if have == name else self.shapes[float_form]
            if tuple(np.shape(weights[have])) != tuple(expected):
                raise CheckpointError(f"weights: tensor {have!r} has shape {tuple(np.shape(weights[have]))}; config "
                                      f"{cfg.name!r} expects {tuple(expected)}")

    def tensor(self, name):
        return np.asarray(self.w[name]).astype(self.dtype)

    def expert(self, name, e):
        return np.asarray(self.w[name][e], dtype=np.float32)

    def experts(self, name, transposed=False):
        a = np.asarray(self.w[name]).astype(self.dtype)
        return a.transpose(0, 2, 1) if transposed else a

    def mxfp4(self, name):
        base = name[: -len(".weight")]
        if base + ".blocks" in self.w:
            return np.asarray(self.w[base + ".blocks"]), np.asarray(self.w[base + ".scales"])
        E, rows, cols = self.shapes[name]
        blocks = np.empty((E, rows, cols // 32, 16), np.uint8)
        scales = np.empty((E, rows, cols // 32), np.uint8)
        for e in range(E):
            mxfp4_encode_fast(self.expert(name, e), blocks[e], scales[e])
        return blocks, scales


# ---- config files ----------------------------------------------------------------------------------------------

def _num(x):
    """150000.0 -> 150000 (the published files write integral values of these fields as JSON integers)."""
    return int(x) if float(x).is_integer() else float(x)


def _tok(token_id, vocab):
    """A published special-token id, or the last id of a smaller (scaled-down) vocabulary."""
    return token_id if token_id < vocab else vocab - 1


def _rope_dict(y):
    return {"beta_fast": float(y.beta_fast), "beta_slow": float(y.beta_slow), "factor": float(y.factor),
            "original_max_position_embeddings": y.original_context, "rope_type": "yarn", "truncate": y.truncate}


def _window(cfg):
    return next((w for w in cfg.layer_windows if w is not None), None)


def hf_config(cfg, token_ids=None):
    """(config.json, generation_config.json) dicts for the Hugging Face layout of `cfg`; token_ids replaces the
    released vocabularies' special-token ids for another vocabulary: {"bos": id, "eos": [ids], "pad": id} for
    gpt-oss, {"endoftext": id} for GPT-2 (its one id for bos and eos)."""
    fam, V = family(cfg), cfg.vocab_size
    if fam == "gpt2":
        p = cfg.dropout
        eot = token_ids["endoftext"] if token_ids else _tok(50256, V)
        c = {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": p,
             "bos_token_id": eot, "embd_pdrop": p, "eos_token_id": eot,
             "initializer_range": 0.02, "layer_norm_epsilon": cfg.norm_eps, "model_type": "gpt2",
             "n_ctx": cfg.context_length, "n_embd": cfg.d_model, "n_head": cfg.n_heads,
             "n_inner": None if cfg.ffn_hidden == 4 * cfg.d_model else cfg.ffn_hidden, "n_layer": cfg.n_layers,
             "n_positions": cfg.context_length, "resid_pdrop": p, "vocab_size": V}
        return c, {"bos_token_id": eot, "eos_token_id": eot}
    if fam == "gpt_oss":
        window = _window(cfg)
        y = cfg.rope_scaling
        c = {"architectures": ["GptOssForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
             "eos_token_id": _tok(200002, V), "experts_per_token": cfg.top_k, "head_dim": cfg.head_dim,
             "hidden_act": "silu", "hidden_size": cfg.d_model,
             "initial_context_length": y.original_context if y else cfg.context_length, "initializer_range": 0.02,
             "intermediate_size": cfg.ffn_hidden,
             "layer_types": ["full_attention" if w is None else "sliding_attention" for w in cfg.layer_windows],
             "max_position_embeddings": cfg.context_length, "model_type": "gpt_oss",
             "num_attention_heads": cfg.n_heads, "num_experts_per_tok": cfg.top_k, "num_hidden_layers": cfg.n_layers,
             "num_key_value_heads": cfg.n_kv_heads, "num_local_experts": cfg.n_experts,
             "output_router_logits": False, "pad_token_id": _tok(199999, V), "rms_norm_eps": cfg.norm_eps,
             # null would read as gpt-oss's default YaRN in transformers (and in config_json)
             "rope_scaling": _rope_dict(y) if y else {"rope_type": "default"}, "rope_theta": _num(cfg.rope_theta),
             "router_aux_loss_coef": 0.9, "sliding_window": window or 128, "swiglu_limit": cfg.swiglu_limit,
             "tie_word_embeddings": False, "transformers_version": "4.55.0.dev0", "use_cache": True,
             "vocab_size": V}
        if cfg.expert_quant == "mxfp4":
            c["quantization_config"] = {"modules_to_not_convert": [
                "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"],
                "quant_method": "mxfp4"}
        gen = {"bos_token_id": _tok(199998, V), "do_sample": True,
               "eos_token_id": [_tok(200002, V), _tok(199999, V), _tok(200012, V)], "pad_token_id": _tok(199999, V)}
        if token_ids:
            c["eos_token_id"], c["pad_token_id"] = token_ids["eos"][0], token_ids["pad"]
            gen.update(bos_token_id=token_ids["bos"], eos_token_id=list(token_ids["eos"]), pad_token_id=token_ids["pad"])
        return c, gen
    y = cfg.rope_scaling
    c = {"architectures": ["Qwen3MoeForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
         "bos_token_id": _tok(151643, V), "decoder_sparse_step": 1, "eos_token_id": _tok(151645, V),
         "head_dim": cfg.head_dim, "hidden_act": "silu", "hidden_size": cfg.d_model, "initializer_range": 0.02,
         "intermediate_size": 8 * cfg.ffn_hidden, "max_position_embeddings": cfg.context_length,
         "max_window_layers": cfg.n_layers, "mlp_only_layers": [], "model_type": "qwen3_moe",
         "moe_intermediate_size": cfg.ffn_hidden, "norm_topk_prob": True, "num_attention_heads": cfg.n_heads,
         "num_experts": cfg.n_experts, "num_experts_per_tok": cfg.top_k, "num_hidden_layers": cfg.n_layers,
         "num_key_value_heads": cfg.n_kv_heads, "output_router_logits": False, "rms_norm_eps": cfg.norm_eps,
         "rope_scaling": _rope_dict(y) if y else None, "rope_theta": float(cfg.rope_theta),
         "router_aux_loss_coef": 0.001, "sliding_window": None, "tie_word_embeddings": False,
         "torch_dtype": cfg.weight_dtype, "transformers_version": "4.51.0", "use_cache": True,
         "use_sliding_window": False, "vocab_size": V}
    return c, {"bos_token_id": _tok(151643, V), "eos_token_id": _tok(151645, V)}


def original_config(cfg):
    """OpenAI's original config.json for a gpt-oss config, fields in the order of their ModelConfig."""
    fam = family(cfg)
    if fam != "gpt_oss":
        raise ConfigError(f"{cfg.name}: layout 'original' is OpenAI's gpt-oss format; a {fam!r} config is written "
                          "with layout 'hf'")
    _check_original(cfg)
    y = cfg.rope_scaling
    values = {"num_hidden_layers": cfg.n_layers, "num_experts": cfg.n_experts, "experts_per_token": cfg.top_k,
              "vocab_size": cfg.vocab_size, "hidden_size": cfg.d_model, "intermediate_size": cfg.ffn_hidden,
              "swiglu_limit": float(cfg.swiglu_limit), "head_dim": cfg.head_dim,
              "num_attention_heads": cfg.n_heads, "num_key_value_heads": cfg.n_kv_heads,
              "sliding_window": _window(cfg), "initial_context_length": y.original_context,
              "rope_theta": _num(cfg.rope_theta), "rope_scaling_factor": float(y.factor),
              "rope_ntk_alpha": _num(y.beta_slow), "rope_ntk_beta": _num(y.beta_fast)}
    return {f: values[f] for f in ORIGINAL_FIELDS}


_DTYPES_JSON = {"BF16": "BF16", "F32": "FP32"}


def _dump(path, obj, **kw):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, **kw)
        f.write("\n")


# ---- writing ------------------------------------------------------------------------------------------------------

# the files of a checkpoint in a directory: what write_checkpoint and the trained models' export write (their tokenizer
# files included), matched by exact name so that, say, tokenizer_config.json is not taken for a config.json
CHECKPOINT_FILES = (INDEX, "config.json", "generation_config.json", "dtypes.json", "tokenizer.json",
                    "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt")
CHECKPOINT_SUFFIXES = (".safetensors", ".safetensors.partial")


def checkpoint_files(out_dir):
    """The checkpoint files in directory out_dir (CHECKPOINT_FILES by name, shards by suffix), sorted."""
    return sorted(n for n in os.listdir(out_dir) if (n in CHECKPOINT_FILES or n.endswith(CHECKPOINT_SUFFIXES))
                  and os.path.isfile(os.path.join(out_dir, n)))


def _prepare(out_dir, overwrite):
    if not out_dir:
        raise CheckpointError("out_dir '': expected a directory path for the checkpoint")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise CheckpointError(f"{out_dir}: is a file; expected a directory (new or empty) for the checkpoint")
    try:
        os.makedirs(out_dir, exist_ok=True)
    except OSError as e:
        raise CheckpointError(f"{out_dir}: cannot create it ({e.strerror}); expected a directory path that can be "
                              "written") from None
    present = checkpoint_files(out_dir)
    if present and not overwrite:
        raise CheckpointError(f"{out_dir}: already holds checkpoint files {present[:5]}; expected an empty directory "
                              "(pass overwrite=True / --overwrite to replace them)")
    for n in present:
        os.remove(os.path.join(out_dir, n))


def write_checkpoint(cfg, out_dir, layout="hf", seed=0, progress=True, max_shard_bytes=None, overwrite=False,
                     weights=None, token_ids=None):
    """Write `cfg`'s weights to `out_dir` in `layout` ('hf', 'original' or 'canonical'), one tensor at a time;
    returns out_dir. The weights are random (seed) unless `weights` gives them: a canonical dict of float arrays
    (float experts of an MXFP4 config are encoded here, as the released model's were) or of packed blocks/scales.
    token_ids (hf layout) overrides the special-token ids of config.json/generation_config.json for a vocabulary
    other than the released one (see hf_config). The config files are written last, so an
    interrupted run leaves no loadable-looking directory."""
    plan, recipes, fam, sharded = _plan(cfg, layout, max_shard_bytes)
    out_dir = os.fspath(out_dir)
    # checks the seed (or the given weights) before anything touches the disk
    source = RandomWeights(cfg, seed) if weights is None else GivenWeights(cfg, weights)
    _prepare(out_dir, overwrite)
    try:
        from tqdm import tqdm
        bar = tqdm(total=sum(p.nbytes for p in plan), unit="B", unit_scale=True, disable=not progress,
                   desc=f"{cfg.name} ({layout})")
    except ImportError:  # pragma: no cover
        bar = None
    files = list(dict.fromkeys(p.file for p in plan))
    for fname in files:
        entries = [p for p in plan if p.file == fname]
        with SafetensorsWriter(os.path.join(out_dir, fname), [(p.name, p.dtype, p.shape) for p in entries],
                               metadata={"format": "pt"}) as w:
            for p in entries:
                if bar is not None:
                    bar.set_postfix_str(f"{fname}: {p.name}", refresh=False)
                arr = source.make(recipes[p.name])
                w.write(p.name, arr)
                del arr
                if bar is not None:
                    bar.update(p.nbytes)
    if bar is not None:
        bar.close()
    if sharded:
        _dump(os.path.join(out_dir, INDEX), {"metadata": {"total_size": sum(p.nbytes for p in plan)},
                                             "weight_map": {p.name: p.file for p in sorted(plan, key=lambda p: p.name)}})
    if layout == "original":
        _dump(os.path.join(out_dir, "dtypes.json"),
              {p.name: (("FP4" if p.name.endswith(".blocks") else "UE8") if p.dtype == "U8" else _DTYPES_JSON[p.dtype])
               for p in sorted(plan, key=lambda p: p.name)})
        _dump(os.path.join(out_dir, "config.json"), original_config(cfg))
    elif layout == "canonical":
        _dump(os.path.join(out_dir, "config.json"), canonical_config_json(cfg))
    else:
        config, generation = hf_config(cfg, token_ids)
        if weights is None:  # say so in the file: the chat command warns that the answers will be gibberish
            config["gptoss_from_scratch"] = {"weights": "random", "seed": seed}
        _dump(os.path.join(out_dir, "generation_config.json"), generation, sort_keys=True)
        _dump(os.path.join(out_dir, "config.json"), config, sort_keys=True)
    return out_dir


# ---- command line ---------------------------------------------------------------------------------------------------

def _check_sizes(args, cfg):
    """The size flags, each given or not: an integer >= 1; --experts only on a preset that has experts."""
    for flag, value in (("--layers", args.layers), ("--experts", args.experts), ("--vocab-size", args.vocab_size),
                        ("--d-model", args.d_model), ("--max-shard-bytes", args.max_shard_bytes)):
        if value is not None and value < 1:
            raise InputError(f"{flag} {value}: expected an integer >= 1 (or no {flag} for the default)")
    if args.experts is not None and not cfg.n_experts:
        raise InputError(f"--experts {args.experts}: {cfg.name} is dense (no experts); expected a preset with "
                         "experts, or no --experts")


def _config_from_args(args):
    cfg = get_config(args.preset)
    _check_sizes(args, cfg)
    if args.scale_down:
        cfg = scale_down(cfg, d_model=args.d_model or 64, n_layers=args.layers or 2, vocab_size=args.vocab_size or 256,
                         n_experts=args.experts)
        return cfg
    changes = {}
    if args.layers is not None:
        changes.update(n_layers=args.layers,
                       layer_windows=tuple(cfg.layer_windows[i % cfg.n_layers] for i in range(args.layers)))
    if args.experts is not None:
        changes.update(n_experts=args.experts, top_k=min(cfg.top_k, args.experts))
    if args.vocab_size is not None:
        changes["vocab_size"] = args.vocab_size
    if args.d_model is not None:
        changes["d_model"] = args.d_model
    return cfg.replace(name=f"{cfg.name}-custom", **changes) if changes else cfg


def add_arguments(ap):
    """The `write-checkpoint` verb's arguments (gptoss_np.cli)."""
    ap.add_argument("--preset", required=True, help=f"config name: one of {sorted(PRESETS)} or a chain step")
    ap.add_argument("--layout", choices=LAYOUTS, default="hf")
    ap.add_argument("--out", required=True, help="output directory (created; must hold no checkpoint files)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale-down", action="store_true", help="config.scale_down() of the preset (tiny, CPU-fast)")
    ap.add_argument("--layers", type=int, help="number of layers (the window pattern repeats)")
    ap.add_argument("--experts", type=int, help="number of experts (top-k capped at it)")
    ap.add_argument("--vocab-size", type=int)
    ap.add_argument("--d-model", type=int)
    ap.add_argument("--max-shard-bytes", type=int, help="shard size limit (default: the published rule)")
    ap.add_argument("--overwrite", action="store_true", help="replace checkpoint files already in --out")
    ap.add_argument("--plan", action="store_true", help="print the tensor plan and write nothing")
    ap.add_argument("--quiet", action="store_true")


def run(args):
    """Write (or --plan) the checkpoint the arguments describe; 2 on a config or checkpoint error."""
    try:
        cfg = _config_from_args(args)
        if args.plan:
            plan = checkpoint_plan(cfg, args.layout, args.max_shard_bytes)
            for p in plan:
                print(f"{p.file}\t{p.name}\t{list(p.shape)}\t{p.dtype}\t{p.nbytes}")
            print(f"{len(plan)} tensors, {sum(p.nbytes for p in plan):,} bytes in "
                  f"{len({p.file for p in plan})} file(s)")
            return 0
        t0 = time.perf_counter()
        write_checkpoint(cfg, args.out, layout=args.layout, seed=args.seed, progress=not args.quiet,
                         max_shard_bytes=args.max_shard_bytes, overwrite=args.overwrite)
    except (ConfigError, CheckpointError, InputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        plan = checkpoint_plan(cfg, args.layout, args.max_shard_bytes)
        print(f"wrote {cfg.name} ({args.layout} layout, seed {args.seed}): {len(plan)} tensors, "
              f"{sum(p.nbytes for p in plan):,} bytes in {len({p.file for p in plan})} file(s) to {args.out} "
              f"in {time.perf_counter() - t0:.1f} s")
    return 0

