"""The two MoE routers, as in gptoss_np/moe.py."""


import torch

from .attention import at_least_float32


def router_topk_softmax(logits, k):
    """gpt-oss: top-k logits, then softmax over those k."""
    vals, idx = torch.topk(logits, k, dim=-1, sorted=True)
    return idx, torch.softmax(at_least_float32(vals), dim=-1).to(logits.dtype)


def router_softmax_topk(logits, k):
    """Qwen3: softmax over all experts, top-k, renormalised."""
    probs = torch.softmax(at_least_float32(logits), dim=-1)
    w, idx = torch.topk(probs, k, dim=-1, sorted=True)
    return idx, (w / w.sum(-1, keepdim=True)).to(logits.dtype)


def route(logits, cfg):
    """The config's router: (experts [T, k], weights [T, k])."""
    return router_topk_softmax(logits, cfg.top_k) if cfg.router == "topk_softmax" else \
        router_softmax_topk(logits, cfg.top_k)
