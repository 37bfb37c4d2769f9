"""Routed mixture of experts, as gptoss_np/moe.py, with the modules that hold the router and the experts.

Two paths give the same result (tested): a gathered path for few tokens (decode) whose shapes never depend on the
routing, so it can be captured in a CUDA graph, and a per-expert path (prefill, training) that multiplies each hit
expert once over all its tokens. Training adds the Switch Transformer load-balancing loss (load_balancing_loss)."""

import torch
import torch.nn.functional as F
from torch import nn

from .attention import at_least_float32
from .ffn import activate
from .mxfp4 import mxfp4_decode
from .routers import route

GATHER_MAX_PAIRS = 64  # up to this many (token, expert) pairs, gather their weights instead of looping


class ExpertProjection(nn.Module):
    """E stacked expert matrices [E, out, in] and their biases [E, out]: a float `weight` parameter, or MXFP4
    `blocks` [E, out, in/32, 16] + `scales` [E, out, in/32] uint8 buffers kept packed (decoded per use)."""

    def __init__(self, E, rows, cols, bias, packed, device=None, dtype=None):
        super().__init__()
        self.packed, self.shape = packed, (E, rows, cols)
        if packed:
            self.register_buffer("blocks", torch.zeros(E, rows, cols // 32, 16, dtype=torch.uint8, device=device))
            self.register_buffer("scales", torch.zeros(E, rows, cols // 32, dtype=torch.uint8, device=device))
            self.weight = None
        else:
            self.weight = nn.Parameter(torch.empty(E, rows, cols, device=device, dtype=dtype))
        self.bias = nn.Parameter(torch.zeros(E, rows, device=device, dtype=dtype)) if bias else None
        self.dequantize = None  # a faster (blocks, scales, dtype) -> matrix than mxfp4_decode, set by fast/ code

    def matrices(self, ids, dtype):
        """Float matrices of experts `ids` (a 1-D tensor, may repeat): [n, out, in]."""
        if self.packed:
            return mxfp4_decode(self.blocks[ids], self.scales[ids], dtype)  # [n, out, in/32, 16] -> [n, out, in]
        return self.weight[ids].to(dtype)  # [E, out, in] -> [n, out, in]

    def all_matrices(self, dtype):
        """Every expert's float matrix [E, out, in] (packed: rows of all experts decoded together, in one launch where
        gptoss_torch.fast.mxfp4_triton.enable set `self.dequantize`)."""
        if not self.packed:
            return self.weight.to(dtype)
        E, rows, cols = self.shape
        # [E, out, in/32, 16] -> [E*out, in/32, 16] and [E, out, in/32] -> [E*out, in/32]: all rows as one batch
        blocks, scales = self.blocks.reshape(E * rows, cols // 32, 16), self.scales.reshape(E * rows, cols // 32)
        return (self.dequantize or mxfp4_decode)(blocks, scales, dtype).view(E, rows, cols)  # [E, out, in]

    def matrix(self, e, dtype):
        """Expert e's float matrix [out, in] (through `self.dequantize`, a one-launch kernel, where
        gptoss_torch.fast.mxfp4_triton.enable set one)."""
        if self.packed:
            return (self.dequantize or mxfp4_decode)(self.blocks[e], self.scales[e], dtype)  # [out, in]
        return self.weight[e].to(dtype)  # [out, in]


class Experts(nn.Module):
    """`layers.{i}.mlp.experts.up.*` [E, F or 2F, D] and `.down.*` [E, D, F]."""

    def __init__(self, cfg, device=None, dtype=None):
        super().__init__()
        E, D, F_ = cfg.n_experts, cfg.d_model, cfg.ffn_hidden
        packed = cfg.expert_quant == "mxfp4"
        up_rows = 2 * F_ if cfg.glu else F_
        self.up = ExpertProjection(E, up_rows, D, cfg.mlp_bias, packed, device, dtype)
        self.down = ExpertProjection(E, D, F_, cfg.mlp_bias, packed, device, dtype)


def load_balancing_loss(logits, experts, n_experts):
    """Switch Transformer's auxiliary loss (Fedus et al. 2021, eq. 4, with top-k): E * sum_e f_e * P_e, where f_e is
    the fraction of the T*k routing slots that chose expert e and P_e the mean router probability softmax(logits)_e.
    1 when routing is uniform. logits [N, E], experts [N, k] -> scalar."""
    probs = torch.softmax(at_least_float32(logits), dim=-1)  # [N, E]
    counts = torch.zeros(n_experts, dtype=probs.dtype, device=probs.device)  # [E]; next: +1 per slot of [N*k]
    counts.index_add_(0, experts.reshape(-1), torch.ones(experts.numel(), dtype=probs.dtype, device=probs.device))
    f = counts / experts.numel()  # [E], sums to 1
    return n_experts * (f * probs.mean(0)).sum()  # probs.mean(0) [E] -> scalar


class MoE(nn.Module):
    """Router (`layers.{i}.mlp.router.weight/.bias` [E, D]) and experts; forward -> (y, logits, experts, weights)."""

    def __init__(self, cfg, device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        self.router = nn.Linear(cfg.d_model, cfg.n_experts, bias=cfg.mlp_bias, device=device, dtype=dtype)
        self.experts = Experts(cfg, device, dtype)
        self.fused = None  # set by gptoss_torch.fast.mxfp4_triton.enable(model) on CUDA
        self.grouped = None  # the same for many tokens, set by enable(model, prefill=True)
        self.path = None  # None: automatic; "gathered" / "per_expert" to force one (tests)

    def forward(self, x):
        """x [N, D] -> (y [N, D], router logits [N, E], experts [N, k], weights [N, k])."""
        return moe(x, self.cfg, self.router, self.experts, fused=self.fused, path=self.path,
                   grouped=None if self.training else self.grouped)


def moe(x, cfg, router, experts, fused=None, path=None, grouped=None):
    """y_t = sum_r w_tr * expert_{e_tr}(x_t). x [N, D] -> (y [N, D], router logits, experts [N, k], weights).
    path: None picks the fused kernel (if given) or the gathered path for few tokens on CUDA (graph-capturable),
    the grouped kernel (if given) or one matmul per expert hit for more; "gathered" / "per_expert" force one (the
    tests run both)."""
    N, k = x.shape[0], cfg.top_k
    logits = router(x)  # [N, E]
    few = N * k <= GATHER_MAX_PAIRS
    if path is None and fused is not None and few:  # CUDA + Triton: routing and dequantising inside kernels
        y, chosen, weights = fused(x, logits)  # [N, D], [N, k], [N, k]
        return y, logits, chosen, weights
    if path is None and grouped is not None and not few:  # a prompt: every expert in one launch per projection
        y, chosen, weights = grouped(x, logits)  # [N, D], [N, k], [N, k]
        return y, logits, chosen, weights
    chosen, weights = route(logits, cfg)  # [N, k]
    if path == "gathered" or (path is None and few and x.device.type == "cuda"):
        y = moe_gathered(x, cfg, chosen, weights, experts.up, experts.down)
    else:  # on a CPU, and for training, reading each routed expert in place beats copying it out first
        y = moe_per_expert(x, cfg, chosen, weights, experts.up, experts.down)
    return y, logits, chosen, weights


def moe_gathered(x, cfg, chosen, weights, up, down):
    """Gather the N*k routed experts' weights, then one batched matmul per projection (no host sync)."""
    N, k = chosen.shape
    ids = chosen.reshape(-1)  # [N*k]
    xk = x.repeat_interleave(k, dim=0)  # [N*k, D], pair p = token p // k
    h = torch.bmm(up.matrices(ids, x.dtype), xk[:, :, None])[..., 0]  # [N*k, F or 2F]
    if up.bias is not None:
        h = h + up.bias[ids]
    out = torch.bmm(down.matrices(ids, x.dtype), activate(h, cfg)[:, :, None])[..., 0]  # [N*k, F] -> [N*k, D]
    if down.bias is not None:
        out = out + down.bias[ids]
    return (out.reshape(N, k, -1) * weights[..., None].to(out.dtype)).sum(1)  # [N, k, D] * [N, k, 1] -> [N, D]


def moe_per_expert(x, cfg, chosen, weights, up, down):
    """One matmul per expert that was hit, over all its tokens (prefill, training: differentiable). Rounds as
    moe_gathered and transformers do in bf16: the bias added after the product, each weighted output rounded, the k
    of a token summed in float32 at least and rounded once."""
    N, k = chosen.shape
    flat = chosen.reshape(-1)  # [N, k] -> [N*k]: pair p = token p // k, slot p % k
    order = torch.argsort(flat, stable=True)  # [N*k] pair ids, grouped by expert
    counts = torch.bincount(flat, minlength=up.shape[0]).tolist()  # E ints; one host sync per layer
    y = torch.zeros(x.shape, dtype=torch.promote_types(x.dtype, torch.float32), device=x.device)  # [N, D]
    start = 0
    for e, n in enumerate(counts):
        if n == 0:
            continue
        pairs = order[start:start + n]  # [n] the pairs routed to expert e
        start += n
        tok, slot = pairs // k, pairs % k  # [n] each: the pairs' tokens and their top-k slots
        h = F.linear(x[tok], up.matrix(e, x.dtype))  # [n, D] -> [n, F or 2F]
        if up.bias is not None:
            h = h + up.bias[e]
        out = F.linear(activate(h, cfg), down.matrix(e, x.dtype))  # act(h) [n, F] -> [n, D]
        if down.bias is not None:
            out = out + down.bias[e]
        y.index_add_(0, tok, (out * weights[tok, slot][:, None].to(out.dtype)).to(y.dtype))  # y[tok] += [n, 1] * [n, D]
    return y.to(x.dtype)
