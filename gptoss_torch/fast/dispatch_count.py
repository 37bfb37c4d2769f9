"""Count the aten operators a forward dispatches, per layer: a CPU stand-in for "kernels per decode step" (each
non-view aten op is one kernel launch on CUDA, or one fused call), so a regression in launch count fails a CPU test.
Views (view, slice, transpose, expand, ...) move no data and are not counted."""

import collections

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class OpCounter(TorchDispatchMode):
    """`with OpCounter() as c: ...` -> c.ops: Counter of non-view aten ops; c.per_layer: one Counter per Block
    (ops dispatched while the block's forward runs, hooks installed by `watch(model)`)."""

    def __init__(self):
        super().__init__()
        self.ops, self.per_layer, self._layer = collections.Counter(), [], None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if not func.is_view:
            name = str(func.overloadpacket)
            self.ops[name] += 1
            if self._layer is not None:
                self.per_layer[self._layer][name] += 1
        return func(*args, **(kwargs or {}))

    def watch(self, model):
        """Attribute ops to model.layers[i] while it runs; -> the hook handles (remove them when done)."""
        self.per_layer = [collections.Counter() for _ in model.layers]
        handles = []
        for i, block in enumerate(model.layers):
            handles.append(block.register_forward_pre_hook(lambda *a, i=i: setattr(self, "_layer", i)))
            handles.append(block.register_forward_hook(lambda *a: setattr(self, "_layer", None)))
        return handles


@torch.no_grad()
def count_ops(model, step):
    """The ops `step()` dispatches (e.g. one decode step of `model`), in all and per layer -> OpCounter."""
    counter = OpCounter()
    handles = counter.watch(model)
    try:
        with counter:
            step()
    finally:
        for h in handles:
            h.remove()
    return counter
