"""One config object for every model: GPT-2 XL, each chapter's step, gpt-oss-20b/120b and Qwen3-30B-A3B.

Every architectural feature is a field (a switch); the math modules read only these fields. Presets hold the
real published values (sources: the model cards and the Hugging Face / OpenAI config files, see the tests).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .errors import ConfigError
from .params import param_shapes

NORMS = ("layernorm", "rmsnorm")
NORM_CASTS = ("after_weight", "before_weight")
POSITIONS = ("learned", "rope")
ACTIVATIONS = ("gelu_tanh", "swiglu", "swiglu_oss")
FFNS = ("dense", "moe")
ROUTERS = ("topk_softmax", "softmax_topk")
QUANTS = ("none", "mxfp4")
DTYPES = ("float32", "bfloat16")

INT_FIELDS = ("vocab_size", "context_length", "d_model", "n_layers", "n_heads", "n_kv_heads", "head_dim", "ffn_hidden",
              "n_experts", "top_k")
FLOAT_FIELDS = ("norm_eps", "rope_theta", "swiglu_alpha", "swiglu_limit", "dropout")
BOOL_FIELDS = ("qk_norm", "sinks", "attn_bias", "mlp_bias", "tie_embeddings")
ENUMS = {"norm": NORMS, "norm_cast": NORM_CASTS, "positions": POSITIONS, "activation": ACTIVATIONS, "ffn": FFNS,
         "router": ROUTERS, "expert_quant": QUANTS, "weight_dtype": DTYPES}
_finite = (lambda v: v < math.inf)
FLOAT_RANGES = {  # field: (lower test, upper test, what is expected)
    "norm_eps": (lambda v: v > 0, lambda v: v < 1, "a number in (0, 1)"),
    "rope_theta": (lambda v: v > 1, _finite, "a finite number > 1 (RoPE's base wavelength)"),
    "swiglu_alpha": (lambda v: v > 0, _finite, "a finite number > 0"),
    "swiglu_limit": (lambda v: v > 0, _finite, "a finite number > 0"),
    "dropout": (lambda v: v >= 0, lambda v: v < 1, "0 <= p < 1"),
}
# Size bounds, checked before anything per layer is built. No dimension of a real model nears 2**31 - 1, which
# 32-bit indices (safetensors tools, GPU kernels) cannot pass. Parameters: at most 1e13, ten times the largest
# published open-weight models (~1e12), counted as accounting.count_params counts them. Tensors: at most 1e6, each
# expert's matrices counted one by one as Qwen3 stores them (the largest published MoE checkpoints hold ~1e5).
MAX_SIZE = 2**31 - 1
MAX_PARAMS = 10**13
MAX_TENSORS = 10**6


def short_repr(value, limit=200) -> str:
    """repr(value), cut after `limit` characters: a bad value in an error message, never a megabyte of it."""
    r = repr(value)
    return r if len(r) <= limit else r[:limit] + "..."


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_number(v) -> bool:
    """An int or a float, not a bool, not NaN (the range tests refuse infinities)."""
    return _is_int(v) or (isinstance(v, (float, np.floating)) and not math.isnan(v))


class _OneLayer:
    """A config seen with n_layers = 1: param_shapes of it gives one layer's shapes without building them all."""

    n_layers = 1

    def __init__(self, cfg):
        self._cfg = cfg

    def __getattr__(self, name):
        return getattr(self._cfg, name)


def _sizes(cfg) -> tuple:
    """(parameters, tensors, the size field behind most parameters) of `cfg`: param_shapes of one layer, its layer
    entries times n_layers (the total accounting.count_params gives); tensors count each expert's matrices one by
    one (Qwen3's storage)."""
    params = tensors = 0
    by_field = {"n_layers": 0, "vocab_size": 0, "context_length": 0}
    for name, shape in param_shapes(_OneLayer(cfg)).items():
        times = cfg.n_layers if name.startswith("layers.") else 1
        n = times * math.prod(shape)
        params += n
        tensors += times * (shape[0] if ".mlp.experts." in name else 1)
        f = "n_layers" if name.startswith("layers.") else \
            "context_length" if name.startswith("pos_embed") else "vocab_size"
        by_field[f] += n
    return params, tensors, max(by_field, key=by_field.get)


@dataclass(frozen=True)
class YarnScaling:
    """YaRN: stretch RoPE's low frequencies by `factor`, keep the high ones, blend in between (bq.. = beta)."""

    factor: float = 32.0
    original_context: int = 4096  # HF: original_max_position_embeddings
    beta_fast: float = 32.0  # original layout: rope_ntk_beta
    beta_slow: float = 1.0  # original layout: rope_ntk_alpha
    truncate: bool = False  # gpt-oss uses the fractional ramp ends (HF defaults to truncating them)


@dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer, described field by field. `name` is a label and takes no part in `==`."""

    name: str = field(default="custom", compare=False)
    # sizes
    vocab_size: int = 50257
    context_length: int = 1024  # longest sequence the positions support
    d_model: int = 1600
    n_layers: int = 48
    n_heads: int = 25
    n_kv_heads: int = 25  # == n_heads: multi-head attention; fewer: grouped-query attention (GQA)
    head_dim: int = 64  # n_heads * head_dim may differ from d_model (Qwen3)
    ffn_hidden: int = 6400  # dense MLP hidden size, or each expert's hidden size for MoE
    # normalisation
    norm: str = "layernorm"  # layernorm (mean, variance, scale, shift) | rmsnorm (root mean square, scale)
    norm_eps: float = 1e-5
    # RMSNorm in bfloat16/float16 (the torch twin): gpt-oss casts x / rms(x) * w to that dtype once, after the
    # weight | Qwen3 (as Llama) casts x / rms(x) to it first, then multiplies by w in it. Float32/64 math: no change.
    norm_cast: str = "after_weight"
    qk_norm: bool = False  # RMSNorm on each query/key head before RoPE (Qwen3)
    # positions
    positions: str = "learned"  # learned absolute table | rope (rotary, half-split)
    rope_theta: float = 10000.0
    rope_scaling: Optional[YarnScaling] = None
    # attention
    layer_windows: tuple = ()  # one entry per layer: None = full causal, N = sliding window of N keys incl. self
    sinks: bool = False  # a learned per-head logit that joins every softmax denominator
    attn_bias: bool = True  # biases on q, k, v and the output projection
    # feed-forward
    activation: str = "gelu_tanh"  # gelu_tanh | swiglu (silu(gate)*up) | swiglu_oss (clamped, alpha 1.702, +1)
    swiglu_alpha: float = 1.702
    swiglu_limit: float = 7.0
    ffn: str = "dense"  # dense | moe
    n_experts: int = 0
    top_k: int = 0
    router: str = "topk_softmax"  # gpt-oss: top-k logits then softmax | Qwen3: softmax then top-k, renormalised
    mlp_bias: bool = True  # biases on the MLP / expert projections and the router
    # embeddings, training-only parts, storage
    tie_embeddings: bool = True  # the output head reuses the token embedding matrix (GPT-2)
    dropout: float = 0.1  # p of dropout at its four sites (embeddings, attention probs, both residual branches)
    weight_dtype: str = "float32"  # how the checkpoint stores the non-quantised weights
    expert_quant: str = "none"  # none | mxfp4 (expert matrices as 4-bit E2M1 codes + one E8M0 scale per 32)

    def __post_init__(self):
        self._check_fields()  # sizes bounded before the per-layer default below is built
        windows = self.layer_windows
        if windows is None or (isinstance(windows, (tuple, list)) and not windows):
            windows = (None,) * self.n_layers  # no pattern given: every layer attends to the whole context
        elif isinstance(windows, (tuple, list)):
            windows = tuple(int(w) if _is_int(w) else w for w in windows)
        object.__setattr__(self, "layer_windows", windows)
        self._check_windows()
        for f in INT_FIELDS:  # numpy integers and integral JSON numbers become plain Python numbers
            object.__setattr__(self, f, int(getattr(self, f)))
        for f in FLOAT_FIELDS:
            object.__setattr__(self, f, float(getattr(self, f)))
        y = self.rope_scaling
        if y is not None:
            object.__setattr__(self, "rope_scaling", YarnScaling(float(y.factor), int(y.original_context),
                                                                 float(y.beta_fast), float(y.beta_slow), y.truncate))

    # ---- checks -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ConfigError naming the field and what was expected: every field's type and range, the sizes
        bounded (MAX_SIZE, MAX_PARAMS, MAX_TENSORS) before anything is allocated, the switches consistent."""
        self._check_fields()
        self._check_windows()

    def _bad(self, field_name, value, expected):
        """A ConfigError for `field_name`; .field, .value and .expected let a config.json reader name its key."""
        err = ConfigError(f"{self.name}: {field_name}={short_repr(value)}; expected {expected}")
        err.field, err.value, err.expected = field_name, value, expected
        raise err

    def _check_fields(self):
        def need(cond, field_name, expected):
            if not cond:
                self._bad(field_name, getattr(self, field_name), expected)

        if not isinstance(self.name, str):
            self._bad("name", self.name, "a str")
        for f in INT_FIELDS:
            v = getattr(self, f)
            least = 0 if f in ("n_experts", "top_k") else 1
            need(_is_int(v) and least <= v <= MAX_SIZE, f, f"an int in {least}..{MAX_SIZE}")
        for f, choices in ENUMS.items():
            need(isinstance(getattr(self, f), str) and getattr(self, f) in choices, f, f"one of {choices}")
        for f in BOOL_FIELDS:
            need(isinstance(getattr(self, f), bool), f, "true or false (a bool)")
        for f, (lo, hi, expected) in FLOAT_RANGES.items():
            v = getattr(self, f)
            need(_is_number(v) and lo(v) and hi(v), f, expected)
        need(self.norm == "rmsnorm" or self.norm_cast == "after_weight", "norm_cast",
             "'after_weight' for norm='layernorm' (LayerNorm scales and shifts before its one cast)")
        need(self.n_heads % self.n_kv_heads == 0, "n_kv_heads", f"a divisor of n_heads={self.n_heads}")
        y = self.rope_scaling
        if self.positions == "rope":
            need(self.head_dim % 2 == 0, "head_dim", "even (RoPE rotates pairs)")
            need(y is None or isinstance(y, YarnScaling), "rope_scaling", "None or a YarnScaling")
        else:
            need(y is None, "rope_scaling", "None for learned positions (YaRN rescales RoPE)")
        if y is not None:
            self._check_yarn(y)
        if self.ffn == "moe":
            need(self.n_experts > 0, "n_experts", "> 0 for ffn='moe'")
            need(0 < self.top_k <= self.n_experts, "top_k", f"in 1..n_experts={self.n_experts}")
        else:
            need(self.n_experts == 0, "n_experts", "0 for a dense ffn")
            need(self.top_k == 0, "top_k", "0 for a dense ffn")
            need(self.expert_quant == "none", "expert_quant", "'none' for a dense ffn (only experts are quantised)")
        if self.expert_quant == "mxfp4":
            need(self.d_model % 32 == 0 and self.ffn_hidden % 32 == 0, "expert_quant",
                 "d_model and ffn_hidden multiples of 32 (MXFP4 blocks of 32 along the input axis)")
        params, tensors, largest = _sizes(self)
        sizes = ", ".join(f"{f}={getattr(self, f)}" for f in INT_FIELDS)
        if params > MAX_PARAMS:
            self._bad(largest, getattr(self, largest), f"a model of at most {MAX_PARAMS:.0e} parameters; {sizes} give "
                      f"{params:.3e} (as accounting.count_params counts them)")
        if tensors > MAX_TENSORS:
            self._bad("n_layers", self.n_layers, f"a model of at most {MAX_TENSORS:.0e} tensors (each expert's "
                      f"matrices counted one by one); {sizes} give {tensors:.3e}")

    def _check_yarn(self, y):
        def need(cond, sub, expected):
            if not cond:
                self._bad(f"rope_scaling.{sub}", getattr(y, sub), expected)

        need(_is_number(y.factor) and 1 <= y.factor <= MAX_SIZE, "factor", f"a number in 1..{MAX_SIZE}")
        need(_is_int(y.original_context) and 1 <= y.original_context <= MAX_SIZE, "original_context",
             f"an int in 1..{MAX_SIZE}")
        for sub in ("beta_fast", "beta_slow"):
            need(_is_number(getattr(y, sub)) and 0 < getattr(y, sub) <= MAX_SIZE, sub, f"a number in (0, {MAX_SIZE}]")
        need(y.beta_fast > y.beta_slow, "beta_fast", f"> beta_slow={y.beta_slow!r} (the ramp runs from beta_fast "
             "rotations down to beta_slow)")
        need(isinstance(y.truncate, bool), "truncate", "true or false (a bool)")

    def _check_windows(self):
        w = self.layer_windows
        if not isinstance(w, tuple):
            self._bad("layer_windows", w, "a list with one entry per layer")
        if len(w) != self.n_layers:
            self._bad("layer_windows", w, f"{self.n_layers} entries (one per layer)")
        if not all(x is None or (_is_int(x) and 1 <= x <= MAX_SIZE) for x in w):
            self._bad("layer_windows", w, f"entries None (full) or an int in 1..{MAX_SIZE} (window)")

    # ---- derived sizes --------------------------------------------------------------------------------------
    @property
    def q_dim(self) -> int:
        return self.n_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.n_kv_heads * self.head_dim

    @property
    def glu(self) -> bool:
        """True when the FFN is gated (two input projections: gate and up/linear)."""
        return self.activation in ("swiglu", "swiglu_oss")

    def replace(self, **changes) -> "ModelConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["layer_windows"] = list(self.layer_windows)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        d = dict(d)
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown ModelConfig field(s) {sorted(unknown)}; expected some of "
                              f"{[f.name for f in dataclasses.fields(cls)]}")
        y = d.get("rope_scaling")
        if isinstance(y, dict):
            unknown = set(y) - {f.name for f in dataclasses.fields(YarnScaling)}
            if unknown:
                raise ConfigError(f"rope_scaling: unknown YarnScaling field(s) {sorted(unknown)}; expected some of "
                                  f"{[f.name for f in dataclasses.fields(YarnScaling)]}")
            d["rope_scaling"] = YarnScaling(**y)
        return cls(**d)


def alternating_windows(n_layers: int, window: int) -> tuple:
    """gpt-oss's pattern as data: even layers (0, 2, ...) slide over `window` keys, odd layers see everything."""
    return tuple(window if i % 2 == 0 else None for i in range(n_layers))


# ---- presets (real published values) ------------------------------------------------------------------------

GPT2_XL = ModelConfig(
    name="gpt2-xl", vocab_size=50257, context_length=1024, d_model=1600, n_layers=48, n_heads=25, n_kv_heads=25,
    head_dim=64, ffn_hidden=6400, norm="layernorm", norm_eps=1e-5, positions="learned", activation="gelu_tanh",
    ffn="dense", attn_bias=True, mlp_bias=True, tie_embeddings=True, dropout=0.1, weight_dtype="float32",
)

GPT_OSS_YARN = YarnScaling(factor=32.0, original_context=4096, beta_fast=32.0, beta_slow=1.0, truncate=False)

GPT_OSS_20B = ModelConfig(
    name="gpt-oss-20b", vocab_size=201088, context_length=131072, d_model=2880, n_layers=24, n_heads=64,
    n_kv_heads=8, head_dim=64, ffn_hidden=2880, norm="rmsnorm", norm_eps=1e-5, positions="rope",
    rope_theta=150000.0, rope_scaling=GPT_OSS_YARN, layer_windows=alternating_windows(24, 128), sinks=True,
    attn_bias=True, activation="swiglu_oss", swiglu_alpha=1.702, swiglu_limit=7.0, ffn="moe", n_experts=32,
    top_k=4, router="topk_softmax", mlp_bias=True, tie_embeddings=False, dropout=0.0, weight_dtype="bfloat16",
    expert_quant="mxfp4",
)

GPT_OSS_120B = GPT_OSS_20B.replace(name="gpt-oss-120b", n_layers=36, n_experts=128,
                                   layer_windows=alternating_windows(36, 128))

QWEN3_30B_A3B = ModelConfig(
    name="qwen3-30b-a3b", vocab_size=151936, context_length=40960, d_model=2048, n_layers=48, n_heads=32,
    n_kv_heads=4, head_dim=128, ffn_hidden=768, norm="rmsnorm", norm_eps=1e-6, norm_cast="before_weight", qk_norm=True,
    positions="rope", rope_theta=1_000_000.0, rope_scaling=None, sinks=False, attn_bias=False, activation="swiglu",
    ffn="moe", n_experts=128, top_k=8, router="softmax_topk", mlp_bias=False, tie_embeddings=False, dropout=0.0,
    weight_dtype="bfloat16", expert_quant="none",
)

PRESETS = {c.name: c for c in (GPT2_XL, GPT_OSS_20B, GPT_OSS_120B, QWEN3_30B_A3B)}


def get_config(name: str) -> ModelConfig:
    """The preset called `name` (gpt2-xl, gpt-oss-20b, gpt-oss-120b, qwen3-30b-a3b) or a chain step name."""
    if name in PRESETS:
        return PRESETS[name]
    steps = dict(chain())
    if name in steps:
        return steps[name]
    raise ConfigError(f"unknown config name {name!r}; expected one of {sorted(PRESETS) + list(steps)}")


# ---- the chain: GPT-2 XL -> gpt-oss-20b, one change per step --------------------------------------------------

CHAIN_STEPS = (
    # (step name, what changed, the fields it sets)
    ("00-gpt2-xl", "GPT-2 XL as released", {}),
    ("01-no-dropout", "drop dropout", dict(dropout=0.0)),
    ("02-rmsnorm", "LayerNorm -> RMSNorm", dict(norm="rmsnorm")),
    ("03-rope", "learned positions -> RoPE + YaRN (context 1024 -> 131072)",
     dict(positions="rope", rope_theta=150000.0, rope_scaling=GPT_OSS_YARN, context_length=131072)),
    # the seed's recipe: a SwiGLU with half the GELU MLP's hidden size has 25 % fewer parameters
    ("04-swiglu", "GELU MLP -> gpt-oss SwiGLU (clamped, hidden 6400 -> 3200)",
     dict(activation="swiglu_oss", ffn_hidden=3200)),
    # 25 query heads only divide into groups of 5 or 25; the MoE step reshapes to gpt-oss's 64/8 heads
    ("05-gqa", "multi-head -> grouped-query attention (25 kv heads -> 5)", dict(n_kv_heads=5)),
    ("06-sliding-window", "every other layer attends to a 128-token window",
     dict(layer_windows=alternating_windows(48, 128))),
    ("07-sinks", "learned attention sinks per head", dict(sinks=True)),
    ("08-moe", "dense -> MoE 32 experts/top-4; gpt-oss shape: d 2880, 24 layers, 64/8 heads, vocab 201k, "
               "untied, bf16",
     dict(ffn="moe", n_experts=32, top_k=4, router="topk_softmax", d_model=2880, n_layers=24, n_heads=64,
          n_kv_heads=8, head_dim=64, ffn_hidden=2880, vocab_size=201088, tie_embeddings=False,
          layer_windows=alternating_windows(24, 128), weight_dtype="bfloat16")),
    ("09-mxfp4", "expert weights stored as MXFP4 (4.25 bits per weight)", dict(expert_quant="mxfp4")),
)


def chain() -> list:
    """The ordered chapter steps [(step_name, config), ...]: GPT-2 XL first, gpt-oss-20b (as a preset) last."""
    out, cfg = [], GPT2_XL
    for step, _what, changes in CHAIN_STEPS:
        cfg = cfg.replace(name=step, **changes)
        out.append((step, cfg))
    return out


def chain_changes() -> dict:
    """Step name -> one line saying what that step changed."""
    return {step: what for step, what, _ in CHAIN_STEPS}


# ---- scaled-down configs ---------------------------------------------------------------------------------------

def scale_down(cfg: ModelConfig, d_model: int = 64, n_layers: int = 2, n_heads: Optional[int] = None,
               head_dim: int = 16, vocab_size: int = 256, n_experts: Optional[int] = None,
               context_length: Optional[int] = None, window: Optional[int] = None) -> ModelConfig:
    """A tiny config with every structural feature of `cfg` kept (norm, positions, GQA ratio, window pattern,
    sinks, biases, qk-norm, activation, MoE routing, quantisation), so any step runs on a CPU in milliseconds."""
    n_heads = n_heads or 4
    n_kv = n_heads if cfg.n_kv_heads == cfg.n_heads else n_heads // 2  # keep "MHA" or "GQA", not the ratio
    if cfg.q_dim != cfg.d_model:  # Qwen3: the attention width differs from the residual width; keep that
        head_dim = 2 * d_model // n_heads
    if cfg.ffn == "dense":
        ffn_hidden = 4 * d_model if not cfg.glu else 2 * d_model
    else:
        ffn_hidden = d_model // 2 if cfg.expert_quant == "none" else max(32, d_model // 2)
    n_exp = (n_experts or min(cfg.n_experts, 8)) if cfg.ffn == "moe" else 0
    top_k = min(cfg.top_k, max(1, n_exp // 2)) if cfg.ffn == "moe" else 0
    # sliding windows shrink with the context so that a short test sequence crosses them
    real_windows = [w for w in cfg.layer_windows if w is not None]
    small_window = window or 4
    windows = []
    for i in range(n_layers):
        src = cfg.layer_windows[i % cfg.n_layers]
        windows.append(None if src is None else small_window)
    if real_windows and all(w is None for w in windows):
        windows[0] = small_window  # keep the feature visible even with one layer
    ctx = context_length or (cfg.context_length if cfg.positions == "rope" else 64)
    return cfg.replace(
        name=f"{cfg.name}-tiny", vocab_size=vocab_size, context_length=ctx, d_model=d_model, n_layers=n_layers,
        n_heads=n_heads, n_kv_heads=n_kv, head_dim=head_dim, ffn_hidden=ffn_hidden, layer_windows=tuple(windows),
        n_experts=n_exp, top_k=top_k,
    )
