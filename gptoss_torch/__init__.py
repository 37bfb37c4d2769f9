"""gptoss_torch: the PyTorch twin of gptoss_np (same configs, weights and trace names), CPU and CUDA."""

from .loader import load_model
from .model import Model

__all__ = ["Model", "load_model"]
