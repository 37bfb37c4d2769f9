"""gptoss_torch speed: prefill tok/s, batch-1 decode tok/s at given contexts, peak GPU memory, and decode as a %
of the memory-bandwidth ceiling (bytes a token must read / measured device copy bandwidth).

    python benchmarks/torch_bench.py --checkpoint DIR [--device cuda] [--prompt 2048] [--contexts 1024 4096]
    python benchmarks/torch_bench.py --write-preset gpt-oss-20b --checkpoint /tmp/oss20b   # write it first

On CUDA, decode replays one CUDA graph per token and MXFP4 experts go through the fused Triton matvec; with
--prompt-kernels a prompt goes through the grouped MoE and flash-attention kernels (not yet measured on a GPU),
its MoE on torch's grouped matrix multiply instead with --prompt-moe grouped_mm.
"""

import argparse
import datetime
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gptoss_torch  # noqa: E402
from gptoss_np.accounting import decode_bytes_per_token  # noqa: E402
from gptoss_np.cli import at_least  # noqa: E402
from gptoss_np.errors import GptOssError  # noqa: E402
from gptoss_torch.fast import enable as enable_fast  # noqa: E402
from gptoss_torch.fast.cuda_graphs import GraphedDecoder  # noqa: E402
from gptoss_torch.loader import check_device  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def copy_bandwidth(device, nbytes=1 << 30):
    """Bytes moved per second by a device copy (read + write counted), best of 5."""
    a = torch.empty(nbytes // 2, dtype=torch.uint8, device=device)
    b = torch.empty_like(a)
    best = 0.0
    for _ in range(5):
        sync(device)
        t0 = time.perf_counter()
        b.copy_(a)
        sync(device)
        best = max(best, 2 * a.numel() / (time.perf_counter() - t0))
    return best


def decode_rate(model, context, n_tokens, device, use_graph=True):
    """Fill a cache with `context` tokens (prefill), then time n_tokens single-token steps."""
    cache = model.new_cache(context + n_tokens + 1)
    prompt = torch.randint(0, model.cfg.vocab_size, (context,), device=device)
    model(prompt, cache=cache, last_only=True)  # generation needs the last position's logits only
    dec = GraphedDecoder(model, cache) if use_graph else None
    tok = 0
    sync(device)
    t0 = time.perf_counter()
    for _ in range(n_tokens):
        logits = dec.step(tok) if dec else model(torch.tensor([tok], device=device), cache=cache)[0]
        tok = int(logits.argmax())  # a host sync per token, as real generation has
    sync(device)
    return n_tokens / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--write-preset", default=None, help="write this preset's checkpoint to --checkpoint first")
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=None, choices=["float32", "float64", "bfloat16"])
    ap.add_argument("--prompt", type=at_least(1), default=2048)
    ap.add_argument("--contexts", type=at_least(1), nargs="+", default=[1024, 4096])
    ap.add_argument("--decode-tokens", type=at_least(1), default=64)
    ap.add_argument("--no-graph", action="store_true")
    ap.add_argument("--no-triton", action="store_true")
    ap.add_argument("--prompt-kernels", action="store_true", help="the grouped MoE and flash attention for prompts")
    ap.add_argument("--prompt-moe", choices=["triton", "grouped_mm"], default="triton",
                    help="with --prompt-kernels: the prompt's MoE on the Triton grouped kernel or torch's grouped_mm")
    args = ap.parse_args()
    try:
        bench(args)
    except GptOssError as e:  # a checkpoint, device or size the package refuses: its one line, not a traceback
        ap.error(str(e))


def bench(args):
    """Load (or write, then load) the checkpoint, time prefill and decode, print the table."""
    check_device(args.device, "--device")  # before a preset's checkpoint is written
    if args.write_preset:
        import gptoss_np
        from gptoss_np.formats.writer import write_checkpoint
        write_checkpoint(gptoss_np.get_config(args.write_preset), args.checkpoint, layout="hf")
    t0 = time.perf_counter()
    model = gptoss_torch.load_model(args.checkpoint, device=args.device, dtype=args.dtype)
    device = model.device
    sync(device)
    load_s = time.perf_counter() - t0
    fused = {} if args.no_triton else enable_fast(model, prefill=args.prompt_kernels, prefill_moe=args.prompt_moe)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    prompt = torch.randint(0, model.cfg.vocab_size, (args.prompt,), device=device)
    model(prompt[:128], last_only=True)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    model(prompt, last_only=True)  # a 4k prompt's every-position logits would take 3.3 GB of the peak
    sync(device)
    prefill = args.prompt / (time.perf_counter() - t0)
    bw = copy_bandwidth(device)
    rows = [("prefill", f"{args.prompt}-token prompt", f"{prefill:,.0f} tok/s", "")]
    for ctx in args.contexts:
        rate = decode_rate(model, ctx, args.decode_tokens, device, use_graph=not args.no_graph)
        need = decode_bytes_per_token(model.cfg, ctx, kv_dtype_bytes=model.embed.weight.element_size())
        ceiling = bw / need
        rows.append(("decode bs1", f"at {ctx} context", f"{rate:,.1f} tok/s",
                     f"{100 * rate / ceiling:.0f} % of {ceiling:,.0f} tok/s ({need / 1e9:.2f} GB/token)"))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    name = torch.cuda.get_device_name() if device.type == "cuda" else (platform.processor() or platform.machine())
    print(f"# gptoss_torch benchmark, {datetime.date.today()}")
    kernels = ", ".join(k for k, v in fused.items() if v) or "none"
    print(f"device: {name}; torch {torch.__version__}; dtype {model.dtype}; model {model.cfg.name} "
          f"({model.cfg.n_layers} layers, {model.cfg.n_experts} experts); fused kernels: {kernels}; "
          f"CUDA graphs: {device.type == 'cuda' and not args.no_graph}")
    print(f"load {load_s:.1f} s; peak GPU memory {peak:.2f} GiB; measured copy bandwidth {bw / 1e9:,.0f} GB/s\n")
    print("| phase | work | speed | vs bandwidth ceiling |")
    print("|---|---|---:|---|")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
