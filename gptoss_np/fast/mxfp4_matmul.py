"""Speed path for MXFP4 (see gptoss_np/mxfp4.py for the format): a table-gather decode that is bit-identical to
mxfp4.mxfp4_decode, and x @ W.T straight from the packed bytes, which is how the experts of a full-size model are
multiplied on two cores. tests/test_mxfp4.py checks both against the plain definitions.

Speed (gpt-oss-20b reads 2.4 G MXFP4 values per decoded token; measurements in benchmarks/np_20b_cpu.md):
  * mxfp4_decode_fast gathers the E2M1 values with np.take from a table of 16-byte items (float32: four values per
    pair of bytes) and multiplies each block by its exact power of two, a chunk of rows at a time; bit-identical to
    the definition (ldexp), about 8x faster than a per-nibble fancy-index gather + ldexp.
  * mxfp4_matmul never holds the float matrix: ~2 MB of rows is decoded into a reused buffer and multiplied by BLAS
    at once, over a couple of threads. For one token it skips scaling the weights and scales each 32-block's partial
    dot product instead (the scale multiply costs as much as the gather); that changes only the summation order.
  * mxfp4_matmul_many runs several products (the experts a layer routes to) from one queue of row chunks, so the two
    threads wait for each other once per layer projection, not once per expert.
"""

import threading

import numpy as np

from ..errors import InputError
from ..mxfp4 import _BLOCK, FP4_VALUES, _check_mxfp4, _work_dtype
from .threads import run_jobs

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


def mxfp4_decode_fast(blocks, scales, dtype=np.float32, name="mxfp4 tensor"):
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

# Per-thread decode buffers of the worker threads (gptoss_np.fast.threads), reused call to call (no page faults in the
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
    """out[r, t] = (decoded row r) . xt[:, t], chunk by chunk: the rows are decoded exactly as mxfp4_decode_fast does into a
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
        return (lambda: x @ mxfp4_decode_fast(blocks, scales, x.dtype, name).T), []
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
    threads (default gptoss_np.fast.threads.THREADS) take as they come free.
      * one token (x [K] or [1, K], the decode step): blockwise matvec, see _matvec_rows. It skips scaling the weights
        (the scale multiply costs as much as the gather), so it agrees with x @ mxfp4_decode(...).T to float rounding
        only: the same products, summed per 32-block first.
      * several tokens: each chunk is decoded exactly (bit-identical rows) and multiplied by BLAS, so the result is
        x @ mxfp4_decode(...).T up to BLAS's own blocking of the sums (bit-identical in our runs for 2 and 3 tokens,
        but BLAS may pick other kernels for other shapes).
    Other dtypes (e.g. float16) take the reference route x @ mxfp4_decode(..., x.dtype).T."""
    return mxfp4_matmul_many([x], [blocks], [scales], [name], threads)[0]
