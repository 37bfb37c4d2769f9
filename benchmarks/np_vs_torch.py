"""NumPy oracle vs transformers (PyTorch) on the same checkpoint, CPU, float32: prefill and cached decode.

    python benchmarks/np_vs_torch.py [--family gpt_oss|qwen3_moe|gpt2] [--prompt 256] [--decode 16]

Writes a mid-sized random checkpoint with transformers' save_pretrained (so both sides read the same file), loads
it with gptoss_np.load_model and with transformers, checks the logits agree, and prints a table with the machine.
"""

import argparse
import os
import platform
import tempfile
import time

import numpy as np
import torch

import sys
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import gptoss_np  # noqa: E402
from gptoss_np.cli import at_least  # noqa: E402


def make_checkpoint(family, path, seed=0):
    import transformers
    torch.manual_seed(seed)
    if family == "gpt_oss":
        cfg = transformers.GptOssConfig(vocab_size=32000, hidden_size=1024, intermediate_size=1024,
                                        num_hidden_layers=4, num_attention_heads=16, num_key_value_heads=4,
                                        head_dim=64, num_local_experts=32, num_experts_per_tok=4, sliding_window=128)
        model = transformers.GptOssForCausalLM(cfg)
    elif family == "qwen3_moe":
        cfg = transformers.Qwen3MoeConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2048,
                                          moe_intermediate_size=384, num_hidden_layers=4, num_attention_heads=16,
                                          num_key_value_heads=4, head_dim=64, num_experts=64, num_experts_per_tok=8,
                                          norm_topk_prob=True)
        model = transformers.Qwen3MoeForCausalLM(cfg)
    else:
        cfg = transformers.GPT2Config(vocab_size=32000, n_embd=1024, n_layer=8, n_head=16, n_positions=2048)
        model = transformers.GPT2LMHeadModel(cfg)
    with torch.no_grad():  # random routers (transformers starts them at zero: every token would tie)
        for name, p in model.named_parameters():
            if "norm" not in name and ".ln_" not in name:
                router = "router" in name or name.endswith("mlp.gate.weight")
                p.normal_(0, 1.0 / cfg.hidden_size ** 0.5 if router else 0.02)  # router logits of order 1
    model.save_pretrained(path)


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", default="gpt_oss", choices=["gpt_oss", "qwen3_moe", "gpt2"])
    ap.add_argument("--prompt", type=at_least(1), default=256)
    ap.add_argument("--decode", type=at_least(1), default=16)
    ap.add_argument("--repeat", type=at_least(1), default=3)
    args = ap.parse_args()
    import transformers
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory() as d:
        make_checkpoint(args.family, d)
        np_model = gptoss_np.load_model(d, progress=False)
        hf = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    if args.prompt + args.decode > np_model.cfg.context_length:
        ap.error(f"--prompt {args.prompt} + --decode {args.decode}: expected at most the model's context, "
                 f"{np_model.cfg.context_length} tokens")
    tokens = np.random.default_rng(0).integers(0, np_model.cfg.vocab_size, args.prompt + args.decode)
    prompt, rest = tokens[: args.prompt], tokens[args.prompt:]
    t_prompt = torch.tensor(prompt)[None]

    err = np.abs(np_model(prompt) - hf(t_prompt).logits[0].numpy()).max()

    def np_decode():
        cache = np_model.new_cache()
        np_model(prompt, cache=cache)
        t0 = time.perf_counter()
        for t in rest:
            np_model(np.array([t]), cache=cache)
        return time.perf_counter() - t0

    def hf_decode():
        out = hf(t_prompt, use_cache=True)
        past = out.past_key_values
        t0 = time.perf_counter()
        for t in rest:
            past = hf(torch.tensor([[int(t)]]), past_key_values=past, use_cache=True).past_key_values
        return time.perf_counter() - t0

    rows = []
    np_pre = best_of(lambda: np_model(prompt), args.repeat)
    hf_pre = best_of(lambda: hf(t_prompt), args.repeat)
    np_dec = min(np_decode() for _ in range(args.repeat))
    hf_dec = min(hf_decode() for _ in range(args.repeat))
    rows.append(("prefill", f"{args.prompt} tokens", args.prompt / np_pre, args.prompt / hf_pre))
    rows.append(("decode", f"{args.decode} tokens after the prompt", args.decode / np_dec, args.decode / hf_dec))
    p = gptoss_np.count_params(np_model.cfg)
    print(f"# NumPy oracle vs transformers {transformers.__version__} / torch {torch.__version__}, float32, CPU")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, torch threads {torch.get_num_threads()}")
    print(f"model: {args.family} d={np_model.cfg.d_model} L={np_model.cfg.n_layers} "
          f"H={np_model.cfg.n_heads}/{np_model.cfg.n_kv_heads} E={np_model.cfg.n_experts}/k={np_model.cfg.top_k} "
          f"vocab={np_model.cfg.vocab_size}: {p['total'] / 1e6:.0f}M params, {p['active'] / 1e6:.0f}M active")
    print(f"logits max abs difference: {err:.2e}\n")
    print("| phase | work | gptoss_np tok/s | transformers tok/s | numpy time / torch time |")
    print("|---|---|---:|---:|---:|")
    for phase, work, a, b in rows:
        print(f"| {phase} | {work} | {a:,.1f} | {b:,.1f} | {b / a:.2f}x |")


if __name__ == "__main__":
    main()
