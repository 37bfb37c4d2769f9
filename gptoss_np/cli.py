"""The NumPy side's command line, one entry with verbs (`python -m gptoss_np VERB`, or the `gptoss-np` script):

    walk               the chain GPT-2 XL -> gpt-oss-20b as a table, and a forward of every step (scaled down)
    chat               ask a gpt-oss checkpoint a question in the harmony format, the answer streamed
    compare            the oracle against Hugging Face transformers on a checkpoint, per trace point and layer
    write-checkpoint   write a random checkpoint in a real published layout (streamed; full size works)
    book               regenerate book.md's tables and the figures (or --check them)
"""

import argparse
import platform
import sys
import time

import numpy as np

from . import build_model, chain, count_params, get_config, scale_down, weight_bytes
from .accounting import flops_per_token, kv_bytes_per_token
from .config import chain_changes
from .errors import GptOssError, InputError, check_integer

KV_CONTEXT = 4096


def at_least(low, kind=int):
    """An argparse `type`: a number of `kind` >= low, else argparse's one-line error naming the flag and the range
    (for the scripts under benchmarks/; the verbs check theirs with check_* and InputError)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value >= low:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{text!r}: expected {'an integer' if kind is int else 'a number'} "
                                             f">= {low}")
        return value
    return parse


def check_seed(args):
    """--seed, where a verb has one, is a seed NumPy takes: an integer >= 0."""
    if getattr(args, "seed", None) is not None:
        check_integer("--seed", args.seed, 0)


COMPARE_MAX_TOKENS = 4096  # compare keeps every trace point of every position and runs full attention: T^2 work


def check_tokens(value, context_length, most=None):
    """--tokens: how many tokens to run, 1..context_length (and at most `most`, where a verb sets a limit)."""
    if not 1 <= value <= context_length:
        raise InputError(f"--tokens {value}: expected an integer from 1 to the context length, {context_length}")
    if most is not None and value > most:
        raise InputError(f"--tokens {value}: expected at most {most} for a comparison (it keeps every activation of "
                         f"every position and runs attention over all of them; the context length is "
                         f"{context_length})")


def fmt_b(n):
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def accounting_row(name, cfg, what):
    p, wb = count_params(cfg), weight_bytes(cfg)
    ctx = min(KV_CONTEXT, cfg.context_length)
    return [name, what, fmt_b(p["total"]), fmt_b(p["active"]), f"{wb['total'] / 1e9:.2f}",
            f"{kv_bytes_per_token(cfg, ctx):,.0f}", f"{flops_per_token(cfg, ctx) / 1e9:.1f}"]


def print_table(header, rows, out=sys.stdout):
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print(line(header), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(line(r), file=out)


DEMO_QUESTION = "Good morrow, my lord. What news from the court?"


def demo(args, out=sys.stdout):
    """The shipped model answering one line in the harmony format, through the same loader, KV cache and chat
    pipeline that run the real gpt-oss-20b."""
    from . import default_checkpoint
    from .text.chat import chat
    try:
        path = default_checkpoint()
    except GptOssError as e:
        print(f"(no trained model to show: {e})\n", file=out)
        return
    import json
    import os
    info = json.load(open(os.path.join(path, "training.json"), encoding="utf-8"))
    print(f"gpt-oss-shakespeare, a {info['params_total'] / 1e6:.1f}M-parameter gpt-oss (every feature of the 20b: "
          f"RoPE+YaRN, GQA, sliding windows, sinks, MoE with MXFP4 experts) trained by this project on Shakespeare's "
          f"dialogue, answers in the harmony chat format:\n", file=out)
    print(f"  user: {DEMO_QUESTION}", file=out)
    t0 = time.perf_counter()
    with open(os.devnull, "w") as quiet:
        reply = chat(path, DEMO_QUESTION, max_new_tokens=args.demo_tokens, temperature=0.8, top_p=0.95,
                     seed=args.seed, out=quiet, err=quiet)
    answer = reply.final.strip().replace("\n", "\n             ")
    print(f"  assistant: {answer}", file=out)
    print(f"  ({len(reply.tokens)} tokens in {time.perf_counter() - t0:.1f} s; stopped at {reply.stop}; the analysis "
          f"channel said: {reply.analysis.strip()!r})\n", file=out)


def walk(args):
    steps = [(name, scale_down(cfg)) for name, cfg in chain() + [("qwen3-30b-a3b", get_config("qwen3-30b-a3b"))]]
    check_tokens(args.tokens, min(small.context_length for _, small in steps))
    check_integer("--demo-tokens", args.demo_tokens, 1)
    if not args.no_demo:
        demo(args)
    changes = chain_changes()
    header = ["step", "what changed", "params", "active", "weights GB", f"KV B/tok@{KV_CONTEXT}", "GFLOP/tok"]
    rows = [accounting_row(n, c, changes[n]) for n, c in chain()]
    print("The chain GPT-2 XL -> gpt-oss-20b, at real size (accounting from the configs alone):\n")
    print_table(header, rows)
    others = [accounting_row(n, get_config(n), "preset") for n in ("gpt-oss-120b", "qwen3-30b-a3b")]
    print()
    print_table(header, others)
    print(f"""
  params         every parameter of the config
  active         parameters one token touches: the output head counts, the embedding lookup does not (as the
                 gpt-oss model card counts)
  weights GB     checkpoint bytes in the storage dtypes (float32 for steps 00-07, bf16 from 08, MXFP4 experts)
  KV B/tok@{KV_CONTEXT}  KV-cache bytes per token averaged over a {KV_CONTEXT}-token context, cache in the weights' dtype
  GFLOP/tok      forward FLOPs of the token at position {KV_CONTEXT} (2 per multiply-add; attention over the keys
                 it sees, a window caps them)
the last chain step equals the gpt-oss-20b preset: {chain()[-1][1] == get_config('gpt-oss-20b')}
""")
    print(f"Forward of every step on its scaled-down config (random weights, {args.tokens} tokens, "
          f"float32, {platform.machine()} / numpy {np.__version__}):\n")
    tokens = np.arange(args.tokens)
    run_rows = []
    for name, small in steps:
        model = build_model(small, seed=args.seed)
        t0 = time.perf_counter()
        logits = model(tokens % small.vocab_size)
        ms = (time.perf_counter() - t0) * 1e3
        cache = model.new_cache()
        inc = np.concatenate([model(tokens[i:i + 1] % small.vocab_size, cache=cache) for i in range(len(tokens))])
        err = np.abs(inc - logits).max()
        ok = np.isfinite(logits).all() and err < 1e-4
        run_rows.append([name, f"d={small.d_model} L={small.n_layers} H={small.n_heads}/{small.n_kv_heads}"
                         + (f" E={small.n_experts}/k={small.top_k}" if small.ffn == "moe" else ""),
                         f"{ms:.1f} ms", f"{float(logits.std()):.3f}", f"{err:.1e}", "ok" if ok else "FAIL"])
    print_table(["step", "scaled-down shape", "forward", "logit std", "cache vs full", "runs"], run_rows)
    return 0 if all(r[-1] == "ok" for r in run_rows) else 1


def compare(args):
    """Our oracle vs transformers on the same checkpoint, per trace point and per layer."""
    try:
        import torch
        import transformers
    except ImportError as e:
        print(f"compare needs torch and transformers as the reference ({e}); pip install -r requirements.txt")
        return 2
    from . import load_model
    from .checks.compare import TOLERANCES, compare_traces, format_report
    from .checks.hf_reference import hf_trace
    from .formats.config_json import detect_layout, read_config
    hf_config, cpath = read_config(args.checkpoint)
    layout = detect_layout(hf_config, cpath)
    if layout not in ("gpt2", "gpt_oss", "qwen3_moe"):
        print(f"error: {args.checkpoint}: transformers reads only the Hugging Face layouts; this is the {layout!r} "
              "layout. Write the same weights in the HF layout (python -m gptoss_np write-checkpoint --layout hf ...) "
              "or compare the torch twin instead (python -m gptoss_torch compare --checkpoint ...)", file=sys.stderr)
        return 2
    model = load_model(args.checkpoint, dtype=args.dtype)
    check_tokens(args.tokens, model.cfg.context_length, COMPARE_MAX_TOKENS)
    torch_dtype = getattr(torch, args.dtype)
    extra = {}
    if (hf_config.get("quantization_config") or {}).get("quant_method") == "mxfp4":
        # the reference dequantises the packed experts (exactly: E2M1 x 2^k) and runs them in this dtype
        extra["quantization_config"] = transformers.Mxfp4Config(dequantize=True)
    # the plain "eager" paths: the reference should be the obvious math (grouped_mm has no float64 either)
    hf = transformers.AutoModelForCausalLM.from_pretrained(args.checkpoint, dtype=torch_dtype,
                                                           attn_implementation="eager",
                                                           experts_implementation="eager", **extra).eval()
    tokens = np.random.default_rng(args.seed).integers(0, model.cfg.vocab_size, args.tokens)
    _, ours = model(tokens, trace=True)
    _, ref = hf_trace(hf, tokens)
    names = [n for n in ours if n in ref]  # transformers exposes no q/k/v after RoPE: those are left out
    # transformers runs RMSNorm and the RoPE tables in float32 even in a float64 model: float32's tolerance applies
    rtol = TOLERANCES["float32"]
    rows = compare_traces(ref, ours, rtol=rtol, names=names)
    print(f"{args.checkpoint}: {model.cfg.name}, {args.tokens} random tokens, {args.dtype}, tolerance "
          f"{rtol:.0e} (max abs / max |reference|; transformers keeps norms and RoPE tables in float32)\n")
    print(format_report(rows, ref_label=f"transformers {transformers.__version__}", test_label="gptoss_np"))
    return 0 if all(r["status"] == "[OK]" for r in rows) else 1


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m gptoss_np", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="VERB")
    w = sub.add_parser("walk", help="print the chain as a table and run a forward of every step")
    w.add_argument("--tokens", type=int, default=16)
    w.add_argument("--seed", type=int, default=0)
    w.add_argument("--no-demo", action="store_true", help="skip the trained model's answer at the start")
    w.add_argument("--demo-tokens", type=int, default=120, help="most tokens of the demo answer (default 120)")
    from .text.chat import add_arguments as chat_arguments
    chat_arguments(sub.add_parser("chat", help="ask a gpt-oss checkpoint a question (harmony format), streaming "
                                               "the answer"))
    c = sub.add_parser("compare", help="compare the oracle with transformers on a checkpoint, layer by layer")
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--tokens", type=int, default=24)
    c.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    c.add_argument("--seed", type=int, default=0)
    from .formats.writer import add_arguments as writer_arguments
    writer_arguments(sub.add_parser("write-checkpoint", help="write a random checkpoint in a real published layout"))
    from .book.build import add_arguments as book_arguments
    book_arguments(sub.add_parser("book", help="regenerate book.md's tables and the figures (--check: verify)"))
    args = ap.parse_args(argv)
    try:
        check_seed(args)
        if args.cmd == "chat":
            from .text.chat import run
            return run(args)
        if args.cmd == "write-checkpoint":
            from .formats.writer import run
            return run(args)
        if args.cmd == "book":
            from .book.build import run
            return run(args)
        return walk(args) if args.cmd == "walk" else compare(args)
    except GptOssError as e:  # bad input of any verb: one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
