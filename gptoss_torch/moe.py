"""Routed mixture of experts, as gptoss_np/moe.py, with a gathered path for few tokens (decode) whose shapes
never depend on the routing (so it can be captured in a CUDA graph), and a per-expert path for prefill."""

import torch

from .ffn import activate
from .routers import route

GATHER_MAX_PAIRS = 64  # up to this many (token, expert) pairs, gather their weights instead of looping


def moe(x, cfg, router_weight, router_bias, up, up_bias, down, down_bias, fused=None, path=None):
    """y_t = sum_r w_tr * expert_{e_tr}(x_t). x [T, D] -> (y [T, D], router logits, experts [T, k], weights).
    path: None picks the fused kernel (if given) or the gathered path for few tokens on CUDA (graph-capturable),
    else one matmul per expert hit; "gathered" / "per_expert" force one (the tests run both)."""
    T, k = x.shape[0], cfg.top_k
    logits = torch.nn.functional.linear(x, router_weight, router_bias)  # [T, E]
    experts, weights = route(logits, cfg)  # [T, k]
    few = T * k <= GATHER_MAX_PAIRS
    if path is None and fused is not None and few:  # CUDA + Triton: dequantise inside the matvec
        y = fused(x, experts, weights)
    elif path == "gathered" or (path is None and few and x.device.type == "cuda"):
        y = moe_gathered(x, cfg, experts, weights, up, up_bias, down, down_bias)
    else:  # on a CPU, reading each routed expert in place beats copying it out first
        y = moe_per_expert(x, cfg, experts, weights, up, up_bias, down, down_bias)
    return y, logits, experts, weights


def moe_gathered(x, cfg, experts, weights, up, up_bias, down, down_bias):
    """Gather the T*k routed experts' weights, then one batched matmul per projection (no host sync)."""
    T, k = experts.shape
    ids = experts.reshape(-1)  # [T*k]
    xk = x.repeat_interleave(k, dim=0)  # [T*k, D], pair p = token p // k
    h = torch.bmm(up.matrices(ids, x.dtype), xk[:, :, None])[..., 0]  # [T*k, 2F]
    if up_bias is not None:
        h = h + up_bias[ids]
    out = torch.bmm(down.matrices(ids, x.dtype), activate(h, cfg)[:, :, None])[..., 0]  # [T*k, D]
    if down_bias is not None:
        out = out + down_bias[ids]
    return (out.reshape(T, k, -1) * weights[..., None].to(out.dtype)).sum(1)  # [T, D]


def moe_per_expert(x, cfg, experts, weights, up, up_bias, down, down_bias):
    """One matmul per expert that was hit, over all its tokens (prefill)."""
    T, k = experts.shape
    flat = experts.reshape(-1)
    order = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=up.shape[0]).tolist()  # one host sync per layer
    y = torch.zeros_like(x)
    start = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        pairs = order[start:start + n]
        start += n
        tok, slot = pairs // k, pairs % k
        h = torch.nn.functional.linear(x[tok], up.matrix(e, x.dtype), None if up_bias is None else up_bias[e])
        out = torch.nn.functional.linear(activate(h, cfg), down.matrix(e, x.dtype),
                                         None if down_bias is None else down_bias[e])
        y.index_add_(0, tok, out * weights[tok, slot][:, None].to(out.dtype))
    return y
