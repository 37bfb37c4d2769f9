"""The ablation ladder: every step of gptoss_np.chain() at one small scale, trained on the same bytes with the same
budget, schedule and seeds, then evaluated at 1x, 2x and 4x the training context and in a streaming setting.

Scale (LADDER): d_model 128, 4 layers, 4 query heads of 32, byte vocabulary (256), training context 256, sliding
window 64 on the layers the chain makes sliding, 8 experts top-4 (each expert 64 wide, so a token's active FFN equals
the dense SwiGLU's). Positions as the chain says: learned tables (1024 rows: the 4x evaluation reads rows that
training never reached, on purpose) or RoPE with YaRN scaled like gpt-oss's (factor 32 over the training context,
as gpt-oss's 131072 = 32 x 4096).

Variants that match what a step changes (`VARIANTS`): 04-swiglu "params" widens the SwiGLU to the GELU MLP's
parameter count (the chain's own step halves the width, as the seed article's example does); 05-gqa "params" gives
the K/V parameters GQA saves back to the FFN. 08-moe is compute-matched by construction (its active FFN parameters
equal 07's dense FFN; the step also unties the embeddings, as the chain's 08 does). 09-mxfp4 is 08 trained in float and MXFP4-encoded after training.
"""

from __future__ import annotations

import dataclasses
import math

import torch

from gptoss_np.accounting import count_params
from gptoss_np.config import chain, scale_down
from gptoss_np.errors import InputError

from ..model import Model
from .data import validation_batches
from .loop import evaluate

LADDER = dict(d_model=128, n_layers=4, n_heads=4, head_dim=32, vocab_size=256, n_experts=8, window=64)
CONTEXT = 256  # training context (tokens = bytes)
LEARNED_ROWS = 4 * CONTEXT  # rows of a learned position table, so the 4x evaluation can run (and show the cliff)
YARN_FACTOR = 32  # gpt-oss: 131072 / 4096
VARIANTS = {  # (step, variant) -> (what it matches, config changes given the step's ladder config)
    ("04-swiglu", "params"): "parameters: SwiGLU hidden widened to the GELU MLP's parameter count",
    ("05-gqa", "params"): "parameters: the K/V weights GQA saves go to the FFN's hidden width",
}


def step_names():
    return [name for name, _ in chain()]


def variant_choices():
    """'<variant> of <step>' for every matched variant, as an error message lists them."""
    return ", ".join(f"{v} of {s}" for s, v in sorted(VARIANTS))


def _matched_ffn(cfg, target_params):
    """The SwiGLU hidden width (a multiple of 8) whose total parameter count is closest to target_params."""
    best = None
    for F in range(8, 8 * cfg.d_model, 8):
        n = count_params(cfg.replace(ffn_hidden=F))["total"]
        if best is None or abs(n - target_params) < abs(best[1] - target_params):
            best = (F, n)
    return best[0]


def ladder_config(step, variant=None):
    """The ladder's config for chain step `step` (and a variant of VARIANTS), renamed '<step>[-<variant>]'."""
    steps = dict(chain())
    if step not in steps:
        raise InputError(f"step {step!r}: expected one of {list(steps)}")
    full = steps[step]
    cfg = scale_down(full, context_length=LEARNED_ROWS if full.positions == "learned" else None, **LADDER)
    # one attention width for every step (scale_down keeps gpt-oss's q_dim != d_model, which would make step 08
    # change the attention as well as the FFN)
    cfg = cfg.replace(head_dim=LADDER["head_dim"])
    if full.rope_scaling is not None:  # YaRN over the training context, as gpt-oss's over its 4096
        cfg = cfg.replace(rope_scaling=dataclasses.replace(full.rope_scaling, original_context=CONTEXT,
                                                           factor=float(YARN_FACTOR)),
                          context_length=CONTEXT * YARN_FACTOR)
    if variant is not None:
        if (step, variant) not in VARIANTS:
            raise InputError(f"variant {variant!r} of step {step!r}: expected one of {variant_choices()}")
        if step == "04-swiglu":  # the GELU MLP's parameters (step 03)
            cfg = cfg.replace(ffn_hidden=_matched_ffn(cfg, count_params(ladder_config("03-rope"))["total"]))
        if step == "05-gqa":  # step 04's parameters with GQA's K/V heads
            cfg = cfg.replace(ffn_hidden=_matched_ffn(cfg, count_params(ladder_config("04-swiglu"))["total"]))
    return cfg.replace(name=step if variant is None else f"{step}-{variant}")


def streaming_config(cfg, window=CONTEXT):
    """The same model where every layer keeps only the last `window` keys (a rolling KV cache: old tokens leave)."""
    return cfg.replace(layer_windows=tuple(window if w is None else min(w, window) for w in cfg.layer_windows))


@torch.no_grad()
def long_context(model, val_tokens, context=CONTEXT, factors=(1, 2, 4), max_windows=16, batch_size=4):
    """Validation loss at factor x the training context: {"1x": mean CE over whole windows, "2x": ..., "2x_tail":
    mean CE over the positions past the training context only, ...}, plus "streaming_4x": the 4x windows with every
    layer limited to the last `context` keys (same weights). Nats per token."""
    out = {}
    for f in factors:
        L = f * context
        if L > model.cfg.context_length:
            continue
        batches = validation_batches(val_tokens, batch_size, L, max_batches=max(1, max_windows // batch_size))
        out[f"{f}x"] = evaluate(model, batches)
        if f > 1:
            out[f"{f}x_tail"] = _tail_loss(model, batches, context)
    L = factors[-1] * context
    if L <= model.cfg.context_length:
        stream = Model.from_tensors(streaming_config(model.cfg, context), dict(model.state_dict()), model.device,
                                    model.dtype)
        batches = validation_batches(val_tokens, batch_size, L, max_batches=max(1, max_windows // batch_size))
        out[f"streaming_{factors[-1]}x"] = evaluate(stream, batches)
    return out


def _tail_loss(model, batches, start):
    """Mean CE over positions >= start of each window."""
    total, count = 0.0, 0
    for x, y in batches:
        logits = model.run(x, torch.arange(x.shape[1]))
        ce = torch.nn.functional.cross_entropy(logits[:, start:].reshape(-1, logits.shape[-1]),
                                               y[:, start:].reshape(-1), reduction="sum")
        total += float(ce)
        count += y[:, start:].numel()
    return total / count


def mean_std(values):
    """(mean, sample standard deviation) of a list of floats (std 0 for one value)."""
    m = sum(values) / len(values)
    s = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, s
