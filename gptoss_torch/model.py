"""The torch twin of gptoss_np.model as torch.nn.Modules: same config object, the canonical weight names as the
state_dict keys, the same trace names; batched ([B, T] tokens; 1-D still accepted), trainable (autograd through
every feature, dropout applied in training mode), and packed MXFP4 experts as uint8 buffers for inference.

Trace points are those of gptoss_np.model (see its docstring); `gptoss_np.trace_names(cfg)` lists them. With a batch
every trace value has a leading [B] axis; 1-D input gives them without it, as the oracle does.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gptoss_np.errors import InputError
from gptoss_np.params import check_weights

from .attention import Attention
from .ffn import MLP
from .kv_cache import KVCache
from .moe import MoE, load_balancing_loss
from .norms import Norm
from .rope import rope_cos_sin, rope_frequencies

ATTN_TEMP_BYTES = 1 << 28  # one prefill score tensor at most (256 MiB; the softmax and the mask are of its size)
PREFILL_TOKENS = 4096  # a longer prompt passes through the layers this many tokens at a time, through the KV cache:
# it bounds the MoE's temporaries ([tokens * top_k, 2 * ffn_hidden]) while each expert is still decoded once per pass


class Block(nn.Module):
    """Pre-norm block: x + attn(norm(x)), then x + ffn(norm(x)); `layers.{i}.*` in the canonical names."""

    def __init__(self, cfg, i, device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        self.attn_norm = Norm(cfg.d_model, cfg.norm, cfg.norm_eps, device, dtype, cfg.norm_cast)
        self.attn = Attention(cfg, cfg.layer_windows[i], device, dtype)
        self.ffn_norm = Norm(cfg.d_model, cfg.norm, cfg.norm_eps, device, dtype, cfg.norm_cast)
        self.mlp = MLP(cfg, device, dtype) if cfg.ffn == "dense" else MoE(cfg, device, dtype)

    def forward(self, x, pos, cos_sin=None, layer_cache=None, record=None, aux=None, q_chunk=None):
        """x [B, T, D] -> [B, T, D]; `record(name, value)` receives the trace points, `aux` the MoE balance loss;
        `q_chunk`: attention's queries at most this many at a time."""
        rec = record or (lambda name, value: None)
        drop = self.cfg.dropout if self.training else 0.0
        h = self.attn_norm(x)
        rec("attn_norm", h)
        a = self.attn(h, pos, cos_sin, layer_cache, record, q_chunk)
        rec("attn.out", a)
        x = x + F.dropout(a, drop, self.training)  # GPT-2's residual dropout after the attention projection
        rec("attn_residual", x)
        h = self.ffn_norm(x)
        rec("ffn_norm", h)
        if self.cfg.ffn == "dense":
            f = self.mlp(h)
        else:
            B, T, D = h.shape
            y, logits, experts, weights = self.mlp(h.reshape(B * T, D))  # the router sees tokens, not sequences
            f = y.view(B, T, D)
            rec("router.logits", logits.view(B, T, -1))
            rec("router.experts", experts.view(B, T, -1))
            rec("router.weights", weights.view(B, T, -1))
            if aux is not None:
                aux.append(load_balancing_loss(logits, experts, self.cfg.n_experts))
        rec("ffn.out", f)
        x = x + F.dropout(f, drop, self.training)  # and after the FFN
        rec("residual", x)
        return x


class Model(nn.Module):
    """`model(tokens)` -> logits [T, V] or [B, T, V] (float32 for bf16/fp16 weights); `model(tokens, trace=True)` ->
    (logits, trace); `cache = model.new_cache(max_tokens)` then `model(tokens, cache=cache)` decodes incrementally;
    `model.loss(tokens, targets)` for training. `Model(cfg)` allocates uninitialised parameters (see
    gptoss_torch.train.init for a training init, from_numpy / load_model for given weights)."""

    def __init__(self, cfg, device=None, dtype=torch.float32):
        super().__init__()
        self.cfg = cfg
        kw = dict(device=device, dtype=dtype)
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model, **kw)
        self.pos_embed = nn.Embedding(cfg.context_length, cfg.d_model, **kw) if cfg.positions == "learned" else None
        self.layers = nn.ModuleList(Block(cfg, i, device, dtype) for i in range(cfg.n_layers))
        self.final_norm = Norm(cfg.d_model, cfg.norm, cfg.norm_eps, device, dtype, cfg.norm_cast)
        self.unembed = None if cfg.tie_embeddings else nn.Linear(cfg.d_model, cfg.vocab_size, bias=False, **kw)
        if cfg.positions == "rope":  # float64 on the host; kept off the module so .to(dtype) never rounds it
            self._inv_freq_host, self.attention_factor = rope_frequencies(cfg)
        self._inv_freq = {}

    # ---- construction from weights ---------------------------------------------------------------------------
    @classmethod
    def from_numpy(cls, cfg, np_weights, device="cpu", dtype=torch.float32):
        """An inference model (eval mode, no gradients) from a canonical NumPy weight dict (as gptoss_np.init_weights
        and the loader give); float tensors are converted to `dtype` once, MXFP4 blocks/scales stay uint8."""
        check_weights(cfg, np_weights)
        return cls.from_tensors(cfg, {n: to_torch(a, device, None if n.endswith((".blocks", ".scales")) else dtype)
                                      for n, a in np_weights.items()}, device, dtype)

    @classmethod
    def from_tensors(cls, cfg, tensors, device="cpu", dtype=torch.float32):
        """An inference model whose parameters are exactly `tensors` (canonical names, already on the device)."""
        with torch.device("meta"):
            model = cls(cfg, dtype=dtype)
        model.load_state_dict(tensors, strict=True, assign=True)
        model._inv_freq = {}
        return model.eval().requires_grad_(False)

    # ---- properties ------------------------------------------------------------------------------------------
    @property
    def device(self):
        return self.embed.weight.device

    @property
    def dtype(self):
        return self.final_norm.weight.dtype

    def new_cache(self, max_tokens=None, batch=1):
        """A preallocated KV cache for `batch` sequences of up to `max_tokens` (1..context_length; None: the context
        up to 4096); sizes that are not positive integers or would not fit in memory are refused before allocating."""
        max_tokens = min(self.cfg.context_length, 4096) if max_tokens is None else max_tokens
        return KVCache(self.cfg, max_tokens, self.dtype, self.device, batch)

    def inv_freq(self, device):
        """RoPE's float64 frequencies on `device`, copied once (no host-to-device copy inside a CUDA graph)."""
        if device not in self._inv_freq:
            self._inv_freq[device] = self._inv_freq_host.to(device)
        return self._inv_freq[device]

    # ---- forward ---------------------------------------------------------------------------------------------
    def _check_tokens(self, tokens, start, cache):
        """tokens [T] or [B, T] of any integer dtype (torch's, NumPy's, unsigned included, or Python ints) -> a long
        tensor on the model's device, after checking the ids against vocab_size and the room in context and cache."""
        V = self.cfg.vocab_size
        if isinstance(tokens, torch.Tensor) and tokens.dtype in (torch.uint16, torch.uint32, torch.uint64):
            tokens = tokens.cpu().numpy()  # torch has no min/max for these: checked as a NumPy array below
        if not isinstance(tokens, torch.Tensor):
            try:
                a = np.asarray(tokens)
            except (TypeError, ValueError) as e:  # ragged nesting
                raise InputError(f"tokens: expected [T] or [B, T] integer token ids, got a {type(tokens).__name__} "
                                 f"that is not an array ({e})") from None
            ints = a.dtype == object and a.size and all(type(v) is int for v in a.flat)  # ints past 64 bits (2**70)
            if a.dtype.kind not in "iu" and not ints:  # floats, bools, strings, other objects
                raise InputError(f"tokens: expected a non-empty [T] or [B, T] integer tensor, got {a.shape} "
                                 f"{a.dtype}")
            # before int64, which would wrap uint64 ids past 2**63 (Python ints past 64 bits compare exactly)
            if a.size and (a.min() < 0 or a.max() >= V):
                raise InputError(f"tokens: id {int(a.min() if a.min() < 0 else a.max())} is out of range: "
                                 f"vocab_size is {V}")
            tokens = torch.from_numpy(a.astype(np.int64))
        if tokens.ndim not in (1, 2) or tokens.numel() == 0 or tokens.dtype.is_floating_point or \
                tokens.dtype.is_complex or tokens.dtype == torch.bool:
            raise InputError(f"tokens: expected a non-empty [T] or [B, T] integer tensor, got {tuple(tokens.shape)} "
                             f"{tokens.dtype}")
        lo, hi = int(tokens.min()), int(tokens.max())
        if lo < 0 or hi >= self.cfg.vocab_size:
            raise InputError(f"tokens: id {lo if lo < 0 else hi} is out of range: vocab_size is {self.cfg.vocab_size}")
        T = tokens.shape[-1]
        limit = self.cfg.context_length if cache is None else min(self.cfg.context_length, cache.max_tokens)
        if start + T > limit:
            raise InputError(f"tokens: {start} cached + {T} new exceed the limit of {limit} positions "
                             f"(context_length={self.cfg.context_length}"
                             + (f", cache max_tokens={cache.max_tokens})" if cache is not None else ")"))
        B = tokens.shape[0] if tokens.ndim == 2 else 1
        if cache is not None and cache.batch != B:
            raise InputError(f"tokens: a batch of {B} sequence(s) for a cache made for batch={cache.batch}")
        return tokens.to(self.device, torch.long)

    def _check_positions(self, positions, T, cache):
        """positions: T integer positions, each below the context length (and the cache's slots) -> [T] long."""
        limit = self.cfg.context_length if cache is None else min(self.cfg.context_length, cache.max_tokens)
        try:
            p = torch.as_tensor(positions) if not isinstance(positions, torch.Tensor) else positions
        except (TypeError, ValueError, RuntimeError) as e:
            raise InputError(f"positions: expected a [T={T}] integer tensor (a position per token) ({e})") from None
        if p.ndim != 1 or p.shape[0] != T or p.dtype.is_floating_point or p.dtype.is_complex or p.dtype == torch.bool:
            raise InputError(f"positions: expected a [T={T}] integer tensor (a position per token), got "
                             f"{tuple(p.shape)} {p.dtype}")
        lo, hi = int(p.min()), int(p.max())
        if lo < 0 or hi >= limit:
            raise InputError(f"positions: {lo if lo < 0 else hi} is out of range: expected 0 to {limit - 1} "
                             f"(context_length={self.cfg.context_length}"
                             + (f", cache max_tokens={cache.max_tokens})" if cache is not None else ")"))
        return p.to(self.device, torch.long)

    def forward(self, tokens, trace=False, cache=None, positions=None, prefill_chunk=None, last_only=False):
        """Checked entry point: tokens [T] or [B, T] (any integer dtype) -> logits [T, V] / [B, T, V] (, trace).

        Bounded prefill: attention takes its queries `prefill_chunk` at a time (default: as many as keep one layer's
        scores under ATTN_TEMP_BYTES, so attention temporaries stay bounded at any length), and a prompt longer than
        PREFILL_TOKENS passes through the layers in pieces of that many tokens via a KV cache (a temporary one when
        none is given). The result is the one-shot forward's, to rounding (tested).
        last_only: logits of the last position only ([1, V] / [B, 1, V]), what generation needs: a 4k-token
        prompt's full float32 logits would hold 3.3 GB on gpt-oss-20b's 201k vocabulary; not with trace, whose
        final_norm and logits hold every position."""
        if trace and last_only:
            raise InputError("last_only=True with trace=True: expected one of them (a trace holds every position)")
        start = cache.length if cache is not None else 0
        tokens = self._check_tokens(tokens, start, cache)
        single = tokens.ndim == 1
        batch = tokens[None] if single else tokens  # [B, T]
        B, T = batch.shape
        if positions is not None:
            positions = self._check_positions(positions, T, cache)
        if prefill_chunk is not None and (type(prefill_chunk) is not int or prefill_chunk < 1):
            raise InputError(f"prefill_chunk={prefill_chunk!r}: expected an integer >= 1 (queries a step), or None")
        # full layers attend over every slot of the cache: T of them without one (the pieces' temporary cache too)
        rows = prefill_chunk or self.prefill_rows(B, T if cache is None else cache.max_tokens)
        if positions is None and T > PREFILL_TOKENS:
            logits, tr = self._prefill_in_pieces(batch, start, rows, cache, trace, last_only)
        else:
            pos = positions if positions is not None else torch.arange(start, start + T, device=self.device)
            tr = {} if trace else None
            logits = self.run(batch, pos, cache, tr, last_only=last_only, q_chunk=rows)
            if cache is not None:
                cache.length += T
        if single:
            logits = logits[0]
            tr = None if tr is None else {k: v[0] for k, v in tr.items()}
        return (logits, tr) if trace else logits

    def prefill_rows(self, batch, slots):
        """How many queries at a time keep every layer's [B, Hq, rows, keys + 1] scores (float32 at least) under
        ATTN_TEMP_BYTES, with `slots` keys on full layers; a sliding layer sees its ring (at most the window) and the
        new tokens (at most `slots`)."""
        window = max([w for w in self.cfg.layer_windows if w is not None], default=0)
        keys = slots + min(window, slots)
        itemsize = max(4, self.dtype.itemsize)
        return max(1, ATTN_TEMP_BYTES // (batch * self.cfg.n_heads * (keys + 1) * itemsize))

    def _prefill_in_pieces(self, batch, start, rows, cache, trace, last_only=False):
        """run() over [B, PREFILL_TOKENS] pieces of the prompt through `cache` (or a temporary one), attention
        `rows` queries at a time; -> (logits, trace)."""
        B, T = batch.shape
        if cache is None:
            cache = KVCache(self.cfg, T, self.dtype, self.device, B)
        logits, traces = [], []
        for i in range(0, T, PREFILL_TOKENS):
            n = min(PREFILL_TOKENS, T - i)
            tr = {} if trace else None
            logits.append(self.run(batch[:, i:i + n], torch.arange(start + i, start + i + n, device=self.device),
                                   cache, tr, last_only=last_only, q_chunk=rows))
            cache.length += n
            traces.append(tr)
        tr = {name: torch.cat([t[name] for t in traces], dim=1) for name in traces[0]} if trace else None
        return (logits[-1] if last_only else torch.cat(logits, dim=1)), tr  # [B, 1 | T, V]

    def run(self, tokens, pos, cache=None, trace=None, aux=None, last_only=False, q_chunk=None):
        """The forward on device tensors, no Python-side checks (what a CUDA graph captures).
        tokens [B, T], pos [T] -> logits [B, T, V] (float32 at least; [B, 1, V] with last_only); fills `trace` /
        `aux` when given; attention takes its queries `q_chunk` at a time when given."""
        cfg = self.cfg
        x = self.embed(tokens)  # [B, T, D]
        if cfg.positions == "learned":
            x = x + self.pos_embed(pos)
        x = F.dropout(x, cfg.dropout if self.training else 0.0, self.training)  # GPT-2's embedding dropout
        cos_sin = rope_cos_sin(pos, self.inv_freq(pos.device), self.attention_factor, x.dtype) \
            if cfg.positions == "rope" else None
        if trace is not None:
            trace["embed"] = x
        for i, block in enumerate(self.layers):
            record = None if trace is None else (lambda name, value, p=f"layers.{i}.": trace.__setitem__(p + name,
                                                                                                        value))
            x = block(x, pos, cos_sin, None if cache is None else cache.layers[i], record, aux, q_chunk)
        if last_only:
            x = x[:, -1:]  # [B, 1, D]: the unembedding only where the next token is chosen
        x = self.final_norm(x)
        if trace is not None:
            trace["final_norm"] = x
        logits = F.linear(x, self.embed.weight if self.unembed is None else self.unembed.weight)  # [B, T, V]
        logits = logits.float() if logits.dtype in (torch.bfloat16, torch.float16) else logits
        if trace is not None:
            trace["logits"] = logits
        return logits

    def loss(self, tokens, targets, aux_weight=0.0):
        """Mean next-token cross-entropy (nats per token) + aux_weight * mean MoE balance loss over the layers.
        tokens, targets [B, T] -> (loss, {"ce": ..., "aux": ...}) with the parts detached."""
        T = tokens.shape[-1]
        aux = []
        logits = self.run(tokens, torch.arange(T, device=tokens.device), aux=aux)
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        balance = torch.stack(aux).mean() if aux else ce.new_zeros(())
        total = ce + aux_weight * balance if aux else ce
        return total, {"ce": ce.detach(), "aux": balance.detach()}

    def canonical_weights(self):
        """The canonical weight dict as NumPy arrays (float32 for float tensors, uint8 for MXFP4 blocks/scales)."""
        return {n: (t.detach().float() if t.is_floating_point() else t.detach()).cpu().numpy()
                for n, t in self.state_dict().items()}


def to_torch(a, device, dtype=None):
    """NumPy (incl. ml_dtypes bfloat16, memory-mapped) -> torch tensor on device; uint8 kept as is."""
    a = np.asarray(a)
    if not a.flags.writeable:  # torch wants writable memory; a memory-mapped checkpoint is read-only: copy once
        a = np.array(a)
    if a.dtype.name == "bfloat16":
        t = torch.from_numpy(np.ascontiguousarray(a).view(np.uint16)).view(torch.bfloat16)
    else:
        t = torch.from_numpy(np.ascontiguousarray(a))
    t = t.to(device)
    return t if dtype is None or not t.is_floating_point() else t.to(dtype)
