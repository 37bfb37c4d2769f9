"""Speed paths of the torch twin, each tested equal to the plain code: fused Triton kernels (MXFP4 experts, decode and
prompt attention), the few-kernel decode step and CUDA-graph replay."""


def enable(model, prefill=False):
    """The fused kernels that run here (CUDA with Triton, or Triton's CPU interpreter): the MXFP4 experts for decode
    (mxfp4_triton.enable); with `prefill` also a prompt's kernels, the grouped MXFP4 MoE and flash attention with
    sinks (not yet measured on a GPU, so not on by default; prefill=False turns them off again) -> {kernel: enabled}."""
    from . import attention_triton, mxfp4_triton
    done = {"mxfp4": mxfp4_triton.enable(model, prefill=prefill)}
    done["prefill moe"] = prefill and done["mxfp4"]
    done["prefill attention"] = attention_triton.enable(model, on=prefill)
    return done
