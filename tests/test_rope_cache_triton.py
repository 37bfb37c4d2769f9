"""fast/rope_cache_triton.py: a decode step's RoPE and KV-cache write in one launch, against the plain ops
(decode.rope_from_table, then index_copy_ into the slot), in Triton's CPU interpreter: full and ring layers (a ring
wrapping past its size), a batch of two, float32 and float16 (Triton's interpreter converts float32 to bf16 by
truncation, so bf16 is checked on a GPU by benchmarks/gpu_check.py's decode checks). tests/test_attention_triton.py
runs the fast decoder with it, alone and with every other kernel, against the NumPy oracle. Then a prompt's RoPE
kernel against rope.apply_rope."""

from interpreter import run_interpreted

CHECK = r"""
import torch
from gptoss_torch.fast.decode import rope_from_table
from gptoss_torch.fast.rope_cache_triton import rope_cache_write
from gptoss_torch.kv_cache import LayerCache

g = torch.Generator().manual_seed(0)
Hq, Hkv, d, P = 6, 2, 16, 40
for dt in (torch.float32, torch.float16):
    table = torch.randn(P, 2, d, generator=g).to(dt)
    for B, window, n_slots, p in ((1, None, 40, 7), (2, None, 40, 39), (1, 8, 8, 5), (2, 8, 8, 29)):
        qkv = torch.randn(B, 1, Hq + 2 * Hkv, d, generator=g).to(dt)
        got, want = (LayerCache(n_slots, Hkv, d, window, dt, "cpu", B) for _ in range(2))
        for lc in (got, want):  # earlier tokens in the cache stay as they were
            lc.k.normal_(generator=g), lc.v.copy_(lc.k * 2), lc.pos.copy_(torch.arange(n_slots))
        want.k.copy_(got.k), want.v.copy_(got.v)
        pos = torch.tensor([p])
        q = rope_cache_write(qkv, table, pos, got, Hq, Hkv)
        qk = rope_from_table(qkv[:, :, :Hq + Hkv], table[pos])
        slot = pos if window is None else pos % n_slots
        want.k.index_copy_(1, slot, qk[:, :, Hq:]), want.v.index_copy_(1, slot, qkv[:, :, Hq + Hkv:])
        want.pos.index_copy_(0, slot, pos)
        tol = 1e-6 if dt == torch.float32 else 2e-3  # one rounding apart at most (an fma or not)
        for a, b, name in ((q, qk[:, :, :Hq], "q"), (got.k, want.k, "k"), (got.v, want.v, "v")):
            err = ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()
            assert a.dtype == dt and err <= tol, (dt, B, window, p, name, err)
        assert torch.equal(got.pos, want.pos), (got.pos, want.pos)
        assert torch.equal(got.v, want.v)  # v is copied, not computed

# a prompt's RoPE of q and k in one launch against rope.apply_rope: a batch of two, odd lengths, q and k sliced from
# one projection (strided), YaRN's factor in cos/sin
from gptoss_torch.fast.rope_cache_triton import apply_rope_triton
from gptoss_torch.rope import apply_rope, rope_cos_sin, rope_inv_freq
for dt, (B, T) in ((torch.float32, (2, 7)), (torch.float16, (1, 19))):
    qkv = torch.randn(B, T, Hq + 2 * Hkv, d, generator=g).to(dt)
    q, k = qkv[:, :, :Hq], qkv[:, :, Hq:Hq + Hkv]
    cos, sin = rope_cos_sin(torch.arange(5, 5 + T), rope_inv_freq(d, 150000.0), 1.35, dt)
    got_q, got_k = apply_rope_triton(q, k, cos, sin)
    tol = 1e-6 if dt == torch.float32 else 2e-3  # rounded once, not after each product
    for a, b, name in ((got_q, apply_rope(q, cos, sin), "q"), (got_k, apply_rope(k, cos, sin), "k")):
        err = ((a.float() - b.float()).abs().max() / b.float().abs().max()).item()
        assert a.dtype == dt and a.shape == b.shape and err <= tol, (dt, name, err)
print("rope cache ok")
"""


def test_rope_and_cache_write_kernel_in_the_cpu_interpreter():
    run_interpreted(CHECK, "rope cache ok")
