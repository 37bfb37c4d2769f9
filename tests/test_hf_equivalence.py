"""The oracle against Hugging Face transformers on tiny random models, saved with save_pretrained and read back
through our own loader: logits and every hidden state transformers exposes, in float32.

transformers' hidden_states are (embeddings, block 0 output, ..., block L-2 output, final-norm output): the
last block's raw output is replaced by the normed one, so it is compared with our `final_norm` trace point.
"""

import numpy as np
import pytest
import torch

import gptoss_np
from gptoss_np.mxfp4 import mxfp4_decode, mxfp4_encode
from gptoss_np.formats.safetensors_io import TensorStore, save_file
from hf_models import tiny_gpt2, tiny_gpt_oss, tiny_qwen3_moe

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # float32 on both sides; observed ~2e-6, the bound leaves room for BLAS summation order
TOKENS = np.array([3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50, 28, 84, 19])  # 20 > window 4


def hf_forward(model, tokens):
    with torch.no_grad():
        out = model(torch.tensor(tokens)[None], output_hidden_states=True)
    return out.logits[0].numpy(), [h[0].numpy() for h in out.hidden_states]


def assert_matches_hf(hf_model, path, tokens=TOKENS):
    hf_model.save_pretrained(path)
    model = gptoss_np.load_model(path, progress=False)
    logits, trace = model(tokens, trace=True)
    ref_logits, hidden = hf_forward(hf_model, tokens)
    L = model.cfg.n_layers
    ours = [trace["embed"]] + [trace[f"layers.{i}.residual"] for i in range(L - 1)] + [trace["final_norm"]]
    assert len(hidden) == len(ours)
    for i, (a, b) in enumerate(zip(ours, hidden)):
        err = np.abs(a - b).max()
        assert err <= TOL, f"hidden state {i}: max abs error {err:.3g}"
    err = np.abs(logits - ref_logits).max()
    assert err <= TOL, f"logits: max abs error {err:.3g}"
    return model, trace


def test_gpt2_matches_transformers(tmp_path):
    model, _ = assert_matches_hf(tiny_gpt2(), tmp_path)
    assert model.cfg.positions == "learned" and model.cfg.tie_embeddings


def test_gpt_oss_matches_transformers_past_window_with_sinks_and_yarn(tmp_path):
    hf = tiny_gpt_oss()
    model, trace = assert_matches_hf(hf, tmp_path)
    cfg = model.cfg
    # the test exercises what it claims: a window shorter than the sequence, sinks, YaRN, more experts than top-k
    assert cfg.layer_windows[0] == 4 and len(TOKENS) > 4 and cfg.layer_windows[1] is None
    assert cfg.rope_scaling is not None and cfg.rope_scaling.factor == 32
    assert np.abs(hf.model.layers[0].self_attn.sinks.detach().numpy()).min() > 0
    hit = np.unique(np.concatenate([trace[f"layers.{i}.router.experts"].ravel() for i in range(cfg.n_layers)]))
    assert cfg.n_experts > cfg.top_k and len(hit) > cfg.top_k


def test_gpt_oss_router_matches_transformers(tmp_path):
    """Router logits, chosen experts and weights per layer (transformers returns them via output_router_logits)."""
    hf = tiny_gpt_oss()
    hf.save_pretrained(tmp_path)
    _, trace = gptoss_np.load_model(tmp_path, progress=False)(TOKENS, trace=True)
    for i, layer in enumerate(hf.model.layers):
        with torch.no_grad():
            x = torch.tensor(trace[f"layers.{i}.ffn_norm"])
            logits, scores, idx = layer.mlp.router(x)
        np.testing.assert_allclose(trace[f"layers.{i}.router.logits"], logits.numpy(), atol=1e-5)
        np.testing.assert_array_equal(np.sort(trace[f"layers.{i}.router.experts"], -1), np.sort(idx.numpy(), -1))
        np.testing.assert_allclose(np.sort(trace[f"layers.{i}.router.weights"], -1), np.sort(scores.numpy(), -1),
                                   atol=1e-6)


def test_qwen3_moe_matches_transformers(tmp_path):
    model, _ = assert_matches_hf(tiny_qwen3_moe(), tmp_path)
    assert model.cfg.qk_norm and model.cfg.q_dim != model.cfg.d_model and model.cfg.router == "softmax_topk"


def test_gpt_oss_mxfp4_checkpoint_matches_transformers(tmp_path):
    """The real gpt-oss layout stores experts as MXFP4 blocks/scales [E, out, in/32, 16]. Round the float model's
    experts to MXFP4-representable values, then write (a) the float model via save_pretrained for transformers and
    (b) the same weights with packed experts for our loader: both must give the same logits."""
    hf = tiny_gpt_oss()
    packed = {}
    with torch.no_grad():
        for i, layer in enumerate(hf.model.layers):
            ex = layer.mlp.experts
            for name in ("gate_up_proj", "down_proj"):
                w = getattr(ex, name).detach().numpy().transpose(0, 2, 1)  # transformers keeps [E, in, out]
                blocks, scales = mxfp4_encode(w)  # stored [E, out, in/32, 16] as on the Hub
                getattr(ex, name).copy_(torch.from_numpy(mxfp4_decode(blocks, scales).transpose(0, 2, 1).copy()))
                packed[f"model.layers.{i}.mlp.experts.{name}_blocks"] = blocks
                packed[f"model.layers.{i}.mlp.experts.{name}_scales"] = scales
    ref_logits, _ = hf_forward(hf, TOKENS)
    hf.save_pretrained(tmp_path / "float")
    store = TensorStore(tmp_path / "float")
    tensors = {k: np.asarray(store.get(k)) for k in store.keys()
               if not k.endswith(("experts.gate_up_proj", "experts.down_proj"))}
    tensors.update(packed)
    (tmp_path / "mxfp4").mkdir()
    save_file(tmp_path / "mxfp4" / "model.safetensors", tensors)
    import json
    cfg = json.loads((tmp_path / "float" / "config.json").read_text())
    cfg["quantization_config"] = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    (tmp_path / "mxfp4" / "config.json").write_text(json.dumps(cfg))
    model = gptoss_np.load_model(tmp_path / "mxfp4", progress=False)
    assert model.cfg.expert_quant == "mxfp4"
    assert model.params["layers.0.mlp.experts.up.blocks"].dtype == np.uint8  # kept packed in memory
    err = np.abs(model(TOKENS) - ref_logits).max()
    assert err <= TOL, f"logits: max abs error {err:.3g}"


@pytest.mark.parametrize("truncate", [False, True])
def test_yarn_truncate_flag_matches_transformers(tmp_path, truncate):
    """gpt-oss sets truncate=false (fractional ramp ends); transformers' default floors/ceils them."""
    hf = tiny_gpt_oss(rope_parameters={"rope_type": "yarn", "factor": 32.0, "beta_fast": 32.0, "beta_slow": 1.0,
                                       "original_max_position_embeddings": 4096, "truncate": truncate,
                                       "rope_theta": 150000.0})
    model, _ = assert_matches_hf(hf, tmp_path)
    assert model.cfg.rope_scaling.truncate is truncate


def test_gpt2_hub_layout_without_prefix_and_with_mask_buffers(tmp_path):
    """openai-community/gpt2-xl's model.safetensors has no 'transformer.' prefix and carries the causal-mask
    buffers h.N.attn.bias [1, 1, ctx, ctx]; save_pretrained writes neither. Both must load to the same model."""
    hf = tiny_gpt2()
    hf.save_pretrained(tmp_path / "saved")
    store = TensorStore(tmp_path / "saved")
    tensors = {k.removeprefix("transformer."): np.asarray(store.get(k)) for k in store.keys()}
    ctx = hf.config.n_positions
    for i in range(hf.config.n_layer):
        tensors[f"h.{i}.attn.bias"] = np.tril(np.ones((ctx, ctx), np.float32))[None, None]
    (tmp_path / "hub").mkdir()
    save_file(tmp_path / "hub" / "model.safetensors", tensors)
    (tmp_path / "hub" / "config.json").write_text((tmp_path / "saved" / "config.json").read_text())
    ref_logits, _ = hf_forward(hf, TOKENS)
    err = np.abs(gptoss_np.load_model(tmp_path / "hub", progress=False)(TOKENS) - ref_logits).max()
    assert err <= TOL


def test_sharded_checkpoint_with_index(tmp_path):
    hf = tiny_gpt_oss()
    hf.save_pretrained(tmp_path, max_shard_size="100KB")
    shards = sorted(p.name for p in tmp_path.glob("*.safetensors"))
    assert len(shards) > 2 and (tmp_path / "model.safetensors.index.json").exists()
    ref_logits, _ = hf_forward(hf, TOKENS)
    assert np.abs(gptoss_np.load_model(tmp_path, progress=False)(TOKENS) - ref_logits).max() <= TOL


def test_bf16_checkpoint_is_read_as_stored(tmp_path):
    """gpt-oss ships bf16 tensors: we read them through ml_dtypes and compute in float32; transformers reads the
    same bf16 file and is cast to float32. Both then run the same float32 math on the same rounded weights."""
    hf = tiny_gpt_oss().to(torch.bfloat16)
    hf.save_pretrained(tmp_path)
    assert TensorStore(tmp_path).dtype("model.embed_tokens.weight") == "BF16"
    model = gptoss_np.load_model(tmp_path, progress=False)
    assert model.cfg.weight_dtype == "bfloat16" and model.params["unembed.weight"].dtype == np.float32
    assert model.params["embed.weight"].dtype.name == "bfloat16"  # only looked up: rows converted on use
    # reload rather than hf.float(): .to(bfloat16) also rounded the RoPE inv_freq buffer, which a fresh load
    # recomputes in float32
    ref = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, dtype=torch.float32).eval()
    ref.config._attn_implementation = "eager"
    ref_logits, _ = hf_forward(ref, TOKENS)
    assert np.abs(model(TOKENS) - ref_logits).max() <= TOL
