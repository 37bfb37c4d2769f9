"""The training loop: AdamW, linear warm-up then cosine decay, gradient clipping, a fixed seed, periodic
validation, a tqdm bar with the running loss, and a JSONL log (one record per logged step)."""

from __future__ import annotations

import dataclasses
import json
import math
import numbers
import time

import torch

from gptoss_np.errors import InputError

from ..model import Model
from .data import random_batch, validation_batches
from .init import init_for_training


@dataclasses.dataclass
class TrainSettings:
    steps: int = 150                # optimizer steps
    batch_size: int = 16
    context: int = 256              # tokens per training window
    lr: float = 3e-3                # peak learning rate
    min_lr_ratio: float = 0.1       # the cosine ends at lr * min_lr_ratio
    warmup: int = 15                # linear warm-up steps
    weight_decay: float = 0.1       # on tensors of dim >= 2 (matrices; also the stacked expert biases): param_groups
    betas: tuple = (0.9, 0.95)
    grad_clip: float = 1.0
    aux_weight: float = 0.01        # MoE load-balancing loss weight (Switch Transformer's alpha)
    eval_every: int = 50            # validate every this many steps (and at the end)
    eval_batches: int = 8           # validation batches of batch_size windows each (None: the whole split)
    seed: int = 0
    threads: int | None = None      # torch CPU threads (None: leave as is)

    @property
    def tokens(self):
        """Training tokens seen: steps x batch x context."""
        return self.steps * self.batch_size * self.context


def check_settings(s):
    """Every TrainSettings field in its range, else an InputError naming the field and the range: a zero batch or
    step count, a NaN or negative learning rate and the like would otherwise fail deep inside torch, divide by zero
    or train nothing without a word."""
    def integer(name, low, none_ok=False):
        v = getattr(s, name)
        if v is None and none_ok:
            return
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low:
            raise InputError(f"TrainSettings.{name} {v!r}: expected an integer >= {low}"
                             + (" or None" if none_ok else ""))

    def real(name, low, high=math.inf, low_open=False, high_open=False, finite=True):
        v = getattr(s, name)
        ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and not math.isnan(v) and \
            (v > low if low_open else v >= low) and (v < high if high_open else v <= high) and \
            (math.isfinite(v) or not finite)
        if not ok:
            want = f"{'>' if low_open else '>='} {low:g}" if high == math.inf else \
                f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            raise InputError(f"TrainSettings.{name} {v!r}: expected a {'finite ' if finite else ''}number {want}")

    for name, low in (("steps", 1), ("batch_size", 1), ("context", 1), ("warmup", 0), ("eval_every", 1),
                      ("seed", 0)):
        integer(name, low)
    integer("eval_batches", 1, none_ok=True)
    integer("threads", 1, none_ok=True)
    real("lr", 0, low_open=True)
    real("min_lr_ratio", 0, 1)
    real("weight_decay", 0)
    real("grad_clip", 0, low_open=True, finite=False)  # inf: no clipping
    real("aux_weight", 0)
    if not (isinstance(s.betas, (tuple, list)) and len(s.betas) == 2 and
            all(isinstance(b, numbers.Real) and 0 <= b < 1 for b in s.betas)):
        raise InputError(f"TrainSettings.betas {s.betas!r}: expected two numbers in [0, 1)")


def learning_rate(step, s):
    """lr at optimizer step `step` (0-based): linear warm-up to s.lr, then cosine down to s.lr * s.min_lr_ratio."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    progress = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def param_groups(model, weight_decay):
    """AdamW groups: decay what has dim >= 2 (matrices, embeddings included, as nanoGPT does), not norms, biases and
    sinks, except that the MoE's stacked expert biases [E, out] are 2-D and so decayed too: the shipped models and the
    ladder were trained so (tests/test_training.py marks it; exempting them means retraining both)."""
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    rest = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


@torch.no_grad()
def evaluate(model, batches, aux_weight=0.0):
    """Mean cross-entropy (nats per token) over fixed batches, weighted by their token counts, in eval mode."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for x, y in batches:
        _, parts = model.loss(x, y)
        n = int((y != -100).sum())  # positions with a target (all of them unless masked)
        total += float(parts["ce"]) * n
        count += n
    model.train(was_training)
    return total / count


def trainable_config(cfg):
    """Training runs on float experts: MXFP4 is a storage format, applied after training (export.quantize)."""
    return cfg.replace(expert_quant="none") if cfg.expert_quant == "mxfp4" else cfg


def train(cfg, train_tokens, val_tokens, settings=None, log=None, progress=True, model=None, train_targets=None,
          val_targets=None):
    """Train a fresh `cfg` model (or `model`) on the token tensors; returns (model, history).
    history: a list of dicts {step, lr, loss, ce, aux, tokens, seconds, val_loss?}, also written to `log` (a path,
    JSONL) when given. Deterministic on CPU: the same settings and seed give the same losses. *_targets: the same ids
    with -100 where no loss is wanted (see data.random_batch)."""
    s = settings or TrainSettings()
    check_settings(s)
    threads_before = torch.get_num_threads()
    if s.threads:  # small models on a shared machine: 1 thread avoids OpenMP spinning against other processes
        torch.set_num_threads(s.threads)
    torch.manual_seed(s.seed)
    if model is None:
        model = init_for_training(Model(trainable_config(cfg)), seed=s.seed)
    model.train()
    opt = torch.optim.AdamW(param_groups(model, s.weight_decay), lr=s.lr, betas=s.betas, fused=False)
    data_gen = torch.Generator().manual_seed(s.seed + 1)
    val = validation_batches(val_tokens, s.batch_size, s.context, s.eval_batches, val_targets)
    history, out = [], open(log, "w", encoding="utf-8") if log else None
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=s.steps, desc=f"train {cfg.name}", unit="step")
    t0, running = time.perf_counter(), None
    try:
        for step in range(s.steps):
            lr = learning_rate(step, s)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = random_batch(train_tokens, s.batch_size, s.context, data_gen, train_targets)
            loss, parts = model.loss(x, y, s.aux_weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), s.grad_clip)
            opt.step()
            ce = float(parts["ce"])
            running = ce if running is None else 0.9 * running + 0.1 * ce
            rec = {"step": step + 1, "lr": lr, "loss": float(loss.detach()), "ce": ce, "aux": float(parts["aux"]),
                   "tokens": (step + 1) * s.batch_size * s.context, "seconds": time.perf_counter() - t0}
            if (step + 1) % s.eval_every == 0 or step + 1 == s.steps:
                rec["val_loss"] = evaluate(model, val)
            history.append(rec)
            if out:
                out.write(json.dumps(rec) + "\n")
                out.flush()
            if bar is not None:
                bar.set_postfix(loss=f"{running:.3f}", **({"val": f"{rec['val_loss']:.3f}"} if "val_loss" in rec
                                                          else {}))
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        if out:
            out.close()
        torch.set_num_threads(threads_before)
    model.eval()
    return model, history
