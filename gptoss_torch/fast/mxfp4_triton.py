"""A fused MXFP4 matrix-vector product for decode: the routed experts' packed weights are read once, decoded in
registers (E2M1 by bit manipulation) and multiplied with the token's activation, so only 4.25 bits per weight cross
the memory bus; the MoE around it (bias, SwiGLU, router weight) rides in the kernels' epilogues.

    out[p, r] = w[p] (b[e, r] + sum_k W[e, r, k] x[p // topk, k]),   e = ids[p]   (up: swiglu of row pairs)
    W[e, r, 32g + 2j + b] = E2M1(nibble b of byte j) * 2^(s[e, r, g] - 127)

Beside it: gpt-oss's routing in one launch; a one-launch dequantisation (one expert's float matrix, for the
prefill's per-expert matmuls); and, opt-in for prompts, a grouped kernel that multiplies every expert's pairs in
one launch per projection on the tensor cores.

Runs on CUDA with Triton; with TRITON_INTERPRET=1 the same kernels run on the CPU (how the tests check them here).
"""

import os

import torch

from ..ffn import activate
from ..routers import route

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - the pure-torch path in mxfp4.py is used instead
    triton = None


def available(device):
    """Triton can run the kernel here: CUDA with Triton, or the CPU interpreter (TRITON_INTERPRET=1)."""
    if triton is None:
        return False
    return torch.device(device).type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1"


# programmatic dependent launch (sm_90 and later) for a decode step's Triton kernels: a kernel launched with it may be
# scheduled while the kernel before it finishes, and waits (griddepcontrol.wait) before anything else, so less of the
# gap between two launches is idle; off until benchmarks/gpu_check.py measures it (it times decode both ways)
PDL = False


def pdl(device):
    """A decode kernel's launch arguments for programmatic dependent launch: its PDL constexpr (wait first) and,
    where PDL is on, launch_pdl (CUDA only: Triton's interpreter cannot run the wait)."""
    on = PDL and gdc_wait is not None and torch.device(device).type == "cuda"
    return dict(PDL=True, launch_pdl=True) if on else dict(PDL=False)


gdc_wait = None
if triton is not None:
    try:
        from triton.language.extra.cuda import gdc_wait
    except ImportError:  # pragma: no cover - a Triton before programmatic dependent launch: PDL stays off
        pass
    # the matvec's inputs are scaled by this so that their products with E2M1 * 2^-126 stay normal floats; a decode
    # step's add + norm kernel (fast/norm_triton.py) writes its output so scaled for the up kernel (x_scaled)
    INPUT_SCALE = tl.constexpr(18446744073709551616.0)  # 2^64
    E2M1_UNSCALE = tl.constexpr(8.507059173023462e37)  # 2^126: undoes the 2^-126 of _e2m1_f32's values
    # 2^62 = E2M1_UNSCALE / INPUT_SCALE: a block's sum of (E2M1 * 2^-126) x (input * 2^64), back to E2M1 x input
    PRODUCT_UNSCALE = tl.constexpr(4611686018427387904.0)

    @triton.jit
    def _swiglu_oss(gate, lin, alpha, limit):
        """gpt-oss's clamped SwiGLU: min(g, limit) * sigmoid(alpha g) * (clip(l, -limit, limit) + 1)."""
        gate = tl.minimum(gate, limit)
        lin = tl.minimum(tl.maximum(lin, -limit), limit)
        return gate * tl.sigmoid(alpha * gate) * (lin + 1.0)

    @triton.jit
    def _e2m1_f32(nib_bits, shift_mag: tl.constexpr, shift_sign: tl.constexpr):
        """E2M1 code at bits (b0 = mantissa, b1..b2 = exponent, b3 = sign) of an int32 -> its value * 2^-126 as
        float32 bits: the mantissa bit lands on bit 22, the exponent bits on 23..24 (exponent 0 is a float32
        subnormal, m * 2^-127: E2M1's 0 and 0.5 scaled alike), the sign on 31. Two shifts and two masks, no
        conversion instruction. shift_mag / shift_sign: how far left bit b0 / b3 must move."""
        return (((nib_bits << shift_mag) & 0x01C00000) | ((nib_bits << shift_sign) & -2147483648)).to(
            tl.float32, bitcast=True)

    @triton.jit
    def _mxfp4_tile(byte, s):
        """A tile of MXFP4 blocks as floats: byte [BR, BG, 16] (int32, the blocks' bytes), s [BR, BG] (int32 E8M0)
        -> W [BR, BG * 32] float32, W[r, 32g + 2j + b] = E2M1(nibble b of byte j) * 2^(s - 127), exact: E2M1 * 2^-126
        by bits (_e2m1_f32), times 2^126, times 2^(s - 127) made as float32 bits (s = 0: the subnormal 2^-127 =
        mantissa bit 22; all in integers, as Triton types a float literal below 2^-126 as float64)."""
        factor = tl.where(s == 0, 1 << 22, s << 23).to(tl.float32, bitcast=True)[:, :, None]  # [BR, BG, 1]
        lo = _e2m1_f32(byte, 22, 28) * E2M1_UNSCALE * factor  # [BR, BG, 16]: the low nibbles, columns 2j
        hi = _e2m1_f32(byte, 18, 24) * E2M1_UNSCALE * factor  # the high nibbles, columns 2j + 1
        return tl.reshape(tl.join(lo, hi), [byte.shape[0], byte.shape[1] * 32])  # [BR, BG * 32]

    @triton.jit
    def _e2m1_pair_f32(word, shift_mag: tl.constexpr, shift_sign: tl.constexpr):
        """Nibbles i and i + 4 of an int32 word (16 bits apart) decoded together -> (nibble i, nibble i + 4) as
        float32 values * 2^-126: one shift brings both magnitudes (bits b0..b2) to 6..8 and 22..24, another both
        signs (b3) to 15 and 31, one mask-or joins them (two bfloat16 bit patterns in a word), then a shift or a mask
        makes each a float32 (as _e2m1_f32). shift_mag = 6 - 4i (negative: right), shift_sign = 12 - 4i."""
        if shift_mag >= 0:
            mag = word << shift_mag
        else:
            mag = word >> (-shift_mag)  # arithmetic: the copied sign bits land outside the mask
        pair = (mag & 0x01C001C0) | ((word << shift_sign) & -2147450880)  # 0x80008000 (shift 0: no-op)
        return (pair << 16).to(tl.float32, bitcast=True), (pair & -65536).to(tl.float32, bitcast=True)

    @triton.jit
    def _halves(x):
        """x [..., 2n] -> (x[..., :n], x[..., n:]), no data moved (a reshape, a permute, a split)."""
        n: tl.constexpr = x.shape[-1] // 2
        return tl.split(tl.permute(tl.reshape(x, [x.shape[0], x.shape[1], 2, n]), [0, 1, 3, 2]))

    @triton.jit
    def _e2m1_dot_words(word, x):
        """sum over the 8 nibbles n of each int32 word of E2M1(nibble n) * 2^-126 * x[..., n], one fused multiply-add
        a weight: word [BR, BG, 4] (nibble n of word k is weight 8k + n of its block), x [BG, 4, 8] float32 ->
        [BR, BG, 4]."""
        x03, x47 = _halves(x)  # [BG, 4, 4] each: nibbles 0..3, 4..7
        x01, x23 = _halves(x03)
        x45, x67 = _halves(x47)
        x0, x1 = tl.split(x01)  # [BG, 4] each
        x2, x3 = tl.split(x23)
        x4, x5 = tl.split(x45)
        x6, x7 = tl.split(x67)
        lo, hi = _e2m1_pair_f32(word, 6, 12)  # nibbles 0 and 4
        acc = tl.fma(hi, x4[None, :, :], lo * x0[None, :, :])
        lo, hi = _e2m1_pair_f32(word, 2, 8)
        acc = tl.fma(hi, x5[None, :, :], tl.fma(lo, x1[None, :, :], acc))
        lo, hi = _e2m1_pair_f32(word, -2, 4)
        acc = tl.fma(hi, x6[None, :, :], tl.fma(lo, x2[None, :, :], acc))
        lo, hi = _e2m1_pair_f32(word, -6, 0)
        return tl.fma(hi, x7[None, :, :], tl.fma(lo, x3[None, :, :], acc))

    @triton.jit
    def _topk_softmax(x, K: tl.constexpr, BLOCK_E: tl.constexpr):
        """gpt-oss's router on one token's logits x [BLOCK_E] (float32, -inf past the experts): the top K by repeated
        argmax (a tie goes to the lower expert), then a softmax over those K -> (experts [K] int64, weights [K])."""
        e = tl.arange(0, BLOCK_E)
        kk = tl.arange(0, K)
        vals = tl.zeros([K], tl.float32)
        ids = tl.zeros([K], tl.int64)
        for j in tl.static_range(K):
            best = tl.max(x, axis=0)
            idx = tl.min(tl.where(x == best, e, BLOCK_E), axis=0)
            vals = tl.where(kk == j, best, vals)
            ids = tl.where(kk == j, idx.to(tl.int64), ids)
            x = tl.where(e == idx, float("-inf"), x)
        p = tl.exp(vals - tl.max(vals, axis=0))
        return ids, p / tl.sum(p, axis=0)

    @triton.jit
    def _mxfp4_matvec_kernel(blocks_ptr, scales_ptr, ids_ptr, x_ptr, bias_ptr, w_ptr, out_ptr, logits_ptr, R, G,
                             chunk, E, stride_be, stride_br, stride_se, stride_sr, stride_xn, stride_bias, stride_on,
                             stride_l, alpha, limit, TOPK: tl.constexpr, SWIGLU: tl.constexpr,
                             HAS_BIAS: tl.constexpr, HAS_W: tl.constexpr, SPLITS: tl.constexpr, ROUTE: tl.constexpr,
                             BLOCK_E: tl.constexpr, BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr,
                             NUM_STAGES: tl.constexpr, X_SCALED: tl.constexpr, OUT_SCALED: tl.constexpr,
                             PDL: tl.constexpr = False):
        """Program (pair n, BLOCK_R rows, split j): acc = W[e] x + b[e] over its rows, the packed blocks read as int32
        words and decoded in registers two weights at a time (_e2m1_dot_words, the input scaled by 2^64 so that the
        products stay normal floats; each block's sum scaled back by 2^62 and then by 2^(s-127)); with SWIGLU the rows
        are (gate, linear) pairs and it writes swiglu_oss of each pair (half as many outputs); then times the router
        weight w[n]. With SPLITS > 1 (split-K, no SwiGLU) program j sums blocks [j chunk, (j + 1) chunk) only into
        output row n * SPLITS + j (split 0 adds the bias): the caller sums the SPLITS rows. With ROUTE the pair's expert
        comes from routing its token's router logits here (_topk_softmax; pair n is the token's (n % TOPK)-th choice),
        and ids / w are outputs: the row-block 0 programs write each pair's expert and router weight there for the down
        projection. blocks_ptr points to int32 words; stride_be / stride_br count 16-byte blocks. X_SCALED: x is float32
        and already times 2^64 (no multiply a value here); OUT_SCALED: the outputs are written times 2^64 (exact: the
        next matvec's X_SCALED input). PDL: launched as a programmatic dependent, wait for the kernel before first."""
        if PDL:
            gdc_wait()
        n = tl.program_id(0)  # which routed (token, expert) pair; its token is n // TOPK
        rows = tl.program_id(1) * BLOCK_R + tl.arange(0, BLOCK_R)  # [BR]
        j = tl.program_id(2)  # which split of the 32-value blocks
        rmask = rows < R
        if ROUTE:  # routing in the prologue: every program of a token routes it alike
            le = tl.arange(0, BLOCK_E)
            logits = tl.load(logits_ptr + (n // TOPK) * stride_l + le, mask=le < E, other=float("-inf"))
            experts, weights = _topk_softmax(logits.to(tl.float32), TOPK, BLOCK_E)
            choice = tl.arange(0, TOPK) == n % TOPK
            e = tl.sum(tl.where(choice, experts, 0), axis=0)
            if tl.program_id(1) == 0:
                tl.store(ids_ptr + n, e)
                tl.store(w_ptr + n, tl.sum(tl.where(choice, weights, 0.0), axis=0))
        else:
            e = tl.load(ids_ptr + n).to(tl.int64)  # only the routed expert's bytes are read
        x_row = x_ptr + (n // TOPK) * stride_xn
        kw = tl.arange(0, 4)  # int32 word within a 32-value block
        kn = tl.arange(0, 8)  # nibble within a word
        acc = tl.zeros([BLOCK_R], dtype=tl.float32)
        # the scales, a byte each, are too narrow for the pipeline's asynchronous copies: each step loads the next
        # step's (after the last step's, a step past the chunk: no scale there is used)
        s_at = scales_ptr + e * stride_se + rows[:, None] * stride_sr  # [BR, 1]
        gn = j * chunk + tl.arange(0, BLOCK_G)  # [BG]
        s_next = tl.load(s_at + gn[None, :], mask=rmask[:, None] & (gn < G)[None, :], other=127).to(tl.int32)
        for g0 in tl.range(0, chunk, BLOCK_G, num_stages=NUM_STAGES):  # software-pipelined on the GPU
            gs = j * chunk + g0 + tl.arange(0, BLOCK_G)  # [BG]
            gmask = gs < G
            s = s_next
            gn = gs + BLOCK_G
            s_next = tl.load(s_at + gn[None, :], mask=rmask[:, None] & (gn < G)[None, :], other=127).to(tl.int32)
            # strides in 16-byte blocks, times 4 words: Triton then knows each block starts 16-byte aligned and
            # reads it in one load (a row stride of 90 blocks = 360 words is not a multiple of 16, so the JIT would
            # not assume it)
            word = tl.load(blocks_ptr + e * stride_be * 4 + rows[:, None, None] * stride_br * 4
                           + gs[None, :, None] * 4 + kw[None, None, :],
                           mask=rmask[:, None, None] & gmask[None, :, None], other=0)  # [BR, BG, 4] int32
            xv = tl.load(x_row + gs[:, None, None] * 32 + kw[None, :, None] * 8 + kn[None, None, :],
                         mask=gmask[:, None, None], other=0.0).to(tl.float32)  # [BG, 4, 8]
            if not X_SCALED:
                xv = xv * INPUT_SCALE
            part = tl.sum(_e2m1_dot_words(word, xv), axis=2)  # [BR, BG]
            # 2^(s-127) exactly, as float32 bits (s = 0: the subnormal 2^-127 = mantissa bit 22); all in integers, as
            # Triton types a float literal below 2^-126 as float64
            factor = tl.where(s == 0, 1 << 22, s << 23).to(tl.float32, bitcast=True)
            acc += tl.sum(part * PRODUCT_UNSCALE * factor, axis=1)  # 2^62 first, then the scale
        if HAS_BIAS:
            bias = tl.load(bias_ptr + e * stride_bias + rows, mask=rmask, other=0.0).to(tl.float32)
            acc += tl.where(j == 0, bias, 0.0)  # once per row: in split 0
        if SWIGLU:  # rows 2i, 2i+1 are gate and linear (BLOCK_R is even, so a pair never straddles programs)
            gate, lin = tl.split(tl.reshape(acc, [BLOCK_R // 2, 2]))
            act = _swiglu_oss(gate, lin, alpha, limit)  # [BR / 2]
            half = tl.program_id(1) * (BLOCK_R // 2) + tl.arange(0, BLOCK_R // 2)
            if HAS_W:
                act *= tl.load(w_ptr + n).to(tl.float32)
            if OUT_SCALED:
                act *= INPUT_SCALE
            tl.store(out_ptr + n * stride_on + half, act, mask=half < R // 2)
        else:
            if HAS_W:  # the router's weight of this pair
                acc *= tl.load(w_ptr + n).to(tl.float32)
            if OUT_SCALED:
                acc *= INPUT_SCALE
            tl.store(out_ptr + (n * SPLITS + j) * stride_on + rows, acc, mask=rmask)

    @triton.jit
    def _mxfp4_dequant_kernel(blocks_ptr, scales_ptr, out_ptr, R, G, stride_br, stride_sr, stride_or,
                              BLOCK_R: tl.constexpr, BLOCK_G: tl.constexpr):
        """W[r, 32g + 2j + b] = E2M1(nibble b of byte j of block (r, g)) * 2^(s[r, g] - 127), written in out's dtype:
        one expert's float matrix (or every expert's rows) for the prefill's matmuls, a tile of rows x 32-value
        blocks a program: each block's 16 bytes and its scale read once (16 bytes a load), its 32 values decoded
        together (_mxfp4_tile) and written 16 bytes a store."""
        rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)  # [BR]
        gs = tl.program_id(1) * BLOCK_G + tl.arange(0, BLOCK_G)  # [BG]
        cols = tl.program_id(1) * BLOCK_G * 32 + tl.arange(0, BLOCK_G * 32)  # [BG * 32]
        jb = tl.arange(0, 16)
        m = (rows < R)[:, None] & (gs < G)[None, :]  # [BR, BG]
        r = rows.to(tl.int64)  # offsets in int64: every expert's rows times their columns can pass 2^31
        byte = tl.load(blocks_ptr + r[:, None, None] * stride_br + gs[None, :, None] * 16 + jb[None, None, :],
                       mask=m[:, :, None], other=0).to(tl.int32)  # [BR, BG, 16]
        s = tl.load(scales_ptr + r[:, None] * stride_sr + gs[None, :], mask=m, other=127).to(tl.int32)
        w = _mxfp4_tile(byte, s)  # [BR, BG * 32]
        tl.store(out_ptr + r[:, None] * stride_or + cols[None, :], w.to(out_ptr.dtype.element_ty),
                 mask=(rows < R)[:, None] & (cols < G * 32)[None, :])

    @triton.jit
    def _mxfp4_grouped_kernel(blocks_ptr, scales_ptr, slot_ptr, block_expert_ptr, x_ptr, bias_ptr, w_ptr, out_ptr,
                              R, G, stride_be, stride_br, stride_se, stride_sr, stride_xn, stride_bias, stride_on,
                              alpha, limit, TOPK: tl.constexpr, SWIGLU: tl.constexpr, HAS_BIAS: tl.constexpr,
                              HAS_W: tl.constexpr, IEEE: tl.constexpr, FP16: tl.constexpr, BLOCK_M: tl.constexpr,
                              BLOCK_N: tl.constexpr, BLOCK_G: tl.constexpr, SWAP: tl.constexpr,
                              EVEN: tl.constexpr):
        """A prompt's MoE projection, every expert in one launch: program (block of BLOCK_M (token, expert) pairs that
        share one expert, BLOCK_N rows) multiplies their inputs by the expert's rows on the tensor cores, the packed
        weights decoded tile by tile in registers (_e2m1_f32, times 2^126, times 2^(s-127): exact); bias, SwiGLU of
        row pairs (up) or the router weight (down) in the epilogue. A block past the last expert's has expert -1 and
        does nothing; a padding slot holds pair -1. SWAP: W x^T ([rows, pairs], the decoded weights the register
        operand, nothing written to shared memory; Triton 3.9 then also keeps a multiply running while the next tile
        decodes) instead of x W^T ([pairs, rows], both operands through shared memory). EVEN: the rows and blocks
        fill whole tiles (R a multiple of BLOCK_N, G of BLOCK_G: gpt-oss-20b's 5760 and 2880 rows, 90 blocks, at
        64 x 2), so no load needs a mask."""
        mb, nb = tl.program_id(0), tl.program_id(1)
        e = tl.load(block_expert_ptr + mb).to(tl.int64)
        if e >= 0:
            pairs = tl.load(slot_ptr + mb * BLOCK_M + tl.arange(0, BLOCK_M))  # [BM]
            pmask = pairs >= 0
            xrow = tl.where(pmask, pairs // TOPK, 0)
            rows = nb * BLOCK_N + tl.arange(0, BLOCK_N)  # [BN]
            rmask = rows < R
            jb = tl.arange(0, 16)
            if SWAP:
                acc = tl.zeros([BLOCK_N, BLOCK_M], dtype=tl.float32)
            else:
                acc = tl.zeros([BLOCK_M, BLOCK_N], dtype=tl.float32)
            for g0 in range(0, G, BLOCK_G):
                gs = g0 + tl.arange(0, BLOCK_G)  # [BG]
                gmask = gs < G
                cols = g0 * 32 + tl.arange(0, BLOCK_G * 32)  # [BK]: written as one range so that Triton 3.6
                # sees the inputs contiguous too and reads them 16 bytes a load (from [BG, 32] reshaped, it read them
                # 2 bytes a load)
                x_at = x_ptr + xrow[:, None] * stride_xn + cols[None, :]  # [BM, BK]; a padding slot reads row 0
                b_at = (blocks_ptr + e * stride_be + rows[:, None, None] * stride_br + gs[None, :, None] * 16
                        + jb[None, None, :])  # [BN, BG, 16]
                s_at = scales_ptr + e * stride_se + rows[:, None] * stride_sr + gs[None, :]  # [BN, BG]
                if EVEN:  # whole tiles only: no masks to compute
                    x, byte, s = tl.load(x_at), tl.load(b_at).to(tl.int32), tl.load(s_at).to(tl.int32)
                else:
                    x = tl.load(x_at, mask=(cols < G * 32)[None, :], other=0.0)
                    byte = tl.load(b_at, mask=rmask[:, None, None] & gmask[None, :, None], other=0).to(tl.int32)
                    s = tl.load(s_at, mask=rmask[:, None] & gmask[None, :], other=127).to(tl.int32)
                w = _mxfp4_tile(byte, s)  # [BN, BK]: column 2j + b
                if IEEE:
                    xs, ws = x.to(tl.float32), w
                elif FP16:
                    xs, ws = x.to(tl.float16), w.to(tl.float16)
                else:
                    xs, ws = x.to(tl.bfloat16), w.to(tl.bfloat16)
                if SWAP:
                    acc += tl.dot(ws, tl.trans(xs), input_precision="ieee" if IEEE else None)  # [BN, BM]
                else:
                    acc += tl.dot(xs, tl.trans(ws), input_precision="ieee" if IEEE else None)  # [BM, BN]
            if SWAP:
                acc = tl.trans(acc)  # [BM, BN]
            if HAS_BIAS:
                acc += tl.load(bias_ptr + e * stride_bias + rows, mask=rmask, other=0.0).to(tl.float32)[None, :]
            safe = tl.where(pmask, pairs, 0)
            if SWIGLU:
                gate, lin = tl.split(tl.reshape(acc, [BLOCK_M, BLOCK_N // 2, 2]))
                y = _swiglu_oss(gate, lin, alpha, limit)  # [BM, BN / 2]
                half = nb * (BLOCK_N // 2) + tl.arange(0, BLOCK_N // 2)
                if HAS_W:
                    y *= tl.load(w_ptr + safe, mask=pmask, other=0.0).to(tl.float32)[:, None]
                tl.store(out_ptr + safe[:, None] * stride_on + half[None, :], y,
                         mask=pmask[:, None] & (half < R // 2)[None, :])
            else:
                if HAS_W:
                    acc *= tl.load(w_ptr + safe, mask=pmask, other=0.0).to(tl.float32)[:, None]
                tl.store(out_ptr + safe[:, None] * stride_on + rows[None, :], acc, mask=pmask[:, None] & rmask[None, :])

    @triton.jit
    def _route_kernel(logits_ptr, ids_ptr, w_ptr, E, stride_l, K: tl.constexpr, BLOCK_E: tl.constexpr):
        """gpt-oss's router for one token (_topk_softmax), in float32."""
        t = tl.program_id(0)
        e = tl.arange(0, BLOCK_E)
        ids, w = _topk_softmax(tl.load(logits_ptr + t * stride_l + e, mask=e < E, other=float("-inf")).to(tl.float32),
                               K, BLOCK_E)
        kk = tl.arange(0, K)
        tl.store(ids_ptr + t * K + kk, ids)
        tl.store(w_ptr + t * K + kk, w)


def route_topk_softmax(logits, k):
    """logits [N, E] -> (experts [N, k] int64, weights [N, k] float32), as routers.router_topk_softmax (k a power of
    two, as gpt-oss's 4), in one launch."""
    N, E = logits.shape
    ids = torch.empty(N, k, dtype=torch.long, device=logits.device)
    w = torch.empty(N, k, dtype=torch.float32, device=logits.device)
    _route_kernel[(N,)](logits, ids, w, E, logits.stride(0), K=k, BLOCK_E=triton.next_power_of_2(E))
    return ids, w


# (rows, 32-value blocks, pipeline stages, warps[, splits]) per program of the up and down projections: the best
# tile of the H200's run 3 (benchmarks/gpu_check_nvidia_h200_run3.md, measured on the up projection) for both, until
# benchmarks/gpu_check.py sweeps each on a GPU (the down projection also split-K over 2 and 3 programs a row)
TILE_UP, TILE_DOWN = (16, 4, 3, 1), (16, 4, 3, 1)


def check_packed(blocks, scales, x=None, experts=True):
    """MXFP4 operands as the kernels read them, else a ValueError naming what differs: blocks uint8 [E, R, G, 16]
    ([R, G, 16] with experts=False), scales uint8 of blocks' shape less its last axis, x [..., G * 32]."""
    lead = "E, R, G" if experts else "R, G"
    if blocks.dtype != torch.uint8 or blocks.dim() != len(lead.split(", ")) + 1 or blocks.shape[-1] != 16:
        raise ValueError(f"blocks: expected uint8 [{lead}, 16] (two E2M1 codes a byte, 32 a block), got "
                         f"{blocks.dtype} {list(blocks.shape)}")
    if scales.dtype != torch.uint8 or scales.shape != blocks.shape[:-1]:
        raise ValueError(f"scales: expected uint8 {list(blocks.shape[:-1])} (one E8M0 exponent a block of blocks "
                         f"{list(blocks.shape)}), got {scales.dtype} {list(scales.shape)}")
    if x is not None and x.shape[-1] != blocks.shape[-2] * 32:
        raise ValueError(f"x: expected {blocks.shape[-2] * 32} inputs a row ({blocks.shape[-2]} blocks of 32), got "
                         f"{list(x.shape)}")


def mxfp4_matvec(blocks, scales, ids, x, bias=None, weights=None, topk=1, swiglu=None, tile=None, logits=None,
                 x_scaled=False, out_scaled=False):
    """out [n, R] float32 = W[ids[p]] @ x[p // topk] (+ bias[ids[p]]) (* weights[p]) for MXFP4 W (blocks
    [E, R, G, 16], scales [E, R, G]); swiglu=(alpha, limit): rows are (gate, linear) pairs and out [n, R/2] holds
    swiglu_oss of each (bias added before, weight applied after). x float32 or bf16; ids [n] int.
    tile: (rows, 32-value blocks, pipeline stages, warps[, splits]) per program, default TILE_UP; with splits > 1
    (split-K, not with swiglu) out is [n * splits, R]: rows n * splits + j are pair n's partial sums (the bias in the
    first), to be summed. logits [N, E] (N = n / topk tokens): route in the kernel (gpt-oss's top-k + softmax, topk
    a power of two) instead of reading ids; `ids` [n] int64 and `weights` [n] float32 then receive each pair's
    expert and router weight (the weight is not applied). x_scaled: x is float32 and already times 2^64 (as an
    out_scaled matvec or add_rms_norm(..., scaled=True) writes it: the kernel then multiplies no input value);
    out_scaled: out is written times 2^64. Both exact (powers of two): the results equal the unscaled ones."""
    check_packed(blocks, scales, x)
    if x_scaled and x.dtype != torch.float32:
        raise ValueError(f"x_scaled: x must be float32 (the input times 2^64), got {x.dtype}")
    block_r, block_g, stages, warps, *rest = tile or TILE_UP
    splits = rest[0] if rest else 1
    E, R, G, _ = blocks.shape
    if swiglu is not None and (R % 2 or block_r % 2):
        raise ValueError(f"swiglu: {R} rows in (gate, linear) pairs need an even row count and tile, got {block_r}")
    if splits > 1 and swiglu is not None:
        raise ValueError(f"tile {tile}: a split-K matvec ({splits} splits) cannot apply SwiGLU in its epilogue")
    n = ids.numel()
    if (blocks.stride(-1) != 1 or blocks.stride(-2) != 16 or blocks.stride(0) % 16 or blocks.stride(1) % 16
            or blocks.storage_offset() % 16 or scales.stride(-1) != 1):  # rows/experts may be strided
        blocks, scales = blocks.contiguous(), scales.contiguous()
    words = blocks.view(torch.int32)  # [E, R, G, 4]: the kernel reads a block's 16 bytes as 4 int32 words
    x = x.contiguous()
    out = torch.empty(n * splits, R // 2 if swiglu else R, dtype=torch.float32, device=x.device)
    chunk = triton.cdiv(triton.cdiv(G, splits), block_g) * block_g  # blocks a split, whole loop steps
    grid = (n, triton.cdiv(R, block_r), splits)
    alpha, limit = swiglu or (0.0, 0.0)
    route = logits is not None
    _mxfp4_matvec_kernel[grid](words, scales, ids, x, out if bias is None else bias,
                               out if weights is None else weights, out, logits if route else out, R, G, chunk,
                               E, blocks.stride(0) // 16, blocks.stride(1) // 16,  # in 16-byte blocks
                               scales.stride(0), scales.stride(1),
                               x.stride(0), 0 if bias is None else bias.stride(0), out.stride(0),
                               logits.stride(0) if route else 0, float(alpha), float(limit), TOPK=topk,
                               SWIGLU=swiglu is not None, HAS_BIAS=bias is not None,
                               HAS_W=weights is not None and not route, SPLITS=splits, ROUTE=route,
                               BLOCK_E=triton.next_power_of_2(E) if route else 1, BLOCK_R=block_r,
                               BLOCK_G=block_g, NUM_STAGES=stages, X_SCALED=x_scaled, OUT_SCALED=out_scaled,
                               num_warps=warps, **pdl(x.device))
    return out


# the grouped kernel's tile: (pairs, rows, 32-value blocks, warps, pipeline stages, swap) per program; 64 x 64 x 64
# inputs on 4 warps, 3 stages (Triton's defaults), W x^T (swap: its sm_90 code feeds the decoded weights to the
# tensor cores from registers, no shared-memory round trip, in fewer loop instructions under Triton 3.6, the H200's,
# and under Triton 3.9 keeps a multiply in flight while the next tile decodes: benchmarks/kernel_sass.py), until
# benchmarks/gpu_check.py's sweep on a GPU picks one
GROUP_TILE = (64, 64, 2, 4, 3, True)


def group_pairs(ids, n_experts, block_m):
    """Pairs sorted by expert into blocks of block_m that share one expert, on the device (no host sync, fixed
    shapes): ids [P] -> (slots [n_blocks * block_m] pair index or -1, block_expert [n_blocks] expert or -1), with
    n_blocks = ceil(P / block_m) + n_experts, enough for any routing."""
    P, dev = ids.numel(), ids.device
    counts = torch.zeros(n_experts, dtype=torch.long, device=dev).scatter_add_(0, ids, torch.ones_like(ids))
    padded = (counts + block_m - 1) // block_m * block_m  # [E]
    ends = torch.cumsum(padded, 0)
    order = torch.argsort(ids, stable=True)  # [P] pairs by expert
    sorted_ids = ids[order]
    rank = torch.arange(P, device=dev) - (torch.cumsum(counts, 0) - counts)[sorted_ids]  # place within its expert
    n_blocks = triton.cdiv(P, block_m) + n_experts
    slots = torch.full((n_blocks * block_m,), -1, dtype=torch.long, device=dev)
    slots[(ends - padded)[sorted_ids] + rank] = order
    block_expert = torch.searchsorted(ends, torch.arange(n_blocks, device=dev) * block_m, right=True)
    return slots, torch.where(block_expert < n_experts, block_expert, -1)


def mxfp4_grouped(blocks, scales, slots, block_expert, x, bias=None, weights=None, topk=1, swiglu=None,
                  tile=None):
    """out [P, R] float32 (P = pairs, R/2 with swiglu) = W[e_p] x[p // topk] (+ bias) (swiglu of row pairs) (* w_p)
    for every pair p at once, pairs grouped by group_pairs; float32 x multiplies in IEEE float32, bf16 / fp16 x on
    the tensor cores in that dtype. tile: (pairs, rows, 32-value blocks, warps, stages, swap) per program, default
    GROUP_TILE; its pairs must equal group_pairs' block_m."""
    check_packed(blocks, scales, x)
    block_m, block_n, block_g, warps, stages, swap = tile or GROUP_TILE
    E, R, G, _ = blocks.shape
    if swiglu is not None and R % 2:
        raise ValueError(f"swiglu: {R} rows in (gate, linear) pairs need an even row count")
    if blocks.stride(-1) != 1 or blocks.stride(-2) != 16 or scales.stride(-1) != 1:
        blocks, scales = blocks.contiguous(), scales.contiguous()
    x = x.contiguous()
    n_pairs = x.shape[0] * topk
    out = torch.empty(n_pairs, R // 2 if swiglu else R, dtype=torch.float32, device=x.device)
    alpha, limit = swiglu or (0.0, 0.0)
    grid = (block_expert.numel(), triton.cdiv(R, block_n))
    _mxfp4_grouped_kernel[grid](blocks, scales, slots, block_expert, x, out if bias is None else bias,
                                out if weights is None else weights, out, R, G,
                                blocks.stride(0), blocks.stride(1), scales.stride(0), scales.stride(1), x.stride(0),
                                0 if bias is None else bias.stride(0), out.stride(0), float(alpha), float(limit),
                                TOPK=topk, SWIGLU=swiglu is not None, HAS_BIAS=bias is not None,
                                HAS_W=weights is not None, IEEE=x.dtype == torch.float32,
                                FP16=x.dtype == torch.float16, BLOCK_M=block_m, BLOCK_N=block_n, BLOCK_G=block_g,
                                SWAP=bool(swap), EVEN=R % block_n == 0 and G % block_g == 0, num_warps=warps,
                                num_stages=stages)
    return out


def routed(logits, cfg):
    """(experts [N, k], weights [N, k]) from router logits: gpt-oss's top-k + softmax in one launch (k a power of two),
    else the torch router."""
    if cfg.router == "topk_softmax" and cfg.top_k & (cfg.top_k - 1) == 0:
        return route_topk_softmax(logits, cfg.top_k)
    return route(logits, cfg)


def grouped_moe(x, logits, up, down, cfg):
    """A prompt's MoE after the router's matmul in few launches, no host sync: routing, grouping the pairs by expert,
    then up (bias and SwiGLU in its epilogue) and down (bias and router weight; its float32 input rounded to x's
    dtype) over every expert at once; the sum over the k pairs remains.
    x [N, D] -> (y [N, D] in x's dtype, experts [N, k], weights [N, k])."""
    k = cfg.top_k
    experts, weights = routed(logits, cfg)
    N = experts.shape[0]
    tile = GROUP_TILE  # read at each call (gpu_check sets the best of its sweep)
    slots, block_expert = group_pairs(experts.reshape(-1), up.shape[0], tile[0])
    if cfg.activation == "swiglu_oss":
        act = mxfp4_grouped(up.blocks, up.scales, slots, block_expert, x, up.bias, topk=k,
                            swiglu=(cfg.swiglu_alpha, cfg.swiglu_limit), tile=tile)  # [N*k, F] float32
    else:
        act = activate(mxfp4_grouped(up.blocks, up.scales, slots, block_expert, x, up.bias, topk=k, tile=tile), cfg)
    out = mxfp4_grouped(down.blocks, down.scales, slots, block_expert, act.to(x.dtype), down.bias,
                        weights.reshape(-1), tile=tile)  # [N*k, D], weighted
    return out.view(N, k, -1).sum(1).to(x.dtype), experts, weights


# the dequantisation's tile: (rows, 32-value blocks, warps) a program: 64 x 2 blocks = 4,096 values on 4 warps, which
# gpt-oss-20b's 2880 and 5760 rows and 90 blocks fill without a masked lane; 16-byte loads and stores, 11 instructions
# a value in bf16 on sm_90 (the former kernel, columns a program: 1-byte loads, 22; benchmarks/kernel_sass.py), until
# benchmarks/gpu_check.py's sweep on a GPU picks one
DEQUANT_TILE = (64, 2, 4)


def mxfp4_dequantize(blocks, scales, dtype, tile=None):
    """One expert's float matrix (or every expert's rows) in one launch: blocks [R, G, 16] u8, scales [R, G] u8 ->
    [R, G*32] `dtype`, equal to gptoss_torch.mxfp4.mxfp4_decode (the prefill's matmuls read it). tile: (rows,
    32-value blocks, warps) a program, default DEQUANT_TILE."""
    check_packed(blocks, scales, experts=False)
    R, G, _ = blocks.shape
    if blocks.stride(-1) != 1 or blocks.stride(-2) != 16 or scales.stride(-1) != 1:
        blocks, scales = blocks.contiguous(), scales.contiguous()
    out = torch.empty(R, G * 32, dtype=dtype, device=blocks.device)
    br, bg, warps = tile or DEQUANT_TILE
    _mxfp4_dequant_kernel[(triton.cdiv(R, br), triton.cdiv(G, bg))](blocks, scales, out, R, G, blocks.stride(0),
                                                                    scales.stride(0), out.stride(0), BLOCK_R=br,
                                                                    BLOCK_G=bg, num_warps=warps)
    return out


ROUTE_IN_UP = True  # gpt-oss's routing in the up kernel's prologue (one launch fewer a layer) instead of its own


def fused_moe(x, logits, up, down, cfg, reduce=True, x_scaled=None):
    """The MoE after the router's matmul in few launches: routing (gpt-oss's top-k + softmax: in the up kernel's
    prologue, or one kernel of its own), up (bias and the activation in its epilogue), then down (bias and router
    weight in its epilogue); a sum over the k pairs remains. x [N, D], logits [N, E] -> (y [N, D] in x's dtype,
    experts [N, k], weights [N, k]); reduce=False leaves the sum to the caller: y is then the k weighted outputs
    [N * k, D] in float32, or their split-K parts [N * k * splits, D] with a split TILE_DOWN (fast/norm_triton.py
    sums them). x_scaled: x again as float32 times 2^64 (add_rms_norm(..., scaled=True)), which the up kernel then
    reads instead of x; with SwiGLU in its epilogue the up kernel hands the down one its output times 2^64 as well.
    Either way the results are the same (exact powers of two), in fewer instructions a weight."""
    k, N = cfg.top_k, x.shape[0]
    swiglu = (cfg.swiglu_alpha, cfg.swiglu_limit) if cfg.activation == "swiglu_oss" else None
    up_x = x if x_scaled is None else x_scaled
    scaled = dict(x_scaled=x_scaled is not None, out_scaled=swiglu is not None)
    if ROUTE_IN_UP and swiglu and cfg.router == "topk_softmax" and k & (k - 1) == 0:
        ids = torch.empty(N * k, dtype=torch.long, device=x.device)  # [N*k]: pair p is token p // k, written by
        w = torch.empty(N * k, dtype=torch.float32, device=x.device)  # the up kernel
        act = mxfp4_matvec(up.blocks, up.scales, ids, up_x, up.bias, w, topk=k, swiglu=swiglu, tile=TILE_UP,
                           logits=logits, **scaled)
        experts, weights = ids.view(N, k), w.view(N, k)
    else:
        experts, weights = routed(logits, cfg)
        ids = experts.reshape(-1)  # [N*k]: pair p is token p // k
        if swiglu:  # the activation in the up kernel's epilogue: a [N*k, F] output (times 2^64)
            act = mxfp4_matvec(up.blocks, up.scales, ids, up_x, up.bias, topk=k, swiglu=swiglu, tile=TILE_UP,
                               **scaled)
        else:
            act = activate(mxfp4_matvec(up.blocks, up.scales, ids, up_x, up.bias, topk=k, tile=TILE_UP,
                                        x_scaled=x_scaled is not None), cfg)
    out = mxfp4_matvec(down.blocks, down.scales, experts.reshape(-1), act, down.bias, weights.reshape(-1),
                       tile=TILE_DOWN, x_scaled=swiglu is not None)  # [N*k, D], weighted
    if not reduce:
        return out, experts, weights
    return out.view(N, out.shape[0] // N, -1).sum(1).to(x.dtype), experts, weights  # [N, D]


def enable(model, prefill=False):
    """Route the model's few-token MoE steps through the fused kernels (MXFP4 configs, where Triton runs), the
    prefill's per-expert matrices through the one-launch dequantisation, and with `prefill` a prompt's MoE through
    the grouped kernel (every expert in one launch per projection, no host sync)."""
    cfg = model.cfg
    if cfg.expert_quant != "mxfp4" or not available(model.device):
        return False
    for block in model.layers:
        ex = block.mlp.experts
        block.mlp.fused = (lambda x, logits, reduce=True, x_scaled=None, up=ex.up, down=ex.down:
                           fused_moe(x, logits, up, down, cfg, reduce, x_scaled))
        ex.up.dequantize = ex.down.dequantize = mxfp4_dequantize  # the prefill's per-expert matrices
        block.mlp.grouped = ((lambda x, logits, up=ex.up, down=ex.down: grouped_moe(x, logits, up, down, cfg))
                             if prefill else None)
    return True
