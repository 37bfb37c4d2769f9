"""Tiny Hugging Face checkpoints for tests, written by transformers' save_pretrained, and helpers to corrupt copies.

A plain helper module (not a conftest): the tests build each checkpoint once per session with `build_tiny` and
then `clone` it and edit the clone with `read_tensors` / `write_tensors` / `edit_config` / `shard`.
"""

import json
import os
import shutil

import numpy as np

from gptoss_np.mxfp4 import mxfp4_decode, mxfp4_encode
from gptoss_np.formats.safetensors_io import TensorStore, save_file

VOCAB = 100
LAYOUTS = ("gpt2", "gpt_oss", "qwen3_moe")
SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"


def _hf_model(layout):
    """A randomly initialised tiny transformers model of `layout` (torch seeded: the same weights every run)."""
    import torch
    import transformers as tf

    torch.manual_seed(0)
    if layout == "gpt2":
        return tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=32,
                                                bos_token_id=0, eos_token_id=0))
    if layout == "gpt_oss":
        return tf.GptOssForCausalLM(tf.GptOssConfig(
            vocab_size=VOCAB, hidden_size=64, intermediate_size=32, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=16, num_local_experts=4, num_experts_per_tok=2, sliding_window=4))
    if layout == "qwen3_moe":
        return tf.Qwen3MoeForCausalLM(tf.Qwen3MoeConfig(
            vocab_size=VOCAB, hidden_size=64, moe_intermediate_size=32, intermediate_size=96, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4, num_experts_per_tok=2,
            norm_topk_prob=True))
    raise ValueError(f"layout {layout!r}; expected one of {LAYOUTS}")


def build_tiny(layout, directory):
    """Write a tiny random `layout` checkpoint (config.json + model.safetensors) into `directory`; return it."""
    directory = str(directory)
    _hf_model(layout).save_pretrained(directory)
    return directory


def clone(src, dst):
    """A copy of checkpoint directory `src` at `dst` (which must not exist yet); returns dst as str."""
    shutil.copytree(str(src), str(dst))
    return str(dst)


def read_tensors(directory):
    """Every tensor of a (single-file or sharded) checkpoint, as writable in-memory NumPy arrays."""
    store = TensorStore(directory)
    return {k: np.array(store.get(k)) for k in store.keys()}


def _remove_tensor_files(directory):
    for name in os.listdir(directory):
        if name.endswith(".safetensors") or name == INDEX:
            os.remove(os.path.join(directory, name))


def write_tensors(directory, tensors):
    """Replace the checkpoint's tensors by `tensors`, as one model.safetensors (removes an index and shards)."""
    directory = str(directory)
    _remove_tensor_files(directory)
    save_file(os.path.join(directory, SINGLE), tensors, metadata={"format": "pt"})


def edit_tensors(directory, edit):
    """read_tensors, then `edit(tensors)` (mutates the dict), then write_tensors."""
    tensors = read_tensors(directory)
    edit(tensors)
    write_tensors(directory, tensors)


def config_path(directory):
    return os.path.join(str(directory), "config.json")


def read_config(directory):
    with open(config_path(directory)) as f:
        return json.load(f)


def edit_config(directory, drop=(), **changes):
    """Set fields of config.json (`changes`) and delete the fields named in `drop`."""
    cfg = read_config(directory)
    cfg.update(changes)
    for key in drop:
        cfg.pop(key, None)
    with open(config_path(directory), "w") as f:
        json.dump(cfg, f, indent=2)


def shard(directory, n_shards=2):
    """Rewrite the checkpoint as `n_shards` files plus model.safetensors.index.json; return the shard names."""
    tensors = read_tensors(directory)
    _remove_tensor_files(str(directory))
    keys = sorted(tensors)
    names = [f"model-{i + 1:05d}-of-{n_shards:05d}.safetensors" for i in range(n_shards)]
    weight_map = {}
    for i, fname in enumerate(names):
        part = keys[i::n_shards]
        save_file(os.path.join(str(directory), fname), {k: tensors[k] for k in part}, metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    total = sum(a.nbytes for a in tensors.values())
    with open(os.path.join(str(directory), INDEX), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return names


GPT_OSS_EXPERTS = ("gate_up_proj", "down_proj")


def gpt_oss_expert_keys(tensors):
    """The float expert matrices of a gpt-oss checkpoint (stored by transformers transposed: [E, in, out])."""
    return [k for k in sorted(tensors) if k.endswith(tuple(f".mlp.experts.{m}" for m in GPT_OSS_EXPERTS))]


def round_experts_to_mxfp4(tensors):
    """In place: each float gpt-oss expert matrix replaced by decode(encode(w)), i.e. its nearest MXFP4 values."""
    for k in gpt_oss_expert_keys(tensors):
        w = tensors[k].transpose(0, 2, 1)  # [E, in, out] -> [E, out, in]: blocks run along the input axis
        tensors[k] = np.ascontiguousarray(mxfp4_decode(*mxfp4_encode(w, name=k)).transpose(0, 2, 1))


def quantize_experts(tensors):
    """In place: each float gpt-oss expert matrix `X` replaced by `X_blocks` u8 [E, out, in/32, 16] and
    `X_scales` u8 [E, out, in/32], as in the released gpt-oss checkpoints."""
    for k in gpt_oss_expert_keys(tensors):
        w = tensors.pop(k).transpose(0, 2, 1)  # [E, out, in]
        tensors[k + "_blocks"], tensors[k + "_scales"] = mxfp4_encode(w, name=k)
