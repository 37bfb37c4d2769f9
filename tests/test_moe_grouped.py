"""A prompt's MoE on PyTorch's grouped matrix multiply (gptoss_torch/fast/moe_grouped.py) against the gathered path
in float64 (one batched product per pair, no grouping): packed MXFP4 and float experts, with and without biases, an
expert no pair chose; inside the model, where gptoss_torch.fast.enable(model, prefill=True, prefill_moe="grouped_mm")
puts it, against the plain forward; and what enable refuses."""

import pytest
import torch
from interpreter import run_interpreted

import gptoss_np
from gptoss_np import get_config, scale_down
from gptoss_torch.fast import enable, moe_grouped
from gptoss_torch.model import Model
from gptoss_torch.moe import moe_gathered

# 08-moe: float experts, SwiGLU, no biases; 09-mxfp4: packed experts; gpt-oss-20b: packed, biases, clamped SwiGLU;
# qwen3-30b-a3b: 8 of 128 experts
NAMES = ["08-moe", "09-mxfp4", "gpt-oss-20b", "qwen3-30b-a3b"]


def twin(name, dtype, seed=3):
    cfg = scale_down(get_config(name))
    return Model.from_numpy(cfg, gptoss_np.init_weights(cfg, seed=seed), dtype=dtype)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.bfloat16, 2e-2)], ids=["float32", "bf16"])
@pytest.mark.parametrize("name", NAMES)
def test_grouped_product_equals_the_gathered_path(name, dtype, tol):
    model, ref = twin(name, dtype), twin(name, torch.float64)
    cfg = model.cfg
    E, k, N = cfg.n_experts, cfg.top_k, 37
    g = torch.Generator().manual_seed(5)
    chosen = torch.stack([torch.randperm(E - 1, generator=g)[:k] for _ in range(N)])  # [N, k]
    chosen[chosen >= 2] += 1  # expert 2 gets no pair: an empty group
    weights = torch.rand(N, k, generator=g, dtype=torch.float64)
    x = torch.randn(N, cfg.d_model, generator=g, dtype=torch.float64)
    for i in (0, cfg.n_layers - 1):
        ex, ex64 = model.layers[i].mlp.experts, ref.layers[i].mlp.experts
        y = moe_grouped.moe_grouped_mm(x.to(dtype), cfg, chosen, weights.to(dtype), ex.up, ex.down)
        want = moe_gathered(x, cfg, chosen, weights, ex64.up, ex64.down)
        assert y.shape == (N, cfg.d_model) and y.dtype == dtype
        err = ((y.double() - want).abs().max() / want.abs().max()).item()
        assert err < tol, (name, i, err)


@pytest.mark.parametrize("name", ["09-mxfp4", "gpt-oss-20b"])
def test_the_model_with_the_grouped_product_equals_the_plain_forward(name, monkeypatch):
    plain, fast = twin(name, torch.float32), twin(name, torch.float32)
    calls = []
    real = moe_grouped.moe_grouped_mm
    monkeypatch.setattr(moe_grouped, "moe_grouped_mm", lambda *a: calls.append(a[0].shape[0]) or real(*a))
    assert enable(fast, prefill=True, prefill_moe="grouped_mm")["prefill moe"]
    tokens = torch.arange(40) * 13 % plain.cfg.vocab_size  # 40 x 4 pairs: past the few-token paths
    want, got = plain(tokens), fast(tokens)
    assert calls == [40] * plain.cfg.n_layers  # every layer's MoE took it
    assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5
    assert not enable(fast, prefill=False, prefill_moe="grouped_mm")["prefill moe"]  # and off again
    assert all(b.mlp.grouped is None for b in fast.layers)


def test_enable_refuses_what_it_cannot_run():
    with pytest.raises(ValueError, match="prefill_moe: expected 'triton' or 'grouped_mm', got 'cutlass'"):
        enable(twin("gpt-oss-20b", torch.float32), prefill=True, prefill_moe="cutlass")
    # float64 has no grouped product; a dense model has no experts: nothing is set, enable says so
    for model in (twin("gpt-oss-20b", torch.float64), twin("07-sinks", torch.float32)):
        assert not enable(model, prefill=True, prefill_moe="grouped_mm")["prefill moe"]
        assert all(getattr(b.mlp, "grouped", None) is None for b in model.layers)
    assert not moe_grouped.available("cuda", torch.float32)  # its CUDA kernels take bfloat16 only
    assert moe_grouped.available("cpu", torch.float32) == (moe_grouped.grouped_mm_op() is not None)


def cuda_rules(a, b, offs):
    """What PyTorch's CUDA grouped product checks of a 2d x 3d call before its sm90 kernel (GroupedMMUtils.h,
    GroupedBlas.cpp at pytorch/pytorch main): bf16 a and b, 16-byte aligned; each matrix with one unit stride and the
    other a multiple of 16 bytes, spanning its rows; int32 offsets, one a group of b; and (what the kernel reads) the
    last offset ending a's rows -> the rules broken, by name (empty: none)."""
    broken = []
    for name, m in (("a", a), ("b", b)):
        if m.dtype != torch.bfloat16:
            broken.append(f"{name} is {m.dtype}")
        if m.data_ptr() % 16:
            broken.append(f"{name} not 16-byte aligned")
        (s0, s1), (n0, n1), unit = m.stride()[-2:], m.shape[-2:], 16 // m.element_size()
        if not ((s0 == 1 and s1 >= max(1, n0) and s1 % unit == 0) or (s1 == 1 and s0 >= max(1, n1) and s0 % unit == 0)):
            broken.append(f"{name} strides {m.stride()}")
    if offs.dtype != torch.int32 or offs.dim() != 1 or offs.shape[0] != b.shape[0]:
        broken.append(f"offs {offs.dtype} {list(offs.shape)}")
    elif int(offs[-1]) != a.shape[0]:
        broken.append(f"offs end at {int(offs[-1])}, not at {a.shape[0]} rows")
    return broken


def test_the_operands_meet_the_cuda_kernels_rules(monkeypatch):
    """On a GPU the grouped product refuses operands its TMA-fed kernel cannot read: the operands this path hands it
    (gpt-oss-20b's MXFP4 experts decoded whole, bf16) meet those rules on the CPU, where torch does not check them;
    a control breaks one."""
    model = twin("gpt-oss-20b", torch.bfloat16)
    cfg, real, seen = model.cfg, moe_grouped.grouped_mm_op(), []

    def checked(a, b, offs):
        seen.append(cuda_rules(a, b, offs))
        return real(a, b, offs=offs)
    monkeypatch.setattr(moe_grouped, "grouped_mm_op", lambda: checked)
    g = torch.Generator().manual_seed(2)
    chosen = torch.stack([torch.randperm(cfg.n_experts, generator=g)[:cfg.top_k] for _ in range(29)])
    ex = model.layers[0].mlp.experts
    moe_grouped.moe_grouped_mm(torch.randn(29, cfg.d_model).bfloat16(), cfg, chosen,
                               torch.rand(29, cfg.top_k).bfloat16(), ex.up, ex.down)
    assert seen == [[], []]  # up and down
    # controls: rows of 36 bf16 values (72 bytes, not a multiple of 16), offsets in int64, offsets short of a's rows
    a, offs = torch.zeros(6, 24, dtype=torch.bfloat16), torch.tensor([1, 2, 3, 6], dtype=torch.int32)
    assert cuda_rules(a, torch.zeros(4, 24, 40, dtype=torch.bfloat16), offs) == []
    assert cuda_rules(a, torch.zeros(4, 24, 36, dtype=torch.bfloat16), offs) == ["b strides (864, 36, 1)"]
    assert cuda_rules(a, torch.zeros(4, 24, 40, dtype=torch.bfloat16), offs.long()) == ["offs torch.int64 [4]"]
    assert cuda_rules(a, torch.zeros(4, 24, 40, dtype=torch.bfloat16), offs - 1) == ["offs end at 5, not at 6 rows"]


GLUE = r"""
import torch
import gptoss_np
from gptoss_np import get_config, scale_down
from gptoss_torch.fast import enable, moe_glue_triton as glue, moe_grouped
from gptoss_torch.ffn import swiglu_oss
from gptoss_torch.model import Model
from gptoss_torch.moe import moe_gathered
assert glue.available("cpu")
g = torch.Generator().manual_seed(7)

def rel(a, b):
    return ((a.double() - b.double()).abs().max() / b.double().abs().max()).item()

# the kernels on their own, float32, odd shapes (rows and columns past whole tiles), against the torch ops
M, F, E, N, k, D = 37, 150, 5, 11, 3, 1100
h, bias, e = torch.randn(M, 2 * F, generator=g) * 4, torch.randn(E, 2 * F, generator=g), torch.randint(0, E, (M,))
want = swiglu_oss(h + bias[e], 1.702, 7.0)
assert rel(glue.bias_swiglu(h, bias, e, 1.702, 7.0), want) < 1e-6
assert rel(glue.bias_swiglu(h, None, e, 1.702, 7.0), swiglu_oss(h, 1.702, 7.0)) < 1e-6
out, dbias = torch.randn(N * k, D, generator=g), torch.randn(E, D, generator=g)
chosen, w = torch.randint(0, E, (N, k), generator=g), torch.rand(N, k, generator=g)
perm = torch.randperm(N * k, generator=g)  # pair p sits at row pos[p]
pos = torch.empty_like(perm).index_copy_(0, perm, torch.arange(N * k))
shuffled = out[perm]
want = ((out + dbias[chosen.reshape(-1)]).view(N, k, D) * w[..., None]).sum(1)
assert rel(glue.combine_pairs(shuffled, pos, dbias, chosen, w), want) < 1e-6
assert rel(glue.combine_pairs(shuffled, pos, None, chosen, w), (out.view(N, k, D) * w[..., None]).sum(1)) < 1e-6
# control: the pairs read where they were before the shuffle are wrong
assert rel(glue.combine_pairs(shuffled, torch.arange(N * k), dbias, chosen, w), want) > 1e-2

# the grouped product's MoE with the glue in Triton against the gathered path in float64: gpt-oss (biases, clamped
# SwiGLU), Qwen3 (no biases, plain SwiGLU: the sum in Triton only), one expert no pair chose
for name in ("gpt-oss-20b", "qwen3-30b-a3b"):
    cfg = scale_down(get_config(name))
    weights = gptoss_np.init_weights(cfg, seed=3)
    ref = Model.from_numpy(cfg, weights, dtype=torch.float64)
    Ex, k, N = cfg.n_experts, cfg.top_k, 37
    chosen = torch.stack([torch.randperm(Ex - 1, generator=g)[:k] for _ in range(N)])
    chosen[chosen >= 2] += 1
    w = torch.rand(N, k, generator=g, dtype=torch.float64)
    x = torch.randn(N, cfg.d_model, generator=g, dtype=torch.float64)
    ex64 = ref.layers[0].mlp.experts
    want = moe_gathered(x, cfg, chosen, w, ex64.up, ex64.down)
    for dtype, tol in ((torch.float32, 1e-5), (torch.bfloat16, 2e-2)):
        ex = Model.from_numpy(cfg, weights, dtype=dtype).layers[0].mlp.experts
        y = moe_grouped.moe_grouped_mm(x.to(dtype), cfg, chosen, w.to(dtype), ex.up, ex.down, fused=True)
        assert y.shape == (N, cfg.d_model) and y.dtype == dtype
        assert rel(y, want) < tol, (name, dtype, rel(y, want))

# inside the model, as enable() sets it up where Triton runs: a 40-token prompt equals the plain forward
cfg = scale_down(get_config("gpt-oss-20b"))
plain, fast = (Model.from_numpy(cfg, gptoss_np.init_weights(cfg, seed=3), dtype=torch.float32) for _ in range(2))
calls = []
real = glue.combine_pairs
glue.combine_pairs = lambda *a: calls.append(1) or real(*a)
assert enable(fast, prefill=True, prefill_moe="grouped_mm")["prefill moe"]
tokens = torch.arange(40) * 13 % cfg.vocab_size
assert rel(fast(tokens), plain(tokens)) < 1e-5 and len(calls) == cfg.n_layers
print("glue ok")
"""


def test_the_glue_in_triton_equals_the_torch_ops():
    """fast/moe_glue_triton.py in Triton's interpreter: the bias + SwiGLU pass and the combine over a token's pairs
    against the torch ops (odd shapes; a control reads the pairs in the wrong place), the grouped product's MoE with
    them against the gathered path in float64, and the model's prompt with them against the plain forward."""
    pytest.importorskip("triton")
    run_interpreted(GLUE, "glue ok")
