"""Attention with sinks in Triton, three ways, each equal to gptoss_torch/attention.py (tested in Triton's interpreter,
tests/test_attention_triton.py):

- decode, one launch: for one new token, each program takes one (sequence, kv head) and its G query heads, streams
  the cached keys/values once (an online softmax, float32 throughout), masks by slot positions, joins the sink to
  the denominator, and writes the output in the model's dtype. On a full layer it stops at the current position,
  read on the device (the slots past it are empty), so a CUDA graph replays it unchanged at every length; a
  sliding layer reads its ring of `window` slots;
- decode, split (flash-decoding, the default past SPLIT_SLOTS slots): the same slots shared by many programs, their
  partial maxima, denominators and outputs combined in a second launch;
- prompts (opt-in, enable()): flash attention over blocks of queries and keys on the tensor cores, masked by
  positions (causal, window, empty slots), never storing a [T, S] score tensor.

    o_h = sum_s softmax_s([q_h . k_s * scale for allowed s] + [sink_h]) v_s      (the sink's column dropped)
"""

import torch

from .mxfp4_triton import available, gdc_wait, pdl, triton

if triton is not None:
    import triton.language as tl

    @triton.jit
    def _attend_slots(q, k_ptr, v_ptr, kpos_ptr, p, window, b, kvh, start, stop, scale, sk_b, sk_s, sk_h, sv_b, sv_s,
                      sv_h, GP: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr, MMA: tl.constexpr,
                      IEEE: tl.constexpr):
        """The query heads of kv head `kvh` (q [GP, D], one query each) against slots [start, stop): an online
        softmax over the allowed ones (position >= 0, <= p, > p - window) -> (running max [GP], denominator [GP],
        unnormalised output [GP, D]), all float32; the max stays finite (-1e30) where nothing was allowed.
        MMA: q . k and p . v on the tensor cores (q in the model's dtype, GP >= 16 rows; float32 models in IEEE
        float32 products; p split into two bf16/fp16 parts, hi + lo, so its 16 leading bits count); else elementwise
        products of q (float32, scale in) summed in registers."""
        d = tl.arange(0, D)
        m = tl.full([GP], -1.0e30, tl.float32)
        den = tl.zeros([GP], tl.float32)
        acc = tl.zeros([GP, D], tl.float32)
        for s0 in range(start, stop, BLOCK_S):
            s = s0 + tl.arange(0, BLOCK_S)  # [BS]
            smask = s < stop
            kp = tl.load(kpos_ptr + s, mask=smask, other=-1)
            ok = smask & (kp >= 0) & (kp <= p) & (kp > p - window)
            k = tl.load(k_ptr + b * sk_b + s[:, None] * sk_s + kvh * sk_h + d[None, :], mask=smask[:, None],
                        other=0.0)  # [BS, D]
            v = tl.load(v_ptr + b * sv_b + s[:, None] * sv_s + kvh * sv_h + d[None, :], mask=smask[:, None],
                        other=0.0)  # [BS, D]
            if MMA:
                if IEEE:
                    sc = tl.dot(q, tl.trans(k), input_precision="ieee") * scale  # [GP, BS]
                else:
                    sc = tl.dot(q, tl.trans(k)) * scale
            else:
                sc = tl.sum(q[:, None, :] * k.to(tl.float32)[None, :, :], axis=2)  # [GP, BS]
            sc = tl.where(ok[None, :], sc, float("-inf"))
            m_new = tl.maximum(m, tl.max(sc, axis=1))
            alpha = tl.exp(m - m_new)
            e = tl.exp(sc - m_new[:, None])  # [GP, BS], 0 where masked
            den = den * alpha + tl.sum(e, axis=1)
            if MMA:
                if IEEE:
                    pv = tl.dot(e, v, input_precision="ieee")  # [GP, D]
                else:
                    hi = e.to(v.dtype)
                    lo = (e - hi.to(tl.float32)).to(v.dtype)
                    pv = tl.dot(hi, v) + tl.dot(lo, v)
            else:
                pv = tl.sum(e[:, :, None] * v.to(tl.float32)[None, :, :], axis=1)
            acc = acc * alpha[:, None] + pv
            m = m_new
        return m, den, acc

    @triton.jit
    def _join_sink(m, den, acc, sink):
        """The sink as one more logit per row in the denominator, nothing in the numerator: (max [R], denominator
        [R], output [R, D]) -> (denominator, output) rescaled to max(m, sink)."""
        m_new = tl.maximum(m, sink)
        alpha = tl.exp(m - m_new)
        return den * alpha + tl.exp(sink - m_new), acc * alpha[:, None]

    @triton.jit
    def _load_queries(q_ptr, b, kvh, scale, sq_b, sq_h, G: tl.constexpr, GP: tl.constexpr, D: tl.constexpr,
                      MMA: tl.constexpr):
        """kv head kvh's G query heads as GP rows (rows past G zero) -> (q [GP, D], head index [GP], row mask):
        in the model's dtype for the tensor cores, else float32 with the scale in."""
        r = tl.arange(0, GP)
        heads = kvh * G + r
        d = tl.arange(0, D)
        q = tl.load(q_ptr + b * sq_b + heads[:, None] * sq_h + d[None, :], mask=(r < G)[:, None], other=0.0)
        if not MMA:
            q = q.to(tl.float32) * scale
        return q, heads, r < G

    @triton.jit
    def _decode_attention_kernel(q_ptr, k_ptr, v_ptr, kpos_ptr, pos_ptr, sinks_ptr, out_ptr, S, Hkv, window, scale,
                                 sq_b, sq_h, sk_b, sk_s, sk_h, sv_b, sv_s, sv_h, so_b, so_h,
                                 G: tl.constexpr, GP: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr,
                                 RING: tl.constexpr, HAS_SINK: tl.constexpr, MMA: tl.constexpr, IEEE: tl.constexpr,
                                 PDL: tl.constexpr = False):
        if PDL:  # launched as a programmatic dependent (mxfp4_triton.pdl): wait for the kernel before first
            gdc_wait()
        pid = tl.program_id(0)
        b, kvh = pid // Hkv, pid % Hkv
        q, heads, hmask = _load_queries(q_ptr, b, kvh, scale, sq_b, sq_h, G, GP, D, MMA)  # [GP, D]
        d = tl.arange(0, D)
        p = tl.load(pos_ptr)  # the new token's position
        end = S if RING else tl.minimum(S, p + 1)  # a full layer's slot = position: nothing stored past p
        m, den, acc = _attend_slots(q, k_ptr, v_ptr, kpos_ptr, p, window, b, kvh, 0, end, scale, sk_b, sk_s, sk_h,
                                    sv_b, sv_s, sv_h, GP, D, BLOCK_S, MMA, IEEE)
        if HAS_SINK:
            den, acc = _join_sink(m, den, acc, tl.load(sinks_ptr + heads, mask=hmask, other=0.0).to(tl.float32))
        out = acc / den[:, None]
        tl.store(out_ptr + b * so_b + heads[:, None] * so_h + d[None, :], out.to(out_ptr.dtype.element_ty),
                 mask=hmask[:, None])

    @triton.jit
    def _decode_attention_split_kernel(q_ptr, k_ptr, v_ptr, kpos_ptr, pos_ptr, pm_ptr, pl_ptr, pacc_ptr, S, Hkv,
                                       window, scale, sq_b, sq_h, sk_b, sk_s, sk_h, sv_b, sv_s, sv_h, NSPLIT,
                                       G: tl.constexpr, GP: tl.constexpr, D: tl.constexpr, BLOCK_S: tl.constexpr,
                                       CHUNK: tl.constexpr, RING: tl.constexpr, MMA: tl.constexpr,
                                       IEEE: tl.constexpr, PDL: tl.constexpr = False):
        """Flash-decoding's first half: program (sequence x kv head, split) streams slots [split * CHUNK,
        (split + 1) * CHUNK) (on a full layer only up to the current position; a sliding layer's ring whole) and
        writes its running max, denominator and unnormalised output per query head (a split with nothing to read
        writes an empty partial)."""
        if PDL:  # launched as a programmatic dependent (mxfp4_triton.pdl): wait for the kernel before first
            gdc_wait()
        pid, split = tl.program_id(0), tl.program_id(1)
        b, kvh = pid // Hkv, pid % Hkv
        q, heads, hmask = _load_queries(q_ptr, b, kvh, scale, sq_b, sq_h, G, GP, D, MMA)  # [GP, D]
        d = tl.arange(0, D)
        p = tl.load(pos_ptr)
        start = split * CHUNK
        stop = tl.minimum(S if RING else tl.minimum(S, p + 1), start + CHUNK)
        m, den, acc = _attend_slots(q, k_ptr, v_ptr, kpos_ptr, p, window, b, kvh, start, stop, scale, sk_b, sk_s,
                                    sk_h, sv_b, sv_s, sv_h, GP, D, BLOCK_S, MMA, IEEE)
        row = (b * Hkv * G + heads) * NSPLIT + split  # [GP]: (sequence, query head, split)
        tl.store(pm_ptr + row, m, mask=hmask)
        tl.store(pl_ptr + row, den, mask=hmask)
        tl.store(pacc_ptr + row[:, None] * D + d[None, :], acc, mask=hmask[:, None])

    @triton.jit
    def _decode_attention_combine_kernel(pm_ptr, pl_ptr, pacc_ptr, sinks_ptr, out_ptr, Hq, NSPLIT, so_b, so_h,
                                         D: tl.constexpr, BLOCK_N: tl.constexpr, HAS_SINK: tl.constexpr,
                                         PDL: tl.constexpr = False):
        """Flash-decoding's second half: one program per (sequence, query head) rescales the splits' partials to
        their common max, adds the sink to the denominator and writes o = acc / den."""
        if PDL:  # as in the first half
            gdc_wait()
        bh = tl.program_id(0)
        b, h = bh // Hq, bh % Hq
        j = tl.arange(0, BLOCK_N)
        d = tl.arange(0, D)
        jm = j < NSPLIT
        m = tl.load(pm_ptr + bh * NSPLIT + j, mask=jm, other=-1.0e30)  # [N]
        den = tl.load(pl_ptr + bh * NSPLIT + j, mask=jm, other=0.0)
        acc = tl.load(pacc_ptr + (bh * NSPLIT + j)[:, None] * D + d[None, :], mask=jm[:, None], other=0.0)  # [N, D]
        mx = tl.max(m, axis=0)
        if HAS_SINK:
            sink = tl.load(sinks_ptr + h).to(tl.float32)
            mx = tl.maximum(mx, sink)
        f = tl.exp(m - mx)  # [N]
        total = tl.sum(den * f, axis=0)
        if HAS_SINK:
            total += tl.exp(sink - mx)
        o = tl.sum(acc * f[:, None], axis=0) / total  # [D]
        tl.store(out_ptr + b * so_b + h * so_h + d, o.to(out_ptr.dtype.element_ty))

    @triton.jit
    def _prefill_attention_kernel(q_ptr, k_ptr, v_ptr, qpos_ptr, kpos_ptr, sinks_ptr, out_ptr, T, S, Hq, window,
                                  scale, sq_b, sq_t, sq_h, sk_b, sk_s, sk_h, sv_b, sv_s, sv_h, so_b, so_t, so_h,
                                  G: tl.constexpr, D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                                  HAS_SINK: tl.constexpr, IEEE: tl.constexpr):
        """Flash attention for a prompt: program (BLOCK_M queries, sequence x query head) streams the keys in blocks
        of BLOCK_N with an online softmax (float32), q k^T and p v on the tensor cores (IEEE float32 products for a
        float32 model), masks by positions (causal, the sliding window, empty slots: k_pos < 0), skips a block
        with nothing allowed, and joins the sink to the denominator. No [T, S] score tensor is ever stored."""
        mb, bh = tl.program_id(0), tl.program_id(1)
        b, h = bh // Hq, bh % Hq
        kvh = h // G
        t = mb * BLOCK_M + tl.arange(0, BLOCK_M)  # [BM]
        tmask = t < T
        d = tl.arange(0, D)
        q = tl.load(q_ptr + b * sq_b + t[:, None] * sq_t + h * sq_h + d[None, :], mask=tmask[:, None],
                    other=0.0)  # [BM, D]
        qp = tl.load(qpos_ptr + t, mask=tmask, other=-1).to(tl.int32)  # [BM]: int32 (positions < 2^30): an int64
        # mask over [BM, BN] would take twice the registers
        q_hi = tl.max(qp)  # the block's latest query position (a row past T reads -1, which no key passes)
        q_lo = tl.min(tl.where(tmask, qp, 1 << 30))
        m = tl.full([BLOCK_M], -1.0e30, tl.float32)
        den = tl.zeros([BLOCK_M], tl.float32)
        acc = tl.zeros([BLOCK_M, D], tl.float32)
        for n0 in range(0, S, BLOCK_N):
            s = n0 + tl.arange(0, BLOCK_N)  # [BN]
            kp = tl.load(kpos_ptr + s, mask=s < S, other=-1).to(tl.int32)
            k_lo = tl.min(tl.where(kp >= 0, kp, 1 << 30))
            k_hi = tl.max(kp)
            # skip a block no query can see: empty, all later than the queries, or all out of their windows
            if (k_hi >= 0) & (k_lo <= q_hi) & (k_hi > q_lo - window):
                ok = (kp[None, :] >= 0) & (kp[None, :] <= qp[:, None]) & (kp[None, :] > qp[:, None] - window)
                k = tl.load(k_ptr + b * sk_b + s[:, None] * sk_s + kvh * sk_h + d[None, :], mask=(s < S)[:, None],
                            other=0.0)  # [BN, D]
                if IEEE:
                    sc = tl.dot(q, tl.trans(k), input_precision="ieee")
                else:
                    sc = tl.dot(q, tl.trans(k))
                sc = tl.where(ok, sc * scale, float("-inf"))  # [BM, BN] float32
                m_new = tl.maximum(m, tl.max(sc, axis=1))
                alpha = tl.exp(m - m_new)
                p = tl.exp(sc - m_new[:, None])
                v = tl.load(v_ptr + b * sv_b + s[:, None] * sv_s + kvh * sv_h + d[None, :], mask=(s < S)[:, None],
                            other=0.0)  # [BN, D]
                den = den * alpha + tl.sum(p, axis=1)
                if IEEE:
                    pv = tl.dot(p, v.to(tl.float32), input_precision="ieee")
                else:
                    pv = tl.dot(p.to(v.dtype), v)
                acc = acc * alpha[:, None] + pv
                m = m_new
        if HAS_SINK:
            den, acc = _join_sink(m, den, acc, tl.load(sinks_ptr + h).to(tl.float32))
        out = acc / den[:, None]
        tl.store(out_ptr + b * so_b + t[:, None] * so_t + h * so_h + d[None, :], out.to(out_ptr.dtype.element_ty),
                 mask=tmask[:, None])


def prefill_attention_triton(q, k, v, q_pos, k_pos, window=None, sinks=None, scale=None, tile=None):
    """q [B, T, Hq, d], k/v [B, S, Hkv, d], q_pos [T], k_pos [S] (-1 = empty) -> [B, T, Hq, d] in q's dtype: equal to
    attention.attention(q, k, v, attention_mask(q_pos, k_pos, window), sinks) (d a power of two, at least 16).
    tile: (queries, keys a loop step, warps, pipeline stages) per program, default PREFILL_TILE."""
    block_m, block_n, warps, stages = tile or PREFILL_TILE
    B, T, Hq, d = q.shape
    S, Hkv = k.shape[1], k.shape[2]
    q, k, v = (t if t.stride(-1) == 1 else t.contiguous() for t in (q, k, v))
    if q.dtype == torch.float64:  # the kernel computes in float32 at most
        raise ValueError("prefill_attention_triton: float32 or narrower, got float64")
    out = torch.empty(B, T, Hq, d, dtype=q.dtype, device=q.device)
    big = 1 << 30  # "no window"; the kernel compares positions (< 2^30) in int32
    ieee = q.dtype == torch.float32
    _prefill_attention_kernel[(triton.cdiv(T, block_m), B * Hq)](
        q, k, v, q_pos, k_pos, out if sinks is None else sinks, out, T, S, Hq, min(big, window or big),
        d ** -0.5 if scale is None else scale, q.stride(0), q.stride(1), q.stride(2), k.stride(0), k.stride(1),
        k.stride(2), v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(1), out.stride(2),
        G=Hq // Hkv, D=d, BLOCK_M=block_m, BLOCK_N=block_n, HAS_SINK=sinks is not None, IEEE=ieee,
        num_warps=warps, num_stages=stages)
    return out


# the prompt kernel's tile: (queries, keys a loop step, warps, stages); Triton's default warps and stages until
# benchmarks/gpu_check.py's sweep on a GPU picks one
PREFILL_TILE = (64, 64, 4, 3)
SPLIT_SLOTS = 128  # slots per program of the split (flash-decoding) kernels; 0: one program per kv head
# the decode kernels' products: on the tensor cores (MMA, the query heads padded to 16 rows), or elementwise in
# registers ([G, slots, D] float32 products, what runs 1 to 3 measured: at G = 8 and 32 slots a step its sm_90 code
# took 255 registers, spilled and carried 824 warp shuffles, by benchmarks/kernel_sass.py)
MMA = True
BLOCK_S = 64  # slots a loop step of the one-program kernel
SPLIT_BLOCK_S = 32  # the same for the split kernel
ELEMENTWISE_BLOCK_S = (32, 16)  # the same two without MMA (runs 1 to 3)


def decode_attention_triton(q, k, v, k_pos, pos, window=None, sinks=None, scale=None, ring=False, block_s=None,
                            split_slots=None, mma=None):
    """q [B, 1, Hq, d], k/v [B, S, Hkv, d] (a layer's cache), k_pos [S] (-1 = empty), pos [1] on the device ->
    [B, 1, Hq, d] in q's dtype. `ring`: slots are a sliding layer's ring (read them all), else slot = position.
    split_slots (default SPLIT_SLOTS): on a layer of more slots than this, split the slots over programs of that
    many each (two launches: partials, then their combination), so a long cache is read by many programs at once.
    mma (default MMA): the products on the tensor cores (d a power of two >= 16), else elementwise."""
    B, _, Hq, d = q.shape
    S, Hkv = k.shape[1], k.shape[2]
    G = Hq // Hkv
    mma = MMA if mma is None else mma
    mma = mma and d >= 16
    GP = max(16, triton.next_power_of_2(G)) if mma else G
    ieee = q.dtype == torch.float32
    out = torch.empty(B, 1, Hq, d, dtype=q.dtype, device=q.device)
    big = 1 << 62  # "no window": every earlier position allowed
    chunk = SPLIT_SLOTS if split_slots is None else split_slots
    if chunk and S > chunk:
        split_block = SPLIT_BLOCK_S if mma else ELEMENTWISE_BLOCK_S[1]
        chunk = triton.cdiv(chunk, split_block) * split_block
        nsplit = triton.cdiv(S, chunk)
        pm = torch.empty(B * Hq * nsplit, dtype=torch.float32, device=q.device)
        pl = torch.empty_like(pm)
        pacc = torch.empty(B * Hq * nsplit, d, dtype=torch.float32, device=q.device)
        _decode_attention_split_kernel[(B * Hkv, nsplit)](
            q, k, v, k_pos, pos, pm, pl, pacc, S, Hkv, big if window is None else window,
            d ** -0.5 if scale is None else scale, q.stride(0), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
            v.stride(0), v.stride(1), v.stride(2), nsplit, G=G, GP=GP, D=d, BLOCK_S=split_block, CHUNK=chunk,
            RING=ring, MMA=mma, IEEE=ieee, **pdl(q.device))
        _decode_attention_combine_kernel[(B * Hq,)](
            pm, pl, pacc, out if sinks is None else sinks, out, Hq, nsplit, out.stride(0), out.stride(2), D=d,
            BLOCK_N=triton.next_power_of_2(nsplit), HAS_SINK=sinks is not None, **pdl(q.device))
        return out
    _decode_attention_kernel[(B * Hkv,)](
        q, k, v, k_pos, pos, out if sinks is None else sinks, out, S, Hkv, big if window is None else window,
        d ** -0.5 if scale is None else scale, q.stride(0), q.stride(2), k.stride(0), k.stride(1), k.stride(2),
        v.stride(0), v.stride(1), v.stride(2), out.stride(0), out.stride(2),
        G=G, GP=GP, D=d, BLOCK_S=block_s or (BLOCK_S if mma else ELEMENTWISE_BLOCK_S[0]), RING=ring,
        HAS_SINK=sinks is not None, MMA=mma, IEEE=ieee, **pdl(q.device))
    return out


def enable(model, on=True):
    """Give the model's attention layers the fused prompt kernel where Triton runs (CUDA, or the CPU interpreter) and
    head_dim is a power of two >= 16 (on=False takes it away again); decode steps keep their own path (FastDecoder:
    decode_attention_triton). -> whether it is enabled."""
    d = model.cfg.head_dim
    on = on and available(model.device) and d >= 16 and d & (d - 1) == 0 and model.dtype != torch.float64
    for block in model.layers:
        block.attn.prefill_kernel = prefill_attention_triton if on else None
    return on


__all__ = ["available", "decode_attention_triton", "enable", "prefill_attention_triton"]
