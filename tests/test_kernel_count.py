"""Kernels per layer in one batch-1 decode step, counted on the CPU (gptoss_torch/fast/dispatch_count.py: non-view
aten ops, F.rms_norm as its one CUDA kernel, a Triton launch as one: the kernels are replaced by counted stand-ins,
tests/test_mxfp4_triton.py and test_attention_triton.py check them), so a change that adds launches fails here.
Per layer = (count with 4 layers - count with 2) / 2: the step's fixed ops (embedding, table row, masks made once
per window kind, final norm, unembedding) cancel. The bounds are the measured counts."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

import gptoss_np
from gptoss_torch.fast import attention_triton, gemv_triton, moe_glue_triton, mxfp4_triton, norm_triton
from gptoss_torch.fast import rope_cache_triton
from gptoss_torch.fast.decode import FastDecoder
from gptoss_torch.fast.dispatch_count import OpCounter, count_ops
from gptoss_torch.model import Model

TARGET = 25  # issue 16: at most 25 kernels per layer in a decode step
# measured (gpt-oss scaled down): the fast decoder with the Triton routing, attention, MoE and add + norm kernels
# (18 in float32 and 19 in bf16 before the residual adds took the norms and the MoE's sum over k, 15 before RoPE and
# the three cache writes became one launch, 10 before the routing moved into the up kernel, 9 before the router's
# matmul moved into the add + norm kernel before the MoE), the fast decoder with pure-torch attention and gathered MoE
# (CUDA without Triton), and Model.run itself (it was 101.5 / 116.5 per layer with the gathered MoE before issue 16;
# the fast decoder's torch path takes one op more since the softmax scale left q's weights, whose copy the decoder no
# longer keeps, and one more since RoPE's second product is rounded on its own, as Model.run rounds it). On a GPU a
# full layer's attention past 128 slots is two launches (the split kernels), counted here as the one stand-in.
F32, BF16 = torch.float32, torch.bfloat16
BOUNDS = {("fast", "triton", F32): 8, ("fast", "triton", BF16): 8, ("fast", "torch", F32): 62,
          ("fast", "torch", BF16): 70, ("plain", "triton", F32): 51, ("plain", "torch", F32): 89,
          ("plain", "torch", BF16): 104}


def route_stand_in(counter):
    """The routing kernel as one counted launch (top-k of the logits, equal weights)."""
    def route(logits, k):
        with counter.kernel("triton route"):
            return logits.topk(k).indices, torch.full((logits.shape[0], k), 1.0 / k)
    return route


def count_step(n_layers, fast, moe, monkeypatch, dtype=torch.float32, gemv=False):
    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), n_layers=n_layers)
    model = Model.from_numpy(cfg, gptoss_np.init_weights(cfg, seed=1), dtype=dtype)
    counter = OpCounter()
    if moe == "triton":  # each kernel launch stands in as one counted kernel (the CPU cannot run it fast)
        def launch(blocks, scales, ids, x, *args, **kw):
            with counter.kernel("triton mxfp4_matvec"):
                return torch.zeros(ids.numel(), blocks.shape[1], dtype=torch.float32)

        def attend(q, *args, **kw):
            with counter.kernel("triton decode_attention"):
                return torch.zeros_like(q)

        def add_norm(x, delta, weight, eps, scaled=False, router=None, cast="after_weight"):
            with counter.kernel("triton add_rms_norm"):
                logits = () if router is None else (torch.zeros(x.shape[0], router[0].shape[0]),)
                return (torch.zeros_like(x),) * (3 if scaled else 2) + logits

        def rope_cache(qkv, table, pos, lc, n_heads, n_kv_heads):
            with counter.kernel("triton rope_cache_write"):
                return torch.zeros_like(qkv[:, :, :n_heads])

        monkeypatch.setattr(mxfp4_triton, "available", lambda device: True)
        monkeypatch.setattr(mxfp4_triton, "mxfp4_matvec", launch)
        monkeypatch.setattr(mxfp4_triton, "route_topk_softmax", route_stand_in(counter))
        monkeypatch.setattr(attention_triton, "decode_attention_triton", attend)
        monkeypatch.setattr(norm_triton, "add_rms_norm", add_norm)
        def gemv_launch(x, weight, bias=None, tile=None):
            with counter.kernel("triton gemv"):
                return torch.zeros(*x.shape[:-1], weight.shape[0], dtype=x.dtype)

        monkeypatch.setattr(rope_cache_triton, "rope_cache_write", rope_cache)
        monkeypatch.setattr(gemv_triton, "gemv", gemv_launch)
        assert mxfp4_triton.enable(model)
    else:
        for block in model.layers:
            block.mlp.path = "gathered"  # what CUDA runs for a decode step without Triton
    cache = model.new_cache(16)
    model(torch.arange(5), cache=cache)
    tokens, pos = torch.tensor([[3]]), torch.tensor([5])
    triton = moe == "triton"
    decoder = FastDecoder(model, 16, triton=triton, fuse_norms=triton, fuse_rope=triton, gemv=gemv)
    step = (lambda: decoder.step(tokens, pos, cache)) if fast == "fast" else (lambda: model.run(tokens, pos, cache))
    counter.ops.clear()
    return count_ops(model, step, counter)


@pytest.mark.parametrize("fast,moe,dtype", sorted(BOUNDS, key=str), ids=str)
def test_kernels_per_layer_of_a_decode_step(fast, moe, dtype, monkeypatch):
    four, two = count_step(4, fast, moe, monkeypatch, dtype), count_step(2, fast, moe, monkeypatch, dtype)
    per_layer = (four.total() - two.total()) / 2
    assert per_layer <= BOUNDS[fast, moe, dtype], f"{per_layer} kernels per layer: {four.ops - two.ops}"
    if (fast, moe) == ("fast", "triton"):
        assert per_layer <= TARGET
        assert four.ops["triton mxfp4_matvec"] == 2 * 4  # up and down, one launch each per layer
        assert four.ops["triton decode_attention"] == 4 and four.ops["triton route"] == 0  # routed in the up kernel
        assert four.ops["triton rope_cache_write"] == 4 and four.ops["aten.index_copy_"] == 0
        # the first norm alone; every residual add carries the norm after it (and the MoE's sum over k, or the
        # router's logits): the matmuls left are q/k/v and the attention's output a layer, and the unembedding
        assert four.ops["aten._fused_rms_norm"] == 1 and four.ops["triton add_rms_norm"] == 2 * 4
        assert four.ops["aten.addmm"] == 2 * 4 and four.ops["aten.mm"] == 1


def test_the_projections_by_the_triton_gemv_keep_the_count(monkeypatch):
    """With gemv_triton (opt-in) a token's q/k/v and output projections are one Triton launch each instead of
    F.linear's (on a GPU cuBLAS may take two: a split-K pass and its reduction): the same 8 a layer, no matmul left
    in a layer."""
    four, two = (count_step(n, "fast", "triton", monkeypatch, torch.bfloat16, gemv=True) for n in (4, 2))
    assert (four.total() - two.total()) / 2 == BOUNDS["fast", "triton", torch.bfloat16]
    assert four.ops["triton gemv"] == 2 * 4 and four.ops["aten.addmm"] == 0 and four.ops["aten.mm"] == 1


def test_the_counter_sees_an_added_kernel(monkeypatch):
    """Control: one more op per layer in the fast step is counted."""
    base = count_step(2, "fast", "torch", monkeypatch).total()
    layer = FastDecoder.layer
    monkeypatch.setattr(FastDecoder, "layer", lambda self, *a: (lambda x, h: (x * 1.0, h))(*layer(self, *a)))
    assert count_step(2, "fast", "torch", monkeypatch).total() == base + 2


PROMPT_BOUND = 47  # measured: kernels per layer of a prompt through the prompt kernels (bf16, 20 or 40 tokens; 76
# before RoPE became one launch and the norms F.rms_norm)
GROUPED_MM_BOUND = 38  # measured: the same with the MoE on torch's grouped product and its glue in Triton (45 with
# the glue as torch ops, before; 37 while the router took torch.topk, whose order among tied logits is unspecified: its
# stable sort's first k are a strided view, copied once)


class HostReads(TorchFunctionMode):
    """Counts the calls that read a tensor's values on the host (on a GPU: a sync): .item(), .tolist(), bool(),
    int(), float() of a tensor."""
    READS = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.__bool__, torch.Tensor.__int__,
             torch.Tensor.__float__, torch.Tensor.__index__}

    def __init__(self):
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.n += func in self.READS
        return func(*args, **(kwargs or {}))


def count_prompt(n_layers, T, kernels, monkeypatch, prefill_moe="triton"):
    """Kernels a T-token prompt dispatches into a cache (and, as .host_reads, its reads of tensor values on the
    host): with `kernels` the prompt kernels (grouped MoE, flash attention, routing: stand-ins counted as one
    launch each; with prefill_moe="grouped_mm" the MoE on torch's grouped product, run for real), else the plain
    per-expert path."""
    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"), n_layers=n_layers)
    model = Model.from_numpy(cfg, gptoss_np.init_weights(cfg, seed=1), dtype=torch.bfloat16)
    counter = OpCounter()
    if kernels:
        def grouped(blocks, scales, slots, block_expert, x, bias=None, weights=None, topk=1, swiglu=None, tile=None):
            with counter.kernel("triton mxfp4_grouped"):
                return torch.zeros(x.shape[0] * topk, blocks.shape[1] // (2 if swiglu else 1))

        def attend(q, *args, **kw):
            with counter.kernel("triton prefill_attention"):
                return torch.zeros_like(q)

        def dequantize(blocks, scales, dtype):
            with counter.kernel("triton mxfp4_dequantize"):
                return torch.zeros(blocks.shape[0], blocks.shape[1] * 32, dtype=dtype)

        monkeypatch.setattr(mxfp4_triton, "available", lambda device: True)
        monkeypatch.setattr(mxfp4_triton, "mxfp4_dequantize", dequantize)
        monkeypatch.setattr(attention_triton, "available", lambda device: True)
        monkeypatch.setattr(mxfp4_triton, "mxfp4_grouped", grouped)
        monkeypatch.setattr(mxfp4_triton, "route_topk_softmax", route_stand_in(counter))
        def rope(q, k, cos, sin):
            with counter.kernel("triton rope"):
                return q, k

        def bias_swiglu(h, bias, experts, alpha, limit):
            with counter.kernel("triton bias_swiglu"):
                return torch.zeros(h.shape[0], h.shape[1] // 2, dtype=h.dtype)

        def combine(out, pos, bias, chosen, weights):
            with counter.kernel("triton combine_pairs"):
                return torch.zeros(chosen.shape[0], out.shape[1], dtype=out.dtype)

        monkeypatch.setattr(moe_glue_triton, "available", lambda device: True)
        monkeypatch.setattr(moe_glue_triton, "bias_swiglu", bias_swiglu)
        monkeypatch.setattr(moe_glue_triton, "combine_pairs", combine)
        monkeypatch.setattr(attention_triton, "prefill_attention_triton", attend)
        monkeypatch.setattr(rope_cache_triton, "apply_rope_triton", rope)
        from gptoss_torch.fast import enable
        assert enable(model, prefill=True, prefill_moe=prefill_moe) == {
            "mxfp4": True, "prefill moe": True, "prefill attention": True, "prefill norms": True}
    cache = model.new_cache(64)
    tokens, pos = (torch.arange(T) * 7 % cfg.vocab_size)[None], torch.arange(T)
    reads = HostReads()
    with reads:
        counter = count_ops(model, lambda: model.run(tokens, pos, cache, last_only=True), counter)
    counter.host_reads = reads.n
    return counter


def test_a_prompt_through_the_prompt_kernels_launches_a_fixed_number_of_kernels(monkeypatch):
    """Issue 16: the H200 saw a 2k prefill host-bound, 18,566 launches for 292 ms of kernels: about 24 for each
    expert hit in each layer (the per-expert loop). Through the prompt kernels a layer's launches are the same
    for any prompt length and any routing (no loop over experts, no host sync); the control, the per-expert path,
    launches more as a longer prompt hits more experts."""
    per_layer = {}
    for T in (20, 40):
        four, two = count_prompt(4, T, True, monkeypatch), count_prompt(2, T, True, monkeypatch)
        per_layer[T] = (four.total() - two.total()) / 2
        assert four.ops["triton mxfp4_grouped"] == 2 * 4 and four.ops["triton prefill_attention"] == 4
        assert four.host_reads == two.host_reads == 0  # Model.run reads nothing back (Model.forward's input
        # checks do, once a prompt)
    assert per_layer[20] == per_layer[40] <= PROMPT_BOUND, per_layer
    monkeypatch.undo()
    plain = {T: count_prompt(2, T, False, monkeypatch) for T in (4, 40)}
    assert plain[40].total() > plain[4].total() + 2 * 24, plain  # more experts hit, ~24 more launches each
    assert plain[40].host_reads == 2  # control: the per-expert path reads its counts back once a layer


def test_a_prompt_through_the_grouped_product_launches_a_fixed_number_of_kernels(monkeypatch):
    """The prompt's MoE on torch's grouped matrix multiply (fast/moe_grouped.py, run for real here) instead of the
    Triton grouped kernel, its glue (bias + SwiGLU; bias, router weights and the sum over k) in two Triton launches
    (stand-ins counted as one each): again the same launches a layer for any prompt length, no loop over experts and
    nothing read back on the host."""
    per_layer = {}
    for T in (20, 40):
        four, two = (count_prompt(n, T, True, monkeypatch, prefill_moe="grouped_mm") for n in (4, 2))
        per_layer[T] = (four.total() - two.total()) / 2
        assert four.ops["aten._grouped_mm"] == 2 * 4 and "triton mxfp4_grouped" not in four.ops, four.ops
        assert four.ops["triton bias_swiglu"] == four.ops["triton combine_pairs"] == 4  # the glue, once a layer
        assert four.host_reads == two.host_reads == 0
    assert per_layer[20] == per_layer[40] <= GROUPED_MM_BOUND, per_layer
