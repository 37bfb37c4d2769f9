"""gptoss_np: the NumPy oracle, GPT-2 XL -> gpt-oss-20b one architectural change at a time.

Public API: get_config, chain, count_params, load_model, build_model, Model, scale_down.
"""

from .accounting import count_params, kv_cache_bytes, weight_bytes
from .config import ModelConfig, YarnScaling, chain, get_config, scale_down
from .errors import CheckpointError, ConfigError, GptOssError, InputError
from .model import Model, trace_names
from .params import init_weights, param_shapes
from .sampling import sample

__all__ = ["ModelConfig", "YarnScaling", "chain", "get_config", "scale_down", "count_params", "weight_bytes",
           "kv_cache_bytes", "Model", "build_model", "load_model", "trace_names", "init_weights", "param_shapes",
           "sample", "GptOssError", "CheckpointError", "ConfigError", "InputError"]


def build_model(cfg, seed=0, dtype="float32"):
    """A model with random weights for `cfg` (use a scale_down() config: full size is GBs)."""
    import numpy as np
    return Model(cfg, init_weights(cfg, seed), dtype=np.dtype(dtype))


def load_model(path, dtype="float32", progress=True):
    """Load a checkpoint directory (config.json + safetensors, single or sharded) -> Model."""
    from .loader import load_model as _load
    return _load(path, dtype=dtype, progress=progress)


def get_tokenizer(name_or_checkpoint_dir):
    """A tiktoken Encoding for "o200k_harmony", "gpt2", "qwen3" or a checkpoint directory, built offline."""
    from .tokenizer import get_tokenizer as _get
    return _get(name_or_checkpoint_dir)


__all__ += ["get_tokenizer"]
