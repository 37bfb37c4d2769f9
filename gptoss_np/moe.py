"""Mixture of experts: the two routers (gpt-oss, Qwen3) and routed expert mixing with packed (MXFP4) experts."""

import numpy as np

from . import kernels
from .attention import softmax
from .ffn import activate, linear
from .mxfp4 import mxfp4_decode


def top_k(logits, k):
    """Indices of the k largest entries per row, largest first (ties: lower index first). [T, E] -> [T, k]."""
    idx = np.argsort(-logits, axis=-1, kind="stable")[..., :k]  # [T, k]
    return idx


def router_topk_softmax(logits, k):
    """gpt-oss: pick the top-k logits, then softmax over those k only. [T, E] -> (experts [T, k], weights [T, k])."""
    idx = top_k(logits, k)  # [T, E] -> [T, k]
    return idx, softmax(np.take_along_axis(logits, idx, axis=-1))  # [T, E] -> the chosen logits [T, k]


def router_softmax_topk(logits, k):
    """Qwen3: softmax over all E, keep the top-k probabilities, renormalise them to sum to 1 (norm_topk_prob)."""
    probs = softmax(logits)  # [T, E]
    idx = top_k(probs, k)  # [T, E] -> [T, k]
    w = np.take_along_axis(probs, idx, axis=-1)  # [T, k]
    return idx, w / w.sum(axis=-1, keepdims=True)


def route(logits, cfg):
    """The config's router: (chosen experts [T, k], mixing weights [T, k])."""
    if cfg.router == "topk_softmax":
        return router_topk_softmax(logits, cfg.top_k)
    return router_softmax_topk(logits, cfg.top_k)


class ExpertWeights:
    """E stacked expert matrices [E, out, in]: a float array, or MXFP4 blocks [E, out, in/32, 16] + scales
    [E, out, in/32] that stay packed (often memory-mapped) and are decoded only for the experts a batch routes to."""

    def __init__(self, weight=None, blocks=None, scales=None, name="experts"):
        self.weight, self.blocks, self.scales, self.name = weight, blocks, scales, name
        self.packed = weight is None
        ref = blocks if self.packed else weight
        self.shape = (ref.shape[0], ref.shape[1], ref.shape[2] * 32) if self.packed else tuple(ref.shape)

    def take(self, ids, dtype=np.float32):
        """The float matrices of experts `ids`: [len(ids), out, in]."""
        if self.packed:  # only these experts' bytes are read from the (memory-mapped) file
            return mxfp4_decode(self.blocks[ids], self.scales[ids], dtype=dtype, name=self.name)  # [n, out, in]
        return np.asarray(self.weight[ids], dtype=dtype)  # [E, out, in] -> [n, out, in]

    def matrix(self, e, dtype=np.float32):
        """Expert e's float matrix [out, in]; a zero-copy view when it is stored in `dtype` already."""
        if self.packed:
            return mxfp4_decode(self.blocks[e], self.scales[e], dtype=dtype, name=self.name)  # [out, in]
        return self.weight[e].astype(dtype, copy=False)  # [out, in]

    def matmul(self, e, x):
        """x @ W_e.T: x [n, in] -> [n, out]."""
        return self.matmul_many([e], [x])[0]  # [n, in] -> [n, out]

    def matmul_many(self, es, xs):
        """[x_i @ W_{e_i}.T for each i]: the products of several experts at once (kernels.expert_matmuls: the
        plain decode-then-multiply, or the fast path's packed, threaded product)."""
        return kernels.expert_matmuls(self, es, xs)


def moe(x, cfg, router_weight, router_bias, up, up_bias, down, down_bias):
    """y_t = sum_r w_tr * expert_{e_tr}(x_t) over the k routed experts of token t.
    x [T, D], up/down ExpertWeights -> (y [T, D], router logits [T, E], experts [T, k], weights [T, k])."""
    k = cfg.top_k
    logits = linear(x, router_weight, router_bias)  # [T, D] -> [T, E]
    experts, weights = route(logits, cfg)  # [T, k] each
    flat = experts.reshape(-1)  # [T, k] -> [T*k]: pair p = token p // k, slot p % k
    order = np.argsort(flat, kind="stable")  # [T*k] pair ids, grouped by expert
    used, starts = np.unique(flat[order], return_index=True)  # [U] each: the U experts hit, first pair of each
    ends = np.append(starts[1:], len(flat))  # [U]
    y = np.zeros_like(x)
    # NumPy has no ragged batched matmul: each expert that was hit (at most E, usually k at decode) multiplies all of
    # its tokens at once and reads only its own weights (the fast path multiplies packed experts straight from their
    # MXFP4 bytes, all experts of the layer in one queue of jobs: gptoss_np/fast).
    pairs = [order[a:b] for a, b in zip(starts, ends)]  # U x [n_e]
    toks = [p // k for p in pairs]  # U x [n_e]; a token picks an expert at most once, so each `tok` has no repeats
    hs = up.matmul_many(used, [x[tok] for tok in toks])  # [n_e, D] -> [n_e, F or 2F] per expert
    if up_bias is not None:
        hs = [h + up_bias[e] for e, h in zip(used, hs)]
    outs = down.matmul_many(used, [activate(h, cfg) for h in hs])  # [n_e, F] -> [n_e, D]
    for e, p, tok, out in zip(used, pairs, toks, outs):
        if down_bias is not None:
            out = out + down_bias[e]
        y[tok] += weights[tok, p % k][:, None] * out  # [n_e, 1] * [n_e, D]
    return y, logits, experts, weights


def moe_dense(x, cfg, router_weight, router_bias, up, up_bias, down, down_bias):
    """The same MoE computed the slow, obvious way: every expert on every token, mixed with a weight matrix that is
    zero for the experts a token did not pick. A test checks `moe` against it."""
    E = up.shape[0]
    logits = linear(x, router_weight, router_bias)  # [T, D] -> [T, E]
    experts, weights = route(logits, cfg)  # [T, k] each
    mix = np.zeros((x.shape[0], E), dtype=x.dtype)  # [T, E]
    np.put_along_axis(mix, experts, weights, axis=-1)
    W_up, W_down = up.take(np.arange(E), x.dtype), down.take(np.arange(E), x.dtype)  # [E, F or 2F, D], [E, D, F]
    h = np.einsum("td,efd->etf", x, W_up)  # [E, T, F or 2F]
    if up_bias is not None:
        h = h + up_bias[:, None, :]
    out = np.einsum("etf,edf->etd", activate(h, cfg), W_down)  # [E, T, F] -> [E, T, D]
    if down_bias is not None:
        out = out + down_bias[:, None, :]
    return np.einsum("te,etd->td", mix, out), logits, experts, weights  # [T, E] x [E, T, D] -> [T, D]
