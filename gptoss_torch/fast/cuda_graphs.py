"""Decode one token per CUDA graph replay: batch-1 decode is launch-bound (hundreds of small kernels per token),
and a graph replays all of them with one launch. Possible because every decode step has the same shapes: the
KV cache is preallocated, masks come from slot positions, and the MoE gathers its routed experts on device."""

import torch


class GraphedDecoder:
    """`step(token_id)` -> logits [V] for the next position of `cache`, replaying a captured graph on CUDA
    (eager elsewhere, the same code path)."""

    def __init__(self, model, cache, warmup=2):
        self.model, self.cache = model, cache
        dev = model.device
        self.token = torch.zeros(1, dtype=torch.long, device=dev)
        self.pos = torch.zeros(1, dtype=torch.long, device=dev)
        self.graph = None
        if dev.type != "cuda":
            return
        # capture on a side stream after warm-up runs (allocator and autotuning settle); the captured step writes
        # into the cache slot of self.pos, which warm-up also touches: save and restore the cache around it
        saved = [(lc.k.clone(), lc.v.clone(), lc.pos.clone()) for lc in cache.layers]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.no_grad():
            for _ in range(warmup):
                self.model.run(self.token[None], self.pos, cache)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph), torch.no_grad():
            self.logits = self.model.run(self.token[None], self.pos, cache)[0]
        for lc, (k, v, p) in zip(cache.layers, saved):
            lc.k.copy_(k), lc.v.copy_(v), lc.pos.copy_(p)

    @torch.no_grad()
    def step(self, token_id):
        if self.cache.length >= self.cache.max_tokens:
            raise ValueError(f"cache full: max_tokens={self.cache.max_tokens}")
        self.token.fill_(int(token_id))
        self.pos.fill_(self.cache.length)
        if self.graph is None:
            logits = self.model.run(self.token[None], self.pos, self.cache)[0]
        else:
            self.graph.replay()
            logits = self.logits
        self.cache.length += 1
        return logits[0]
