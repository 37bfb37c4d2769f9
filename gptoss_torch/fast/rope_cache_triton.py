"""A decode step's RoPE and KV-cache write in one launch: from the fused q/k/v projection of the new token, rotate q
and k by the position's row of the cos/sin table (half-split RoPE, as decode.rope_from_table), write the rotated k
and the v into the layer cache's slot for that position (slot = position, or position mod the ring's size on a
sliding layer) and the position into the slot's record; return q rotated. Six kernels of the plain step (flip, mul,
addcmul, three index_copy_) become one.

    q' = q * [c, c] + [q2, q1] * [-s, s]        (the same for k; in float32, rounded once)
    cache.k[:, slot] = k',  cache.v[:, slot] = v,  cache.pos[slot] = p

For a prompt, apply_rope_triton rotates q and k of every position in one launch (rope.apply_rope's ~14 kernels).
Equal to the plain ops (tested in Triton's interpreter, tests/test_rope_cache_triton.py)."""

import torch

from .mxfp4_triton import available, gdc_wait, pdl, triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _rotate_half(row, d, c, s, D: tl.constexpr):
        """Half-split RoPE of the head vector at `row`: x * [c, c] + [x2, x1] * [-s, s] -> float32 [D]
        (c = [c, c], s = [-s, s] laid out over d)."""
        x = tl.load(row + d)
        rot = tl.load(row + (d + D // 2) % D)  # [x2, x1]
        return x.to(tl.float32) * c + rot.to(tl.float32) * s

    @triton.jit
    def _rope_cache_kernel(qkv_ptr, table_ptr, pos_ptr, q_ptr, k_ptr, v_ptr, kpos_ptr, n_slots, stride_qkv_b,
                           stride_q_b, stride_k_b, stride_k_s, stride_v_b, stride_v_s, HQ: tl.constexpr,
                           HKV: tl.constexpr, D: tl.constexpr, RING: tl.constexpr, PDL: tl.constexpr = False):
        """Program (sequence b, head h of the HQ + 2 HKV in the fused projection): h < HQ a query head (rotated into
        q), then HKV key heads (rotated into the cache slot), then HKV value heads (copied into it). PDL: launched as
        a programmatic dependent (mxfp4_triton.pdl), wait for the kernel before first."""
        if PDL:
            gdc_wait()
        b, h = tl.program_id(0), tl.program_id(1)
        p = tl.load(pos_ptr)
        slot = p % n_slots if RING else p
        d = tl.arange(0, D)
        row = qkv_ptr + b * stride_qkv_b + h * D
        if h < HQ + HKV:  # the table's rows: [c, c] and [-s, s]
            c = tl.load(table_ptr + p * 2 * D + d).to(tl.float32)
            s = tl.load(table_ptr + p * 2 * D + D + d).to(tl.float32)
            y = _rotate_half(row, d, c, s, D).to(qkv_ptr.dtype.element_ty)
            if h < HQ:
                tl.store(q_ptr + b * stride_q_b + h * D + d, y)
            else:
                tl.store(k_ptr + b * stride_k_b + slot * stride_k_s + (h - HQ) * D + d, y)
        else:
            tl.store(v_ptr + b * stride_v_b + slot * stride_v_s + (h - HQ - HKV) * D + d, tl.load(row + d))
        if b == 0 and h == 0:
            tl.store(kpos_ptr + slot, p)

    @triton.jit
    def _rope_kernel(q_ptr, k_ptr, cos_ptr, sin_ptr, qo_ptr, ko_ptr, T, sq_b, sq_t, sk_b, sk_t, HQ: tl.constexpr,
                     HKV: tl.constexpr, D: tl.constexpr):
        """Program (sequence x position, head of the HQ + HKV): [x1 c - x2 s, x2 c + x1 s] with the position's
        cos/sin row (D/2 each), in float32, rounded once; heads contiguous in q and k."""
        bt, h = tl.program_id(0), tl.program_id(1)
        b, t = bt // T, bt % T
        d = tl.arange(0, D)
        half = d % (D // 2)
        c = tl.load(cos_ptr + t * (D // 2) + half).to(tl.float32)  # [c, c]
        s = tl.load(sin_ptr + t * (D // 2) + half).to(tl.float32) * tl.where(d < D // 2, -1.0, 1.0)  # [-s, s]
        if h < HQ:
            src, dst = q_ptr + b * sq_b + t * sq_t + h * D, qo_ptr + b * sq_b + t * sq_t + h * D
        else:
            src, dst = k_ptr + b * sk_b + t * sk_t + (h - HQ) * D, ko_ptr + b * sk_b + t * sk_t + (h - HQ) * D
        tl.store(dst + d, _rotate_half(src, d, c, s, D).to(q_ptr.dtype.element_ty))


def apply_rope_triton(q, k, cos, sin):
    """rope.apply_rope of q [B, T, Hq, d] and k [B, T, Hkv, d] (cos/sin [T, d/2]) in one launch, each value computed
    in float32 and rounded once -> (q', k') in their dtype."""
    B, T, Hq, d = q.shape
    Hkv = k.shape[2]
    q, k = q.contiguous(), k.contiguous()  # the outputs share their strides
    cos, sin = cos.contiguous(), sin.contiguous()
    qo, ko = torch.empty_like(q), torch.empty_like(k)
    _rope_kernel[(B * T, Hq + Hkv)](q, k, cos, sin, qo, ko, T, q.stride(0), q.stride(1), k.stride(0), k.stride(1),
                                    HQ=Hq, HKV=Hkv, D=d)
    return qo, ko


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
                               HKV=n_kv_heads, D=d, RING=lc.window is not None, **pdl(qkv.device))
    return q


__all__ = ["apply_rope_triton", "available", "rope_cache_write"]
