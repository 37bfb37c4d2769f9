"""The shipped GPT-2 (gptoss_np.trained_checkpoint("gpt2-shakespeare"), chain step 00 trained on Shakespeare) is a
genuine GPT-2 checkpoint: the Hugging Face GPT-2 layout (Conv1D [in, out] matrices, fused c_attn, tied head), a
config equal to the chain's first step at the ladder's scale, tokenizer files that load offline, and the same
logits and greedy continuation from gptoss_np, gptoss_torch and transformers' GPT2LMHeadModel (an independent
implementation)."""

import json
import os
import shlex

import numpy as np
import pytest
import torch

import gptoss_np
import gptoss_torch
from test_shipped_model import greedy  # the same full-forward greedy loop the shipped gpt-oss is checked with

PATH = gptoss_np.trained_checkpoint("gpt2-shakespeare")
PROMPT = "ROMEO:\nBut soft, what light"


def test_it_is_step_00_in_the_real_gpt2_layout():
    from gptoss_torch.train.ladder import ladder_config
    cfg = gptoss_np.load_model(PATH, progress=False).cfg
    assert cfg.vocab_size == 256 + 2000 + 9  # bytes, the BPE's 2000 merges, harmony's 9 special tokens
    assert cfg.replace(name="step 00") == ladder_config("00-gpt2-xl").replace(name="step 00", vocab_size=cfg.vocab_size,
                                                                              weight_dtype="bfloat16")
    D = cfg.d_model
    with open(os.path.join(PATH, "model.safetensors"), "rb") as f:  # the format: u64 header length, JSON header
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    shapes = {n: tuple(v["shape"]) for n, v in header.items() if n != "__metadata__"}
    assert shapes["h.0.attn.c_attn.weight"] == (D, 3 * D) and shapes["h.0.mlp.c_fc.weight"] == (D, 4 * D)  # [in, out]
    assert "lm_head.weight" not in shapes and shapes["wte.weight"] == (cfg.vocab_size, D)  # tied head
    config = json.load(open(os.path.join(PATH, "config.json")))
    assert config["architectures"] == ["GPT2LMHeadModel"] and config["model_type"] == "gpt2"
    eot = gptoss_np.get_tokenizer(PATH).encode_single_token("<|endoftext|>")  # GPT-2's one id for bos and eos
    generation = json.load(open(os.path.join(PATH, "generation_config.json")))
    assert config["bos_token_id"] == config["eos_token_id"] == generation["eos_token_id"] == eot
    size = sum(os.path.getsize(os.path.join(PATH, f)) for f in os.listdir(PATH))
    assert size <= 3e6, f"{size / 1e6:.2f} MB"


def test_training_json_states_the_run_and_its_command_parses():
    import argparse
    from gptoss_torch.train.commands import add_train_arguments
    info = json.load(open(os.path.join(PATH, "training.json")))
    argv = shlex.split(info["command"])
    assert argv[:4] == ["python", "-m", "gptoss_torch", "train"]
    ap = argparse.ArgumentParser()
    add_train_arguments(ap)
    args = ap.parse_args(argv[4:])
    assert (args.step, args.vocab, args.dtype, args.release) == ("00-gpt2-xl", "bpe", "bfloat16", True)
    assert os.path.normpath(args.out) == os.path.join("gptoss_np", "models", "gpt2-shakespeare")
    assert info["command"] == gptoss_np.SHIPPED["gpt2-shakespeare"].format(path=args.out)  # what the helper says
    assert info["params_total"] == gptoss_np.count_params(gptoss_np.load_model(PATH, progress=False).cfg)["total"]
    # nats per BPE token: ln(vocab) = 7.7 knows nothing; 6.44 is the entropy of the held-out plays' own token
    # frequencies, the best any model that ignores context can do
    assert info["val_loss"] < 6.0


def test_release_writes_only_the_model_to_ship(tmp_path):
    from gptoss_torch.cli import main
    text = tmp_path / "text.txt"
    text.write_text("ROMEO:\nBut soft, what light through yonder window breaks?\n\n" * 120, encoding="utf-8")
    out = tmp_path / "model"
    assert main(["train", "--step", "00-gpt2-xl", "--data", str(text), "--steps", "2", "--batch-size", "2",
                 "--eval-every", "2", "--val-batches", "1", "--dtype", "bfloat16", "--quiet", "--release",
                 "--out", str(out)]) == 0
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json", "model.safetensors", "training.json"]
    with open(out / "model.safetensors", "rb") as f:
        header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
    assert {v["dtype"] for n, v in header.items() if n != "__metadata__"} == {"BF16"}
    info = json.load(open(out / "training.json"))
    assert info["command"].endswith(f"--dtype bfloat16 --data {text} --release --out {out}")
    assert info["weight_dtype"] == "bfloat16" and abs(info["val_loss"] - info["val_loss_float32"]) < 0.05


def test_three_implementations_give_the_same_greedy_continuation():
    transformers = pytest.importorskip("transformers")
    tok = gptoss_np.get_tokenizer(PATH)
    prompt = tok.encode_ordinary(PROMPT)
    oracle = gptoss_np.load_model(PATH, progress=False)
    twin = gptoss_torch.load_model(PATH, device="cpu", progress=False)
    hf = transformers.GPT2LMHeadModel.from_pretrained(PATH, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        theirs = hf(torch.tensor([prompt])).logits[0].numpy()
        mine = twin(torch.tensor(prompt)).numpy()
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(oracle(np.array(prompt)), theirs, atol=1e-4 * scale)  # float32, other sum orders
    np.testing.assert_allclose(mine, theirs, atol=1e-4 * scale)
    n = 12
    a = greedy(lambda ids: oracle(np.array(ids))[-1], prompt, n)
    with torch.no_grad():
        b = greedy(lambda ids: twin(torch.tensor(ids))[-1].numpy(), prompt, n)
        c = greedy(lambda ids: hf(torch.tensor([ids])).logits[0, -1].numpy(), prompt, n)
    assert a == b == c, (tok.decode(a), tok.decode(b), tok.decode(c))
    assert sum(ch.isalpha() for ch in tok.decode(a)) > 10  # words, not byte noise


def test_an_unknown_name_is_refused_with_the_choices():
    with pytest.raises(gptoss_np.InputError, match="gpt2-shakespeare"):
        gptoss_np.trained_checkpoint("gpt2-xl")
