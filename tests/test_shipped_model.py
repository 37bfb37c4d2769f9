"""The shipped model (gptoss_np.default_checkpoint()) is a genuine gpt-oss checkpoint: every feature of the 20b
config, the real Hugging Face layout with MXFP4 experts, tokenizer files that load offline, and the same greedy
continuation from gptoss_np, gptoss_torch and transformers' GptOssForCausalLM (an independent implementation)."""

import json
import os

import numpy as np
import torch

import gptoss_np
import gptoss_torch
from gptoss_np.text import harmony as H

PATH = gptoss_np.default_checkpoint()
QUESTION = "Good morrow, my lord. What news from the court?"


def test_it_has_every_gpt_oss_feature_and_the_real_layout():
    cfg = gptoss_np.load_model(PATH, progress=False).cfg
    full = gptoss_np.get_config("gpt-oss-20b")
    for field in ("norm", "positions", "activation", "ffn", "router", "sinks", "attn_bias", "mlp_bias",
                  "tie_embeddings", "expert_quant", "weight_dtype", "swiglu_limit", "swiglu_alpha"):
        assert getattr(cfg, field) == getattr(full, field), field
    assert cfg.rope_scaling is not None and cfg.n_kv_heads < cfg.n_heads and cfg.n_experts > cfg.top_k
    assert cfg.layer_windows[0] is not None and None in cfg.layer_windows  # sliding and full layers alternate
    files = sorted(os.listdir(PATH))
    assert {"config.json", "model.safetensors.index.json", "tokenizer.json", "training.json"} <= set(files)
    size = sum(os.path.getsize(os.path.join(PATH, f)) for f in files)
    assert size < 12e6, f"{size / 1e6:.1f} MB"
    info = json.load(open(os.path.join(PATH, "training.json")))
    assert info["command"].startswith("python -m gptoss_torch train-chat") and info["val_loss"] < 4.0


def greedy(step, prompt, n):
    """n greedy tokens from `step(ids) -> logits of the last position`, full forward each time."""
    ids = list(prompt)
    for _ in range(n):
        ids.append(int(np.argmax(step(ids))))
    return ids[len(prompt):]


def test_three_implementations_give_the_same_greedy_continuation():
    import transformers
    tok = gptoss_np.get_tokenizer(PATH)
    prompt = H.chat_prompt(tok, QUESTION, "low")
    oracle = gptoss_np.load_model(PATH, progress=False)
    twin = gptoss_torch.load_model(PATH, progress=False)
    hf = transformers.AutoModelForCausalLM.from_pretrained(
        PATH, dtype=torch.float32, attn_implementation="eager",
        quantization_config=transformers.Mxfp4Config(dequantize=True)).eval()
    ours = oracle(np.array(prompt))
    with torch.no_grad():
        theirs = hf(torch.tensor([prompt])).logits[0].numpy()
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours, theirs, atol=2e-4 * scale)  # float32, different summation orders
    np.testing.assert_allclose(twin(torch.tensor(prompt)).numpy(), theirs, atol=2e-4 * scale)
    n = 16
    a = greedy(lambda ids: oracle(np.array(ids))[-1], prompt, n)
    b = greedy(lambda ids: twin(torch.tensor(ids))[-1].numpy(), prompt, n)
    with torch.no_grad():
        c = greedy(lambda ids: hf(torch.tensor([ids])).logits[0, -1].numpy(), prompt, n)
    assert a == b == c, (tok.decode(a), tok.decode(b), tok.decode(c))


def test_its_tokenizer_is_read_the_same_by_tiktoken_and_transformers():
    import transformers
    tok = gptoss_np.get_tokenizer(PATH)
    hf = transformers.PreTrainedTokenizerFast(tokenizer_file=os.path.join(PATH, "tokenizer.json"))
    text = "ROMEO:\nBut, soft! what light through yonder window breaks?"
    assert tok.encode_ordinary(text) == hf.encode(text, add_special_tokens=False)
    assert tok.n_vocab == gptoss_np.load_model(PATH, progress=False).cfg.vocab_size


def test_chat_defaults_to_it_and_answers_in_its_voice(capsys):
    from gptoss_np.cli import main
    assert main(["chat", "--temperature", "0.8", "--top-p", "0.95", "--seed", "0", QUESTION]) == 0
    out, err = capsys.readouterr()
    assert sum(c.isalpha() for c in out) > 20, out  # readable text on stdout: the final channel only
    assert "<|" not in out and "stopped: <|return|>" in err, err
