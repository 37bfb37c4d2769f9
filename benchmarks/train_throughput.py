"""Training throughput on the CPU: the torch twin at every chain step vs a plain nanoGPT-style GPT of the same size.

    python benchmarks/train_throughput.py [--rounds 5] [--steps 3] [--warmup 2] [--write] [--quick]
    python benchmarks/train_throughput.py --profile 00-gpt2-xl      # torch.profiler: reference vs that twin step

One training step exactly as gptoss_torch.train.loop.train does it (forward + loss, zero_grad, backward,
clip_grad_norm_(1.0), AdamW with the loop's parameter groups and betas), batch 16 x 256 random bytes, float32,
torch.set_num_threads(2). The models are measured interleaved: every model gets its warm-up steps first, then each
round runs `--steps` sweeps, a sweep being one timed step of every model back to back (the order rotates), so a
neighbour's load on a shared machine falls on all of them alike. Reported: tokens/s from the median (and the best)
step time of each model, and every ratio as the median over the sweeps of the paired ratio (two models measured
seconds apart); the CPU time other processes took during each step is read from /proc/stat and reported too.

The twin's configs are the ladder's: every step of gptoss_np.chain() through gptoss_torch.train.ladder.ladder_config
(d_model 128, 4 layers, 4 heads of 32, byte vocabulary, 1024 learned positions or RoPE+YaRN, window 64, 8 experts
top-4), built with init_for_training(Model(trainable_config(cfg))).
A step whose trainable config equals an earlier one (09-mxfp4: training runs on float experts) is not trained
twice; its row repeats the earlier measurement.

The reference (RefGPT below) is written the way nanoGPT's model.py is: token + learned position embeddings,
pre-LayerNorm blocks with one fused c_attn nn.Linear(D, 3D), F.scaled_dot_product_attention(is_causal=True), a tanh
GELU MLP of 4D, dropout at GPT-2's four sites, a final LayerNorm and a head tied to the token embedding; GPT-2's
init. Its position table has the twin's 1024 rows, so both have exactly the same parameters at the GPT-2 step.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import signal
import statistics
import sys
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)
from gptoss_np import chain  # noqa: E402
from gptoss_np.config import chain_changes  # noqa: E402

BATCH, CONTEXT, THREADS = 16, 256, 2
LIMIT = 1.3  # the twin's step time at the GPT-2 step may be at most this many times the reference's
RESULT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "train_throughput_cpu.md")


# ---- the reference: a plain GPT, nanoGPT style ------------------------------------------------------------------

@dataclass
class RefConfig:
    vocab_size: int = 256
    block_size: int = 1024  # rows of the position table (the twin's scaled-down context_length)
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.1
    bias: bool = True


class RefSelfAttention(nn.Module):
    """Causal multi-head self-attention: one fused q/k/v projection, SDPA with is_causal, an output projection."""

    def __init__(self, c):
        super().__init__()
        self.n_head, self.dropout = c.n_head, c.dropout
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.resid_dropout = nn.Dropout(c.dropout)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # [B, H, T, d]
                   for t in self.c_attn(x).split(C, dim=2))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class RefMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)
        self.dropout = nn.Dropout(c.dropout)

    def forward(self, x):
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class RefBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.attn = RefSelfAttention(c)
        self.ln_2 = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.mlp = RefMLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class RefGPT(nn.Module):
    """`model(idx)` -> logits [B, T, V]; `model(idx, targets)` -> (logits, mean cross-entropy)."""

    def __init__(self, c: RefConfig, seed: int = 0):
        super().__init__()
        self.config = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.h = nn.ModuleList(RefBlock(c) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, bias=c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix for the input embedding and the output head
        self._init(seed)

    @torch.no_grad()
    def _init(self, seed):
        """GPT-2: matrices ~ N(0, 0.02), the projections into the residual stream ~ N(0, 0.02 / sqrt(2 L)), biases 0,
        LayerNorm weight 1 (its default)."""
        g = torch.Generator().manual_seed(seed)
        residual_std = 0.02 / math.sqrt(2 * self.config.n_layer)
        for name, m in self.named_modules():
            if isinstance(m, (nn.Linear, nn.Embedding)) and m is not self.lm_head:  # the head is wte
                std = residual_std if name.endswith("c_proj") else 0.02
                m.weight.normal_(0.0, std, generator=g)
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()

    def forward(self, idx, targets=None):
        B, T = idx.shape
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))


# ---- the models under test --------------------------------------------------------------------------------------

def twin_config(cfg):
    """A chain step at the ladder's scale (gptoss_torch.train.ladder.ladder_config), as the training loop builds it."""
    from gptoss_torch.train.ladder import ladder_config
    from gptoss_torch.train.loop import trainable_config
    return trainable_config(ladder_config(cfg.name))


@dataclass
class Entry:
    name: str
    what: str
    kind: str  # "ref" | "twin"
    model: nn.Module
    loss: object  # (x, y) -> scalar loss
    opt: torch.optim.Optimizer = None
    same_as: str | None = None  # a twin step whose trainable config equals an earlier one's
    times: list = None  # seconds per timed step
    others: list = None  # cores other processes kept busy during each timed step


def optimizer(model):
    from gptoss_torch.train.loop import TrainSettings, param_groups
    s = TrainSettings()
    return torch.optim.AdamW(param_groups(model, s.weight_decay), lr=s.lr, betas=s.betas, fused=False)


def scaled_changes(prev, cfg):
    """What a step changes in the scaled-down config the benchmark trains (the chain's text names full-size values)."""
    if prev is None:
        return (f"d {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads, ffn {cfg.ffn_hidden}, "
                f"dropout {cfg.dropout:g}, {cfg.context_length} positions")
    a, b = prev.to_dict(), cfg.to_dict()
    skip = {"name", "weight_dtype", "rope_theta", "rope_scaling", "router"}  # weights train in float32 here
    out = []
    for k in b:
        if k in skip or a[k] == b[k]:
            continue
        if k == "layer_windows":
            out.append("windows " + "/".join("full" if w is None else str(w) for w in b[k]))
        elif k == "positions" and b[k] == "rope":
            out.append("rope" + (" + YaRN" if cfg.rope_scaling else ""))
        else:
            out.append(f"{k} {a[k]}->{b[k]}")
    return ", ".join(out) or "no change to the trained model"


def build_entries(quick=False, seed=0):
    from gptoss_torch.model import Model
    from gptoss_torch.train.init import init_for_training
    from gptoss_torch.train.loop import TrainSettings
    aux_weight = TrainSettings().aux_weight
    steps = chain()
    gpt2_dropout = steps[0][1].dropout
    entries = []
    for p in ([gpt2_dropout] if quick else [gpt2_dropout, 0.0]):
        ref = RefGPT(RefConfig(dropout=p), seed).train()
        entries.append(Entry(f"ref-nanogpt (dropout {p:g})", "plain PyTorch GPT, nanoGPT style", "ref", ref,
                             lambda x, y, m=ref: m(x, y)[1]))
    changes = chain_changes()
    seen, prev = {}, None  # trainable config -> the first step that has it
    for name, cfg in (steps[:1] if quick else steps):
        tcfg = twin_config(cfg)
        if prev is not None and tcfg.head_dim != prev.head_dim and tcfg != prev.replace(head_dim=tcfg.head_dim):
            # scale_down widens the attention (q_dim != d_model, as in gpt-oss) in the same step as other changes:
            # measure the widening alone first, so that the step's own feature gets a cost of its own
            wide = prev.replace(name=f"{prev.name}+head_dim{tcfg.head_dim}", head_dim=tcfg.head_dim)
            model = init_for_training(Model(wide), seed).train()
            entries.append(Entry(f"({name} split) attention width", f"not a chain step: the previous step with "
                                 f"{name}'s head_dim; here: {scaled_changes(prev, wide)}", "twin", model,
                                 lambda x, y, m=model: m.loss(x, y, aux_weight)[0]))
            prev = wide
        what = f"{changes[name]}; here: {scaled_changes(prev, tcfg)}"
        prev = tcfg
        if tcfg in seen:
            what = f"{changes[name]}; training runs on float experts (trainable_config), so: the same model"
            entries.append(Entry(name, what, "twin", None, None, same_as=seen[tcfg]))
            continue
        seen[tcfg] = name
        model = init_for_training(Model(tcfg), seed).train()
        entries.append(Entry(name, what, "twin", model, lambda x, y, m=model: m.loss(x, y, aux_weight)[0]))
    for e in entries:
        if e.model is not None:
            e.opt, e.times = optimizer(e.model), []
    return entries


def train_step(e, x, y):
    """One step as gptoss_torch.train.loop.train takes it."""
    loss = e.loss(x, y)
    e.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(e.model.parameters(), 1.0)
    e.opt.step()
    return float(loss.detach())


def batches(n, seed):
    """n random (x, y) byte batches [BATCH, CONTEXT], drawn the way the loop draws them (windows of one stream)."""
    from gptoss_torch.train.data import random_batch
    g = torch.Generator().manual_seed(seed)
    stream = torch.randint(0, 256, (1 << 20,), generator=g)
    return [random_batch(stream, BATCH, CONTEXT, g) for _ in range(n)]


def cpu_busy():
    """(seconds the whole machine was busy, seconds this process ran) so far, from /proc/stat and os.times()."""
    t = os.times()
    mine = t.user + t.system
    try:
        with open("/proc/stat") as f:
            v = [int(n) for n in f.readline().split()[1:]]
        return (sum(v) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK"), mine  # all but idle and iowait
    except (OSError, ValueError):
        return None, mine


def measure(entries, rounds, steps, warmup, log=print):
    """Warm-up steps for every model, then rounds x steps sweeps; a sweep is one step of every model, back to back,
    the order rotating from sweep to sweep. Fills e.times and e.others (CPU cores other processes kept busy during
    each timed step) and returns the sweeps as [{name: seconds}, ...]."""
    live = [e for e in entries if e.model is not None]
    sweeps = []
    try:
        for e in live:
            e.others = []
            for x, y in batches(warmup, seed=1):
                train_step(e, x, y)
        _measure_rounds(live, rounds, steps, sweeps, log)
    except Stopped as stop:  # SIGTERM / Ctrl-C: report the sweeps completed so far
        log(f"stopped by {stop.args[0]} after {len(sweeps)} sweep(s)", file=sys.stderr, flush=True)
    return sweeps


class Stopped(Exception):
    pass


def _stop(signum, frame):
    raise Stopped(signal.Signals(signum).name)


def _measure_rounds(live, rounds, steps, sweeps, log):
    for r in range(rounds):
        for x, y in batches(steps, seed=100 + r):  # every model sees the same batches
            n = len(sweeps)
            sweep = {}
            for e in live[n % len(live):] + live[:n % len(live)]:
                busy0, mine0 = cpu_busy()
                t0 = time.perf_counter()
                train_step(e, x, y)
                dt = time.perf_counter() - t0
                busy1, mine1 = cpu_busy()
                e.times.append(dt)
                sweep[e.name] = dt
                if busy0 is not None:
                    e.others.append(max(0.0, (busy1 - busy0) - (mine1 - mine0)) / dt)
            sweeps.append(sweep)
        log(f"round {r + 1}/{rounds}: median s/step " + ", ".join(
            f"{e.name} {statistics.median(e.times[-steps:]):.2f}" for e in live), file=sys.stderr, flush=True)


# ---- report -----------------------------------------------------------------------------------------------------

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"


def n_params(model):
    return sum(p.numel() for p in model.parameters())


QUIET = 0.25  # a step counts as quiet when other processes kept at most this many cores busy during it


def report(entries, sweeps, rounds, steps, warmup, load_start, load_end, seconds, argv):
    by_name = {e.name: e for e in entries}
    tokens = BATCH * CONTEXT

    def src(e):  # the measured entry behind a row
        return by_name[e.same_as] if e.same_as else e

    def t(e):  # median seconds per step
        return statistics.median(src(e).times)

    def paired(a, b, sweeps=sweeps):
        """Median over the sweeps of time(a) / time(b): both measured back to back, so a neighbour's load that comes
        and goes falls on both (a ratio of two medians would mix quiet and busy moments)."""
        ratios = [sw[src(a).name] / sw[src(b).name] for sw in sweeps]
        return statistics.median(ratios) if ratios else float("nan")

    live = [e for e in entries if e.model is not None]
    quiet = [sw for k, sw in enumerate(sweeps) if all(e.others[k] <= QUIET for e in live if e.others)]
    refs = {e.model.config.dropout: e for e in entries if e.kind == "ref"}
    twins = [e for e in entries if e.kind == "twin"]
    base = twins[0]
    rows = ["| model | what changed | params | tok/s (median) | tok/s (best) | s/step (median) | time vs reference "
            "(same dropout) | time vs twin 00 | time vs previous row |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for e in entries:
        model = src(e).model
        tok, best = tokens / t(e), tokens / min(src(e).times)
        if e.kind == "ref":
            rows.append(f"| {e.name} | {e.what} | {n_params(model):,} | {tok:.0f} | {best:.0f} | {t(e):.3f} | 1.00x | "
                        f"| |")
            continue
        ref = refs.get(model.cfg.dropout)
        vs_ref = f"{paired(e, ref):.2f}x" if ref is not None else ""
        i = twins.index(e)
        vs_base = f"{paired(e, base):.2f}x" if i else "1.00x"
        vs_prev = f"{paired(e, twins[i - 1]):.2f}x" if i else ""
        label = e.name + (f" (= {e.same_as})" if e.same_as else "")
        rows.append(f"| twin {label} | {e.what} | {n_params(model):,} | {tok:.0f} | {best:.0f} | {t(e):.3f} | "
                    f"{vs_ref} | {vs_base} | {vs_prev} |")

    verdicts = []
    for e in twins[:2]:
        ref = refs.get(src(e).model.cfg.dropout)
        if ref is None:
            continue
        ratio = paired(e, ref)
        line = (f"- {e.name}: twin step time / reference step time = **{ratio:.2f}x** (median of {len(sweeps)} "
                f"paired steps; dropout {ref.model.config.dropout:g} on both; limit {LIMIT}x: "
                f"{'within' if ratio <= LIMIT else 'OVER'})")
        if quiet and len(quiet) < len(sweeps):
            line += f"; {paired(e, ref, quiet):.2f}x over the {len(quiet)} quiet sweeps"
        line += f"; best step vs best step {min(src(e).times) / min(ref.times):.2f}x"
        verdicts.append(line)
    others = sorted(x for e in live for x in (e.others or []))
    if others:
        busy = sum(x > QUIET for x in others) / len(others)
        load_line = (f"other processes during the timed steps: median {statistics.median(others):.2f} cores busy, "
                     f"max {others[-1]:.2f}; {100 * busy:.0f} % of the steps had more than {QUIET} core busy elsewhere "
                     f"({len(quiet)} of {len(sweeps)} sweeps entirely quiet)")
    else:
        load_line = "other processes during the timed steps: unknown (no /proc/stat)"
    head = [
        "# Training throughput, CPU float32: the gpt-oss twin at each chain step vs a nanoGPT-style GPT",
        "",
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.machine()}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; python {platform.python_version()}",
        f"date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; load average (1/5/15 min) at "
        f"start {load_start}, at end {load_end}",
        load_line,
        f"work: one training step = forward + loss + backward + clip_grad_norm_(1.0) + AdamW, batch {BATCH} x "
        f"{CONTEXT} = {tokens} tokens; d_model 128, 4 layers, 4 heads, byte vocabulary",
        f"protocol: {warmup} warm-up step(s) per model, then {rounds} round(s) x {steps} sweep(s); a sweep is one "
        f"step of every model, back to back, in an order that rotates; tok/s over the {rounds * steps} timed steps "
        f"per model; the ratio columns are medians of per-sweep paired ratios; run time {seconds:.0f} s "
        f"(`python benchmarks/train_throughput.py {' '.join(argv)}`)",
        "",
    ]
    return "\n".join(head + rows + [""] + verdicts) + "\n"


# ---- profile ----------------------------------------------------------------------------------------------------

def profile(entries, step_name, rows=20):
    """Self CPU time per op for one (warm) training step of the reference and of twin step `step_name`."""
    from torch.profiler import ProfilerActivity, profile as tprofile
    twin = next(e for e in entries if e.name == step_name)
    dropout = twin.model.cfg.dropout
    ref = next(e for e in entries if e.kind == "ref" and e.model.config.dropout == dropout)
    (x, y), = batches(1, seed=7)
    for e in (ref, twin):
        for _ in range(2):
            train_step(e, x, y)
        with tprofile(activities=[ProfilerActivity.CPU], record_shapes=False) as prof:
            train_step(e, x, y)
        print(f"## {e.name}\n")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="sweeps per round (one timed step of every model each)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per model before the first round")
    ap.add_argument("--quick", action="store_true", help="1 round x 2 steps, reference and twin 00 only (tests)")
    ap.add_argument("--write", action="store_true", help=f"also write the table to {os.path.relpath(RESULT)}")
    ap.add_argument("--profile", metavar="STEP", help="profile one step of the reference and of twin STEP instead")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.warmup = 1, 2, 1
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    entries = build_entries(quick=args.quick)
    if args.profile:
        profile(entries, args.profile)
        return
    load_start, t0 = loadavg(), time.perf_counter()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _stop)
    sweeps = measure(entries, args.rounds, args.steps, args.warmup)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    seconds = time.perf_counter() - t0
    if not sweeps:
        sys.exit("stopped before the first sweep was complete: nothing to report")
    text = report(entries, sweeps, args.rounds, args.steps, args.warmup, load_start, loadavg(), seconds, argv)
    if len(sweeps) < args.rounds * args.steps:
        text += f"\n(stopped early: {len(sweeps)} of {args.rounds * args.steps} sweeps measured)\n"
    print(text)
    if args.write:
        with open(RESULT, "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
