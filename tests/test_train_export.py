"""Trained weights leave the trainer as real checkpoints: every chain step is written (published layout where one
holds the config, this project's canonical layout elsewhere) and read back by both loaders with equal logits; MXFP4
after training uses the package's encoder bit for bit; the train command prints `val_loss <number>` last and the
ladder's record reruns to the same number."""

import json
import os

import numpy as np
import pytest
import torch

import gptoss_np
import gptoss_torch
from gptoss_np import chain, scale_down
from gptoss_np.mxfp4 import mxfp4_encode
from gptoss_torch.cli import main
from gptoss_torch.model import Model
from gptoss_torch.train.export import checkpoint_layout, quantize_experts, write_trained
from gptoss_torch.train.init import init_for_training
from gptoss_torch.train.ladder import ladder_config
from gptoss_torch.train.loop import trainable_config


def trained_like(cfg, seed=0):
    """A model with the training init and non-zero biases/sinks (as training leaves them)."""
    model = init_for_training(Model(trainable_config(cfg)), seed).eval().requires_grad_(False)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in model.named_parameters():
            if n.endswith(("bias", "sinks")):
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


@pytest.mark.parametrize("name,cfg", chain(), ids=[n for n, _ in chain()])
def test_every_chain_step_writes_a_checkpoint_both_loaders_read(name, cfg, tmp_path):
    cfg = scale_down(cfg, window=4).replace(weight_dtype="float32")
    model = trained_like(cfg)
    _, layout = write_trained(model, tmp_path, cfg=cfg)
    assert layout == ("hf" if name in ("00-gpt2-xl", "01-no-dropout", "08-moe", "09-mxfp4") else "canonical")
    tokens = np.arange(19) % cfg.vocab_size
    ours = (quantize_experts(model) if cfg.expert_quant == "mxfp4" else model)(torch.as_tensor(tokens)).numpy()
    oracle = gptoss_np.load_model(tmp_path, progress=False)
    twin = gptoss_torch.load_model(tmp_path, progress=False)
    assert oracle.cfg == cfg == twin.cfg
    np.testing.assert_allclose(oracle(tokens), ours, rtol=1e-4, atol=1e-4 * np.abs(ours).max())
    np.testing.assert_allclose(twin(torch.as_tensor(tokens)).numpy(), ours, rtol=1e-5, atol=1e-5 * np.abs(ours).max())


def test_mxfp4_after_training_is_the_package_encoder_bit_for_bit():
    cfg = scale_down(gptoss_np.get_config("gpt-oss-20b"))
    model = trained_like(cfg)
    q = quantize_experts(model)
    sd = q.state_dict()
    for m in ("up", "down"):
        w = model.state_dict()[f"layers.1.mlp.experts.{m}.weight"].numpy()
        blocks, scales = mxfp4_encode(w)
        assert np.array_equal(sd[f"layers.1.mlp.experts.{m}.blocks"].numpy(), blocks)
        assert np.array_equal(sd[f"layers.1.mlp.experts.{m}.scales"].numpy(), scales)
    assert q.cfg.expert_quant == "mxfp4" and not any(p.requires_grad for p in q.parameters())


def test_checkpoint_layout_names_the_published_family():
    assert checkpoint_layout(ladder_config("09-mxfp4")) == "hf"
    assert checkpoint_layout(ladder_config("05-gqa")) == "canonical"


def test_train_command_prints_val_loss_last_and_writes_a_checkpoint(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--step", "09-mxfp4", "--steps", "3", "--eval-every", "3", "--val-batches", "2", "--quiet",
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("val_loss ") and lines[-2].startswith("val_loss_before_mxfp4 ")
    val = float(lines[-1].split()[1])
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json", "log.jsonl", "loss.png",
                                       "model-00000-of-00000.safetensors", "model.safetensors.index.json",
                                       "result.json"]
    assert json.loads((out / "result.json").read_text())["val_loss"] == pytest.approx(val, abs=1e-6)
    assert len((out / "log.jsonl").read_text().splitlines()) == 3
    model = gptoss_torch.load_model(out, progress=False)
    assert model.cfg.expert_quant == "mxfp4" and model.cfg.vocab_size == 256
