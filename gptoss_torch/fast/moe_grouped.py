"""A prompt's MoE on PyTorch's grouped matrix multiply (torch.nn.functional.grouped_mm): the (token, expert) pairs
sorted by expert on the device, every expert's matrix decoded whole (MXFP4: one launch per projection where
fast/mxfp4_triton is enabled), then one grouped product per projection in which each expert multiplies its own rows;
where Triton runs, the glue around them (biases, SwiGLU, router weights, the sum over k) in two launches
(fast/moe_glue_triton.py).
No loop over experts and nothing read back on the host, so a prompt's launches do not grow with the experts it hits
(the per-expert path in moe.py reads the counts back once a layer and launches about 24 kernels per expert hit); the
products are the vendor's grouped GEMM. The price is memory: a projection's experts decoded at once (gpt-oss-20b,
bfloat16: 1.06 GB for the up projection), freed before the next.

On CUDA, PyTorch runs the product on its sm90/sm100 grouped kernel (no host sync) only for bfloat16 operands, each
16-byte aligned with one unit stride and the other a multiple of 16 bytes, and int32 offsets (its GroupedMMUtils.h and
GroupedBlas.cpp; elsewhere it falls back to a loop of matmuls that reads the offsets back): the operands here meet
those rules at gpt-oss-20b's shapes, which tests/test_moe_grouped.py checks on the CPU, where torch does not.

Opt-in beside the Triton grouped kernel (fast/mxfp4_triton.grouped_moe, which decodes in registers and needs no
decoded copy): gptoss_torch.fast.enable(model, prefill=True, prefill_moe="grouped_mm"). Same result as moe.py's
paths to rounding (tests/test_moe_grouped.py).
"""

import torch
import torch.nn.functional as F

from ..ffn import activate
from ..routers import route
from . import moe_glue_triton


def grouped_mm_op():
    """PyTorch's grouped matrix multiply (public as F.grouped_mm in recent releases, torch._grouped_mm before), or
    None where this torch has neither."""
    return getattr(F, "grouped_mm", None) or getattr(torch, "_grouped_mm", None)


def available(device, dtype):
    """The grouped product runs here: on CUDA in bfloat16 (what its kernels take), on a CPU in float32 or bfloat16."""
    if grouped_mm_op() is None:
        return False
    if torch.device(device).type == "cuda":
        return dtype == torch.bfloat16
    return dtype in (torch.float32, torch.bfloat16)


def moe_grouped_mm(x, cfg, chosen, weights, up, down, fused=False):
    """y_t = sum_r w_tr * expert_{e_tr}(x_t) with each projection one grouped product over the pairs sorted by expert:
    x [N, D], chosen / weights [N, k] -> y [N, D]. The pairs are put back in token order before the weighted sum over
    k (no atomic adds: the same sum, in the same order, as moe_gathered). fused: the glue in two Triton launches
    (fast/moe_glue_triton.py: the up bias with gpt-oss's SwiGLU; the down bias, router weights and sum over k, read
    where the sort left each pair) instead of torch's passes."""
    N, k = chosen.shape
    mm = grouped_mm_op()
    flat = chosen.reshape(-1)  # [N*k]: pair p is token p // k
    order = torch.argsort(flat, stable=True)  # [N*k] pairs grouped by expert
    counts = torch.zeros(up.shape[0], dtype=torch.long, device=x.device).scatter_add_(0, flat, torch.ones_like(flat))
    ends = counts.cumsum(0).to(torch.int32)  # [E]: each expert's last row + 1 (bincount would sync: it sizes its
    # output by the largest id, read on the host)
    e_sorted = flat[order]  # [N*k]
    h = mm(x[order // k], up.all_matrices(x.dtype).transpose(1, 2), offs=ends)  # [N*k, D] -> [N*k, F or 2F]
    if fused and cfg.activation == "swiglu_oss":
        act = moe_glue_triton.bias_swiglu(h, up.bias, e_sorted, cfg.swiglu_alpha, cfg.swiglu_limit)  # [N*k, F]
    else:
        if up.bias is not None:
            h = h + up.bias[e_sorted].to(h.dtype)
        act = activate(h, cfg)
    out = mm(act, down.all_matrices(x.dtype).transpose(1, 2), offs=ends)  # [N*k, D]
    if fused:  # pos[p]: where pair p sits among the sorted ones
        pos = torch.empty_like(order).index_copy_(0, order, torch.arange(order.numel(), device=x.device))
        return moe_glue_triton.combine_pairs(out, pos, down.bias, chosen, weights)  # [N, D]
    if down.bias is not None:
        out = out + down.bias[e_sorted].to(out.dtype)
    pairs = torch.empty_like(out).index_copy_(0, order, out)  # [N*k, D], back in pair order
    return (pairs.view(N, k, -1) * weights[..., None].to(out.dtype)).sum(1)  # [N, D]


def grouped_mm_moe(x, logits, cfg, up, down, fused=False):
    """MoE.grouped's signature: router logits in, (y [N, D], experts [N, k], weights [N, k]) out."""
    chosen, weights = route(logits, cfg)
    return moe_grouped_mm(x, cfg, chosen, weights, up, down, fused), chosen, weights


def enable(model, on=True):
    """Give the model's MoE layers the grouped-product path for prompts where it runs (available: the device and the
    model's dtype), replacing the Triton grouped kernel if that was set, its glue in Triton where that runs
    (moe_glue_triton.available); on=False takes it away -> whether enabled."""
    cfg = model.cfg
    on = on and available(model.device, model.dtype) and cfg.n_experts > 0
    fused = moe_glue_triton.available(model.device)
    for block in model.layers:
        if hasattr(block.mlp, "grouped"):
            ex = block.mlp.experts
            block.mlp.grouped = ((lambda x, logits, up=ex.up, down=ex.down: grouped_mm_moe(x, logits, cfg, up, down,
                                                                                            fused))
                                 if on else None)
    return on


__all__ = ["available", "enable", "grouped_mm_moe", "grouped_mm_op", "moe_grouped_mm"]
