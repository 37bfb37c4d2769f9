"""Command line of the torch twin.

    python -m gptoss_torch compare --checkpoint DIR [--device cuda] [--dtype bfloat16]
        one prompt through torch and through the NumPy oracle (float32, CPU); per trace point max abs / max rel
        error, worst layer first
    python -m gptoss_torch chat --checkpoint DIR --reasoning low|medium|high "question"
        harmony chat, the answer streamed as it is generated
    python -m gptoss_torch train --step 09-mxfp4 [--seed N] [--steps N] [--out DIR]
        train a chain step at the ladder's scale on Shakespeare (or --data FILE); last line: val_loss <nats>
    python -m gptoss_torch ladder
        train every chain step (3 seeds, matched variants) and write benchmarks/training_ladder.json
"""

import argparse
import sys

import numpy as np
import torch

from gptoss_np.cli import COMPARE_MAX_TOKENS, check_seed, check_tokens
from gptoss_np.errors import GptOssError, check_integer

from .loader import check_device


def check_arguments(args):
    """The numeric arguments the verbs share, before anything is loaded."""
    check_device(getattr(args, "device", None), "--device")
    check_seed(args)
    for name in ("tokens", "context", "threads"):
        value = getattr(args, name, None)
        if value is not None:
            check_integer(f"--{name}", value, 1)


def compare(args):
    import gptoss_np
    from gptoss_np.checks.compare import TOLERANCES, compare_traces, format_report

    from . import load_model
    model = load_model(args.checkpoint, device=args.device, dtype=args.dtype, progress=not args.quiet)
    check_tokens(args.tokens, model.cfg.context_length, COMPARE_MAX_TOKENS)  # before the oracle's load
    oracle = gptoss_np.load_model(args.checkpoint, dtype="float32", progress=not args.quiet)
    tokens = np.random.default_rng(args.seed).integers(0, oracle.cfg.vocab_size, args.tokens)
    _, ref = oracle(tokens, trace=True)
    _, ours = model(torch.as_tensor(tokens), trace=True)
    ours = {k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy() for k, v in ours.items()}
    dtype = str(model.dtype).replace("torch.", "")
    rtol = TOLERANCES[dtype]
    rows = compare_traces(ref, ours, rtol=rtol)
    print(f"{args.checkpoint}: {oracle.cfg.name}, {args.tokens} random tokens; torch {dtype} on {model.device} "
          f"vs NumPy float32 on CPU; tolerance {rtol:.0e} (max abs / max |reference|)\n")
    print(format_report(rows, ref_label="gptoss_np", test_label="gptoss_torch"))
    if dtype == "bfloat16":
        print("\n(bfloat16 keeps 8 mantissa bits: near-tied router logits can pick another expert, which shows as "
              "[DIFF] on router.experts while the hidden states stay close)")
    return 0 if all(r["status"] == "[OK]" for r in rows) else 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m gptoss_torch", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="VERB")
    c = sub.add_parser("compare", help="torch vs the NumPy oracle, per trace point, worst layer first")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--device", default=None)
    c.add_argument("--dtype", default=None, choices=["float32", "float64", "bfloat16"],
                   help="compute dtype (default: bfloat16 on CUDA, float32 on the CPU)")
    c.add_argument("--tokens", type=int, default=16)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--quiet", action="store_true")
    from gptoss_np.text.chat import add_arguments
    h = sub.add_parser("chat", help="harmony chat with a gpt-oss checkpoint", conflict_handler="resolve")
    add_arguments(h)
    h.add_argument("--device", default=None)
    h.add_argument("--dtype", default=None, choices=["float32", "float64", "bfloat16"],
                   help="compute dtype (default: bfloat16 on CUDA, float32 on the CPU)")
    h.add_argument("--context", type=int, default=None, help="KV-cache size in tokens, at most the model's context "
                                                             "length (default 4096, or that length if shorter)")
    h.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: batch-1 decode of a small "
                                                          "model gains nothing from more, and a busy machine "
                                                          "makes spinning threads slow)")
    from .train.commands import add_ladder_arguments, add_train_arguments
    add_train_arguments(sub.add_parser("train", help="train a chain step at the ladder's scale; prints val_loss"))
    add_ladder_arguments(sub.add_parser("ladder", help="train every chain step, 3 seeds; write the results file"))
    from .train import chat_model
    chat_model.add_arguments(sub.add_parser("train-chat", help="train the shipped harmony chat model (gpt-oss, "
                                                               "every feature) on Shakespeare's dialogue"))
    args = ap.parse_args(argv)
    try:
        check_arguments(args)
        if args.cmd == "train-chat":
            return chat_model.run(args)
        if args.cmd == "train":
            from .train.commands import run_train
            return run_train(args)
        if args.cmd == "ladder":
            from .train.commands import run_ladder
            return run_ladder(args)
        if args.cmd == "chat":
            from .chat import run
            return run(args)
        return compare(args)
    except GptOssError as e:  # bad input of any verb: one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
