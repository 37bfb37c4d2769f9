"""Count the kernels a step launches, on any device: every non-view aten op the step dispatches is one kernel
(views and the NO_KERNEL ops move no data), and an op that runs as one fused kernel on CUDA but decomposes on
the CPU counts once (F.rms_norm: aten._fused_rms_norm since torch 2.8). A CPU test can then fail when a change adds
launches to a decode step (tests/test_kernel_count.py); benchmarks/gpu_check.py reads the profiler on a GPU."""

import collections
import contextlib

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

FUSED_ON_CUDA = {F.rms_norm: "aten._fused_rms_norm"}
# no kernel: allocations, matmul's reshape of its result (metadata only), a Python number wrapped as a 0-d tensor
NO_KERNEL = {"aten.empty", "aten.empty_strided", "aten.empty_like", "aten._unsafe_view", "aten.scalar_tensor"}


class OpCounter(TorchDispatchMode):
    """`with OpCounter() as c:` -> c.ops, a Counter of kernels by aten op name; c.per_layer, one Counter per Block
    for the ops dispatched while that block's forward runs (hooks installed by `watch(model)`; Model.run's path)."""

    def __init__(self):
        super().__init__()
        self.ops, self.per_layer, self._layer, self._silent = collections.Counter(), [], None, 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if not self._silent and not func.is_view and name not in NO_KERNEL:
            self._count(name)
        return func(*args, **(kwargs or {}))

    def _count(self, name):
        self.ops[name] += 1
        if self._layer is not None:
            self.per_layer[self._layer][name] += 1

    @contextlib.contextmanager
    def kernel(self, name):
        """What runs inside counts as one kernel called `name` (a fused op, or a stand-in for a Triton launch)."""
        self._count(name)
        self._silent += 1
        try:
            yield
        finally:
            self._silent -= 1

    def total(self):
        return sum(self.ops.values())

    def watch(self, model):
        """Attribute ops to model.layers[i] while it runs; -> the hook handles (remove them when done)."""
        self.per_layer = [collections.Counter() for _ in model.layers]
        handles = []
        for i, block in enumerate(model.layers):
            handles.append(block.register_forward_pre_hook(lambda *a, i=i: setattr(self, "_layer", i)))
            handles.append(block.register_forward_hook(lambda *a: setattr(self, "_layer", None)))
        return handles


class _Fused(TorchFunctionMode):
    """Count FUSED_ON_CUDA functions as one kernel each."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in FUSED_ON_CUDA:
            with self.counter.kernel(FUSED_ON_CUDA[func]):
                return func(*args, **(kwargs or {}))
        return func(*args, **(kwargs or {}))


@torch.no_grad()
def count_ops(model, step, counter=None):
    """The kernels `step()` launches (e.g. one decode step of `model`), in all and per block -> OpCounter."""
    counter = counter or OpCounter()
    handles = counter.watch(model)
    try:
        with _Fused(counter), counter:
            step()
    finally:
        for h in handles:
            h.remove()
    return counter
