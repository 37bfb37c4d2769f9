"""Speed paths of the torch twin, each tested equal to the plain code: fused Triton kernels (MXFP4 experts, decode and
prompt attention), the few-kernel decode step and CUDA-graph replay."""


def enable(model, prefill=False, prefill_moe="triton"):
    """The fused kernels that run here (CUDA with Triton, or Triton's CPU interpreter): the MXFP4 experts for decode
    (mxfp4_triton.enable); with `prefill` also a prompt's kernels, the grouped MoE, flash attention with sinks and
    RoPE of q and k in one launch, and each RMSNorm as F.rms_norm (not yet measured on a GPU, so not on by default;
    prefill=False turns them off again) -> {kernel: enabled}. prefill_moe: the prompt's MoE on the Triton grouped
    kernel ("triton", MXFP4 experts decoded in registers) or on PyTorch's grouped matrix multiply ("grouped_mm",
    moe_grouped.py: each projection's experts decoded whole first)."""
    from . import attention_triton, moe_grouped, mxfp4_triton, rope_cache_triton
    if prefill_moe not in ("triton", "grouped_mm"):
        raise ValueError(f"prefill_moe: expected 'triton' or 'grouped_mm', got {prefill_moe!r}")
    done = {"mxfp4": mxfp4_triton.enable(model, prefill=prefill and prefill_moe == "triton")}
    if prefill_moe == "grouped_mm":
        done["prefill moe"] = moe_grouped.enable(model, on=prefill)
    else:
        done["prefill moe"] = prefill and done["mxfp4"]
    done["prefill attention"] = attention_triton.enable(model, on=prefill)  # with RoPE
    for block in model.layers:
        block.attn.rope_kernel = rope_cache_triton.apply_rope_triton if done["prefill attention"] else None
    norms = [model.final_norm] + [n for b in model.layers for n in (b.attn_norm, b.ffn_norm)]
    done["prefill norms"] = prefill and model.cfg.norm == "rmsnorm"
    for norm in norms:
        norm.fused = done["prefill norms"]
    return done
