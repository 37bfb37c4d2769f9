"""Harmony chat on the torch twin: gptoss_np.text.chat drives the conversation (rendering, sampling, streaming,
parsing); this adapter runs the model — one CUDA-graph replay per decoded token on a GPU."""

import numpy as np
import torch

from gptoss_np.errors import InputError

from .fast.cuda_graphs import graphed_decoder


DEFAULT_CONTEXT = 4096  # the cache's size when none is asked for (or the model's context length, if shorter)


def check_context(value, cfg, name="--context "):
    """A KV-cache size of 1 to the model's context length (None: the default), else an InputError naming `name`."""
    if value is not None and not 1 <= value <= cfg.context_length:
        raise InputError(f"{name}{value}: expected an integer from 1 to {cfg.name}'s context length, "
                         f"{cfg.context_length:,}")


class ChatModel:
    """Looks like a gptoss_np Model to gptoss_np.text.chat.generate: new_cache() and model(tokens, cache) -> NumPy
    logits. The context is capped at `max_tokens`, the size of the preallocated cache (at most the model's context
    length; None: DEFAULT_CONTEXT, or that length if shorter). With `decoder` (default: on CUDA) single tokens go
    through the process's one graphed decoder (gptoss_torch.fast.cuda_graphs.graphed_decoder): its graph is captured
    once and replayed in every conversation, whose cache is the decoder's, reset."""

    def __init__(self, model, max_tokens=None, decoder=None):
        self.model = model
        check_context(max_tokens, model.cfg, "max_tokens=")
        max_tokens = min(DEFAULT_CONTEXT, model.cfg.context_length) if max_tokens is None else max_tokens
        self.cfg = model.cfg.replace(context_length=max_tokens)
        self.max_tokens = self.cfg.context_length
        # what a prompt too long for the cap can do about it (gptoss_np.text.chat's prompt check appends it)
        self.context_hint = (f"; or a larger --context (the model holds {model.cfg.context_length:,} tokens)"
                             if self.max_tokens < model.cfg.context_length else "")
        self.use_decoder = model.device.type == "cuda" if decoder is None else decoder
        self._decoder = None

    def new_cache(self):
        if not self.use_decoder:
            return self.model.new_cache(self.max_tokens)
        self._decoder = graphed_decoder(self.model, self.max_tokens)
        return self._decoder.cache

    def __call__(self, tokens, cache):
        tokens = torch.as_tensor(np.asarray(tokens), dtype=torch.long)
        if self._decoder is not None and cache is self._decoder.cache and tokens.numel() == 1:
            return self._decoder.step(int(tokens[0])).float().cpu().numpy()[None]
        return self.model(tokens, cache=cache, last_only=True).float().cpu().numpy()  # [1, V]: the next token's


def run(args):
    """`python -m gptoss_torch chat`: load on the device, then the oracle's chat loop with this model."""
    import sys

    from gptoss_np import default_checkpoint
    from gptoss_np.errors import GptOssError
    from gptoss_np.text.chat import chat, chat_tokenizer, weights_note

    from . import load_model
    from .fast import enable
    torch.set_num_threads(args.threads)  # >= 1, checked by the cli
    try:
        args.checkpoint = default_checkpoint() if args.checkpoint is None else args.checkpoint  # '' is refused
        note = weights_note(args.checkpoint)
        if note:
            print(note, file=sys.stderr)
        tokenizer = chat_tokenizer(args.checkpoint)
        model = load_model(args.checkpoint, device=args.device, dtype=args.dtype, progress=sys.stderr.isatty())
        check_context(args.context, model.cfg)  # a cache larger than the model's context is refused, not capped
        enable(model)  # the fused kernels where Triton runs (no-op elsewhere)
        reply = chat(args.checkpoint, args.question, reasoning=args.reasoning, max_new_tokens=args.max_tokens,
                     temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                     show_analysis=args.show_analysis, developer=args.developer,
                     model=ChatModel(model, args.context), tokenizer=tokenizer)
    except GptOssError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = len(reply.tokens)
    print(f"\n[{n} tokens in {reply.seconds:.1f} s, {n / max(reply.seconds, 1e-9):.1f} tok/s; stop: {reply.stop}]",
          file=sys.stderr)
    return 0
