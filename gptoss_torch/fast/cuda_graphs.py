"""Decode one token per CUDA graph replay: batch-1 decode is launch-bound (hundreds of small kernels per token),
and a graph replays all of them with one launch. Possible because every decode step has the same shapes: the
KV cache is preallocated, masks come from slot positions, and the MoE gathers its routed experts on device.

The position is a device tensor that the graph itself advances, so a replay needs no host work beyond writing the
token (none when the token is the previous step's device-side argmax); and a graph holds its cache's buffers, so a
process captures once and starts each conversation with reset() on the same decoder (see graphed_decoder)."""

import torch

from gptoss_np.errors import InputError

from .decode import FastDecoder


class GraphedDecoder:
    """`step(token)` -> logits [V] for the next position of `cache`, replaying a captured graph on CUDA (eager
    elsewhere, the same code path); `prefill(tokens)` fills the cache with the plain forward; `reset()` empties it
    for a new conversation. `fast=False` captures Model.run instead of the FastDecoder step."""

    def __init__(self, model, cache, warmup=2, fast=True):
        if cache.batch != 1:
            raise InputError(f"cache: GraphedDecoder decodes one sequence, got a cache made for batch={cache.batch}")
        self.model, self.cache = model, cache
        self.decode = FastDecoder(model, cache.max_tokens).step if fast else model.run
        dev = model.device
        self.token = torch.zeros(1, 1, dtype=torch.long, device=dev)
        self.pos = torch.full((1,), cache.length, dtype=torch.long, device=dev)  # the device-side counter
        self._pos_at = cache.length  # the value self.pos holds, known on the host without reading it back
        self.graph = None
        if dev.type != "cuda":
            return
        # capture on a side stream after warm-up runs (allocator and autotuning settle); warm-up writes into the
        # cache and advances the counter: save and restore both around it
        saved = [(lc.k.clone(), lc.v.clone(), lc.pos.clone()) for lc in cache.layers] + [self.pos.clone()]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            self._warm_up(warmup)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.logits = self._run()
        for lc, (k, v, p) in zip(cache.layers, saved):
            lc.k.copy_(k), lc.v.copy_(v), lc.pos.copy_(p)
        self.pos.copy_(saved[-1])

    def _warm_up(self, n):
        """n decode steps before capture, each at a slot the cache has (its last, once fewer than n are free: the
        cache write kernel checks no bounds); the caller restores the cache and the counter afterwards."""
        for i in range(n):
            self.pos.fill_(min(self.cache.length + i, self.cache.max_tokens - 1))
            self._run()

    def _run(self):
        logits = self.decode(self.token, self.pos, self.cache)  # [1, 1, V]
        self.pos.add_(1)
        return logits

    @torch.no_grad()
    def prefill(self, tokens):
        """Run a prompt (or a user turn) through the plain forward into the cache -> its logits [T, V]."""
        return self.model(tokens, cache=self.cache)

    def reset(self):
        """An empty cache for a new conversation, on the same buffers (the captured graph stays valid)."""
        for lc in self.cache.layers:
            lc.pos.fill_(-1)
        self.cache.length = 0

    @torch.no_grad()
    def step(self, token):
        """token: an int, or a device tensor of one element (copied on the device) -> logits [V], a tensor of its
        own (a replay rewrites the graph's output buffer, so that buffer is copied: steps can be kept and stacked)."""
        cache = self.cache
        if cache.length >= cache.max_tokens:
            raise InputError(f"token: the cache is full (max_tokens={cache.max_tokens}); reset() or a larger cache")
        if self._pos_at != cache.length:  # the cache moved without us (prefill, reset): one fill, no sync
            self.pos.fill_(cache.length)
        if isinstance(token, torch.Tensor):
            self.token.copy_(token.reshape(1, 1))
        else:
            self.token.fill_(int(token))
        if self.graph is None:
            logits = self._run()
        else:
            self.graph.replay()
            logits = self.logits.clone()
        cache.length += 1
        self._pos_at = cache.length
        return logits[0, 0]


_DECODERS = {}


def graphed_decoder(model, max_tokens):
    """The process's decoder for `model` and `max_tokens` (one cache, one graph), reset for a new conversation."""
    dec = _DECODERS.get(max_tokens)
    if dec is None or dec.model is not model:
        dec = _DECODERS[max_tokens] = GraphedDecoder(model, model.new_cache(max_tokens))
    else:
        dec.reset()
    return dec
