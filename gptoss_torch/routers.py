"""The two MoE routers, as in gptoss_np/moe.py."""


import torch

from .attention import at_least_float32


def top_k(x, k):
    """(values, indices) of the k largest entries per row, largest first; ties: lower index first, as the oracle and
    the fused kernel break them (torch.topk promises no order among equals). [T, E] -> ([T, k], [T, k])."""
    vals, idx = torch.sort(x, dim=-1, descending=True, stable=True)  # [T, E] each
    return vals[..., :k], idx[..., :k]  # [T, k] each


def router_topk_softmax(logits, k):
    """gpt-oss: top-k logits, then softmax over those k."""
    vals, idx = top_k(logits, k)
    return idx, torch.softmax(at_least_float32(vals), dim=-1).to(logits.dtype)


def router_softmax_topk(logits, k):
    """Qwen3: softmax over all experts, top-k, renormalised."""
    probs = torch.softmax(at_least_float32(logits), dim=-1)
    w, idx = top_k(probs, k)
    return idx, (w / w.sum(-1, keepdim=True)).to(logits.dtype)


def route(logits, cfg):
    """The config's router: (experts [T, k], weights [T, k])."""
    return router_topk_softmax(logits, cfg.top_k) if cfg.router == "topk_softmax" else \
        router_softmax_topk(logits, cfg.top_k)
