"""The torch twin in bfloat16 against transformers in bfloat16, op by op, where the two must round alike: the MoE's
experts given the same routing (bias added after the product, each weighted output rounded, the k summed in float32
and rounded once, as transformers' default grouped_mm experts do), and Qwen3 end to end against transformers' sdpa
attention (its default), bit for bit. gpt-oss's attention is not compared bit for bit: transformers' eager attention
(its only one) rounds the scores and probabilities to bf16, where the twin keeps them in float32."""

import pytest
import torch

import gptoss_torch
from gptoss_torch.moe import moe_gathered, moe_per_expert
from hf_models import tiny_gpt_oss, tiny_qwen3_moe

transformers = pytest.importorskip("transformers")

CASES = {"gpt_oss": lambda: tiny_gpt_oss(num_local_experts=8, num_experts_per_tok=4),  # biases, k = 4
         "qwen3": lambda: tiny_qwen3_moe(num_experts=16, num_experts_per_tok=8)}  # k = 8


@pytest.fixture(scope="module", params=sorted(CASES))
def pair(request, tmp_path_factory):
    """(transformers model, twin), both read in bf16 from one bf16 checkpoint (saved, then reloaded: the RoPE tables
    are then computed by each side, not rounded from a float32 model)."""
    path = tmp_path_factory.mktemp(request.param)
    CASES[request.param]().to(torch.bfloat16).save_pretrained(path)
    hf = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.bfloat16, attn_implementation="sdpa"
                                                           if request.param == "qwen3" else "eager",
                                                           experts_implementation="grouped_mm").eval()
    return request.param, hf, gptoss_torch.load_model(path, device="cpu", dtype="bfloat16", progress=False)


def tokens(n=48, seed=1):
    return torch.randint(0, 100, (n,), generator=torch.Generator().manual_seed(seed))


def test_experts_round_as_transformers(pair):
    _, hf, twin = pair
    inputs = {}
    hooks = [layer.mlp.register_forward_pre_hook(lambda m, a, i=i: inputs.__setitem__(i, a[0]))
             for i, layer in enumerate(hf.model.layers)]
    with torch.no_grad():
        hf(tokens()[None])
        for h in hooks:
            h.remove()
        for i, layer in enumerate(hf.model.layers):
            x = inputs[i].reshape(-1, twin.cfg.d_model)  # [N, D] bf16, transformers' own ffn_norm output
            router = getattr(layer.mlp, "router", None) or layer.mlp.gate
            _, weights, chosen = router(x)  # transformers' routing, given to both sides
            ref = layer.mlp.experts(x, chosen, weights)  # [N, D]
            ex = twin.layers[i].mlp.experts
            w = weights.to(torch.bfloat16)
            for path in (moe_per_expert, moe_gathered):
                out = path(x, twin.cfg, chosen, w, ex.up, ex.down)
                assert out.dtype == torch.bfloat16 and torch.equal(out, ref), \
                    (path.__name__, i, int((out != ref).sum()), out.numel())


def test_qwen3_logits_equal_transformers_sdpa_bit_for_bit(pair):
    kind, hf, twin = pair
    if kind != "qwen3":
        pytest.skip("gpt-oss has only transformers' eager attention, which rounds scores to bf16")
    t = tokens(40, 2)
    with torch.no_grad():
        ref = hf(t[None]).logits[0]
        out = twin(t)
    assert torch.equal(out.to(ref.dtype), ref), (int((out.to(ref.dtype) != ref).sum()), ref.numel())
