"""MXFP4 (OCP microscaling FP4) weights as stored in gpt-oss checkpoints: decode, encode, storage size, and
x @ W.T straight from the packed bytes (mxfp4_matmul), which is how the experts of a full-size model are multiplied.

A logical weight row [..., K] is cut into blocks of 32 consecutive elements along the last (input) axis.
Each element is a 4-bit E2M1 code (bit 3 sign, bits 2-1 exponent, bit 0 mantissa); each block shares one
E8M0 scale byte s meaning the factor 2**(s-127). Two codes are packed per byte: the LOW nibble is the even
element 2j, the HIGH nibble the odd element 2j+1. Stored: blocks uint8 [..., G, 16], scales uint8 [..., G].

Decode overflow / underflow (documented behaviour, tested):
  * float64 output is exact for every code and every scale 0..254.
  * float32 output is exact for scales 0..252, including the subnormal results at small scales
    (scale 0: 0.5 * 2**-127 = 2**-128 is a float32 subnormal, stored exactly; numpy does not flush to zero).
    For scales 253 and 254 the values with |v| * 2**(s-127) >= 2**128 do not fit float32 and become +-inf,
    as IEEE ldexp (and torch.ldexp in transformers) does; e.g. at 254 the codes +-2, +-3, +-4, +-6 are +-inf.
  * other dtypes (bfloat16, float16) are a cast of the float32 result: exact where representable, else +-inf / 0.

Speed (gpt-oss-20b reads 2.4 G MXFP4 values per decoded token; measurements in benchmarks/np_20b_cpu.md):
  * mxfp4_decode gathers the E2M1 values with np.take from a table of 16-byte items (float32: four values per pair of
    bytes) and multiplies each block by its exact power of two, a chunk of rows at a time; bit-identical to the
    definition (ldexp), about 8x faster than a per-nibble fancy-index gather + ldexp.
  * mxfp4_matmul never holds the float matrix: ~2 MB of rows is decoded into a reused buffer and multiplied by BLAS
    at once, over a couple of threads. For one token it skips scaling the weights and scales each 32-block's partial
    dot product instead (the scale multiply costs as much as the gather); that changes only the summation order.
  * mxfp4_matmul_many runs several products (the experts a layer routes to) from one queue of row chunks, so the two
    threads wait for each other once per layer projection, not once per expert.

Encode rounding: the block scale is the smallest power of two with max|w| <= 6 * 2**e, i.e.
e = ceil(log2(max|w| / 6)) (computed exactly via frexp), clamped to the E8M0 range [-127, 127] (bytes 0..254);
each w / 2**e is then rounded to the nearest E2M1 magnitude with ties to the even mantissa bit (IEEE
roundTiesToEven, as the OCP spec asks for conversions), e.g. 0.25 -> 0, 0.75 -> 1, 2.5 -> 2, 5 -> 4. The sign bit
is np.signbit(w), so -0.0 and small negatives that round to zero keep code 0x8 (-0). An all-zero block gets
scale 127 (factor 1); any scale would decode it to exact zeros. Magnitudes above 6 * 2**127 (only reachable
from float64 input) saturate to +-6 * 2**127.
"""

import threading

import numpy as np

from .errors import CheckpointError, InputError
from .threads import run_jobs

# E2M1 code -> value; index bit 3 is the sign, so codes 0x8..0xF are the negatives of 0x0..0x7.
FP4_VALUES = np.array(
    [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0],
    dtype=np.float32,
)

# byte -> (value of low nibble, value of high nibble): one gather decodes two elements in the right order.
_BYTES = np.arange(256)
_BYTE_LUT = np.stack([FP4_VALUES[_BYTES & 0x0F], FP4_VALUES[_BYTES >> 4]], axis=-1)  # [256, 2]

# Gather tables with one 16-byte item per index (np.take's fastest large item): for float32 the index is a
# little-endian uint16 -- two bytes, four codes in element order -- and the item four float32 (65536 items, 1 MB); for
# float64 the index is one byte and the item two float64. One gather per two bytes moves half the index data of one
# per byte, which is what two threads sharing the caches notice (see benchmarks/np_20b_cpu.md).
_CODES16 = np.arange(1 << 16)
_GATHER = {
    np.float32: (np.dtype("<u2"), np.stack([FP4_VALUES[(_CODES16 >> s) & 15] for s in (0, 4, 8, 12)], axis=-1)
                 .astype(np.float32).view(np.complex128).reshape(-1)),
    np.float64: (np.dtype(np.uint8), np.ascontiguousarray(_BYTE_LUT.astype(np.float64)).view(np.complex128)
                 .reshape(-1)),
}

# scale byte s -> 2**(s-127), exact in float32 (2**-127 is a subnormal, 2**127 the top power) and float64; 255, the
# E8M0 NaN, -> NaN. Multiplying by an exact power of two rounds exactly like ldexp: the same value, the same +-inf
# when it does not fit, the same signed zeros, so `v * _SCALE[s]` is bit-identical to `ldexp(v, s - 127)`.
_SCALE = {dt: np.append(np.ldexp(dt(1), np.arange(255) - 127).astype(dt), dt(np.nan)) for dt in (np.float32,
                                                                                                   np.float64)}

# Midpoints between neighbouring E2M1 magnitudes 0, .5, 1, 1.5, 2, 3, 4, 6 (codes 0..7); inf closes the table.
_FP4_MIDPOINTS = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, np.inf])

_BLOCK = 32  # elements per shared scale
_E8M0_NAN = 255  # the one E8M0 encoding that is not a power of two


def _check_mxfp4(blocks, scales, name):
    """Validate blocks u8 [..., G, 16] and scales u8 [..., G]; return them as arrays (memmaps stay memmaps)."""
    blocks, scales = np.asarray(blocks), np.asarray(scales)
    if blocks.dtype != np.uint8 or scales.dtype != np.uint8:
        raise CheckpointError(
            f"{name}: expected blocks and scales of dtype uint8, found blocks {blocks.dtype}, scales {scales.dtype}"
        )
    if blocks.ndim < 2 or blocks.shape[-1] != _BLOCK // 2:
        raise CheckpointError(f"{name}: expected blocks of shape [..., G, 16], found blocks {blocks.shape}")
    if blocks.shape[:-1] != scales.shape:
        raise CheckpointError(
            f"{name}: blocks {blocks.shape} need scales of shape {blocks.shape[:-1]}, found scales {scales.shape}"
        )
    nan = scales == _E8M0_NAN
    if nan.any():
        first = tuple(int(i) for i in np.argwhere(nan)[0])
        raise CheckpointError(
            f"{name}: {int(nan.sum())} scale byte(s) are 255, the E8M0 NaN encoding (first at index {first}); "
            f"expected scales in 0..254"
        )
    return blocks, scales


def _work_dtype(dtype):
    """float64 when asked for float64, else float32: the precision the power-of-two arithmetic is done in."""
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _index_shape(n, G, work):
    """Shape of the gather index for n rows of G blocks: [n, G, 8] (uint16 pairs of bytes) or [n, G, 16] (bytes)."""
    return (n, G, _BLOCK // 2 // _GATHER[work][0].itemsize)


def _gather(blocks, out, index=None):
    """out[n, G*32] <- the unscaled E2M1 values of blocks u8 [n, G, 16]: one np.take of a 16-byte table item per index.
    `index` (intp, _index_shape) is scratch for the cast of the uint16/uint8 index to intp: np.take casts a narrow
    index itself, but holding the GIL, which stops a second thread; np.copyto into a reused buffer does not."""
    work = out.dtype.type
    index_dtype, table = _GATHER[work]
    src = np.ascontiguousarray(blocks).view(index_dtype)  # [n, G, 8] or [n, G, 16]
    if index is not None:
        np.copyto(index, src, casting="unsafe")
        src = index
    # mode="wrap" skips np.take's bounds check (about 2x faster); every uint16 / byte is a valid index into the table
    np.take(table, src, out=out.view(np.complex128).reshape(src.shape), mode="wrap")
    return out


def _decode_rows(blocks, scales, out, index=None):
    """Decode rows in place: blocks u8 [n, G, 16], scales u8 [n, G] -> out [n, G*32] (float32 or float64, C-order).
    One np.take writes the E2M1 values (see _gather); one multiply applies the block scales."""
    n, G, _ = blocks.shape
    work = out.dtype.type
    _gather(blocks, out, index)
    w = out.reshape(n, G, _BLOCK)
    with np.errstate(over="ignore"):  # scales 253/254 may overflow float32 to +-inf (see above)
        np.multiply(w, np.take(_SCALE[work], scales, mode="wrap")[..., None], out=w)
    return out


def _chunk_rows(K, itemsize):
    """Rows per decoded chunk: about 2 MB of floats (182 rows of a gpt-oss expert), small enough for the CPU caches,
    big enough that each NumPy call is long: with two threads, calls of a few microseconds spend their time handing
    the GIL back and forth (1 MB chunks: 13.4 ms median per 16.6 M values, 2 MB: 12.0 ms, 4 MB: 13.0 ms)."""
    return max(1, _CHUNK_BYTES // (K * itemsize))


_CHUNK_BYTES = 2 << 20
_CHUNKS_PER_JOB = 2


def mxfp4_decode(blocks, scales, dtype=np.float32, name="mxfp4 tensor"):
    """W[..., 32g+i] = FP4_VALUES[nibble i%2 of byte i//2] * 2**(s_g - 127): [..., G, 16], [..., G] -> [..., G*32].

    Rows are decoded a chunk at a time (a table gather, then one multiply by the exact power of two 2**(s-127)),
    so the scaling pass runs on data still in cache; bit-identical to the element-by-element definition."""
    blocks, scales = _check_mxfp4(blocks, scales, name)
    *lead, G, _ = blocks.shape
    work = _work_dtype(dtype)
    rows_b, rows_s = blocks.reshape(-1, G, _BLOCK // 2), scales.reshape(-1, G)  # [M, G, 16], [M, G]
    w = np.empty((rows_b.shape[0], G * _BLOCK), work)  # [M, K]
    step = _chunk_rows(G * _BLOCK, w.itemsize)
    for a in range(0, len(w), step):
        _decode_rows(rows_b[a:a + step], rows_s[a:a + step], w[a:a + step])
    return w.reshape(*lead, G * _BLOCK).astype(dtype, copy=False)  # [..., G*32]


# ---- x @ W.T straight from the packed bytes ---------------------------------------------------------------------

# Per-thread decode buffers of the worker threads (gptoss_np.threads), reused call to call (no page faults in the
# hot loop). np.take with an intp index, casts and BLAS release the GIL while they run, so two threads overlap as long
# as each NumPy call is long enough (see _chunk_rows).
_SCRATCH = threading.local()


def _scratch(name, shape, dtype):
    """This thread's reusable buffer `name` of exactly `shape` (one per shape: up and down projections alternate)."""
    bufs = _SCRATCH.__dict__.setdefault("bufs", {})
    key = (name, tuple(shape), np.dtype(dtype).str)
    if key not in bufs:
        bufs[key] = np.empty(shape, dtype)
    return bufs[key]


def _matvec_rows(x, blocks, scales, out, step):
    """out[r] = sum_g 2**(s[r,g]-127) * (E2M1 codes of block (r, g)) . x[32g:32g+32], chunk by chunk: x [K] -> out [R].

    Per chunk: one gather of the unscaled E2M1 values and one batched BLAS matvec giving every 32-element block's
    partial dot product z [n, G]; at the end the exact power-of-two scales are applied to z (32 times fewer values
    than the weights) in one pass over all the rows."""
    R, G, _ = blocks.shape
    xg = x.reshape(G, _BLOCK, 1)  # [G, 32, 1]
    w = _scratch("w", (step, G * _BLOCK), x.dtype)
    index = _scratch("index", _index_shape(step, G, x.dtype.type), np.intp)
    z = _scratch("z", (R, G), x.dtype)  # row-major, so the final scaled sum reads both operands contiguously
    for a in range(0, R, step):
        b = min(a + step, R)
        n = b - a
        _gather(blocks[a:b], w[:n], index[:n])
        np.matmul(w[:n].reshape(n, G, _BLOCK).transpose(1, 0, 2), xg, out=z[a:b].T[:, :, None])  # block dots
    np.einsum("rg,rg->r", np.take(_SCALE[x.dtype.type], scales, mode="wrap"), z, out=out)


def _matmul_rows(xt, blocks, scales, out, step):
    """out[r, t] = (decoded row r) . xt[:, t], chunk by chunk: the rows are decoded exactly as mxfp4_decode does into a
    small buffer, then multiplied by BLAS. xt [K, T] -> out [R, T]."""
    R, G, _ = blocks.shape
    w = _scratch("w", (step, G * _BLOCK), xt.dtype)
    index = _scratch("index", _index_shape(step, G, xt.dtype.type), np.intp)
    for a in range(0, R, step):
        b = min(a + step, R)
        np.matmul(_decode_rows(blocks[a:b], scales[a:b], w[:b - a], index[:b - a]), xt, out=out[a:b])


def _matmul_jobs(x, blocks, scales, name):
    """Check one product x @ W.T and cut it into jobs: (output builder, [(kernel, args), ...]).
    The rows are processed a chunk (~2 MB of floats) at a time, in jobs of _CHUNKS_PER_JOB chunks."""
    blocks, scales = _check_mxfp4(blocks, scales, name)
    x = np.asarray(x)
    if blocks.ndim != 3:
        raise InputError(f"{name}: mxfp4_matmul expects one matrix, blocks [R, G, 16]; found {blocks.shape}")
    R, G, _ = blocks.shape
    if x.shape[-1:] != (G * _BLOCK,) or x.ndim not in (1, 2):
        raise InputError(f"{name}: x must be [T, {G * _BLOCK}] or [{G * _BLOCK}] to multiply a [{R}, {G * _BLOCK}] "
                         f"matrix, found {x.shape}")
    if x.dtype.type not in _GATHER:
        return (lambda: x @ mxfp4_decode(blocks, scales, x.dtype, name).T), []
    step = _chunk_rows(G * _BLOCK, x.itemsize)
    if x.ndim == 1 or len(x) == 1:
        xin, out = np.ascontiguousarray(x.reshape(-1)), np.empty(R, x.dtype)  # [K], [R]
        kernel, result = _matvec_rows, (lambda: out if x.ndim == 1 else out[None])
    else:
        xin, out = np.ascontiguousarray(x.T), np.empty((R, len(x)), x.dtype)  # [K, T], [R, T]
        kernel, result = _matmul_rows, (lambda: out.T)  # [T, R]
    per = step * _CHUNKS_PER_JOB
    return result, [(kernel, (xin, blocks[a:a + per], scales[a:a + per], out[a:a + per], step))
                    for a in range(0, R, per)]


def mxfp4_matmul_many(xs, blocks, scales, names=None, threads=None):
    """[x_i @ W_i.T for each i], W_i = mxfp4_decode(blocks[i], scales[i]): several products (e.g. the experts a layer
    routes to) whose row chunks share one queue of jobs, so the worker threads wait for each other once, at the end,
    instead of once per matrix. Each product is computed exactly as mxfp4_matmul computes it alone."""
    names = names if names is not None else ["mxfp4 tensor"] * len(xs)
    if not len(xs) == len(blocks) == len(scales) == len(names):
        raise InputError(f"mxfp4_matmul_many: {len(xs)} inputs, {len(blocks)} blocks, {len(scales)} scales and "
                         f"{len(names)} names; expected as many of each")
    planned = [_matmul_jobs(x, b, s, n) for x, b, s, n in zip(xs, blocks, scales, names)]
    jobs = [job for _, part in planned for job in part]
    run_jobs(jobs, threads)  # one shared queue: the workers meet once, at the end
    return [result() for result, _ in planned]


def mxfp4_matmul(x, blocks, scales, name="mxfp4 tensor", threads=None):
    """x @ W.T for W = mxfp4_decode(blocks, scales), without ever holding W in memory.
    x [T, K] or [K] (float32 or float64), blocks u8 [R, K/32, 16], scales u8 [R, K/32] -> [T, R] or [R], x's dtype.

    The rows are processed a chunk (~2 MB of floats) at a time, in jobs of _CHUNKS_PER_JOB chunks that `threads` worker
    threads (default gptoss_np.threads.THREADS) take as they come free.
      * one token (x [K] or [1, K], the decode step): blockwise matvec, see _matvec_rows. It skips scaling the weights
        (the scale multiply costs as much as the gather), so it agrees with x @ mxfp4_decode(...).T to float rounding
        only: the same products, summed per 32-block first.
      * several tokens: each chunk is decoded exactly (bit-identical rows) and multiplied by BLAS, so the result is
        x @ mxfp4_decode(...).T up to BLAS's own blocking of the sums (bit-identical in our runs for 2 and 3 tokens,
        but BLAS may pick other kernels for other shapes).
    Other dtypes (e.g. float16) take the reference route x @ mxfp4_decode(..., x.dtype).T."""
    return mxfp4_matmul_many([x], [blocks], [scales], [name], threads)[0]


def mxfp4_decode_simple(blocks, scales, dtype=np.float32):
    """Plain decoder (split nibbles, look up, interleave, ldexp in float64): [..., G, 16], [..., G] -> [..., G*32]."""
    blocks, scales = _check_mxfp4(blocks, scales, "mxfp4 tensor")
    lo = FP4_VALUES[blocks & 0x0F].astype(np.float64)  # [..., G, 16] even elements
    hi = FP4_VALUES[blocks >> 4].astype(np.float64)  # [..., G, 16] odd elements
    w = np.empty(blocks.shape[:-1] + (_BLOCK,))  # [..., G, 32]
    w[..., 0::2] = lo
    w[..., 1::2] = hi
    w = np.ldexp(w, scales.astype(np.int64)[..., None] - 127)  # every product is exact in float64
    with np.errstate(over="ignore"):  # same +-inf as mxfp4_decode when the dtype cannot hold 6 * 2**127
        return w.reshape(*scales.shape[:-1], -1).astype(dtype)  # [..., G*32]


def _block_exponent(amax):
    """Smallest e with amax <= 6 * 2**e (0 for amax == 0), clamped to the E8M0 range [-127, 127]: [...] -> [...] int."""
    safe = np.where(amax > 0, amax, 6.0)  # zero block -> e = 0, i.e. scale byte 127
    # Exact, unlike ceil(log2(amax / 6)) which rounds twice: amax = m * 2**p with m in [0.5, 1), so
    # m * 2**(p-e) <= 6 first holds at p - e = 3 when m <= 0.75 (8m <= 6), else at p - e = 2 (4m < 4).
    m, p = np.frexp(safe)
    e = p.astype(np.int64) - 3 + (m > 0.75)
    return np.clip(e, -127, 127)


def _round_e2m1(x):
    """Code 0..7 of the E2M1 magnitude nearest x >= 0, ties to even mantissa, saturating at 6: [...] -> [...]."""
    code = np.searchsorted(_FP4_MIDPOINTS, x, side="left")  # ties land on the lower neighbour
    tie = x == _FP4_MIDPOINTS[code]
    code += tie & (code % 2 == 1)  # odd code = mantissa bit 1: a tie moves up to the even neighbour
    return code.astype(np.uint8)  # x > 6 finds no midpoint above it but inf: code 7, i.e. saturates at 6


def mxfp4_encode(w, name="weight"):
    """w ~= decode(blocks, scales), nearest E2M1 per block: [..., K] -> [..., K/32, 16] u8, [..., K/32] u8."""
    w = np.asarray(w)
    K = w.shape[-1] if w.ndim else 0
    if w.ndim == 0 or K % _BLOCK:
        raise InputError(f"{name}: last axis K must be a positive multiple of {_BLOCK}, found shape {w.shape} (K={K})")
    # float32 holds float32/bfloat16/float16 input exactly and its power-of-two scaling below stays exact.
    w = w.astype(_work_dtype(w.dtype), copy=False)
    if not np.isfinite(w).all():
        raise InputError(f"{name}: {int((~np.isfinite(w)).sum())} non-finite value(s) (NaN/inf) cannot be encoded")
    *lead, _ = w.shape
    w = w.reshape(*lead, K // _BLOCK, _BLOCK)  # [..., G, 32]
    mag = np.abs(w)
    e = _block_exponent(mag.max(axis=-1))  # [..., G]
    code = _round_e2m1(np.ldexp(mag, -e[..., None]))  # [..., G, 32] magnitude codes 0..7
    code |= np.signbit(w).astype(np.uint8) << 3  # sign bit 3
    blocks = code[..., 0::2] | (code[..., 1::2] << 4)  # [..., G, 16] low nibble = even element
    return blocks, (e + 127).astype(np.uint8)


def mxfp4_bytes(n_values):
    """Storage of n MXFP4 values: n/2 code bytes + n/32 scale bytes (4.25 bits per value)."""
    if n_values < 0 or n_values % _BLOCK:
        raise InputError(f"n_values: expected a non-negative multiple of {_BLOCK}, found {n_values}")
    return n_values // 2 + n_values // _BLOCK
