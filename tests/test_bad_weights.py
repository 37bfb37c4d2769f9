"""Bad values in well-formed files: NaN or +-inf in a float tensor, MXFP4 scales whose decoded values overflow, and
experts of one layer stored in different dtypes. Each must fail at load, before any forward, in the NumPy oracle and
in the torch twin, with a CheckpointError naming the file, the stored tensor, the parameter it is read as and what
was expected; never as NaN logits in the one generation that happens to read the bad value.

The expected values come from the format definitions (IEEE 754 via numpy / ml_dtypes, E8M0 = 2**(s - 127), E2M1's
largest magnitude 6.0), not from the loader. A scale of 255 (NaN) is tested in test_bad_input.py.
"""

import itertools
import os

import ml_dtypes
import numpy as np
import pytest

pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

import gptoss_np  # noqa: E402
import gptoss_torch  # noqa: E402
from checkpoints import SINGLE, build_tiny, clone, edit_config, edit_tensors, quantize_experts, read_tensors, \
    write_tensors  # noqa: E402
from gptoss_np import CheckpointError  # noqa: E402
from gptoss_np.formats.loader import _FINITE_BITS, MAX_FINITE_SCALE  # noqa: E402

DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": ml_dtypes.bfloat16, "F64": np.float64}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """layout -> a good tiny checkpoint; 'mxfp4' is gpt_oss with its experts as MXFP4 blocks and scales."""
    root = tmp_path_factory.mktemp("tiny")
    out = {layout: build_tiny(layout, root / layout) for layout in ("gpt2", "gpt_oss", "qwen3_moe")}
    packed = read_tensors(out["gpt_oss"])
    quantize_experts(packed)
    out["mxfp4"] = clone(out["gpt_oss"], root / "mxfp4")
    write_tensors(out["mxfp4"], packed)
    edit_config(out["mxfp4"], quantization_config={"quant_method": "mxfp4"})
    return out


@pytest.fixture
def copy_of(tiny, tmp_path):
    counter = itertools.count()
    return lambda layout: clone(tiny[layout], tmp_path / f"ckpt{next(counter)}")


LOADERS = {"numpy": lambda d, dtype: gptoss_np.load_model(d, dtype=dtype, progress=False),
           "torch": lambda d, dtype: gptoss_torch.load_model(d, device="cpu", dtype=dtype, progress=False)}


def both_refuse(directory, *fragments, dtype="float32"):
    for name, load in LOADERS.items():
        with pytest.raises(CheckpointError) as info:
            load(directory, dtype)
        for frag in fragments:
            assert str(frag) in str(info.value), f"{name}: {frag!r} not in error message: {info.value}"


def both_load(directory):
    for load in LOADERS.values():
        load(directory, "float32")


def set_value(directory, key, index, value, dtype=None):
    """Store tensor `key` (converted to `dtype` if given) with `value` written at `index` (value may be a bit
    pattern given as an integer of the dtype's width, for NaNs with the sign bit set)."""
    def edit(t):
        a = t[key].astype(DTYPES[dtype]) if dtype else t[key].copy()
        if isinstance(value, int):
            a.view(f"u{a.itemsize}")[index] = value
        else:
            a[index] = value
        t[key] = a

    edit_tensors(directory, edit)


# ---- NaN and +-inf ---------------------------------------------------------------------------------------------

NEG_NAN = {"F32": 0xFFC0_0000, "F16": 0xFE00, "BF16": 0xFFC0, "F64": 0xFFF8_0000_0000_0000}  # sign bit set


@pytest.mark.parametrize("dtype", list(DTYPES))
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-nan"])
def test_nonfinite_value_named_in_every_float_dtype(copy_of, dtype, value):
    d = copy_of("gpt_oss")
    key = "model.layers.1.self_attn.sinks"  # [n_heads] = [4]
    set_value(d, key, 2, NEG_NAN[dtype] if value == "-nan" else float(value), dtype)
    both_refuse(d, os.path.join(d, SINGLE), repr(key), "layers.1.attn.sinks", "1 NaN/inf", "at index (2,)",
                "expected finite weights")


@pytest.mark.parametrize("layout, key, index, dtype, canonical", [
    # fused q | k | v, Conv1D [D, 3D]: column 70 is in k; all three parameters read the tensor
    ("gpt2", "transformer.h.0.attn.c_attn.weight", (3, 70), None, "layers.0.attn.k.weight"),
    ("gpt2", "transformer.wpe.weight", (31, 63), "F16", "pos_embed.weight"),
    # the NumPy model converts only the embedding rows a prompt looks up: row 7 would poison token 7 alone
    ("gpt_oss", "model.embed_tokens.weight", (7, 3), "BF16", "embed.weight"),
    # float experts stay mapped and are read only for routed experts: expert 3 of 4
    ("gpt_oss", "model.layers.0.mlp.experts.down_proj", (3, 5, 1), None, "layers.0.mlp.experts.down.weight"),
    ("qwen3_moe", "model.layers.1.mlp.experts.3.up_proj.weight", (0, 0), None, "layers.1.mlp.experts.up.weight"),
    ("qwen3_moe", "lm_head.weight", (99, 63), "BF16", "unembed.weight"),
    ("mxfp4", "model.layers.1.mlp.experts.down_proj_bias", (2, 10), None, "layers.1.mlp.experts.down.bias"),
])
def test_nan_anywhere_is_named(copy_of, layout, key, index, dtype, canonical):
    d = copy_of(layout)
    set_value(d, key, index, np.nan, dtype)
    both_refuse(d, os.path.join(d, SINGLE), repr(key), canonical, f"at index {index}")


def test_many_nonfinite_values_counted(copy_of):
    d = copy_of("gpt_oss")
    key = "model.layers.0.self_attn.q_proj.weight"  # [64, 64]

    def edit(t):
        t[key] = t[key].copy()
        t[key][10:, 5] = np.inf  # 54 values, the first at (10, 5)

    edit_tensors(d, edit)
    both_refuse(d, repr(key), "54 NaN/inf", "at index (10, 5)")


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_finite_bit_patterns_from_the_format(dtype):
    """The scan's thresholds are the bit patterns of +max (read signed) and -max (read unsigned)."""
    signed, top, unsigned, utop = _FINITE_BITS[dtype]
    largest = np.array([ml_dtypes.finfo(DTYPES[dtype]).max], DTYPES[dtype])
    assert largest.view(signed)[0] == top and (-largest).view(unsigned)[0] == utop
    assert np.array([top + 1], signed).view(DTYPES[dtype])[0] == np.inf
    assert np.array([utop + 1], unsigned).view(DTYPES[dtype])[0] == -np.inf


@pytest.mark.parametrize("dtype", list(DTYPES))
def test_extreme_finite_values_load(copy_of, dtype):
    """No false alarm at the edges: the largest finite values (those float32 holds, for float64), the smallest
    subnormal, -0.0."""
    d = copy_of("gpt_oss")
    key = "model.layers.0.self_attn.o_proj.bias"  # [64]
    info = ml_dtypes.finfo(DTYPES["F32" if dtype == "F64" else dtype])
    edges = [info.max, -info.max, ml_dtypes.finfo(DTYPES[dtype]).smallest_subnormal, -info.smallest_subnormal, -0.0]

    def edit(t):
        a = t[key].astype(DTYPES[dtype])
        a[:len(edges)] = edges
        assert np.isfinite(a.astype(np.float64)).all()
        t[key] = a

    edit_tensors(d, edit)
    both_load(d)


@pytest.mark.parametrize("stored, value, dtype, target", [
    ("F64", 1e300, "float32", "float32"),
    ("F32", 1e5, "float16", "float16"),  # float16 tops out at 65504
    ("F32", 3.4e38, "bfloat16", "bfloat16"),  # above bfloat16's 3.3895e38
])
def test_finite_value_beyond_the_compute_dtype(copy_of, stored, value, dtype, target):
    """Finite on disk, inf once converted to the compute dtype: refused where the loaders convert."""
    d = copy_of("gpt_oss")
    key = "model.layers.0.self_attn.q_proj.weight"
    set_value(d, key, (1, 2), value, stored)
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.float64(value).astype(ml_dtypes.bfloat16 if target == "bfloat16" else target))
    both_refuse(d, "layers.0.attn.q.weight", f"beyond {target}'s range", dtype=dtype)


# ---- MXFP4 scales ----------------------------------------------------------------------------------------------

def test_max_finite_scale_from_the_format():
    """E8M0 s scales by 2**(s - 127); E2M1's largest magnitude is 6.0: the largest s whose 6.0 * 2**(s - 127)
    is finite in float32 and in bfloat16, computed exactly in float64 and cast."""
    with np.errstate(over="ignore"):
        finite = [s for s in range(255)
                  if np.isfinite(np.float32(np.ldexp(6.0, s - 127)))
                  and np.isfinite(np.float64(ml_dtypes.bfloat16(np.ldexp(6.0, s - 127))))]
    assert max(finite) == MAX_FINITE_SCALE == 252
    assert finite == list(range(253))


@pytest.mark.parametrize("scale", [253, 254])
def test_mxfp4_scale_that_overflows(copy_of, scale):
    d = copy_of("mxfp4")
    key = "model.layers.1.mlp.experts.gate_up_proj_scales"  # [E, 2F, D/32] = (4, 64, 2)
    set_value(d, key, (3, 10, 1), scale)
    both_refuse(d, os.path.join(d, SINGLE), repr(key), "layers.1.mlp.experts.up.scales", f"first {scale}",
                "at index (3, 10, 1)", "expected exponents 0..252", "inf")


def test_mxfp4_largest_finite_scale_loads(copy_of):
    d = copy_of("mxfp4")
    set_value(d, "model.layers.0.mlp.experts.down_proj_scales", (0, 0, 0), MAX_FINITE_SCALE)
    both_load(d)


# ---- one dtype per expert stack --------------------------------------------------------------------------------

@pytest.mark.parametrize("dtypes, bad", [
    ({"experts.1.gate_proj": np.float16, "experts.1.up_proj": ml_dtypes.bfloat16}, "experts.1.gate_proj"),
    ({"experts.2.up_proj": ml_dtypes.bfloat16}, "experts.2.up_proj"),  # promotable, but not one stack dtype
])
def test_mixed_dtypes_within_experts_fail_at_load(copy_of, dtypes, bad):
    """Qwen3 stores each expert's gate and up separately and the loader stacks [gate | up]: F16 with BF16 has no
    common dtype, so before this check the NumPy model failed only when a token was routed to expert 1."""
    d = copy_of("qwen3_moe")

    def edit(t):
        for part, dt in dtypes.items():
            key = f"model.layers.0.mlp.{part}.weight"
            t[key] = t[key].astype(dt)

    edit_tensors(d, edit)
    both_refuse(d, f"'model.layers.0.mlp.{bad}.weight'", "expected F32", "one dtype for all experts")
