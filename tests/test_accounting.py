"""Accounting from the config alone against published figures (each with its source)."""

import pytest

from gptoss_np import count_params, get_config, kv_cache_bytes, weight_bytes
from gptoss_np.accounting import flops_per_token, kv_bytes_per_token


def test_gpt2_xl_parameter_count():
    # nanoGPT / OpenAI's release: "1558M" (tied head counted once); exact sum of the HF tensor shapes
    assert count_params(get_config("gpt2-xl"))["total"] == 1_557_611_200
    assert round(count_params(get_config("gpt2-xl"))["total"] / 1e6) == 1558


def test_gpt_oss_20b_matches_the_model_card():
    # gpt-oss model card (arXiv 2508.10925) table: 20.91B total, 3.61B active, 19.12B MLP, 0.64B attention,
    # 1.16B embed+unembed; exact values: Keras preset lists 20,914,757,184 parameters
    c = count_params(get_config("gpt-oss-20b"))
    assert c["total"] == 20_914_757_184
    assert round(c["active"] / 1e9, 2) == 3.61 and c["active"] == 3_608_307_264
    assert round(c["mlp"] / 1e9, 2) == 19.12
    assert round(c["attention"] / 1e9, 2) == 0.64
    assert round(c["embedding"] / 1e9, 2) == 1.16


def test_gpt_oss_120b_matches_the_model_card():
    # model card: 116.83B total, 5.13B active, 114.71B MLP, 0.96B attention
    c = count_params(get_config("gpt-oss-120b"))
    assert round(c["total"] / 1e9, 2) == 116.83 and round(c["active"] / 1e9, 2) == 5.13
    assert round(c["mlp"] / 1e9, 2) == 114.71 and round(c["attention"] / 1e9, 2) == 0.96


def test_gpt_oss_checkpoint_bytes_match_the_hub_index():
    # openai/gpt-oss-20b model.safetensors.index.json metadata.total_size = 13761264768 (= 12.8 GiB in the card);
    # gpt-oss-120b: 65248815744 (60.8 GiB); MXFP4 experts at 4.25 bits, everything else bf16
    assert weight_bytes(get_config("gpt-oss-20b"))["total"] == 13_761_264_768
    assert weight_bytes(get_config("gpt-oss-120b"))["total"] == 65_248_815_744
    assert round(weight_bytes(get_config("gpt-oss-20b"))["total"] / 2**30, 1) == 12.8
    assert round(weight_bytes(get_config("gpt-oss-120b"))["total"] / 2**30, 1) == 60.8


def test_qwen3_30b_a3b_matches_its_model_card():
    # Qwen3-30B-A3B card: 30.5B total, 29.9B non-embedding, 3.3B activated (the card counts both embedding tables)
    c = count_params(get_config("qwen3-30b-a3b"))
    assert round(c["total"] / 1e9, 1) == 30.5
    assert round(c["non_embedding"] / 1e9, 1) == 29.9
    assert 3.3e9 <= c["active_with_embedding"] < 3.4e9  # "3.3B" as printed (3.35B, truncated, not rounded)
    assert c["active_with_embedding"] == 3_353_032_704


def test_kv_cache_bytes_count_sliding_layers_correctly():
    oss = get_config("gpt-oss-20b")
    # one token, bf16: 24 layers x (k + v) x 8 heads x 64 dims x 2 bytes = 49,152 B
    assert kv_cache_bytes(oss, 1) == 24 * 2 * 8 * 64 * 2 == 49_152
    # at 4096 tokens the 12 sliding layers hold only 128 tokens each
    assert kv_cache_bytes(oss, 4096) == 12 * 4096 * 2048 + 12 * 128 * 2048
    assert kv_bytes_per_token(oss, 131072) == pytest.approx(12 * 2048, rel=0.01)  # -> half the full-cache cost
    # GPT-2 XL, fp32, no window: 48 x 2 x 1600 x 4 = 614,400 B per token (HF concatenated cache)
    assert kv_cache_bytes(get_config("gpt2-xl"), 1) == 614_400
    assert kv_cache_bytes(get_config("qwen3-30b-a3b"), 10) == 10 * 98_304


def test_flops_per_token_is_twice_the_active_matmul_parameters():
    # the known rule of thumb: ~2 FLOPs per active weight per token (+ attention over the context)
    oss = get_config("gpt-oss-20b")
    active = count_params(oss)["active"]
    assert flops_per_token(oss, 1) == pytest.approx(2 * active, rel=0.01)
    assert flops_per_token(oss, 4096) > flops_per_token(oss, 1)
