"""The fast decode step (gptoss_torch/fast/decode.py: fused q/k/v, RoPE table, F.rms_norm, masks once per step)
gives the NumPy oracle's logits token by token on every chain step and Qwen3, past the sliding window, in float64;
and GraphedDecoder (eager on a CPU, the code a CUDA graph captures) keeps its position on the device, serves one
conversation after another on the same buffers, and refuses a full cache."""

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import gptoss_np
from gptoss_np import get_config, scale_down
from gptoss_np.errors import InputError
from gptoss_torch.fast.cuda_graphs import GraphedDecoder, graphed_decoder
from gptoss_torch.fast.decode import FastDecoder
from gptoss_torch.model import Model

TOKENS = (np.arange(14) * 37 + 5) % 256  # past the tiny window of 4
STEPS = ["00-gpt2-xl", "03-rope", "05-gqa", "07-sinks", "09-mxfp4", "qwen3-30b-a3b"]


def twins(name, dtype=torch.float64):
    cfg = scale_down(get_config(name), window=4)
    w = gptoss_np.init_weights(cfg, seed=2)
    return gptoss_np.Model(cfg, w, dtype="float64"), Model.from_numpy(cfg, w, dtype=dtype)


def close(out, ref, tol=1e-12):
    ref = np.asarray(ref)
    err = np.abs(out.double().numpy() - ref).max() / np.abs(ref).max()
    assert err <= tol, err


@pytest.mark.parametrize("name", STEPS)
def test_fast_decode_step_gives_the_oracle_logits(name):
    oracle, twin = twins(name)
    full = oracle(TOKENS)
    cache = twin.new_cache(16)
    twin(torch.as_tensor(TOKENS[:3]), cache=cache)
    fast = FastDecoder(twin, 16)
    outs = []
    for i in range(3, len(TOKENS)):
        outs.append(fast.step(torch.tensor([[TOKENS[i]]]), torch.tensor([i]), cache)[0, 0])
        cache.length += 1
    close(torch.stack(outs), full[3:])


def test_fast_decode_in_bfloat16_within_its_rounding():
    oracle, twin = twins("gpt-oss-20b", torch.bfloat16)
    full = oracle(TOKENS)
    cache = twin.new_cache(16)
    twin(torch.as_tensor(TOKENS[:3]), cache=cache)
    fast = FastDecoder(twin, 16)
    outs = [fast.step(torch.tensor([[TOKENS[i]]]), torch.tensor([i]), cache)[0, 0] for i in range(3, 4)]
    assert outs[0].dtype == torch.float32
    close(torch.stack(outs), full[3:4], tol=3e-2)  # bf16 weights and activations, float32 attention scores


@pytest.mark.parametrize("name", ["gpt-oss-20b", "qwen3-30b-a3b"])
def test_fast_decode_on_a_cpu_rounds_as_model_run_in_bfloat16(name):
    """On a CPU the decoder's torch ops (fused q/k/v, F.rms_norm, the RoPE table) round as Model.run's: bit-equal
    logits, step after step past the window (its RoPE once summed two products with one rounding: addcmul)."""
    _, twin = twins(name, torch.bfloat16)
    fast_cache, plain_cache = twin.new_cache(16), twin.new_cache(16)
    for cache in (fast_cache, plain_cache):
        twin(torch.as_tensor(TOKENS[:3]), cache=cache)
    fast = FastDecoder(twin, 16)
    for i in range(3, len(TOKENS)):
        token, pos = torch.tensor([[TOKENS[i]]]), torch.tensor([i])
        got = fast.step(token, pos, fast_cache)
        want = twin.run(token, pos, plain_cache)
        fast_cache.length += 1
        plain_cache.length += 1
        assert torch.equal(got, want), (i, int((got != want).sum()))


def storage_bytes(tensors):
    """Bytes of the distinct storages behind `tensors` (what they hold in memory, shared storage counted once)."""
    return sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}.values())


@pytest.mark.parametrize("name", ["07-sinks", "qwen3-30b-a3b"])  # q/k/v with biases; QK-norm
def test_the_fused_qkv_is_the_models_own_weights(name):
    """FastDecoder's one q/k/v matrix a layer holds no second copy: the module's q, k and v become views of it, a
    second decoder on the model reuses it, and a change to the model's weights reaches the decoder's step."""
    oracle, twin = twins(name)
    params = list(twin.parameters())
    before = storage_bytes(params)
    fast = FastDecoder(twin, 16)
    held = [t for qkv in fast.qkv for t in qkv if t is not None]
    assert storage_bytes(params + held) == before  # a copy (control: torch.cat of the three) would add its bytes
    assert storage_bytes(params + [torch.cat([b.attn.q.weight, b.attn.k.weight]) for b in twin.layers]) > before
    assert [id(p) for p in twin.parameters()] == [id(p) for p in params]  # the Parameter objects stay
    again = FastDecoder(twin, 16)
    assert [w.data_ptr() for w, _ in again.qkv] == [w.data_ptr() for w, _ in fast.qkv]
    with torch.no_grad():  # e.g. an optimizer step: in place on the module's parameters
        for b in twin.layers:
            b.attn.k.weight.mul_(1.5)
            b.attn.v.weight.add_(0.01)
    cache, ref_cache = twin.new_cache(16), twin.new_cache(16)
    twin(torch.as_tensor(TOKENS[:3]), cache=cache)
    twin(torch.as_tensor(TOKENS[:3]), cache=ref_cache)
    step = (torch.tensor([[TOKENS[3]]]), torch.tensor([3]))
    close(fast.step(*step, cache)[0, 0], twin.run(*step, ref_cache)[0, 0].numpy())


def test_one_decoder_serves_conversation_after_conversation():
    oracle, twin = twins("gpt-oss-20b")
    full = oracle(TOKENS)
    dec = GraphedDecoder(twin, twin.new_cache(16))
    for turn in range(2):
        if turn:
            dec.reset()
            assert dec.cache.length == 0 and all(int((lc.pos >= 0).sum()) == 0 for lc in dec.cache.layers)
        first = dec.prefill(torch.as_tensor(TOKENS[:3]))
        steps = [dec.step(t) for t in TOKENS[3:8]]
        steps.append(dec.step(torch.tensor(TOKENS[8])))  # a device tensor (the previous argmax) is accepted
        more = dec.prefill(torch.as_tensor(TOKENS[9:11]))  # a user turn through the plain forward, mid-way
        steps2 = [dec.step(t) for t in TOKENS[11:]]
        assert int(dec.pos) == dec.cache.length == len(TOKENS)  # the device counter followed every path
        close(torch.cat([first, torch.stack(steps), more, torch.stack(steps2)]), full)


def test_a_graph_per_process_and_a_full_cache():
    _, twin = twins("gpt-oss-20b")
    a = graphed_decoder(twin, 8)
    a.prefill(torch.arange(8))
    with pytest.raises(InputError, match="max_tokens=8"):
        a.step(1)
    b = graphed_decoder(twin, 8)
    assert b is a and b.cache.length == 0  # the same decoder, reset for the next conversation
    b.step(1)
    assert int(b.pos) == 1


def test_the_warm_up_before_capture_stays_inside_the_cache():
    """A graph's warm-up runs decode steps before capture (on CUDA; called directly here): with fewer free slots than
    warm-up steps it must write the cache's last slot again, not past its end (the fused cache write checks no
    bounds on a GPU; on a CPU the write past the end raises, so this can fail)."""
    _, twin = twins("gpt-oss-20b")
    dec = GraphedDecoder(twin, twin.new_cache(4))
    dec.prefill(torch.arange(3))  # one slot left, two warm-up steps
    dec._warm_up(2)
    assert int(dec.pos) == 4 and dec.cache.length == 3


class NoHostSync(TorchDispatchMode):
    """Raise on the ops that make a CUDA step wait for the device or take data-dependent shapes, which a CUDA graph
    cannot capture: .item() / int() / bool() of a tensor, nonzero, boolean indexing, bincount, unique."""

    SYNCING = {"aten._local_scalar_dense", "aten.nonzero", "aten.masked_select", "aten.bincount", "aten.unique_dim",
               "aten._unique2", "aten.unique_consecutive"}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        bool_index = name in ("aten.index", "aten.index_put", "aten.index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or ()) if i is not None)
        if name in self.SYNCING or bool_index:
            raise AssertionError(f"host sync or data-dependent shape in a decode step: {name}")
        return func(*args, **(kwargs or {}))


def no_tolist(self):
    raise AssertionError("host sync in a decode step: Tensor.tolist")


@pytest.mark.parametrize("fast", [True, False])
def test_the_graphed_step_never_waits_for_the_device(fast, monkeypatch):
    """What GraphedDecoder captures (FastDecoder.step, or Model.run), with the MoE path CUDA takes for a decode
    step (gathered: the fused Triton kernels replace it where they run), dispatches no op that syncs the host."""
    _, twin = twins("gpt-oss-20b", torch.float32)
    for block in twin.layers:
        block.mlp.path = "gathered"
    cache = twin.new_cache(16)
    twin(torch.as_tensor(TOKENS[:5]), cache=cache)
    dec = GraphedDecoder(twin, cache, fast=fast)
    monkeypatch.setattr(torch.Tensor, "tolist", no_tolist)
    with NoHostSync():
        dec._run()
    for block in twin.layers:  # the prefill's per-expert path does sync (bincount, tolist): the check can fail
        block.mlp.path = "per_expert"
    with pytest.raises(AssertionError, match="host sync"), NoHostSync():
        dec._run()


def test_graph_replay_returns_logits_of_its_own():
    """A replay rewrites the captured step's output buffer: step() must hand back a copy, or a list of steps would
    hold the last step's logits in every row. A stand-in graph replays the eager step into one buffer as CUDA does."""
    oracle, twin = twins("gpt-oss-20b")
    full = oracle(TOKENS)
    dec = GraphedDecoder(twin, twin.new_cache(16))

    class Replay:
        def replay(self):
            dec.logits.copy_(dec._run())

    dec.graph, dec.logits = Replay(), torch.empty(1, 1, twin.cfg.vocab_size, dtype=torch.float64)
    first = dec.prefill(torch.as_tensor(TOKENS[:3]))
    close(torch.cat([first, torch.stack([dec.step(t) for t in TOKENS[3:8]])]), full[:8])
