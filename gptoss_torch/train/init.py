"""The training initialisation: GPT-2's scheme (Radford et al. 2019, as nanoGPT implements it), extended to the
gpt-oss features.

- every matrix (embeddings, positions, q/k/v, router, dense and expert up-projections, the unembedding) ~ N(0, 0.02);
- the projections that write into the residual stream (attn.o, mlp.down, experts' down) ~ N(0, 0.02 / sqrt(2 L)),
  so the residual's variance does not grow with depth (GPT-2's "scaled init");
- biases 0 (router bias too: routing starts uniform in expectation); norm weights 1, LayerNorm biases 0;
- attention sinks 0: the sink starts as one more key with logit 0 (a query's scores are ~0 at init as well), so it
  takes about 1/(n+1) of the mass over n visible keys and training moves it from there.
"""

import math

import torch

STD = 0.02


def residual_projection(name):
    """Whether parameter `name` writes into the residual stream (attn.o, mlp.down, experts' down)."""
    return name.endswith(("attn.o.weight", "mlp.down.weight", "experts.down.weight"))


@torch.no_grad()
def init_for_training(model, seed=0):
    """Initialise every float parameter of `model` in place (see the module docstring); returns the model.
    Deterministic: the same seed gives the same weights on any device."""
    g = torch.Generator().manual_seed(seed)
    scaled = STD / math.sqrt(2 * model.cfg.n_layers)
    for name, p in model.named_parameters():
        if name.endswith("bias") or name.endswith("sinks"):
            values = torch.zeros(p.shape)
        elif "norm" in name:
            values = torch.ones(p.shape)
        else:
            values = torch.randn(p.shape, generator=g) * (scaled if residual_projection(name) else STD)
        p.copy_(values.to(p.dtype))
    return model
