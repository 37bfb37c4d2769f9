"""Speed paths of the NumPy oracle, kept apart from the math: worker threads (threads.py), MXFP4 products straight
from the packed bytes (mxfp4_matmul.py), and the implementations they give the math's one seam, gptoss_np.kernels
(kernels.py). `import gptoss_np` enables them; `with gptoss_np.fast.disabled():` runs the plain definitions."""

import contextlib

from .. import kernels as _seam
from . import kernels as _fast_kernels


def enable():
    """Use the fast products from now on (the default once gptoss_np is imported)."""
    _seam.use(_fast_kernels)


def disable():
    """Use the plain definitions of gptoss_np.kernels from now on."""
    _seam.use(None)


@contextlib.contextmanager
def disabled():
    """Run a block on the plain definitions, then restore what was installed."""
    previous = _seam.use(None)
    try:
        yield
    finally:
        _seam.use(previous)
