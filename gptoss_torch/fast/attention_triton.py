"""Decode attention in one Triton launch: for one new token, each program takes one (sequence, kv head) and its G
query heads, streams the cached keys/values once (an online softmax, float32 throughout), masks by slot
positions, joins the sink to the denominator, and writes the output in the model's dtype. On a full layer it stops
at the current position, read on the device (the slots past it are empty), so a CUDA graph replays it unchanged at
every length; a sliding layer reads its ring of `window` slots. Equal to attention.decode_attention (tested in
Triton's interpreter, tests/test_attention_triton.py).

    o_h = sum_s softmax_s([q_h . k_s * scale for allowed s] + [sink_h]) v_s      (the sink's column dropped)
"""

import torch

from .mxfp4_triton import available, triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _decode_attention_kernel(q_ptr, k_ptr, v_ptr, kpos_ptr, pos_ptr, sinks_ptr, out_ptr, S, Hkv, window, scale,
                                 sq_b, sq_h, sk_b, sk_s, sk_h, sv_b, sv_s, sv_h, so_b, so_h,
                                 G: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr, RING: tl.constexpr,
                                 HAS_SINK: tl.constexpr):
        pid = tl.program_id(0)
        b, kvh = pid // Hkv, pid % Hkv
        heads = kvh * G + tl.arange(0, G)  # [G] query heads reading this kv head
        d = tl.arange(0, D)
        q = tl.load(q_ptr + b * sq_b + heads[:, None] * sq_h + d[None, :]).to(tl.float32) * scale  # [G, D]
        p = tl.load(pos_ptr)  # the new token's position
        end = S if RING else tl.minimum(S, p + 1)  # a full layer's slot = position: nothing stored past p
        m = tl.full([G], -1.0e30, tl.float32)  # running max (finite: a fully masked block leaves it unchanged)
        den = tl.zeros([G], tl.float32)
        acc = tl.zeros([G, D], tl.float32)
        for s0 in range(0, end, BLOCK_S):
            s = s0 + tl.arange(0, BLOCK_S)  # [BS]
            smask = s < end
            kp = tl.load(kpos_ptr + s, mask=smask, other=-1)
            ok = smask & (kp >= 0) & (kp <= p) & (kp > p - window)
            k = tl.load(k_ptr + b * sk_b + s[:, None] * sk_s + kvh * sk_h + d[None, :], mask=smask[:, None],
                        other=0.0).to(tl.float32)  # [BS, D]
            sc = tl.sum(q[:, None, :] * k[None, :, :], axis=2)  # [G, BS]
            sc = tl.where(ok[None, :], sc, float("-inf"))
            m_new = tl.maximum(m, tl.max(sc, axis=1))
            alpha = tl.exp(m - m_new)
            e = tl.exp(sc - m_new[:, None])  # [G, BS], 0 where masked
            v = tl.load(v_ptr + b * sv_b + s[:, None] * sv_s + kvh * sv_h + d[None, :], mask=smask[:, None],
                        other=0.0).to(tl.float32)  # [BS, D]
            den = den * alpha + tl.sum(e, axis=1)
            acc = acc * alpha[:, None] + tl.sum(e[:, :, None] * v[None, :, :], axis=1)
            m = m_new
        if HAS_SINK:  # one more logit per head in the denominator, nothing in the numerator
            sink = tl.load(sinks_ptr + heads).to(tl.float32)
            m_new = tl.maximum(m, sink)
            alpha = tl.exp(m - m_new)
            den = den * alpha + tl.exp(sink - m_new)
            acc = acc * alpha[:, None]
            m = m_new
        out = acc / den[:, None]
        tl.store(out_ptr + b * so_b + heads[:, None] * so_h + d[None, :], out.to(out_ptr.dtype.element_ty))


def decode_attention_triton(q, k, v, k_pos, pos, window=None, sinks=None, scale=None, ring=False, block_s=32):
    """q [B, 1, Hq, d], k/v [B, S, Hkv, d] (a layer's cache), k_pos [S] (-1 = empty), pos [1] on the device ->
    [B, 1, Hq, d] in q's dtype. `ring`: slots are a sliding layer's ring (read them all), else slot = position."""
    B, _, Hq, d = q.shape
    S, Hkv = k.shape[1], k.shape[2]
    out = torch.empty(B, 1, Hq, d, dtype=q.dtype, device=q.device)
    big = 1 << 62  # "no window": every earlier position allowed
    _decode_attention_kernel[(B * Hkv,)](
        q, k, v, k_pos, pos, out if sinks is None else sinks, out, S, Hkv, big if window is None else window,
        d ** -0.5 if scale is None else scale, q.stride(0), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(2),
        G=Hq // Hkv, D=d, BLOCK_S=block_s, RING=ring, HAS_SINK=sinks is not None)
    return out


__all__ = ["available", "decode_attention_triton"]
