"""One decode step in few kernels: Model.run's math for one new position per sequence, with what a decode step can
make once made once, on this object (never in the model's state_dict):

- q, k and v in one matrix per layer (one matmul instead of three), the module's three weights made views of it (no
  second copy of them: 0.71 GB at gpt-oss-20b; always the weights the model holds);
- RoPE's cos/sin as a table [positions, 2, d] indexed on the device by the position tensor (no trigonometry, no
  host work per step), rotating q and k together;
- the attention masks made once per step per window kind (every layer of a kind holds the same positions);
- the sliding layers' rings read alone (window-only reads), scores and softmax in float32: one Triton launch
  (fast/attention_triton.py) on CUDA, else attention.decode_attention;
- F.rms_norm (one fused kernel on CUDA) and, with fast/mxfp4_triton enabled, the MoE's experts in two launches;
- on CUDA with Triton (RMSNorm configs), each residual add and the RMSNorm after it in one launch
  (fast/norm_triton.py), the MoE's k weighted outputs summed inside it and, before the fused experts, the router's
  logits made in it; and (RoPE configs without QK-norm) RoPE and the KV-cache write in one launch
  (fast/rope_cache_triton.py); opt-in (gemv_triton.ON), the q/k/v and output projections of one token as one Triton
  launch each (fast/gemv_triton.py) instead of F.linear.

tests/test_kernel_count.py counts the ops of a step; tests/test_fast_decode.py keeps its logits equal to the NumPy
oracle's.
"""

import torch
import torch.nn.functional as F

from ..attention import at_least_float32, attention_mask, decode_attention
from ..norms import rms_norm_op
from ..rope import rope_cos_sin
from . import attention_triton, gemv_triton, norm_triton, rope_cache_triton


def fused_qkv(attn):
    """(weight [(Hq + 2 Hkv) d, D], bias [(Hq + 2 Hkv) d] or None): attn's q, k and v projections as one tensor, its
    three parameters made views of it. Their storage moves into one tensor the first time; after that (a second
    FastDecoder on the same model) they already lie back to back and the whole is a view again: no second copy."""
    return tuple(_stacked([getattr(p, name) for p in (attn.q, attn.k, attn.v)]) for name in ("weight", "bias"))


def _stacked(params):
    """One tensor whose consecutive row blocks are `params` (None if they are None), the params' data made views of
    it unless they already are."""
    if params[0] is None:
        return None
    first = params[0].detach()
    rows = sum(t.shape[0] for t in params)
    adjacent, start = True, first.data_ptr()
    for t in params:
        adjacent &= (t.is_contiguous() and t.dtype == first.dtype and t.shape[1:] == first.shape[1:]
                     and t.untyped_storage().data_ptr() == first.untyped_storage().data_ptr()
                     and t.data_ptr() == start)
        start += t.numel() * t.element_size()
    if adjacent:
        return first.as_strided((rows, *first.shape[1:]), first.stride())  # [(Hq + 2 Hkv) d, ...]: a view
    whole = torch.cat([t.detach() for t in params])  # [(Hq + 2 Hkv) d, ...]
    start = 0
    for t in params:  # the Parameter objects stay (optimizers, state_dict); their data become views
        t.data = whole[start:start + t.shape[0]]
        start += t.shape[0]
    return whole


def rope_from_table(x, cs):
    """Half-split rotation as x * [c, c] + [x2, x1] * [-s, s]: x [B, 1, H, d], cs [1, 2, d] (one table row)."""
    rot = x.unflatten(-1, (2, -1)).flip(-2).flatten(-2)  # [x2, x1]
    return x * cs[:, 0] + rot * cs[:, 1]  # each product rounded, then the sum, as apply_rope (addcmul rounds once)


class FastDecoder:
    """`FastDecoder(model, max_positions)`; `step(tokens [B, 1], pos [1], cache)` -> logits [B, 1, V] as
    model.run(tokens, pos, cache) gives them (to rounding), writing the same cache slots. Built once per model.
    triton: the one-launch attention kernel (default: on CUDA where Triton runs, for power-of-two head shapes);
    fuse_norms: each residual add with the RMSNorm after it (default: on CUDA where Triton runs, RMSNorm configs);
    fuse_rope: RoPE with the KV-cache write (default: on CUDA where Triton runs, RoPE without QK-norm);
    gemv: one token's q/k/v and output projections by gemv_triton.gemv (default: gemv_triton.ON, on CUDA where
    Triton runs)."""

    @torch.no_grad()
    def __init__(self, model, max_positions=None, triton=None, fuse_norms=None, fuse_rope=None, gemv=None):
        cfg = self.cfg = model.cfg
        self.model = model
        if triton is None:
            pow2 = all(n & (n - 1) == 0 for n in (cfg.head_dim, cfg.n_heads // cfg.n_kv_heads))
            triton = model.device.type == "cuda" and attention_triton.available(model.device) and pow2
        self.triton = triton
        if fuse_norms is None:
            fuse_norms = model.device.type == "cuda" and norm_triton.available(model.device)
        self.fuse_norms = fuse_norms and cfg.norm == "rmsnorm"
        if fuse_rope is None:
            fuse_rope = model.device.type == "cuda" and rope_cache_triton.available(model.device)
        d = cfg.head_dim
        self.fuse_rope = fuse_rope and cfg.positions == "rope" and not cfg.qk_norm and d & (d - 1) == 0
        if gemv is None:
            gemv = gemv_triton.ON and model.device.type == "cuda" and gemv_triton.available(model.device)
        self.gemv = gemv
        self.scale = cfg.head_dim ** -0.5  # the attention kernels apply it to q . k
        self.qkv, self.sinks = [], []
        for block in model.layers:
            a = block.attn
            self.qkv.append(fused_qkv(a))  # [(Hq + 2 Hkv) d, D] (+ bias), the module's q/k/v are views of it
            self.sinks.append(None if a.sinks is None else at_least_float32(a.sinks))  # cast once, not per step
        self.rope = None
        if cfg.positions == "rope":
            n = max_positions or cfg.context_length
            cos, sin = rope_cos_sin(torch.arange(n), model.inv_freq(torch.device("cpu")), model.attention_factor,
                                    model.dtype)  # [P, d/2] each, as Model.run computes them
            self.rope = torch.stack([torch.cat([cos, cos], -1), torch.cat([-sin, sin], -1)], 1).to(model.device)

    @torch.no_grad()
    def step(self, tokens, pos, cache):
        cfg, model = self.cfg, self.model
        x = model.embed(tokens)  # [B, 1, D]
        if cfg.positions == "learned":
            x = x + model.pos_embed(pos)
        cs = None if self.rope is None or self.fuse_rope else self.rope[pos]  # [1, 2, d]
        slots, masks = {}, {}
        layers = model.layers
        h = layers[0].attn_norm.one_op(x) if self.fuse_norms else None  # later norms come with the residual adds
        for i, block in enumerate(layers):
            following = layers[i + 1].attn_norm if i + 1 < len(layers) else model.final_norm
            x, h = self.layer(i, block, x, pos, cs, cache.layers[i], slots, masks, h, following)
        logits = F.linear(model.final_norm.one_op(x) if h is None else h, model.embed.weight if model.unembed is None
                          else model.unembed.weight)  # [B, 1, V]
        return at_least_float32(logits)

    def linear(self, x, weight, bias):
        """F.linear, or for a single token where the decoder takes it, one launch of gemv_triton.gemv (which sums
        in float32: never for a float64 model)."""
        if self.gemv and x.numel() == weight.shape[1] and x.dtype != torch.float64:
            return gemv_triton.gemv(x, weight, bias)
        return F.linear(x, weight, bias)

    def add_norm(self, x, delta, module, scaled=False, router=None):
        """(x + delta rows summed, module's RMSNorm of it) in one launch: x [B, 1, D], delta [B * rows, D]; with
        `scaled` also that RMSNorm as float32 times 2^64 [B, D] (the MXFP4 up kernel's input as it multiplies); with
        `router` (an nn.Linear) also its logits of that RMSNorm [B, E]."""
        B, _, D = x.shape
        x_new, h, *more = norm_triton.add_rms_norm(x.view(B, D), delta.reshape(-1, D), module.weight, module.eps,
                                                   scaled=scaled, router=None if router is None else
                                                   (router.weight, router.bias), cast=module.cast)
        return (x_new.view(B, 1, D), h.view(B, 1, D), *more)

    def layer(self, i, block, x, pos, cs, lc, slots, masks, h=None, following=None):
        """One block for one token; `slots` and `masks` are shared by the layers of a kind within the step. With
        fused norms `h` is this block's attn_norm(x) and the result (x, following(x)), the next norm made with the
        last residual add; else (x, None)."""
        cfg = self.cfg
        B, Hq, Hkv, d = x.shape[0], cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        a = block.attn
        qkv = self.linear(block.attn_norm.one_op(x) if h is None else h, *self.qkv[i]).view(B, 1, Hq + 2 * Hkv, d)
        if cfg.qk_norm:
            q = rms_norm_op(qkv[:, :, :Hq], a.q_norm.weight, cfg.norm_eps, cfg.norm_cast)  # [B, 1, Hq, d]
            k = rms_norm_op(qkv[:, :, Hq:Hq + Hkv], a.k_norm.weight, cfg.norm_eps, cfg.norm_cast)  # [B, 1, Hkv, d]
            if cs is not None:
                q, k = rope_from_table(q, cs), rope_from_table(k, cs)
        elif not self.fuse_rope:
            qk = qkv[:, :, :Hq + Hkv] if cs is None else rope_from_table(qkv[:, :, :Hq + Hkv], cs)
            q, k = qk[:, :, :Hq], qk[:, :, Hq:]
        kind = (a.window, lc.n_slots)
        if self.fuse_rope:  # q and k rotated, k and v written to their slot, in one launch
            q = rope_cache_triton.rope_cache_write(qkv, self.rope, pos, lc, Hq, Hkv)
        else:
            if kind not in slots:
                slots[kind] = pos if a.window is None else pos % lc.n_slots
            lc.k.index_copy_(1, slots[kind], k)
            lc.v.index_copy_(1, slots[kind], qkv[:, :, Hq + Hkv:])
            lc.pos.index_copy_(0, slots[kind], pos)
        if self.triton:
            o = attention_triton.decode_attention_triton(q, lc.k, lc.v, lc.pos, pos, a.window, self.sinks[i],
                                                         self.scale, ring=a.window is not None)
        else:
            if kind not in masks:  # after the step's first write: every layer of this kind holds these positions
                masks[kind] = attention_mask(pos, lc.pos, a.window)  # [1, S]
            o = decode_attention(q, lc.k, lc.v, masks[kind], self.sinks[i], scale=self.scale)  # [B, 1, Hq, d]
        attn_out = self.linear(o.reshape(B, 1, cfg.q_dim), a.o.weight, a.o.bias)  # [B, 1, D]
        fused = h is not None
        experts = fused and cfg.ffn != "dense" and block.mlp.fused is not None  # the fused MXFP4 kernels
        if fused:  # with the fused experts, the router's logits come from the same launch
            x, h, *more = self.add_norm(x, attn_out, block.ffn_norm, scaled=experts,
                                        router=block.mlp.router if experts else None)
        else:
            x = x + attn_out
            h = block.ffn_norm.one_op(x)
        if cfg.ffn == "dense":
            y = block.mlp(h)  # [B, 1, D]
        elif experts:  # the k weighted expert outputs, summed by add_norm
            hs, logits = more
            y = block.mlp.fused(h.view(B, cfg.d_model), logits, reduce=False, x_scaled=hs)[0]
        else:
            y = block.mlp(h.view(B, cfg.d_model))[0]  # [B, D]
        if fused:
            return self.add_norm(x, y, following)
        return x + y.view(B, 1, cfg.d_model), None
