"""The one seam between the math and its speed paths: the two kinds of product a forward spends its time in.

The math calls `dense_matmul` and `expert_matmuls`; here they are the plain definitions. `gptoss_np.fast` (enabled
when the package is imported) installs implementations that compute the same products faster: big dense products
split over worker threads, MXFP4 experts multiplied straight from their packed bytes. A reader can skip
gptoss_np/fast entirely; tests/test_fast_paths.py checks that both give the same forward.
"""

_fast = None  # an object with dense_matmul / expert_matmuls, or None for the plain definitions below


def use(impl):
    """Install `impl` (or None: the plain definitions) and return the one it replaces."""
    global _fast
    previous, _fast = _fast, impl
    return previous


def active():
    """The installed speed implementation, or None."""
    return _fast


def dense_matmul(x, weight):
    """x @ W.T with W stored [out, in]: x [T, in] -> [T, out]."""
    if _fast is not None:
        return _fast.dense_matmul(x, weight)
    return x @ weight.T  # [T, in] -> [T, out]


def expert_matmuls(experts, es, xs):
    """[x_i @ W_{e_i}.T for each i]: several experts of one ExpertWeights at once. xs[i] [n_i, in] -> [n_i, out]."""
    if _fast is not None:
        return _fast.expert_matmuls(experts, es, xs)
    return [x @ experts.matrix(e, x.dtype).T for e, x in zip(es, xs)]  # decode whole, then multiply
