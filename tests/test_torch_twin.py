"""The torch twin against the NumPy oracle: every trace point of every family, cached decode, MXFP4 decode bit
for bit, the fused Triton kernel (CPU interpreter), and loading real-layout checkpoints."""

import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
import torch

import gptoss_np
import gptoss_torch
from gptoss_np import chain, get_config, scale_down, trace_names
from gptoss_np.mxfp4 import mxfp4_decode as np_decode
from gptoss_torch.fast.cuda_graphs import GraphedDecoder
from gptoss_torch.model import Model
from gptoss_torch.mxfp4 import mxfp4_decode as torch_decode

CONFIGS = chain() + [("qwen3-30b-a3b", get_config("qwen3-30b-a3b")), ("gpt-oss-120b", get_config("gpt-oss-120b"))]
IDS = [n for n, _ in CONFIGS]
TOKENS = (np.arange(23) * 37 + 5) % 256  # longer than the tiny window (4)
# max |torch - numpy| / max |numpy| per trace point: float64 sees only summation order; float32 its rounding
TOL = {torch.float64: 1e-12, torch.float32: 1e-5}


def twins(cfg, dtype, seed=1):
    small = scale_down(cfg, window=4)
    w = gptoss_np.init_weights(small, seed=seed)
    np_dtype = "float64" if dtype == torch.float64 else "float32"
    return gptoss_np.Model(small, w, dtype=np_dtype), Model.from_numpy(small, w, dtype=dtype)


def worst_errors(ref, test):
    assert set(ref) == set(test), set(ref) ^ set(test)
    out = {}
    for name, a in ref.items():
        b = test[name].cpu().numpy()
        if np.issubdtype(a.dtype, np.integer):
            out[name] = float((np.sort(a, -1) != np.sort(b, -1)).sum())
        else:
            out[name] = float(np.abs(a - b).max() / max(np.abs(a).max(), 1e-30))
    return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_every_trace_point_equals_the_oracle(name, cfg, dtype):
    oracle, twin = twins(cfg, dtype)
    _, ref = oracle(TOKENS, trace=True)
    _, test = twin(torch.as_tensor(TOKENS), trace=True)
    assert list(test) == trace_names(oracle.cfg)  # the same names, in the same order
    errs = worst_errors(ref, test)
    bad = {k: v for k, v in errs.items() if v > TOL[dtype]}
    assert not bad, f"worst: {sorted(bad.items(), key=lambda kv: -kv[1])[:5]}"


@pytest.mark.parametrize("name", ["08-moe", "09-mxfp4", "qwen3-30b-a3b"])
def test_gathered_and_per_expert_moe_agree(name):
    _, twin = twins(get_config(name), torch.float64)
    for path in ("gathered", "per_expert"):
        for block in twin.layers:
            block.mlp.path = path
        if path == "gathered":
            a = twin(torch.as_tensor(TOKENS))
    b = twin(torch.as_tensor(TOKENS))
    assert (a - b).abs().max() <= 1e-12 * a.abs().max()


@pytest.mark.parametrize("name,cfg", CONFIGS, ids=IDS)
def test_cached_decoding_equals_full_forward(name, cfg):
    _, twin = twins(cfg, torch.float64)
    full = twin(torch.as_tensor(TOKENS))
    for chunks in ([1] * len(TOKENS), [6, 1, 1, 5, 1, 9]):
        cache, outs, i = twin.new_cache(32), [], 0
        for n in chunks:
            outs.append(twin(torch.as_tensor(TOKENS[i:i + n]), cache=cache))
            i += n
        assert (torch.cat(outs) - full).abs().max() <= 1e-12 * full.abs().max()
    for w, stored in zip(twin.cfg.layer_windows, cache.stored_tokens()):
        assert stored == (len(TOKENS) if w is None else w)  # a sliding layer's ring holds `window` slots


def test_static_shape_decoder_equals_full_forward():
    """GraphedDecoder runs the graph-capturable step (eager on a CPU): same logits as the full forward."""
    _, twin = twins(get_config("gpt-oss-20b"), torch.float64)
    full = twin(torch.as_tensor(TOKENS))
    cache = twin.new_cache(32)
    twin(torch.as_tensor(TOKENS[:5]), cache=cache)
    dec = GraphedDecoder(twin, cache)
    steps = torch.stack([dec.step(t) for t in TOKENS[5:]])
    assert (steps - full[5:]).abs().max() <= 1e-12 * full.abs().max()


def all_bytes_and_scales():
    blocks = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)  # every byte value, as 16 blocks of 16 bytes
    scales = np.array([[0, 1, 100, 120, 127, 130, 200, 252, 60, 126, 128, 140, 2, 250, 251, 127]], np.uint8)
    return blocks, scales


def test_torch_mxfp4_decode_equals_numpy_bit_for_bit():
    blocks, scales = all_bytes_and_scales()
    ref = np_decode(blocks, scales, dtype=np.float32)
    out = torch_decode(torch.from_numpy(blocks), torch.from_numpy(scales), torch.float32).numpy()
    np.testing.assert_array_equal(out.view(np.uint32), ref.view(np.uint32))
    ref16 = ref.astype(ml_dtypes.bfloat16).view(np.uint16)
    out16 = torch_decode(torch.from_numpy(blocks), torch.from_numpy(scales), torch.bfloat16).view(torch.int16)
    np.testing.assert_array_equal(out16.numpy().view(np.uint16), ref16)


TRITON_CHECK = r"""
import os, torch, numpy as np, gptoss_np
from gptoss_torch.model import Model
from gptoss_torch.mxfp4 import mxfp4_decode
from gptoss_torch.fast.mxfp4_triton import mxfp4_matvec, enable
g = torch.Generator().manual_seed(0)
b = torch.randint(0, 256, (3, 40, 4, 16), dtype=torch.uint8, generator=g)
s = torch.randint(120, 134, (3, 40, 4), dtype=torch.uint8, generator=g)
ids, x = torch.tensor([2, 0, 2]), torch.randn(3, 128, generator=g)
ref = torch.einsum("nrk,nk->nr", mxfp4_decode(b[ids], s[ids], torch.float64), x.double())
err = ((mxfp4_matvec(b, s, ids, x).double() - ref).abs().max() / ref.abs().max()).item()
assert err < 1e-6, err
cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"))
m = Model.from_numpy(cfg, gptoss_np.init_weights(cfg, seed=3))
toks = torch.arange(9)
c = m.new_cache(16); a = torch.cat([m(toks[i:i + 1], cache=c) for i in range(9)])
assert enable(m)
c = m.new_cache(16); f = torch.cat([m(toks[i:i + 1], cache=c) for i in range(9)])
err = ((a - f).abs().max() / a.abs().max()).item()
assert err < 1e-5, err
print("triton ok")
"""


def test_fused_triton_mxfp4_kernel_in_the_cpu_interpreter():
    pytest.importorskip("triton")
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=os.getcwd())
    r = subprocess.run([sys.executable, "-c", TRITON_CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "triton ok" in r.stdout, r.stderr[-2000:]


@pytest.mark.parametrize("family", ["gpt2", "gpt_oss", "qwen3_moe"])
def test_load_model_equals_the_oracle_on_a_checkpoint(tmp_path, family):
    from hf_models import tiny_gpt2, tiny_gpt_oss, tiny_qwen3_moe
    {"gpt2": tiny_gpt2, "gpt_oss": tiny_gpt_oss, "qwen3_moe": tiny_qwen3_moe}[family]().save_pretrained(tmp_path)
    oracle = gptoss_np.load_model(tmp_path, progress=False)
    twin = gptoss_torch.load_model(tmp_path, device="cpu", dtype="float32", progress=False)
    tokens = TOKENS % oracle.cfg.vocab_size
    ref = oracle(tokens)
    assert np.abs(twin(torch.as_tensor(tokens)).numpy() - ref).max() <= 1e-5 * np.abs(ref).max()


def test_bad_tokens_and_full_cache_name_the_argument():
    _, twin = twins(get_config("gpt-oss-20b"), torch.float32)
    with pytest.raises(gptoss_np.InputError, match="vocab_size"):
        twin(torch.tensor([1, 256]))
    cache = twin.new_cache(8)
    twin(torch.arange(6), cache=cache)
    with pytest.raises(gptoss_np.InputError, match="max_tokens=8"):
        twin(torch.arange(3), cache=cache)


def test_compare_command(tmp_path, capsys):
    from hf_models import tiny_gpt_oss
    from gptoss_torch.cli import main
    tiny_gpt_oss().save_pretrained(tmp_path)
    assert main(["compare", "--checkpoint", str(tmp_path), "--device", "cpu", "--dtype", "float32", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "trace points agree" in out and "layers.0.attn.q" in out  # q/k/v are compared too (both have them)


def test_weights_stay_at_their_stored_width_on_the_device(tmp_path):
    """bf16 tensors stay bf16 and MXFP4 experts stay packed: the model holds exactly the checkpoint's bytes
    (accounting.weight_bytes), which for gpt-oss-20b leaves room for a 4k-token cache in 16 GB."""
    small = scale_down(get_config("gpt-oss-20b"))
    twin = Model.from_numpy(small, gptoss_np.init_weights(small), dtype=torch.bfloat16)
    held = sum(t.nbytes for t in twin.state_dict().values())
    assert held == gptoss_np.weight_bytes(small)["total"]
    full = get_config("gpt-oss-20b")
    need = gptoss_np.weight_bytes(full)["total"] + gptoss_np.kv_cache_bytes(full, 4096)
    assert need < 15 * 2**30  # 13.9 GB: under 16 GB with ~1 GiB left for activations and the CUDA context


def test_chat_on_the_torch_twin_streams_what_the_oracle_generates(tmp_path, capsys):
    """Greedy harmony chat: the torch twin (float64) and the NumPy oracle produce the same tokens."""
    import json

    from safetensors.numpy import save_file
    from test_chat import tiny_gpt_oss_config, tiny_gpt_oss_tensors

    from gptoss_np.text.chat import chat
    from gptoss_torch.cli import main
    from gptoss_torch.chat import ChatModel
    save_file(tiny_gpt_oss_tensors(), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps(tiny_gpt_oss_config()))
    kw = dict(max_new_tokens=12, temperature=0.0, out=open(os.devnull, "w"), err=open(os.devnull, "w"))
    ref = chat(str(tmp_path), "What is 2 + 2?", **kw)
    twin = gptoss_torch.load_model(tmp_path, device="cpu", dtype="float64", progress=False)
    got = chat(str(tmp_path), "What is 2 + 2?", model=ChatModel(twin, 512), **kw)
    assert got.tokens == ref.tokens and len(got.tokens) > 0
    # the GPU's path on the CPU: single tokens through the process's one decoder, reused by the next conversation
    via = ChatModel(twin, 512, decoder=True)
    first = chat(str(tmp_path), "What is 2 + 2?", model=via, **kw)
    decoder = via._decoder
    other = ChatModel(twin, 512, decoder=True)
    again = chat(str(tmp_path), "What is 2 + 2?", model=other, **kw)
    assert first.tokens == again.tokens == ref.tokens and other._decoder is decoder
    assert main(["chat", "--checkpoint", str(tmp_path), "--max-tokens", "4", "--temperature", "0", "--device", "cpu",
                 "--dtype", "float32", "hello"]) == 0
    assert "4 tokens" in capsys.readouterr().err
