"""load_model for the torch twin: the oracle's loader reads and checks the checkpoint (both layouts, every
family; names, shapes, dtypes, finite values, MXFP4 scales); this moves the canonical tensors to the device,
converting float tensors to the compute dtype once and keeping MXFP4 experts packed (uint8)."""

import torch

from gptoss_np.errors import InputError
from gptoss_np.formats.loader import float_max, load_weights, overflow_error
from gptoss_np.params import check_weights, is_expert_matrix

from .model import Model, to_torch

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_device(name, flag="device"):
    """`name` as a torch.device if torch knows it and this machine has it (None stays None: the loader's choice);
    else an InputError naming `flag` (the library's argument, or a command line's --device)."""
    if name is None:
        return None
    cpu = f"{flag} cpu or no {flag}" if flag.startswith("--") else f"{flag}='cpu' or {flag}=None"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise InputError(f"{flag} {name!r}: not a torch device name ({e}); expected cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise InputError(f"{flag} {name}: CUDA is not available here (torch {torch.__version__}, "
                             f"{'a CPU-only build' if torch.version.cuda is None else 'no CUDA device visible'}); "
                             f"expected {cpu}")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise InputError(f"{flag} {name}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                             f"expected cuda:0..cuda:{torch.cuda.device_count() - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise InputError(f"{flag} {name}: MPS is not available here; expected {cpu}")
    elif device.type != "cpu":
        raise InputError(f"{flag} {name}: {device.type} devices are not supported; expected cpu, cuda[:N] or mps")
    if device.type in ("cpu", "mps") and device.index not in (None, 0):  # torch takes cpu:1 and means cpu:0
        raise InputError(f"{flag} {name}: torch has one {device.type} device, index 0; expected {device.type} or "
                         f"{device.type}:0 (or cuda:N for a GPU)")
    return device


def load_model(path, device=None, dtype=None, progress=True):
    """Model for a checkpoint directory. Defaults: CUDA + bfloat16 when available, else CPU + float32."""
    if not (dtype is None or dtype in DTYPES or dtype in DTYPES.values()):
        raise InputError(f"dtype {dtype!r}: expected one of {sorted(DTYPES)} (or the torch dtype), or None for the "
                         "device's default")
    device = check_device(device) or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = DTYPES[dtype] if isinstance(dtype, str) else dtype
    dtype = dtype or (torch.bfloat16 if device.type == "cuda" else torch.float32)
    cfg, np_weights = load_weights(path)
    check_weights(cfg, np_weights, source=str(path))
    names = list(np_weights)
    try:
        from tqdm import tqdm
        names = tqdm(names, desc=f"loading {cfg.name} -> {device}", unit="tensor", disable=not progress)
    except ImportError:  # pragma: no cover
        pass
    weights = {}
    for n in names:
        a = np_weights[n]
        if is_expert_matrix(n) and not hasattr(a, "__array__"):  # lazily stacked experts (Qwen3): materialise
            a = a[list(range(a.shape[0]))]
        t = weights[n] = to_torch(a, device, None if n.endswith((".blocks", ".scales")) else dtype)
        if t.is_floating_point() and torch.finfo(t.dtype).max < float_max(a.dtype) and not torch.isfinite(t).all():
            raise overflow_error(path, n, a.dtype, str(t.dtype).removeprefix("torch."), torch.finfo(t.dtype).max)
    return Model.from_tensors(cfg, weights, device, dtype)
