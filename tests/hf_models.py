"""Tiny random transformers models (every parameter random, so zero-initialised sinks/routers hide nothing)."""

import pytest
import torch

transformers = pytest.importorskip("transformers")


def randomise(model, std=0.1, seed=0):
    """Every parameter random (transformers initialises sinks and the router at zero, which would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.1 * noise if ("norm" in name or ".ln_" in name) else std * noise)
            if name.endswith("sinks"):
                p.copy_(noise)  # sinks of order 1: they must visibly change the softmax
    return model.eval()


def tiny_gpt_oss(**over):
    kw = dict(vocab_size=100, hidden_size=64, intermediate_size=32, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, num_local_experts=6, num_experts_per_tok=2, sliding_window=4,
              attn_implementation="eager")
    kw.update(over)
    return randomise(transformers.GptOssForCausalLM(transformers.GptOssConfig(**kw)))


def tiny_qwen3_moe(**over):
    kw = dict(vocab_size=100, hidden_size=64, intermediate_size=96, moe_intermediate_size=32, num_hidden_layers=2,
              num_attention_heads=4, num_key_value_heads=2, head_dim=32, num_experts=6, num_experts_per_tok=2,
              norm_topk_prob=True, attn_implementation="eager")
    kw.update(over)
    return randomise(transformers.Qwen3MoeForCausalLM(transformers.Qwen3MoeConfig(**kw)))


def tiny_gpt2():
    cfg = transformers.GPT2Config(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=32,
                                  attn_implementation="eager", bos_token_id=0, eos_token_id=0)
    return randomise(transformers.GPT2LMHeadModel(cfg))
