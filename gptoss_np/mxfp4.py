"""MXFP4 (OCP microscaling FP4) weights as stored in gpt-oss checkpoints: the format's definition (decode), our
encoder, and storage sizes. The fast decode and x @ W.T straight from the packed bytes live in
gptoss_np/fast/mxfp4_matmul.py (tests/test_mxfp4.py keeps them equal to the definitions here).

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
  * other dtypes (bfloat16, float16) are a cast of the exact value: exact where representable, else +-inf / 0.

Encode rounding (this project's rule; the format fixes only the decode, and the OCP MX spec v1.0 suggests
e = floor(log2(max|w|)) - 2 with saturation at 6 instead): the block scale is the smallest power of two with
max|w| <= 6 * 2**e, i.e.
e = ceil(log2(max|w| / 6)) (computed exactly via frexp), clamped to the E8M0 range [-127, 127] (bytes 0..254);
each w / 2**e is then rounded to the nearest E2M1 magnitude with ties to the even mantissa bit (IEEE
roundTiesToEven, IEEE 754's default; this encoder's choice, like the scale rule), e.g. 0.25 -> 0, 0.75 -> 1, 2.5 -> 2, 5 -> 4. The sign bit
is np.signbit(w), so -0.0 and small negatives that round to zero keep code 0x8 (-0). An all-zero block gets
scale 127 (factor 1); any scale would decode it to exact zeros. Magnitudes above 6 * 2**127 (only reachable
from float64 input) saturate to +-6 * 2**127.
"""

import numpy as np

from .errors import CheckpointError, InputError

# E2M1 code -> value; index bit 3 is the sign, so codes 0x8..0xF are the negatives of 0x0..0x7.
FP4_VALUES = np.array(
    [+0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0],
    dtype=np.float32,
)

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


def mxfp4_decode(blocks, scales, dtype=np.float32, name="mxfp4 tensor"):
    """W[..., 32g+i] = FP4_VALUES[nibble i%2 of byte i//2] * 2**(s_g - 127): [..., G, 16], [..., G] -> [..., G*32].
    The definition, computed plainly: split the nibbles, look them up, interleave, ldexp in float64 (exact), cast."""
    blocks, scales = _check_mxfp4(blocks, scales, name)
    lo = FP4_VALUES[blocks & 0x0F].astype(np.float64)  # [..., G, 16] even elements
    hi = FP4_VALUES[blocks >> 4].astype(np.float64)  # [..., G, 16] odd elements
    w = np.empty(blocks.shape[:-1] + (_BLOCK,))  # [..., G, 32]
    w[..., 0::2] = lo
    w[..., 1::2] = hi
    w = np.ldexp(w, scales.astype(np.int64)[..., None] - 127)  # every product is exact in float64
    with np.errstate(over="ignore"):  # the cast gives +-inf where the dtype cannot hold the value (see above)
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
