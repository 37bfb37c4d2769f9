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
from gptoss_np.safetensors_io import TensorStore, save_file

transformers = pytest.importorskip("transformers")

TOL = 1e-4  # float32 on both sides; observed ~2e-6, the bound leaves room for BLAS summation order
TOKENS = np.array([3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50, 28, 84, 19])  # 20 > window 4


def randomise(model, std=0.1, seed=0):
    """Every parameter random (transformers initialises sinks and the router at zero, which would hide bugs)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            p.copy_(1 + 0.1 * noise if ("norm" in name or ".ln_" in name) else std * noise)
            if name.endswith("sinks"):
                p.copy_(noise)  # sinks of order 1: they must visibly change the softmax
    return model.eval()


def tiny_gpt_oss(**over):
    kw = dict(vocab_size=100, hidden_size=64, intermediate_size=32, num_hidden_layers=3, num_attention_heads=4,
              num_key_value_heads=2, head_dim=16, num_local_experts=6, num_experts_per_tok=2, sliding_window=4,
              attn_implementation="eager")
    kw.update(over)
    return randomise(transformers.GptOssForCausalLM(transformers.GptOssConfig(**kw)))


def tiny_qwen3_moe():
    cfg = transformers.Qwen3MoeConfig(vocab_size=100, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=32,
                                      num_experts=6, num_experts_per_tok=2, norm_topk_prob=True,
                                      attn_implementation="eager")
    return randomise(transformers.Qwen3MoeForCausalLM(cfg))


def tiny_gpt2():
    cfg = transformers.GPT2Config(vocab_size=100, n_embd=64, n_layer=2, n_head=4, n_positions=32,
                                  attn_implementation="eager", bos_token_id=0, eos_token_id=0)
    return randomise(transformers.GPT2LMHeadModel(cfg))


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
