"""Generation with the KV cache, and a harmony chat with a gpt-oss checkpoint that streams its answer.

`python -m gptoss_np chat --checkpoint DIR "question"` prints the final-channel answer on stdout as it is
generated. The chain of thought (analysis channel) and commentary are hidden unless --show-analysis, which writes
them to stderr (dimmed on a terminal), so stdout only ever carries the answer.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import CheckpointError, InputError
from .harmony import ReplyParser, analysis_text, chat_prompt, check_effort, final_text
from .harmony import stop_tokens as harmony_stop_tokens
from ..sampling import is_number, sample

DIM, RESET = "\x1b[2m", "\x1b[0m"


# ---- generation ---------------------------------------------------------------------------------------------

def check_generation(model, prompt_tokens, max_new_tokens):
    """The prompt as an int array and the number of tokens that may be generated (limit and context both)."""
    try:
        prompt = np.asarray(prompt_tokens)
    except (TypeError, ValueError) as e:  # ragged nesting
        raise InputError(f"prompt_tokens: expected a non-empty 1-D sequence of token ids ({e})") from None
    if prompt.ndim != 1 or prompt.size == 0 or not np.issubdtype(prompt.dtype, np.integer):
        raise InputError(f"prompt_tokens: expected a non-empty 1-D sequence of token ids, got shape {prompt.shape} "
                         f"dtype {prompt.dtype}")
    if max_new_tokens is not None and (not is_number(max_new_tokens, integer=True) or max_new_tokens < 0):
        raise InputError(f"max_new_tokens={max_new_tokens!r}; expected an integer >= 0 (or None: up to the context)")
    room = model.cfg.context_length - prompt.size
    if room <= 0:
        raise InputError(f"prompt_tokens: {prompt.size} tokens leave no room in context_length="
                         f"{model.cfg.context_length}; expected a shorter prompt{getattr(model, 'context_hint', '')}")
    return prompt.astype(np.int64), room if max_new_tokens is None else min(int(max_new_tokens), room)


def generate(model, prompt_tokens, max_new_tokens, temperature=1.0, top_p=1.0, seed=None, stop_tokens=()):
    """Yield new token ids one at a time. The prompt is run once into a KV cache, then each new token alone.

    Stops after yielding a stop token, after max_new_tokens, or when the context is full (the last position is
    sampled, never fed). temperature 0 is greedy; `seed` makes sampling reproducible."""
    prompt, n = check_generation(model, prompt_tokens, max_new_tokens)
    if seed is not None and (not is_number(seed, integer=True) or seed < 0):
        raise InputError(f"seed={seed!r}; expected an integer >= 0 (or None: a fresh one each run)")
    sample(np.zeros(1), temperature, top_p)  # validate the sampling arguments now, not at the first token
    return _decode(model, prompt, n, temperature, top_p, np.random.default_rng(seed), frozenset(stop_tokens))


def _decode(model, prompt, n, temperature, top_p, rng, stops):
    """The generator behind generate(): prefill, then one cached step per token."""
    if n == 0:
        return
    cache = model.new_cache()
    logits = model(prompt, cache=cache)[-1]
    for step in range(n):
        token = sample(logits, temperature, top_p, rng)
        yield token
        if token in stops or step + 1 == n:
            return
        logits = model(np.array([token], dtype=np.int64), cache=cache)[-1]


def greedy_reply(model, tokenizer, question, max_new_tokens=60, reasoning="low"):
    """The model's greedy reply to one user line in the harmony format, decoded with its special tokens (so the
    channels show): what the chapters print to compare a random-weight model with a trained one."""
    prompt = chat_prompt(tokenizer, question, reasoning)
    reply = generate(model, prompt, max_new_tokens, temperature=0, stop_tokens=harmony_stop_tokens(tokenizer))
    return tokenizer.decode(list(reply))


# ---- chat -------------------------------------------------------------------------------------------------------

@dataclass
class Reply:
    """What one chat turn produced."""

    prompt_tokens: list
    tokens: list = field(default_factory=list)  # generated ids, stop token included
    messages: list = field(default_factory=list)
    stop: str = ""  # "<|return|>", "<|call|>", "max tokens" or "context length"
    raw: str = ""  # the generated text, harmony markup included
    seconds: float = 0.0

    @property
    def final(self):
        return final_text(self.messages)

    @property
    def analysis(self):
        return analysis_text(self.messages)


def weights_note(checkpoint_dir):
    """A one-line note for checkpoints whose config.json says their weights are random (write-checkpoint's)."""
    from ..formats.config_json import read_config
    hf, _ = read_config(checkpoint_dir)
    origin = hf.get("gptoss_from_scratch") if isinstance(hf.get("gptoss_from_scratch"), dict) else {}
    if origin.get("weights") == "random":
        return (f"[{checkpoint_dir}: random weights (seed {origin.get('seed')}), so expect gibberish; the harmony "
                "pipeline is what runs. Leave out --checkpoint for the trained model.]")
    return None


def check_harmony_tokens(tokenizer, checkpoint_dir, files, vocab):
    """A checkpoint's own tokenizer holds the harmony tokens a conversation renders or stops on, at ids its vocab_size
    holds (a tokenizer.json defining none gets o200k_harmony's: tokenizer_from_json); else a CheckpointError."""
    from ..formats.json_io import read_json
    from .harmony import FORMATTING, START
    from .tokenizer import added_tokens
    path = os.path.join(checkpoint_dir, "tokenizer.json" if "tokenizer.json" in files else "vocab.json")
    missing = [t for t in FORMATTING if t not in tokenizer.special_tokens_set]
    if missing:
        more = f" (nor {', '.join(missing[1:])})" if len(missing) > 1 else ""
        field = "added_tokens" if path.endswith("tokenizer.json") else "vocabulary"
        raise CheckpointError(f"{path}: {field} has no {missing[0]}{more}; expected every harmony token the chat "
                              f"renders or stops on ({', '.join(FORMATTING)}) in a tokenizer.json's added_tokens")
    if path.endswith("tokenizer.json") and isinstance(vocab, int) and tokenizer.encode_single_token(START) >= vocab:
        data = read_json(path, "tokenizer.json")  # again, on this path only: do its own tokens include harmony's?
        if START not in added_tokens(data, path) and START not in data["model"]["vocab"]:
            raise CheckpointError(f"{path}: added_tokens has no {START} nor any other harmony token, so "
                                  f"o200k_harmony's ids stand in ({START} = {tokenizer.encode_single_token(START)}), "
                                  f"past config.json's vocab_size {vocab}; expected harmony's tokens "
                                  f"({', '.join(FORMATTING)}) in added_tokens, with ids below {vocab}")


def chat_tokenizer(checkpoint_dir):
    """The tokenizer for a gpt-oss checkpoint (its own files, else o200k_harmony); refuses other models."""
    from ..formats.config_json import detect_layout, read_config
    from .tokenizer import get_tokenizer, tokenizer_files
    hf, cpath = read_config(checkpoint_dir)
    layout = detect_layout(hf, cpath)
    if layout not in ("gpt_oss", "original"):
        raise InputError(f"--checkpoint {checkpoint_dir}: {cpath} has model_type {hf.get('model_type')!r}; the "
                         "harmony chat format is gpt-oss's, expected model_type 'gpt_oss' or OpenAI's original "
                         "gpt-oss layout")
    # OpenAI's original/ folder carries no tokenizer files: it always means o200k_harmony, and so does a gpt_oss
    # checkpoint without any (whose vocab_size must then hold it: checked below, with the flag that fixes it)
    own = layout != "original" and tokenizer_files(checkpoint_dir)
    tokenizer = get_tokenizer(checkpoint_dir if own else "o200k_harmony")
    vocab = hf.get("vocab_size")
    if own:
        check_harmony_tokens(tokenizer, checkpoint_dir, own, vocab)
    if isinstance(vocab, int) and tokenizer.n_vocab > vocab:
        raise InputError(f"--checkpoint {checkpoint_dir}: vocab_size {vocab} cannot hold the harmony tokens of its "
                         f"tokenizer ({tokenizer.name}, {tokenizer.n_vocab} ids); write the checkpoint with "
                         f"--vocab-size {tokenizer.n_vocab}, or leave out --checkpoint to chat with the shipped model")
    return tokenizer


def load_chat_model(checkpoint_dir, dtype="float32", progress=True):
    """(Model, tokenizer) for a gpt-oss checkpoint; the tokenizer from its files, else o200k_harmony."""
    from ..formats.loader import load_model
    tokenizer = chat_tokenizer(checkpoint_dir)
    return load_model(checkpoint_dir, dtype=dtype, progress=progress), tokenizer


class Printer:
    """Writes streamed text: final-channel text to `out`; other channels to `err` only if asked (dimmed on a tty)."""

    def __init__(self, out, err, show_analysis):
        self.out, self.err, self.show = out, err, show_analysis
        self.dim = show_analysis and hasattr(err, "isatty") and err.isatty()
        self.channel, self.wrote_final = None, False

    def write(self, delta):
        if delta.channel == "final":
            self.out.write(delta.text)
            self.out.flush()
            self.wrote_final = True
        elif self.show:
            label = f"[{delta.channel or 'no channel'}] " if delta.channel != self.channel else ""
            self.channel = delta.channel
            self.err.write(f"{DIM}{label}{delta.text}{RESET}" if self.dim else label + delta.text)
            self.err.flush()

    def end(self):
        if self.wrote_final:
            self.out.write("\n")
            self.out.flush()
        if self.show and self.channel is not None:
            self.err.write("\n")


def chat(checkpoint_dir, question, reasoning="medium", max_new_tokens=1024, temperature=1.0, top_p=1.0, seed=None,
         show_analysis=False, developer=None, date=None, out=None, err=None, model=None, tokenizer=None,
         dtype="float32"):
    """Ask a gpt-oss checkpoint one question in the harmony format; stream the answer to `out`; return a Reply.

    `model` and `tokenizer` may be passed instead of loading them from `checkpoint_dir`."""
    out, err = out or sys.stdout, err or sys.stderr
    check_effort(reasoning)
    if model is None:
        model, loaded = load_chat_model(checkpoint_dir, dtype=dtype, progress=hasattr(err, "isatty") and err.isatty())
        tokenizer = tokenizer or loaded
    if tokenizer is None:
        from .tokenizer import get_tokenizer
        tokenizer = get_tokenizer("o200k_harmony")
    prompt = chat_prompt(tokenizer, question, reasoning, developer=developer, date=date)
    reply = Reply(prompt_tokens=prompt)
    parser, printer = ReplyParser(tokenizer), Printer(out, err, show_analysis)
    start = time.perf_counter()
    tokens = generate(model, prompt, max_new_tokens, temperature, top_p, seed, harmony_stop_tokens(tokenizer))
    for token in tokens:
        reply.tokens.append(token)
        delta = parser.feed(token)
        if delta is not None:
            printer.write(delta)
    reply.seconds = time.perf_counter() - start
    reply.messages, reply.raw = parser.close(), tokenizer.decode(reply.tokens)
    printer.end()
    reply.stop = stop_reason(tokenizer, reply, model.cfg.context_length, max_new_tokens)
    return reply


def stop_reason(tokenizer, reply, context_length, max_new_tokens):
    """Why generation ended: the stop token's text, 'max tokens' or 'context length'."""
    if reply.tokens and reply.tokens[-1] in harmony_stop_tokens(tokenizer):
        return tokenizer.decode([reply.tokens[-1]])
    if max_new_tokens is not None and len(reply.tokens) >= max_new_tokens:
        return "max tokens"
    return "context length" if len(reply.prompt_tokens) + len(reply.tokens) >= context_length else "max tokens"


# ---- command line -------------------------------------------------------------------------------------------

def add_arguments(parser):
    """The `chat` subcommand's arguments."""
    parser.add_argument("question", nargs="?", default="Good morrow, what news?", help="the user message")
    parser.add_argument("--checkpoint", default=None, help="a gpt-oss checkpoint directory (config.json + "
                        "safetensors; tokenizer.json if present, else the packaged o200k_harmony vocabulary); "
                        "default: the shipped model, gptoss_np.default_checkpoint()")
    parser.add_argument("--reasoning", default="medium", choices=["low", "medium", "high"])
    parser.add_argument("--max-tokens", type=int, default=1024, help="most tokens to generate (default 1024)")
    parser.add_argument("--temperature", type=float, default=1.0, help="0 = greedy (default 1.0)")
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--developer", default=None, help="developer instructions (a developer message)")
    parser.add_argument("--show-analysis", action="store_true",
                        help="also write the analysis/commentary channels to stderr (dimmed on a terminal)")
    parser.add_argument("--raw", action="store_true",
                        help="at the end, write the whole generated text, harmony markup included, to stderr")
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])


def run(args, out=None, err=None):
    """The `chat` subcommand: 0 on success, 2 on bad input (the message goes to stderr)."""
    from .. import default_checkpoint
    from ..errors import GptOssError
    err = err or sys.stderr
    try:
        args.checkpoint = default_checkpoint() if args.checkpoint is None else args.checkpoint  # '' is refused
        note = weights_note(args.checkpoint)
        if note:
            print(note, file=err)
        reply = chat(args.checkpoint, args.question, reasoning=args.reasoning, max_new_tokens=args.max_tokens,
                     temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                     show_analysis=args.show_analysis, developer=args.developer, out=out, err=err, dtype=args.dtype)
    except GptOssError as e:
        print(f"error: {e}", file=err)
        return 2
    n = len(reply.tokens)
    rate = n / reply.seconds if reply.seconds > 0 else float("nan")
    if args.raw:
        print(reply.raw, file=err)
    note = ("" if reply.final else "; no harmony message in the output" if not reply.messages else
            "; no final-channel text" + ("" if args.show_analysis else " (--show-analysis shows the other channels)"))
    print(f"[{os.path.basename(os.path.normpath(args.checkpoint))}: {len(reply.prompt_tokens)} prompt tokens, {n} "
          f"generated in {reply.seconds:.1f} s ({rate:.1f} tok/s); stopped: {reply.stop}{note}]", file=err)
    return 0
