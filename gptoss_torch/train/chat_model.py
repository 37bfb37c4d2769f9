"""The shipped chat model: a small gpt-oss with every feature of the 20b config, trained on Shakespeare's dialogue
rendered in the harmony chat format, stored exactly as gpt-oss is (Hugging Face layout, bf16 tensors, MXFP4
experts, tokenizer files).

One training example is one exchange of a scene: a speaker's line is the user message, the next speaker's reply the
assistant's answer on the final channel, and the analysis channel says who answers whom ("TITANIA answers OBERON."),
so `chat --show-analysis` shows the two channels doing what they do in gpt-oss. The system message is the one the
chat command renders (reasoning effort drawn at random per example); it is part of the input but not of the loss.

    python -m gptoss_torch train-chat --out gptoss_np/models/gpt-oss-shakespeare
"""

from __future__ import annotations

import json
import os
import random
import sys
import time

import torch

from gptoss_np.accounting import count_params, weight_bytes
from gptoss_np.config import get_config, scale_down
from gptoss_np.text import harmony as H

from .data import validation_batches
from .export import quantize_experts, write_trained
from .loop import TrainSettings, evaluate, train

MAX_CHARS = 300  # a speech longer than this is cut at a line break: examples fit the 256-token context
CONTEXT = 256


def chat_config(vocab_size):
    """gpt-oss-20b scaled down, every feature kept: d 192, 4 layers (sliding 64 / full alternating), 4 query heads
    of 48 over 2 KV heads, sinks, biases, YaRN (factor 32 over the 256-token training context), clamped SwiGLU,
    8 experts of width 192 with top-2, untied embeddings, bf16 storage, MXFP4 experts."""
    full = get_config("gpt-oss-20b")
    cfg = scale_down(full, d_model=192, n_layers=4, n_heads=4, head_dim=48, vocab_size=vocab_size, n_experts=8,
                     window=64)
    return cfg.replace(name="gpt-oss-shakespeare", ffn_hidden=192, top_k=2, context_length=CONTEXT * 32,
                       rope_scaling=full.rope_scaling.__class__(factor=32.0, original_context=CONTEXT,
                                                                beta_fast=full.rope_scaling.beta_fast,
                                                                beta_slow=full.rope_scaling.beta_slow,
                                                                truncate=full.rope_scaling.truncate))


def clip(text, limit=MAX_CHARS):
    """The text, cut after the last line break before `limit` characters (or at `limit`)."""
    if len(text) <= limit:
        return text
    cut = text.rfind("\n", 0, limit)
    return text[:cut if cut > 0 else limit]


def render_example(enc, pair, effort):
    """(tokens, loss mask) of one exchange in harmony: system, user (speaker A), assistant analysis + final (B)."""
    (a, text_a), (b, text_b) = pair
    system = H.render_message(enc, H.system_message(effort))
    rest = H.render_conversation(enc, [H.user_message(clip(text_a)),
                                       H.Message("assistant", f"{b} answers {a}.", channel="analysis"),
                                       H.Message("assistant", clip(text_b), channel="final")], drop_analysis=False)
    rest[-1] = H.special(enc, H.RETURN)  # the last message of a finished reply ends with <|return|>, not <|end|>
    return system + rest, [False] * len(system) + [True] * len(rest)


def render_stream(enc, pairs, seed):
    """All examples concatenated: (ids [N], targets [N] = ids with -100 where the loss is off)."""
    rng = random.Random(seed)
    ids, mask = [], []
    for pair in pairs:
        t, m = render_example(enc, pair, rng.choice(H.EFFORTS))
        ids += t
        mask += m
    ids = torch.tensor(ids, dtype=torch.long)
    return ids, torch.where(torch.tensor(mask), ids, torch.full_like(ids, -100))


def add_arguments(ap):
    ap.add_argument("--out", required=True, help="checkpoint directory to write")
    ap.add_argument("--overwrite", action="store_true", help="replace the checkpoint already in --out")
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quiet", action="store_true")


def check_arguments(args):
    """train-chat's arguments, before the tokenizer is trained or the dialogue rendered: an InputError naming the
    flag and what it expects."""
    from gptoss_np.errors import check_integer

    from .commands import check_out
    for flag, value, low in (("--steps", args.steps, 1), ("--seed", args.seed, 0), ("--threads", args.threads, 1)):
        check_integer(flag, value, low)
    check_out(args.out, args.overwrite)


def run(args):
    from gptoss_np.text.bpe import bpe_encoding, special_token_ids, train_default_bpe
    from gptoss_np.text.corpus import dialogue_pairs, shakespeare_splits

    from .commands import make_out, prepare_out
    check_arguments(args)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    ranks = train_default_bpe()
    enc = bpe_encoding(ranks)
    train_text, val_text = shakespeare_splits()
    train_ids, train_targets = render_stream(enc, dialogue_pairs(train_text), args.seed)
    val_ids, val_targets = render_stream(enc, dialogue_pairs(val_text), args.seed + 1)
    cfg = chat_config(enc.n_vocab)
    s = TrainSettings(steps=args.steps, batch_size=16, context=CONTEXT, lr=3e-3, warmup=50, eval_every=100,
                      eval_batches=8, seed=args.seed, threads=args.threads)
    make_out(args.out)
    model, history = train(cfg, train_ids, val_ids, s, progress=not args.quiet, train_targets=train_targets,
                           val_targets=val_targets)
    val = validation_batches(val_ids, 16, CONTEXT, 16, val_targets)
    before = evaluate(model, val)
    shipped = quantize_experts(model)
    after = evaluate(shipped, val)
    prepare_out(args.out)  # the model --out held (--overwrite) goes now, just before the new one is written
    write_trained(shipped, args.out, cfg=shipped.cfg, ranks=ranks)
    size = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    info = {"name": cfg.name, "command": f"python -m gptoss_torch train-chat --out {args.out} --steps {args.steps} "
                                         f"--seed {args.seed}",
            "params_total": count_params(cfg)["total"], "params_active": count_params(cfg)["active"],
            "weight_bytes": weight_bytes(shipped.cfg)["total"], "directory_bytes": size,
            "train_tokens": s.tokens, "train_examples": int((train_targets[1:] == special_token_ids(ranks)["<|return|>"]).sum()),
            "val_loss_float": before, "val_loss": after, "seconds": time.perf_counter() - t0,
            "curve": [{"tokens": r["tokens"], "train": r["ce"], **({"val": r["val_loss"]} if "val_loss" in r else {})}
                      for r in history[9::10]],
            "loss": "cross-entropy in nats per token of the assistant's and user's messages (system prompt masked) "
                    "on the dialogue of the held-out plays"}
    with open(os.path.join(args.out, "training.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    print(f"wrote {args.out}: {size / 1e6:.1f} MB; val loss {before:.4f} (float experts) -> {after:.4f} (MXFP4)",
          file=sys.stderr)
    print(f"val_loss {after:.6f}")
    return 0
