"""gptoss_np: the NumPy oracle, GPT-2 XL -> gpt-oss-20b one architectural change at a time.

The house (README.md, "Layout", has the rules):
    gptoss_np/*.py      the math: config, params, accounting, norms, rope, attention, ffn, moe, mxfp4, model,
                        kv_cache, sampling, and kernels (the one seam to the speed paths)
    gptoss_np/fast      speed paths (worker threads, MXFP4 products from packed bytes), enabled on import
    gptoss_np/formats   safetensors, the layout tables, config.json, the loader and the checkpoint writer
    gptoss_np/text      tokenizers, the harmony format, chat and generation
    gptoss_np/checks    the comparison with transformers (reference trace, per-layer report)
    gptoss_np/book      book.md's generator and the architecture diagrams
    gptoss_np/cli.py    `python -m gptoss_np VERB`

Public API: get_config, chain, scale_down, count_params, build_model, load_model, get_tokenizer, Model, ...
"""

from . import fast
from .accounting import count_params, kv_cache_bytes, weight_bytes
from .config import ModelConfig, YarnScaling, chain, get_config, scale_down
from .errors import CheckpointError, ConfigError, GptOssError, InputError
from .model import Model, trace_names
from .params import init_weights, param_shapes
from .sampling import sample

fast.enable()

__all__ = ["ModelConfig", "YarnScaling", "chain", "get_config", "scale_down", "count_params", "weight_bytes",
           "kv_cache_bytes", "Model", "build_model", "load_model", "trace_names", "init_weights", "param_shapes",
           "sample", "GptOssError", "CheckpointError", "ConfigError", "InputError", "get_tokenizer",
           "default_checkpoint", "trained_checkpoint"]


def build_model(cfg, seed=0, dtype="float32"):
    """A model with random weights for `cfg` (use a scale_down() config: full size is GBs)."""
    import numpy as np
    return Model(cfg, init_weights(cfg, seed), dtype=np.dtype(dtype))


def load_model(path, dtype="float32", progress=True):
    """Load a checkpoint directory (config.json + safetensors, single or sharded) -> Model."""
    from .formats.loader import load_model as _load
    return _load(path, dtype=dtype, progress=progress)


# the models shipped in gptoss_np/models/ (package data), each with the command that retrains it
SHIPPED = {"gpt-oss-shakespeare": "python -m gptoss_torch train-chat --out {path}",
           "gpt2-shakespeare": "python -m gptoss_torch train --step 00-gpt2-xl --steps 800 --batch-size 4 "
                               "--val-batches 64 --vocab bpe --dtype bfloat16 --release --out {path}"}


def trained_checkpoint(name):
    """The directory of a model this project trained and ships (a key of SHIPPED): "gpt-oss-shakespeare" (the
    default checkpoint) or "gpt2-shakespeare", chain step 00 (GPT-2's architecture at the ladder's scale, Hugging
    Face GPT-2 layout, bf16). Its training.json says how it was trained."""
    import os
    if name not in SHIPPED:
        raise InputError(f"trained_checkpoint: name {name!r}; expected one of {sorted(SHIPPED)}")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models", name)
    if not os.path.isfile(os.path.join(path, "config.json")):
        raise CheckpointError(f"{path}: the shipped model is missing; retrain it with "
                              f"`{SHIPPED[name].format(path=path)}`")
    return path


def default_checkpoint():
    """The shipped model's directory: gpt-oss-shakespeare, a small gpt-oss trained by this project (config.json,
    MXFP4 safetensors, tokenizer files), which `load_model`, `gptoss_torch.load_model`, `get_tokenizer` and the chat
    commands read like any gpt-oss checkpoint. Retrain it with `python -m gptoss_torch train-chat`."""
    return trained_checkpoint("gpt-oss-shakespeare")


def get_tokenizer(name_or_checkpoint_dir):
    """A tiktoken Encoding for "o200k_harmony", "gpt2", "qwen3" or a checkpoint directory, built offline."""
    from .text.tokenizer import get_tokenizer as _get
    return _get(name_or_checkpoint_dir)
