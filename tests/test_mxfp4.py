"""MXFP4 decode/encode against references that do not come from gptoss_np.mxfp4 itself."""

import math
import warnings

import numpy as np
import pytest

from gptoss_np.fast import mxfp4_matmul as fast_mxfp4
from gptoss_np.errors import CheckpointError, InputError
from gptoss_np.fast.mxfp4_matmul import mxfp4_decode_fast, mxfp4_matmul, mxfp4_matmul_many
from gptoss_np.mxfp4 import (
    FP4_VALUES,
    mxfp4_bytes,
    mxfp4_decode,
    mxfp4_encode,
)
from references import unavailable

F32_MAX = float(np.finfo(np.float32).max)


def e2m1(code):
    """E2M1 from its bits: (-1)^s * (m/2 if e == 0 else 2**(e-1) * (1 + m/2)); python floats, no table."""
    s, e, m = (code >> 3) & 1, (code >> 1) & 3, code & 1
    mag = m * 0.5 if e == 0 else 2.0 ** (e - 1) * (1 + m / 2)
    return -mag if s else mag


def reference_decode(blocks, scales):
    """Element-by-element float64 decode with math.ldexp: low nibble -> even position."""
    out = np.empty(blocks.shape[:-1] + (32,))
    for idx in np.ndindex(*blocks.shape[:-1]):
        for j in range(16):
            byte = int(blocks[idx + (j,)])
            out[idx + (2 * j,)] = math.ldexp(e2m1(byte & 0xF), int(scales[idx]) - 127)
            out[idx + (2 * j + 1,)] = math.ldexp(e2m1(byte >> 4), int(scales[idx]) - 127)
    return out.reshape(blocks.shape[:-2] + (-1,))


def pack(codes):
    """Codes [..., 32k] (0..15) -> bytes [..., k, 16], written out per byte: element 2j in the low nibble."""
    codes = np.asarray(codes, dtype=np.int64).reshape(codes.shape[:-1] + (-1, 32))
    out = np.zeros(codes.shape[:-1] + (16,), dtype=np.uint8)
    for j in range(16):
        out[..., j] = codes[..., 2 * j] + 16 * codes[..., 2 * j + 1]
    return out


def same(a, b):
    """Equal values and equal sign bits (so -0 vs +0 counts)."""
    return np.array_equal(a, b) and np.array_equal(np.signbit(a), np.signbit(b))


ALL_BYTES = np.arange(256, dtype=np.uint8).reshape(16, 16)  # G=16 blocks, every byte value once


def test_fp4_table_matches_bit_formula():
    assert FP4_VALUES.dtype == np.float32 and FP4_VALUES.shape == (16,)
    assert same(FP4_VALUES, np.array([e2m1(c) for c in range(16)], dtype=np.float32))


def test_decode_every_byte_at_scale_127():
    w = mxfp4_decode(ALL_BYTES, np.full(16, 127, np.uint8))
    assert w.shape == (512,) and w.dtype == np.float32
    want = [v for b in range(256) for v in (e2m1(b & 0xF), e2m1(b >> 4))]  # even slot = low nibble
    assert same(w, np.array(want, dtype=np.float32))
    # byte 0x71 = 0111_0001: low nibble 0x1 -> +0.5 at the even slot, high nibble 0x7 -> +6 at the odd slot
    assert w[2 * 0x71] == 0.5 and w[2 * 0x71 + 1] == 6.0


def test_decode_every_byte_at_extreme_scales_float64_exact():
    for s in (0, 1, 127, 253, 254):
        w = mxfp4_decode(ALL_BYTES, np.full(16, s, np.uint8), dtype=np.float64)
        assert w.dtype == np.float64
        assert same(w, reference_decode(ALL_BYTES, np.full(16, s)))


@pytest.mark.parametrize("s", [0, 1, 127, 252])
def test_float32_exact_up_to_scale_252(s):
    w = mxfp4_decode(ALL_BYTES, np.full(16, s, np.uint8))
    ref = reference_decode(ALL_BYTES, np.full(16, s))
    assert np.all(ref.astype(np.float32) == ref)  # every value is representable in float32 ...
    assert same(w, ref.astype(np.float32))  # ... and decoded exactly


def test_float32_scale_0_keeps_subnormals():
    w = mxfp4_decode(np.full((1, 16), 0x11, np.uint8), np.zeros(1, np.uint8))  # all codes 0x1 = +0.5
    assert np.all(w == np.float32(2.0**-128))  # 0.5 * 2**-127: below float32's smallest normal, not flushed
    assert 0 < w[0] < np.finfo(np.float32).smallest_normal


@pytest.mark.parametrize("s", [253, 254])
def test_float32_overflows_to_signed_inf_at_scales_253_254(s):
    assert 6 * 2.0**127 > F32_MAX  # why: the top scale times the top code does not fit float32
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # documented behaviour, so no overflow RuntimeWarning either
        w = mxfp4_decode(ALL_BYTES, np.full(16, s, np.uint8))
        assert same(w, mxfp4_decode_fast(ALL_BYTES, np.full(16, s, np.uint8)))
    ref = reference_decode(ALL_BYTES, np.full(16, s))
    fits = np.abs(ref) < 2.0**128  # float32 holds every E2M1 multiple below 2**128
    assert same(w[fits], ref[fits].astype(np.float32))
    assert (~fits).any() and np.all(np.isinf(w[~fits])) and same(np.sign(w[~fits]), np.sign(ref[~fits]))
    if s == 254:  # |code| >= 2 overflows: 2 * 2**127 = 2**128
        assert np.array_equal(~fits, np.abs(ref / 2.0**127) >= 2)


def test_bfloat16_output_is_cast_of_float32():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    rng = np.random.default_rng(5)
    blocks, scales = rng.integers(0, 256, (3, 4, 16), dtype=np.uint8), rng.integers(100, 150, (3, 4), dtype=np.uint8)
    w = mxfp4_decode(blocks, scales, dtype=ml_dtypes.bfloat16)
    assert w.dtype == ml_dtypes.bfloat16
    assert same(w.astype(np.float64), reference_decode(blocks, scales))  # E2M1 * 2**k is exact in bfloat16


def test_nan_scale_rejected():
    scales = np.full((2, 3), 127, np.uint8)
    scales[1, 2] = 255
    blocks = np.zeros((2, 3, 16), np.uint8)
    with pytest.raises(CheckpointError, match=r"mlp1_weight.*NaN") as err:
        mxfp4_decode(blocks, scales, name="mlp1_weight")
    assert "(1, 2)" in str(err.value)  # says where
    with pytest.raises(CheckpointError, match="NaN"):
        mxfp4_decode_fast(blocks, scales)


def test_shape_mismatch_rejected():
    with pytest.raises(CheckpointError, match=r"w1.*\(2, 3, 16\).*\(2, 4\)"):
        mxfp4_decode(np.zeros((2, 3, 16), np.uint8), np.zeros((2, 4), np.uint8), name="w1")
    with pytest.raises(CheckpointError, match=r"w1.*\[\.\.\., G, 16\].*\(2, 3, 8\)"):
        mxfp4_decode(np.zeros((2, 3, 8), np.uint8), np.zeros((2, 3), np.uint8), name="w1")
    with pytest.raises(CheckpointError, match="w1"):
        mxfp4_decode(np.zeros(16, np.uint8), np.zeros((), np.uint8), name="w1")


@pytest.mark.parametrize("bdt,sdt", [(np.int8, np.uint8), (np.uint8, np.int32), (np.float32, np.uint8)])
def test_wrong_dtype_rejected(bdt, sdt):
    with pytest.raises(CheckpointError, match=rf"w2.*uint8.*{np.dtype(bdt).name}.*{np.dtype(sdt).name}"):
        mxfp4_decode(np.zeros((2, 16), bdt), np.zeros(2, sdt), name="w2")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_decode_matches_simple_and_reference(dtype):
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (3, 5, 4, 16), dtype=np.uint8)
    scales = rng.integers(0, 255, (3, 5, 4), dtype=np.uint8)  # 0..254, incl. float32 overflow region
    w = mxfp4_decode(blocks, scales, dtype=dtype)
    assert w.shape == (3, 5, 128) and w.dtype == dtype
    assert same(w, mxfp4_decode_fast(blocks, scales, dtype=dtype))
    if dtype == np.float64:
        assert same(w, reference_decode(blocks, scales))


def test_decode_matches_transformers():
    pytest.importorskip("torch")
    try:
        from transformers.integrations.mxfp4 import convert_moe_packed_tensors
    except Exception as e:  # not installed, or its import chain broken: nothing to compare with
        unavailable(f"transformers mxfp4 not importable: {e}")
    import torch

    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, (2, 3, 4, 16), dtype=np.uint8)  # [E, out, G, 16]
    scales = rng.integers(115, 136, (2, 3, 4), dtype=np.uint8)
    theirs = convert_moe_packed_tensors(torch.from_numpy(blocks), torch.from_numpy(scales), dtype=torch.float32)
    assert tuple(theirs.shape) == (2, 128, 3)  # transformers hands back [E, in, out]
    assert same(mxfp4_decode(blocks, scales), theirs.numpy().transpose(0, 2, 1))


@pytest.mark.parametrize("dtype,top", [(np.float64, 254), (np.float32, 252)])
def test_encode_decode_identity_on_representable_values(dtype, top):
    rng = np.random.default_rng(2)
    codes = rng.integers(0, 16, (4, 6, 64))
    scales = rng.integers(0, top + 1, (4, 6, 2)).astype(np.uint8)
    w = mxfp4_decode(pack(codes), scales, dtype=dtype)
    assert same(mxfp4_decode(*mxfp4_encode(w), dtype=dtype), w)

    # with a +-6 in every block the scale is forced, so the bytes themselves must come back
    codes[..., ::32] = rng.choice([0x7, 0xF], size=codes[..., ::32].shape)
    blocks = pack(codes)
    b2, s2 = mxfp4_encode(mxfp4_decode(blocks, scales, dtype=dtype))
    assert b2.dtype == np.uint8 and s2.dtype == np.uint8
    assert np.array_equal(b2, blocks) and np.array_equal(s2, scales)


def test_encode_rounds_to_nearest_ties_to_even():
    # scale forced to 2**0 by the 6; then each value's expected E2M1 result, hand-derived
    x = [6, 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 0.26, 0.74, 2.49, 2.51, 4.99, 5.01, 0.1, 1.1]
    want = [6, 0.0, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 0.5, 0.5, 2.0, 3.0, 4.0, 6.0, 0.0, 1.0]
    w = np.array(x + [-v for v in x])
    blocks, scales = mxfp4_encode(w)
    assert scales.tolist() == [127]
    assert same(mxfp4_decode(blocks, scales, dtype=np.float64), np.array(want + [-v for v in want]))
    assert blocks[0, 0] == 0x07  # element 0 (6 -> code 7) is the low nibble, element 1 (0.25 -> +0) the high


def test_encode_scale_choice_edges():
    def scale_of(block):
        return int(mxfp4_encode(np.asarray(block, dtype=np.float64))[1][0])

    base = np.zeros(32)
    for k in (-120, -3, 0, 5, 120):
        base[7] = 6 * 2.0**k
        assert scale_of(base) == 127 + k  # max exactly 6 * 2**k fits 2**k
        base[7] = np.nextafter(6 * 2.0**k, np.inf)
        assert scale_of(base) == 128 + k  # a hair above needs the next power
        base[7] = 3 * 2.0**k
        assert scale_of(base) == 126 + k  # 3 * 2**k = 6 * 2**(k-1)
    assert scale_of(np.zeros(32)) == 127  # all-zero block: factor 1
    assert same(mxfp4_decode(*mxfp4_encode(-np.zeros(32))), -np.zeros(32, np.float32))  # -0 keeps its sign
    base[7] = 1e-300
    assert scale_of(base) == 0  # clamped at the smallest scale; the value rounds to 0
    base[7] = -1e300
    b, s = mxfp4_encode(base)
    assert s[0] == 254 and mxfp4_decode(b, s, dtype=np.float64)[7] == -6 * 2.0**127  # saturates


@pytest.mark.parametrize("mag", [1e-30, 1e-3, 1.0, 37.0, 1e4, 1e30])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_quantisation_error_bound(mag, dtype):
    rng = np.random.default_rng(3)
    w = (rng.standard_normal((16, 256)) * mag).astype(dtype)
    blocks, scales = mxfp4_encode(w)
    assert blocks.shape == (16, 8, 16) and scales.shape == (16, 8)
    dq = mxfp4_decode(blocks, scales, dtype=dtype).astype(np.float64)
    wb, dqb = w.astype(np.float64).reshape(16, 8, 32), dq.reshape(16, 8, 32)
    step = 2.0 ** (scales.astype(np.float64) - 127)[..., None]  # [16, 8, 1] the block's 2**e
    x = np.abs(wb) / step  # in E2M1 units
    amax = x.max(axis=-1)
    assert np.all((amax > 3) & (amax <= 6))  # the smallest power of two that fits max|w| into [0, 6]
    # nearest rounding: half the E2M1 gap around x: 0.5 gaps on [0, 2], 1 on [2, 4], 2 on [4, 6]
    half_gap = np.where(x <= 2, 0.25, np.where(x <= 4, 0.5, 1.0))
    err = np.abs(wb - dqb)
    assert np.all(err <= half_gap * step)
    assert np.all(err <= 1.0 * step)
    rel_rms = np.sqrt((err**2).mean(-1) / (wb**2).mean(-1))
    assert rel_rms.max() < 0.2 and 0.05 < np.median(rel_rms) < 0.15


def test_encode_rejects_bad_k_and_non_finite():
    with pytest.raises(InputError, match=r"mlp2_weight.*K=48"):
        mxfp4_encode(np.zeros((2, 48)), name="mlp2_weight")
    with pytest.raises(InputError, match="w0"):
        mxfp4_encode(np.float32(1.0), name="w0")
    for bad in (np.nan, np.inf, -np.inf):
        w = np.zeros((2, 32), np.float32)
        w[1, 3] = bad
        with pytest.raises(InputError, match=r"mlp2_weight.*non-finite"):
            mxfp4_encode(w, name="mlp2_weight")


def test_decode_readonly_memmap_selection(tmp_path):
    rng = np.random.default_rng(4)
    blocks = rng.integers(0, 256, (4, 3, 2, 16), dtype=np.uint8)  # [E, out, G, 16]
    scales = rng.integers(110, 140, (4, 3, 2), dtype=np.uint8)
    scales[1, 0, 0] = 255  # a corrupt expert that the selection must not touch
    np.save(tmp_path / "b.npy", blocks)
    np.save(tmp_path / "s.npy", scales)
    bm, sm = np.load(tmp_path / "b.npy", mmap_mode="r"), np.load(tmp_path / "s.npy", mmap_mode="r")
    assert not bm.flags.writeable
    ids = [2, 0]
    w = mxfp4_decode(bm[ids], sm[ids], name="experts")
    assert w.shape == (2, 3, 64)
    assert same(w, reference_decode(blocks[ids], scales[ids]).astype(np.float32))
    with pytest.raises(CheckpointError, match="experts"):  # the whole memmap does contain the NaN scale
        mxfp4_decode(bm, sm, name="experts")
    assert same(mxfp4_decode(bm[3], sm[3]), reference_decode(blocks[3], scales[3]).astype(np.float32))


def test_storage_bytes():
    assert mxfp4_bytes(32) == 17
    n = 32 * 5760 * 2880  # gpt-oss-20b mlp1 per layer: blocks [32, 5760, 90, 16], scales [32, 5760, 90]
    assert mxfp4_bytes(n) == 32 * 5760 * 90 * 16 + 32 * 5760 * 90 == 265_420_800 + 16_588_800
    assert mxfp4_bytes(n) * 8 / n == 4.25
    with pytest.raises(InputError, match="n_values"):
        mxfp4_bytes(33)


# ---- the chunked decoder and mxfp4_matmul ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_chunked_decode_is_bit_identical_across_chunk_boundaries(monkeypatch, dtype):
    monkeypatch.setattr(fast_mxfp4, "_CHUNK_BYTES", 3 * 64 * np.dtype(dtype).itemsize)  # 3 rows of K=64 per chunk
    rng = np.random.default_rng(6)
    blocks = rng.integers(0, 256, (2, 5, 2, 16), dtype=np.uint8)  # 10 rows: chunks of 3, 3, 3, 1
    scales = rng.integers(0, 255, (2, 5, 2), dtype=np.uint8)  # every scale incl. float32 subnormals and overflow
    scales[0, 0] = [0, 254]
    assert same(mxfp4_decode(blocks, scales, dtype=dtype), mxfp4_decode_fast(blocks, scales, dtype=dtype))


def random_matrix(rng, R, G, lo=110, hi=140):
    return rng.integers(0, 256, (R, G, 16), dtype=np.uint8), rng.integers(lo, hi, (R, G), dtype=np.uint8)


def matmul_bound(x, blocks, scales, dtype):
    """|x @ W.T| summed in absolute value, times the dtype's epsilon and the summation length: a float rounding bound
    for any summation order."""
    w = np.abs(mxfp4_decode(blocks, scales, np.float64))
    return (np.abs(np.atleast_2d(x)).astype(np.float64) @ w.T) * np.finfo(dtype).eps * w.shape[-1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("T", [1, 2, 7])
@pytest.mark.parametrize("threads", [1, 2])
def test_matmul_equals_decode_then_matmul_to_rounding(monkeypatch, dtype, T, threads):
    monkeypatch.setattr(fast_mxfp4, "_CHUNK_BYTES", 5 * 128 * np.dtype(dtype).itemsize)  # 5-row chunks, ragged last one
    rng = np.random.default_rng(7 + T)
    blocks, scales = random_matrix(rng, 23, 4)  # W [23, 128]
    x = rng.standard_normal((T, 128)).astype(dtype)
    y = mxfp4_matmul(x, blocks, scales, threads=threads)
    assert y.shape == (T, 23) and y.dtype == dtype
    truth = x.astype(np.float64) @ mxfp4_decode(blocks, scales, np.float64).T  # exact products, float64 sums
    assert np.all(np.abs(y - truth) <= matmul_bound(x, blocks, scales, dtype))
    route = x @ mxfp4_decode(blocks, scales, dtype).T  # the decode-then-BLAS route it replaces
    assert np.all(np.abs(y - route) <= 2 * matmul_bound(x, blocks, scales, dtype))


def test_matmul_one_token_vector_and_row_forms_agree():
    rng = np.random.default_rng(8)
    blocks, scales = random_matrix(rng, 40, 3)
    x = rng.standard_normal(96).astype(np.float32)
    y = mxfp4_matmul(x, blocks, scales)
    assert y.shape == (40,)
    assert np.array_equal(mxfp4_matmul(x[None], blocks, scales), y[None])
    assert np.array_equal(mxfp4_matmul(x, blocks, scales, threads=2), y)  # rows split, same per-row arithmetic


def test_matmul_several_tokens_is_blas_on_exactly_decoded_rows():
    # with one chunk, the several-token route IS np.matmul on mxfp4_decode's rows: bit for bit
    rng = np.random.default_rng(9)
    blocks, scales = random_matrix(rng, 16, 2, lo=0, hi=253)
    x = rng.standard_normal((3, 64))
    assert same(mxfp4_matmul(x, blocks, scales, threads=1), (mxfp4_decode(blocks, scales, np.float64) @ x.T).T)


def test_matmul_blockwise_one_token_exact_when_sums_are_exact():
    # small integers times E2M1 values times 2**-2..2**2: every product and partial sum is a multiple of 2**-3 below
    # 2**15 (18 significant bits), exact in float32, so any summation order gives the same bits
    rng = np.random.default_rng(10)
    blocks, scales = random_matrix(rng, 30, 4, lo=125, hi=130)
    x = rng.integers(-8, 9, 128).astype(np.float32)
    assert same(mxfp4_matmul(x, blocks, scales), mxfp4_decode(blocks, scales).astype(np.float64) @ x)


def test_matmul_extreme_scales_float64():
    rng = np.random.default_rng(11)
    blocks, scales = random_matrix(rng, 6, 2, lo=0, hi=255)
    scales[:, 0], scales[:, 1] = 0, 254  # 2**-127 next to 2**127 in one row: float64 holds both exactly
    x = rng.standard_normal((1, 64))
    truth = (mxfp4_decode(blocks, scales, np.float64) @ x[0])[None]
    np.testing.assert_allclose(mxfp4_matmul(x, blocks, scales), truth, rtol=1e-14)


def test_matmul_rejects_bad_input():
    blocks, scales = np.zeros((4, 2, 16), np.uint8), np.full((4, 2), 127, np.uint8)
    with pytest.raises(InputError, match=r"up.*\[T, 64\].*\(3, 32\)"):
        mxfp4_matmul(np.zeros((3, 32), np.float32), blocks, scales, name="up")
    with pytest.raises(InputError, match="one matrix"):
        mxfp4_matmul(np.zeros(64, np.float32), blocks[None], scales[None])
    scales[2, 1] = 255
    with pytest.raises(CheckpointError, match="NaN"):
        mxfp4_matmul(np.zeros(64, np.float32), blocks, scales)


@pytest.mark.parametrize("threads", [1, 2])
def test_matmul_many_equals_one_product_at_a_time(monkeypatch, threads):
    # one queue of jobs for several products (as moe() sends a layer's experts): each product must come out exactly
    # as mxfp4_matmul computes it alone, whatever the mix of shapes, token counts and dtypes in the queue
    monkeypatch.setattr(fast_mxfp4, "_CHUNK_BYTES", 4 * 96 * 8)  # a few rows per chunk: many jobs, ragged ends
    rng = np.random.default_rng(13)
    mats = [random_matrix(rng, R, G) for R, G in [(17, 3), (9, 3), (17, 2), (5, 1)]]
    xs = [rng.standard_normal(96).astype(np.float32), rng.standard_normal((1, 96)).astype(np.float32),
          rng.standard_normal((3, 64)), rng.standard_normal((2, 32)).astype(np.float16)]
    ys = mxfp4_matmul_many(xs, [b for b, _ in mats], [s for _, s in mats], threads=threads)
    for x, (b, s), y in zip(xs, mats, ys):
        alone = mxfp4_matmul(x, b, s, threads=1)
        assert y.shape == alone.shape and y.dtype == alone.dtype and np.array_equal(y, alone)


def test_matmul_many_names_the_bad_product():
    blocks, scales = np.zeros((4, 2, 16), np.uint8), np.full((4, 2), 127, np.uint8)
    bad = scales.copy()
    bad[1, 0] = 255
    with pytest.raises(CheckpointError, match=r"experts\[7\].*255"):
        mxfp4_matmul_many([np.zeros(64, np.float32)] * 2, [blocks, blocks], [scales, bad], ["experts[3]", "experts[7]"])
    with pytest.raises(InputError, match="2 inputs, 1 blocks"):
        mxfp4_matmul_many([np.zeros(64, np.float32)] * 2, [blocks], [scales])


def test_matmul_other_dtypes_take_the_reference_route():
    rng = np.random.default_rng(12)
    blocks, scales = random_matrix(rng, 5, 1, lo=125, hi=129)
    x = rng.standard_normal((2, 32)).astype(np.float16)
    y = mxfp4_matmul(x, blocks, scales)
    assert y.dtype == np.float16 and np.array_equal(y, x @ mxfp4_decode(blocks, scales, np.float16).T)
