"""A decode step's RoPE and KV-cache write in one launch: from the fused q/k/v projection of the new token, rotate q
and k by the position's row of the cos/sin table (half-split RoPE, as decode.rope_from_table), write the rotated k
and the v into the layer cache's slot for that position (slot = position, or position mod the ring's size on a
sliding layer) and the position into the slot's record; return q rotated. Six kernels of the plain step (flip, mul,
addcmul, three index_copy_) become one.

    q' = q * [c, c] + [q2, q1] * [-s, s]        (the same for k; x * c rounded to the dtype first, as the plain step)
    cache.k[:, slot] = k',  cache.v[:, slot] = v,  cache.pos[slot] = p

Equal to the plain ops (tested in Triton's interpreter, tests/test_rope_cache_triton.py)."""

import torch

from .mxfp4_triton import available, triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _rope_cache_kernel(qkv_ptr, table_ptr, pos_ptr, q_ptr, k_ptr, v_ptr, kpos_ptr, n_slots, stride_qkv_b,
                           stride_q_b, stride_k_b, stride_k_s, stride_v_b, stride_v_s, HQ: tl.constexpr,
                           HKV: tl.constexpr, D: tl.constexpr, RING: tl.constexpr):
        """Program (sequence b, head h of the HQ + 2 HKV in the fused projection): h < HQ a query head (rotated into
        q), then HKV key heads (rotated into the cache slot), then HKV value heads (copied into it)."""
        b, h = tl.program_id(0), tl.program_id(1)
        p = tl.load(pos_ptr)
        slot = p % n_slots if RING else p
        d = tl.arange(0, D)
        row = qkv_ptr + b * stride_qkv_b + h * D
        x = tl.load(row + d)  # [D]
        if h < HQ + HKV:  # RoPE: x * [c, c] + [x2, x1] * [-s, s]
            rot = tl.load(row + (d + D // 2) % D)  # [x2, x1]
            c = tl.load(table_ptr + p * 2 * D + d).to(tl.float32)
            s = tl.load(table_ptr + p * 2 * D + D + d).to(tl.float32)
            xc = (x.to(tl.float32) * c).to(x.dtype).to(tl.float32)  # the plain step's mul, rounded
            y = (xc + rot.to(tl.float32) * s).to(x.dtype)
            if h < HQ:
                tl.store(q_ptr + b * stride_q_b + h * D + d, y)
            else:
                tl.store(k_ptr + b * stride_k_b + slot * stride_k_s + (h - HQ) * D + d, y)
        else:
            tl.store(v_ptr + b * stride_v_b + slot * stride_v_s + (h - HQ - HKV) * D + d, x)
        if b == 0 and h == 0:
            tl.store(kpos_ptr + slot, p)


def rope_cache_write(qkv, table, pos, layer_cache, n_heads, n_kv_heads):
    """qkv [B, 1, Hq + 2 Hkv, d] (one new token per sequence), table [P, 2, d] (rows [c, c] and [-s, s] per
    position), pos [1] on the device -> q rotated [B, 1, Hq, d]; the rotated k, the v and the position written into
    `layer_cache` (a kv_cache.LayerCache: slot = pos, or pos mod its slots on a sliding layer), in one launch."""
    B, _, H, d = qkv.shape
    if H != n_heads + 2 * n_kv_heads or qkv.stride(-1) != 1 or qkv.stride(-2) != d:
        raise ValueError(f"rope_cache_write: qkv {tuple(qkv.shape)} (contiguous heads) for {n_heads} query and "
                         f"{n_kv_heads} key/value heads")
    lc = layer_cache
    q = torch.empty(B, 1, n_heads, d, dtype=qkv.dtype, device=qkv.device)
    _rope_cache_kernel[(B, H)](qkv, table, pos, q, lc.k, lc.v, lc.pos, lc.n_slots, qkv.stride(0), q.stride(0),
                               lc.k.stride(0), lc.k.stride(1), lc.v.stride(0), lc.v.stride(1), HQ=n_heads,
                               HKV=n_kv_heads, D=d, RING=lc.window is not None)
    return q


__all__ = ["available", "rope_cache_write"]
