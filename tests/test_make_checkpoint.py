"""The checkpoint writer: its plan against the published tables, its files against transformers, streaming,
determinism, the command line and its named errors.

Reference values are published facts, written here as constants (they are not derived from the code under test):
  * gpt-oss-20b: the Hub's model.safetensors.index.json (metadata.total_size 13761264768, the three shard files and
    the keys at their boundaries), the per-tensor tables of the HF layout (repo root) and of the original layout
    (original/model.safetensors, shapes from OpenAI's gpt_oss/torch/weights.py and transformers' mxfp4
    integration), and the root config.json / generation_config.json field for field.
  * gpt-oss-120b: 15 HF shards model-00000-of-00014 ... model-00014-of-00014, total_size 65248815744; the original
    directory holds 7 files model--00001-of-00007 ... (their boundaries are not published: only names and count).
  * Qwen3-30B-A3B: 16 shards model-00001-of-00016 ..., 18,867 tensors, 30,532,122,624 bf16 parameters.
  * GPT-2 XL: one model.safetensors, Conv1D [in, out] matrices, 1,557,611,200 float32 parameters.
(Collected in the project's reference notes from those files; the numbers are copied here so the tests need nothing
outside the repository.)
"""

import json
import os
import tracemalloc

import numpy as np
import pytest

import gptoss_np
from gptoss_np.cli import main as cli_main
from gptoss_np import ConfigError, CheckpointError
from gptoss_np.config import GPT_OSS_20B, alternating_windows, get_config, scale_down
from gptoss_np.formats.writer import (RandomWeights, checkpoint_plan, family, hf_config, mxfp4_encode_fast,
                                       write_checkpoint)
from gptoss_np.mxfp4 import mxfp4_decode, mxfp4_encode
from gptoss_np.formats.safetensors_io import TensorStore, save_file

TOKENS = np.array([3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46, 26, 43, 38, 32, 79, 50, 28, 84, 19, 71, 69, 39, 9])

# ---- published facts --------------------------------------------------------------------------------------------

GB20_TOTAL = 13_761_264_768  # model.safetensors.index.json metadata.total_size (openai/gpt-oss-20b)
GB20_SHARDS = [  # (file, first key, last key, tensor bytes) of the published index
    ("model-00000-of-00002.safetensors", "model.layers.0.input_layernorm.weight",
     "model.layers.18.self_attn.v_proj.bias", 4_792_250_240),
    ("model-00001-of-00002.safetensors", "model.layers.18.self_attn.q_proj.weight",
     "model.layers.6.mlp.experts.gate_up_proj_bias", 4_798_679_872),
    ("model-00002-of-00002.safetensors", "model.layers.6.mlp.experts.gate_up_proj_blocks", "lm_head.weight",
     4_170_334_656),
]
GB20_HF_LAYER = {  # model.layers.N.<key>: (shape, dtype)
    "input_layernorm.weight": ([2880], "BF16"),
    "self_attn.q_proj.weight": ([4096, 2880], "BF16"), "self_attn.q_proj.bias": ([4096], "BF16"),
    "self_attn.k_proj.weight": ([512, 2880], "BF16"), "self_attn.k_proj.bias": ([512], "BF16"),
    "self_attn.v_proj.weight": ([512, 2880], "BF16"), "self_attn.v_proj.bias": ([512], "BF16"),
    "self_attn.o_proj.weight": ([2880, 4096], "BF16"), "self_attn.o_proj.bias": ([2880], "BF16"),
    "self_attn.sinks": ([64], "BF16"), "post_attention_layernorm.weight": ([2880], "BF16"),
    "mlp.router.weight": ([32, 2880], "BF16"), "mlp.router.bias": ([32], "BF16"),
    "mlp.experts.gate_up_proj_blocks": ([32, 5760, 90, 16], "U8"),
    "mlp.experts.gate_up_proj_scales": ([32, 5760, 90], "U8"),
    "mlp.experts.gate_up_proj_bias": ([32, 5760], "BF16"),
    "mlp.experts.down_proj_blocks": ([32, 2880, 90, 16], "U8"), "mlp.experts.down_proj_scales": ([32, 2880, 90], "U8"),
    "mlp.experts.down_proj_bias": ([32, 2880], "BF16"),
}
GB20_HF_GLOBAL = {"model.embed_tokens.weight": ([201088, 2880], "BF16"), "model.norm.weight": ([2880], "BF16"),
                  "lm_head.weight": ([201088, 2880], "BF16")}
GB20_ORIGINAL_BLOCK = {  # block.N.<key>: (shape, safetensors dtype, bytes)
    "attn.norm.scale": ([2880], "BF16", 5_760), "attn.out.bias": ([2880], "BF16", 5_760),
    "attn.out.weight": ([2880, 4096], "BF16", 23_592_960), "attn.qkv.bias": ([5120], "BF16", 10_240),
    "attn.qkv.weight": ([5120, 2880], "BF16", 29_491_200), "attn.sinks": ([64], "BF16", 128),
    "mlp.gate.bias": ([32], "BF16", 64), "mlp.gate.weight": ([32, 2880], "BF16", 184_320),
    "mlp.mlp1_bias": ([32, 5760], "BF16", 368_640),
    "mlp.mlp1_weight.blocks": ([32, 5760, 90, 16], "U8", 265_420_800),
    "mlp.mlp1_weight.scales": ([32, 5760, 90], "U8", 16_588_800),
    "mlp.mlp2_bias": ([32, 2880], "BF16", 184_320),
    "mlp.mlp2_weight.blocks": ([32, 2880, 90, 16], "U8", 132_710_400),
    "mlp.mlp2_weight.scales": ([32, 2880, 90], "U8", 8_294_400),
    "mlp.norm.scale": ([2880], "BF16", 5_760),
}
GB20_ORIGINAL_BLOCK_BYTES = 476_863_552
GB20_ORIGINAL_GLOBAL = {"embedding.weight": ([201088, 2880], "BF16"), "norm.scale": ([2880], "BF16"),
                        "unembedding.weight": ([201088, 2880], "BF16")}
GB20_HF_CONFIG = {  # openai/gpt-oss-20b config.json
    "architectures": ["GptOssForCausalLM"], "attention_bias": True, "attention_dropout": 0.0,
    "eos_token_id": 200002, "experts_per_token": 4, "head_dim": 64, "hidden_act": "silu", "hidden_size": 2880,
    "initial_context_length": 4096, "initializer_range": 0.02, "intermediate_size": 2880,
    "layer_types": ["sliding_attention", "full_attention"] * 12, "max_position_embeddings": 131072,
    "model_type": "gpt_oss", "num_attention_heads": 64, "num_experts_per_tok": 4, "num_hidden_layers": 24,
    "num_key_value_heads": 8, "num_local_experts": 32, "output_router_logits": False, "pad_token_id": 199999,
    "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
    "rms_norm_eps": 1e-05,
    "rope_scaling": {"beta_fast": 32.0, "beta_slow": 1.0, "factor": 32.0, "original_max_position_embeddings": 4096,
                     "rope_type": "yarn", "truncate": False},
    "rope_theta": 150000, "router_aux_loss_coef": 0.9, "sliding_window": 128, "swiglu_limit": 7.0,
    "tie_word_embeddings": False, "transformers_version": "4.55.0.dev0", "use_cache": True, "vocab_size": 201088,
}
GB20_GENERATION_CONFIG = {"bos_token_id": 199998, "do_sample": True, "eos_token_id": [200002, 199999, 200012],
                          "pad_token_id": 199999}
GB120_TOTAL = 65_248_815_744
QWEN_TENSORS, QWEN_BYTES = 18_867, 30_532_122_624 * 2
GPT2_XL_BYTES = 1_557_611_200 * 4


def by_file(plan):
    out = {}
    for p in plan:
        out.setdefault(p.file, []).append(p)
    return out


# ---- the plan at full size, from the config alone -------------------------------------------------------------

def test_gpt_oss_20b_hf_plan_is_the_published_index():
    plan = checkpoint_plan(get_config("gpt-oss-20b"), "hf")
    assert len(plan) == 459 == 24 * 19 + 3
    assert sum(p.nbytes for p in plan) == GB20_TOTAL
    files = by_file(plan)
    assert list(files) == [f for f, *_ in GB20_SHARDS]
    for f, first, last, nbytes in GB20_SHARDS:
        assert (files[f][0].name, files[f][-1].name, sum(p.nbytes for p in files[f])) == (first, last, nbytes)
    table = {p.name: (list(p.shape), p.dtype) for p in plan}
    want = dict(GB20_HF_GLOBAL)
    for i in range(24):
        want.update({f"model.layers.{i}.{k}": v for k, v in GB20_HF_LAYER.items()})
    assert table == want
    for p in plan:
        assert p.nbytes == np.prod(p.shape) * (1 if p.dtype == "U8" else 2)


def test_gpt_oss_20b_original_plan_is_the_published_table():
    plan = checkpoint_plan(get_config("gpt-oss-20b"), "original")
    assert len(plan) == 363 == 24 * 15 + 3
    assert {p.file for p in plan} == {"model.safetensors"}
    assert sum(p.nbytes for p in plan) == GB20_TOTAL
    table = {p.name: (list(p.shape), p.dtype) for p in plan}
    want = dict(GB20_ORIGINAL_GLOBAL)
    for i in range(24):
        want.update({f"block.{i}.{k}": v[:2] for k, v in GB20_ORIGINAL_BLOCK.items()})
    assert table == want
    block7 = {p.name.split(".", 2)[2]: p.nbytes for p in plan if p.name.startswith("block.7.")}
    assert block7 == {k: v[2] for k, v in GB20_ORIGINAL_BLOCK.items()}
    assert sum(block7.values()) == GB20_ORIGINAL_BLOCK_BYTES


def test_gpt_oss_120b_plans():
    cfg = get_config("gpt-oss-120b")
    hf = checkpoint_plan(cfg, "hf")
    files = by_file(hf)
    assert list(files) == [f"model-{k:05d}-of-00014.safetensors" for k in range(15)]
    assert sum(p.nbytes for p in hf) == GB120_TOTAL
    assert len(hf) == 36 * 19 + 3
    # the 4.8e9-byte rule cuts before an expert tensor: each later shard starts at a _blocks key
    assert all(ps[0].name.endswith(("down_proj_blocks", "gate_up_proj_blocks")) for ps in list(files.values())[1:])
    assert all(sum(p.nbytes for p in ps) <= 4.8e9 for ps in files.values())
    orig = checkpoint_plan(cfg, "original")
    assert list(by_file(orig)) == [f"model--{k:05d}-of-00007.safetensors" for k in range(1, 8)]
    assert sum(p.nbytes for p in orig) == GB120_TOTAL and len(orig) == 36 * 15 + 3


def test_qwen3_and_gpt2_plans():
    qwen = checkpoint_plan(get_config("qwen3-30b-a3b"))
    assert len(qwen) == QWEN_TENSORS and sum(p.nbytes for p in qwen) == QWEN_BYTES
    assert list(by_file(qwen)) == [f"model-{k:05d}-of-00016.safetensors" for k in range(1, 17)]
    assert {p.dtype for p in qwen} == {"BF16"}
    shapes = {p.name: p.shape for p in qwen}
    assert shapes["model.layers.47.mlp.experts.127.gate_proj.weight"] == (768, 2048)
    assert shapes["model.layers.0.mlp.experts.0.down_proj.weight"] == (2048, 768)
    assert shapes["model.layers.0.self_attn.q_proj.weight"] == (4096, 2048)
    assert shapes["model.layers.0.self_attn.q_norm.weight"] == (128,)
    gpt2 = checkpoint_plan(get_config("gpt2-xl"))
    assert {p.file for p in gpt2} == {"model.safetensors"} and sum(p.nbytes for p in gpt2) == GPT2_XL_BYTES
    shapes = {p.name: p.shape for p in gpt2}
    assert len(gpt2) == 48 * 12 + 4 and {p.dtype for p in gpt2} == {"F32"}
    assert shapes["wte.weight"] == (50257, 1600) and shapes["wpe.weight"] == (1024, 1600)
    assert shapes["h.0.attn.c_attn.weight"] == (1600, 4800) and shapes["h.47.attn.c_attn.bias"] == (4800,)
    assert shapes["h.3.mlp.c_fc.weight"] == (1600, 6400) and shapes["h.3.mlp.c_proj.weight"] == (6400, 1600)
    assert "lm_head.weight" not in shapes and not any(n.startswith("transformer.") for n in shapes)


def test_gpt_oss_20b_config_files_are_the_published_ones():
    config, generation = hf_config(get_config("gpt-oss-20b"))
    assert config == GB20_HF_CONFIG and generation == GB20_GENERATION_CONFIG
    assert json.dumps(config["rope_theta"]) == "150000"  # an integer in the published file


# ---- MXFP4 encoding -----------------------------------------------------------------------------------------

def test_fast_encoder_matches_mxfp4_encode_bit_for_bit():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((300, 256), dtype=np.float32) * 0.02
    for a, b in zip(mxfp4_encode_fast(w), mxfp4_encode(w)):
        np.testing.assert_array_equal(a, b)
    # every midpoint (ties), every code, zeros of both signs, huge and subnormal blocks
    values = np.array([0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 7.0, 0.0, 0.5, 1, 1.5, 2, 3, 4, 6], np.float32)
    x = rng.choice(np.concatenate([values, -values]), size=(64, 256)).astype(np.float32)
    x *= np.ldexp(np.float32(1), rng.integers(-140, 126, size=(64, 8))).repeat(32, axis=1).astype(np.float32)
    x[0], x[1], x[2, :32], x[3, :32] = 0.0, -0.0, 3.4e38, 1e-45
    for a, b in zip(mxfp4_encode_fast(x), mxfp4_encode(x)):
        np.testing.assert_array_equal(a, b)


# ---- tiny checkpoints against transformers ------------------------------------------------------------------

TINY_OSS = scale_down(GPT_OSS_20B)


@pytest.fixture(scope="module")
def tiny_oss(tmp_path_factory):
    return write_checkpoint(TINY_OSS, tmp_path_factory.mktemp("oss") / "hf", seed=7, progress=False)


def transformers_logits(path, **kw):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    model = transformers.AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager",
                                                              **kw).eval()
    with torch.no_grad():
        return model(torch.tensor(TOKENS)[None]).logits[0].numpy()


def test_tiny_gpt_oss_hf_layout_loads_and_routes(tiny_oss):
    model = gptoss_np.load_model(tiny_oss, progress=False)
    assert model.cfg == TINY_OSS  # config.json says exactly the config it was written from
    logits, trace = model(TOKENS, trace=True)
    assert np.isfinite(logits).all() and logits.std() > 0.01
    for i in range(TINY_OSS.n_layers):  # random routers spread the tokens over the experts
        assert np.unique(trace[f"layers.{i}.router.experts"]).size >= TINY_OSS.n_experts - 2
    files = sorted(os.listdir(tiny_oss))
    assert files == ["config.json", "generation_config.json", "model-00000-of-00000.safetensors",
                     "model.safetensors.index.json"]
    index = json.loads(open(os.path.join(tiny_oss, "model.safetensors.index.json")).read())
    store = TensorStore(tiny_oss)
    assert index["metadata"]["total_size"] == sum(store.get(k).nbytes for k in store.keys())


def test_tiny_gpt_oss_mxfp4_matches_transformers(tiny_oss):
    """transformers on CPU without `accelerate` refuses a pre-quantised MXFP4 checkpoint (ImportError), so it is
    loaded with Mxfp4Config(dequantize=True): transformers' own decoder then reads our blocks and scales."""
    transformers = pytest.importorskip("transformers")
    ours = gptoss_np.load_model(tiny_oss, progress=False)(TOKENS)
    try:
        ref = transformers_logits(tiny_oss)
    except ImportError as e:
        assert "ccelerate" in str(e) or "kernels" in str(e) or "riton" in str(e), e
        ref = transformers_logits(tiny_oss, quantization_config=transformers.Mxfp4Config(dequantize=True))
    err = np.abs(ours - ref).max() / np.abs(ref).max()
    assert err <= 1e-5, err  # float32 on both sides, the same bf16/MXFP4 values: float32's tolerance, relative


def test_tiny_gpt_oss_dequantized_copy_matches_transformers(tiny_oss, tmp_path):
    """The same weights with the experts decoded by us (float [E, in, out], no quantization_config): transformers
    loads it without any quantizer."""
    store = TensorStore(tiny_oss)
    tensors = {}
    for k in store.keys():
        if k.endswith("_scales"):
            continue
        if k.endswith("_blocks"):
            base = k[: -len("_blocks")]
            w = mxfp4_decode(store.get(k), store.get(base + "_scales"))  # [E, out, in]
            tensors[base] = np.ascontiguousarray(w.transpose(0, 2, 1))
        else:
            tensors[k] = np.asarray(store.get(k))
    save_file(tmp_path / "model.safetensors", tensors, metadata={"format": "pt"})
    config = json.loads(open(os.path.join(tiny_oss, "config.json")).read())
    del config["quantization_config"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    ours = gptoss_np.load_model(tiny_oss, progress=False)(TOKENS)
    ref = transformers_logits(tmp_path)
    assert np.abs(ours - ref).max() / np.abs(ref).max() <= 1e-5


@pytest.mark.parametrize("preset, shard_bytes", [("gpt2-xl", None), ("qwen3-30b-a3b", 60_000)])
def test_tiny_gpt2_and_qwen3_match_transformers(tmp_path, preset, shard_bytes):
    cfg = scale_down(get_config(preset))
    write_checkpoint(cfg, tmp_path, seed=3, progress=False, max_shard_bytes=shard_bytes)
    files = sorted(n for n in os.listdir(tmp_path) if n.endswith(".safetensors"))
    if shard_bytes:  # save_pretrained's naming: 1-based, "of" the shard count, with an index
        n = len(files)
        assert n > 2 and files == [f"model-{k:05d}-of-{n:05d}.safetensors" for k in range(1, n + 1)]
        assert (tmp_path / "model.safetensors.index.json").exists()
    else:
        assert files == ["model.safetensors"]
        assert "wte.weight" in TensorStore(tmp_path)  # the Hub's keys: no "transformer." prefix
    model = gptoss_np.load_model(tmp_path, progress=False)
    assert model.cfg == cfg
    err = np.abs(model(TOKENS) - transformers_logits(tmp_path)).max()
    assert err <= 1e-4, err


# ---- streaming, determinism ------------------------------------------------------------------------------------

def test_writer_streams_one_tensor_at_a_time(tmp_path):
    """~110 MB of bf16 in 4 layers; the traced peak stays near one tensor (17 MB), far below the checkpoint."""
    cfg = GPT_OSS_20B.replace(name="stream", vocab_size=4096, d_model=512, ffn_hidden=1024, n_layers=4, n_heads=8,
                              n_kv_heads=2, head_dim=64, n_experts=8, top_k=2, layer_windows=alternating_windows(4, 128),
                              expert_quant="none")
    plan = checkpoint_plan(cfg)
    total, largest = sum(p.nbytes for p in plan), max(p.nbytes for p in plan)
    assert total > 100e6 and total > 6 * largest
    tracemalloc.start()
    try:
        write_checkpoint(cfg, tmp_path, progress=False)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * largest, f"peak {peak / 1e6:.1f} MB for a largest tensor of {largest / 1e6:.1f} MB"
    assert sum(os.path.getsize(tmp_path / f) for f in {p.file for p in plan}) > total


def test_writer_is_deterministic_per_seed(tmp_path, tiny_oss):
    again = write_checkpoint(TINY_OSS, tmp_path / "again", seed=7, progress=False)
    other = write_checkpoint(TINY_OSS, tmp_path / "other", seed=8, progress=False)
    for name in os.listdir(tiny_oss):
        assert open(os.path.join(again, name), "rb").read() == open(os.path.join(tiny_oss, name), "rb").read(), name
    a, b = TensorStore(tiny_oss), TensorStore(other)
    for k in a.keys():
        same = np.array_equal(np.asarray(a.get(k)).view(np.uint8), np.asarray(b.get(k)).view(np.uint8))
        assert not same, f"{k} did not change with the seed"


def test_random_weights_are_keyed_by_name_not_by_order():
    rw = RandomWeights(TINY_OSS, seed=1)
    first = rw.tensor("layers.1.attn.q.weight")
    rw.tensor("embed.weight")
    np.testing.assert_array_equal(RandomWeights(TINY_OSS, seed=1).tensor("layers.1.attn.q.weight"), first)
    expert = rw.expert("layers.0.mlp.experts.up.weight", 3)
    blocks, scales = rw.mxfp4("layers.0.mlp.experts.up.weight")
    b3, s3 = mxfp4_encode(expert)
    np.testing.assert_array_equal(blocks[3], b3)
    np.testing.assert_array_equal(scales[3], s3)


# ---- command line and named errors -------------------------------------------------------------------------------

def main(argv):
    return cli_main(["write-checkpoint"] + argv)


def test_command_line_writes_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "orig"
    assert main(["--preset", "gpt-oss-20b", "--scale-down", "--layers", "3", "--layout", "original", "--out",
                 str(out), "--seed", "5", "--quiet"]) == 0
    model = gptoss_np.load_model(out, progress=False)
    assert model.cfg.n_layers == 3 and model.cfg.layer_windows == (4, None, 4)
    assert sorted(os.listdir(out)) == ["config.json", "dtypes.json", "model.safetensors"]
    assert main(["--preset", "gpt-oss-20b", "--plan"] + ["--out", str(tmp_path / "unused")]) == 0
    assert "459 tensors, 13,761,264,768 bytes in 3 file(s)" in capsys.readouterr().out
    assert not (tmp_path / "unused").exists()
    assert main(["--preset", "02-rmsnorm", "--scale-down", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    assert "norm" in capsys.readouterr().err
    assert main(["--preset", "gpt-oss-20b", "--scale-down", "--layout", "original", "--out", str(out),
                 "--quiet"]) == 2  # the directory already holds a checkpoint
    assert "already holds" in capsys.readouterr().err


def test_configs_no_layout_can_hold_are_named(tmp_path):
    with pytest.raises(ConfigError, match="norm"):
        family(get_config("02-rmsnorm"))
    assert family(get_config("08-moe")) == "gpt_oss"  # float experts: written without quantization_config
    with pytest.raises(ConfigError, match="original"):
        checkpoint_plan(get_config("qwen3-30b-a3b"), "original")
    with pytest.raises(ConfigError, match="layer_windows"):
        checkpoint_plan(TINY_OSS.replace(layer_windows=(None, 4)), "original")  # original: even layers slide
    with pytest.raises(ConfigError, match="layout"):
        checkpoint_plan(TINY_OSS, "gguf")
    with pytest.raises(ConfigError, match="seed"):
        write_checkpoint(TINY_OSS, tmp_path / "s", seed=-1, progress=False)
    assert not (tmp_path / "s").exists()
    write_checkpoint(TINY_OSS, tmp_path / "d", progress=False)
    with pytest.raises(CheckpointError, match="already holds"):
        write_checkpoint(TINY_OSS, tmp_path / "d", progress=False)
    write_checkpoint(TINY_OSS, tmp_path / "d", layout="original", progress=False, overwrite=True)
    assert gptoss_np.load_model(tmp_path / "d", progress=False).cfg == TINY_OSS


def test_overwrite_replaces_every_checkpoint_file_and_only_those(tmp_path):
    """write_checkpoint's directory check matches checkpoint files by exact name: a tokenizer_config.json is a
    tokenizer file, not a config.json (matched by ending, overwrite removed it and left tokenizer.json beside new
    weights); both are the old checkpoint's, refused without overwrite and removed with it; other files stay."""
    from gptoss_np.errors import CheckpointError
    from gptoss_np.formats.writer import write_checkpoint
    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"))
    for name in ("tokenizer.json", "tokenizer_config.json", "notes.txt", "my_config.json.bak"):
        (tmp_path / name).write_text("{}")
    with pytest.raises(CheckpointError, match=r"\['tokenizer.json', 'tokenizer_config.json'\]"):
        write_checkpoint(cfg, tmp_path, progress=False)
    write_checkpoint(cfg, tmp_path, progress=False, overwrite=True)
    left = sorted(os.listdir(tmp_path))
    assert "tokenizer.json" not in left and "tokenizer_config.json" not in left
    assert {"notes.txt", "my_config.json.bak", "config.json"} <= set(left)
