"""Generation with the KV cache and the harmony chat, end to end on a tiny random gpt-oss checkpoint with the real
201,088-token vocabulary, plus a scripted stand-in model whose replies are known in advance.

The tiny checkpoint is written here with NumPy in exactly the layout transformers' GptOssForCausalLM.save_pretrained
produces (same tensor names, shapes and config fields), because building it through torch would cost most of this
file's time budget; test_hf_equivalence.py already reads real save_pretrained output through the same loader.
"""

import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import gptoss_np
from gptoss_np import InputError
from gptoss_np.text import harmony as H
from gptoss_np.cli import main
from gptoss_np.text.chat import chat, generate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOCAB, D, F, E, HEADS, KV, HEAD_DIM, LAYERS = 201088, 16, 32, 4, 4, 2, 16, 2


def tiny_gpt_oss_tensors(seed=0):
    """Random tensors named and shaped as transformers 5 saves a GptOssForCausalLM (experts [E, in, out])."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape, std=0.1: (std * rng.standard_normal(shape)).astype(np.float32)
    t = {"model.embed_tokens.weight": normal(VOCAB, D, std=1.0), "lm_head.weight": normal(VOCAB, D, std=0.5),
         "model.norm.weight": 1 + normal(D)}
    for i in range(LAYERS):
        p = f"model.layers.{i}."
        t.update({p + "input_layernorm.weight": 1 + normal(D), p + "post_attention_layernorm.weight": 1 + normal(D),
                  p + "self_attn.q_proj.weight": normal(HEADS * HEAD_DIM, D), p + "self_attn.q_proj.bias": normal(
                      HEADS * HEAD_DIM), p + "self_attn.k_proj.weight": normal(KV * HEAD_DIM, D),
                  p + "self_attn.k_proj.bias": normal(KV * HEAD_DIM), p + "self_attn.v_proj.weight": normal(
                      KV * HEAD_DIM, D), p + "self_attn.v_proj.bias": normal(KV * HEAD_DIM),
                  p + "self_attn.o_proj.weight": normal(D, HEADS * HEAD_DIM), p + "self_attn.o_proj.bias": normal(D),
                  p + "self_attn.sinks": normal(HEADS, std=1.0), p + "mlp.router.weight": normal(E, D),
                  p + "mlp.router.bias": normal(E), p + "mlp.experts.gate_up_proj": normal(E, D, 2 * F),
                  p + "mlp.experts.gate_up_proj_bias": normal(E, 2 * F), p + "mlp.experts.down_proj": normal(E, F, D),
                  p + "mlp.experts.down_proj_bias": normal(E, D)})
    return t


def tiny_gpt_oss_config():
    """config.json fields as GptOssConfig(vocab_size=201088, hidden_size=16, ...).save_pretrained writes them."""
    return {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "vocab_size": VOCAB, "hidden_size": D,
            "intermediate_size": F, "num_hidden_layers": LAYERS, "num_attention_heads": HEADS,
            "num_key_value_heads": KV, "head_dim": HEAD_DIM, "num_local_experts": E, "num_experts_per_tok": 2,
            "layer_types": ["sliding_attention", "full_attention"], "sliding_window": 128, "attention_bias": True,
            "max_position_embeddings": 131072, "rms_norm_eps": 1e-5, "swiglu_alpha": 1.702, "swiglu_limit": 7.0,
            "tie_word_embeddings": False, "dtype": "float32",
            "rope_parameters": {"rope_type": "yarn", "rope_theta": 150000.0, "factor": 32.0, "beta_fast": 32.0,
                                "beta_slow": 1.0, "original_max_position_embeddings": 4096, "truncate": False}}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from safetensors.numpy import save_file
    d = tmp_path_factory.mktemp("tiny-gpt-oss")
    save_file(tiny_gpt_oss_tensors(), str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps(tiny_gpt_oss_config(), indent=2))
    return str(d)


@pytest.fixture(scope="module")
def model(checkpoint):
    return gptoss_np.load_model(checkpoint, progress=False)


@pytest.fixture(scope="module")
def enc():
    return gptoss_np.get_tokenizer("o200k_harmony")


class ScriptedModel:
    """Stands in for a Model: after the prompt, its logits point at the next token of `script` (then <|end|>)."""

    def __init__(self, script, context_length=4096, vocab_size=VOCAB):
        self.cfg = SimpleNamespace(context_length=context_length, vocab_size=vocab_size, name="scripted")
        self.script, self.prompt_length, self.fed = list(script), None, []

    def new_cache(self):
        return SimpleNamespace(length=0)

    def __call__(self, tokens, cache=None):
        assert cache is not None, "generate() must decode with the KV cache"
        tokens = np.asarray(tokens)
        self.prompt_length = len(tokens) if self.prompt_length is None else self.prompt_length
        cache.length += len(tokens)
        self.fed.append(len(tokens))
        step = cache.length - self.prompt_length
        logits = np.zeros((len(tokens), self.cfg.vocab_size), np.float32)
        logits[-1, self.script[step] if step < len(self.script) else 200007] = 10.0
        return logits


def scripted_reply(enc, text):
    return enc.encode(text, allowed_special="all")


REPLY = ("<|channel|>analysis<|message|>The user wants 2+2; that is 4. Do not mention this thought.<|end|>"
         "<|start|>assistant<|channel|>final<|message|>2 + 2 = 4. ✓<|return|>")


# ---- generate() -------------------------------------------------------------------------------------------------

def test_cached_generation_equals_full_forward_argmax(model):
    """Greedy decoding with the KV cache picks, at every step, the argmax of a full forward over everything so far."""
    prompt = [200006, 17360, 200008, 24912, 2375, 200007, 200006, 173781]
    new = list(generate(model, prompt, 6, temperature=0))
    assert len(new) == 6
    for k in range(6):
        assert new[k] == int(np.argmax(model(np.array(prompt + new[:k]))[-1]))


def test_generation_is_reproducible_with_a_seed(model):
    prompt = [200006, 1428, 200008]
    a = list(generate(model, prompt, 3, temperature=1.0, top_p=0.9, seed=7))
    assert a == list(generate(model, prompt, 3, temperature=1.0, top_p=0.9, seed=7))
    assert all(0 <= t < VOCAB for t in a)


def test_prefill_once_then_one_token_per_step(enc):
    script = scripted_reply(enc, REPLY)
    fake = ScriptedModel(script)
    out = list(generate(fake, [1, 2, 3, 4, 5], 100, temperature=0, stop_tokens={200002, 200012}))
    assert out == script and out[-1] == 200002  # the stop token is yielded, then generation ends
    assert fake.fed == [5] + [1] * (len(script) - 1)  # the stop token is never fed back


def test_generation_respects_max_tokens_and_context(enc):
    script = scripted_reply(enc, REPLY)
    assert len(list(generate(ScriptedModel(script), [1, 2], 4, temperature=0))) == 4
    assert list(generate(ScriptedModel(script), [1, 2], 0)) == []
    fake = ScriptedModel(script, context_length=10)
    out = list(generate(fake, [1, 2, 3], None, temperature=0))
    assert out == script[:7] and fake.prompt_length + sum(fake.fed[1:]) == 9  # the 10th position is only sampled
    assert len(list(generate(ScriptedModel(script, context_length=10), [1, 2, 3], 50, temperature=0))) == 7


def test_generate_rejects_bad_arguments(enc):
    fake = ScriptedModel([], context_length=4)
    with pytest.raises(InputError, match="4 tokens leave no room in context_length=4"):
        generate(fake, [1, 2, 3, 4], 5)
    with pytest.raises(InputError, match="prompt_tokens: expected a non-empty"):
        generate(fake, [], 5)
    with pytest.raises(InputError, match="max_new_tokens=-1"):
        generate(fake, [1], -1)
    with pytest.raises(InputError, match="temperature=-1"):
        generate(fake, [1], 2, temperature=-1)


# ---- chat() -----------------------------------------------------------------------------------------------------

def test_chat_streams_only_the_final_answer(enc, capsys):
    fake = ScriptedModel(scripted_reply(enc, REPLY))
    reply = chat(None, "What is 2 + 2?", reasoning="low", model=fake, tokenizer=enc, temperature=0)
    out, err = capsys.readouterr()
    assert out == "2 + 2 = 4. ✓\n" and err == ""
    assert reply.final == "2 + 2 = 4. ✓" and "Do not mention" in reply.analysis
    assert reply.stop == "<|return|>" and reply.tokens[-1] == 200002
    assert enc.decode(reply.prompt_tokens) == enc.decode(H.chat_prompt(enc, "What is 2 + 2?", "low"))
    assert fake.prompt_length == len(reply.prompt_tokens)


def test_chat_shows_analysis_on_stderr_only_when_asked(enc, capsys):
    chat(None, "What is 2 + 2?", model=ScriptedModel(scripted_reply(enc, REPLY)), tokenizer=enc,
         temperature=0, show_analysis=True)
    out, err = capsys.readouterr()
    assert out == "2 + 2 = 4. ✓\n"
    assert "[analysis] The user wants 2+2" in err and "Do not mention" not in out


def test_chat_stops_at_a_tool_call(enc, capsys):
    script = scripted_reply(enc, '<|channel|>commentary to=functions.f <|constrain|>json<|message|>{"x": 1}<|call|>'
                                 "<|start|>assistant<|channel|>final<|message|>never")
    reply = chat(None, "call f", model=ScriptedModel(script), tokenizer=enc, temperature=0)
    assert reply.stop == "<|call|>" and reply.final == "" and capsys.readouterr().out == ""
    assert (reply.messages[-1].recipient, reply.messages[-1].content) == ("functions.f", '{"x": 1}')


def test_chat_refuses_a_checkpoint_that_is_not_gpt_oss(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(InputError, match="model_type 'gpt2'; the harmony chat format is gpt-oss's"):
        chat(str(tmp_path), "hi")


# ---- the command line, on the tiny random checkpoint ----------------------------------------------------------

def test_cli_end_to_end(checkpoint, tmp_path):
    """`python -m gptoss_np chat` in a fresh process with an empty tiktoken cache: it loads the checkpoint, falls
    back to the packaged o200k_harmony vocabulary, streams and stops at --max-tokens."""
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path), "PYTHONPATH": ROOT}
    proc = subprocess.run([sys.executable, "-m", "gptoss_np", "chat", "--checkpoint", checkpoint, "--reasoning",
                           "high", "--max-tokens", "5", "--temperature", "0", "--show-analysis", "What is 2 + 2?"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "stopped: max tokens" in proc.stderr and "5 generated" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_cli_in_process_matches_generate(checkpoint, model, enc, capsys):
    rc = main(["chat", "--checkpoint", checkpoint, "--max-tokens", "4", "--temperature", "0", "--reasoning", "low",
               "--show-analysis", "--raw", "Hi"])
    out, err = capsys.readouterr()
    assert rc == 0
    expected = list(generate(model, H.chat_prompt(enc, "Hi", "low"), 4, temperature=0))
    messages = H.parse_reply(enc, expected)
    assert out == (H.final_text(messages) + "\n" if H.final_text(messages) else "")
    prompt_length = len(H.chat_prompt(enc, "Hi", "low"))
    assert f"{prompt_length} prompt tokens, 4 generated" in err
    assert enc.decode(expected) in err  # --raw: everything generated, markup included


def test_cli_bad_input_exits_with_a_message(tmp_path, capsys):
    assert main(["chat", "--checkpoint", str(tmp_path / "missing"), "hi"]) == 2
    assert "does not exist; expected a checkpoint directory" in capsys.readouterr().err


# ---- a checkpoint's own tokenizer.json must hold the harmony tokens -------------------------------------------

def shipped_tokenizer_copy(path, edit):
    """The shipped chat model's config.json and tokenizer.json (all the chat reads before the weights), edited."""
    import shutil
    path.mkdir()
    for name in ("config.json", "tokenizer.json"):
        shutil.copy(os.path.join(gptoss_np.default_checkpoint(), name), path / name)
    data = json.loads((path / "tokenizer.json").read_text(encoding="utf-8"))
    edit(data)
    (path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return path


def without(name):
    return lambda d: d.update(added_tokens=[t for t in d["added_tokens"] if t["content"] != name])


@pytest.mark.parametrize("edit, fragments", [
    # no added_tokens: o200k_harmony's ids stood in for harmony's, and the error blamed vocab_size (--vocab-size)
    (lambda d: d.pop("added_tokens"), ["added_tokens has no <|start|> nor any other harmony token",
                                       "past config.json's vocab_size 2265", "in added_tokens, with ids below 2265"]),
    (lambda d: d.update(added_tokens=[]), ["added_tokens has no <|start|> nor any other harmony token"]),
    # one harmony token short: 'tokenizer ... has no special token <|message|>', naming neither file nor field
    (without("<|message|>"), ["added_tokens has no <|message|>;", "expected every harmony token the chat renders"]),
    (without("<|call|>"), ["added_tokens has no <|call|>;"]),
    # malformed: a KeyError / TypeError from deep inside before
    (lambda d: d["added_tokens"][3].pop("id"), ["added_tokens[3] is {'content': '<|constrain|>'",
                                                "expected an object with \"id\""]),
    (lambda d: d.update(added_tokens={}), ["added_tokens is {}; expected a list of token objects"]),
])
def test_chat_names_the_tokenizer_json_and_its_added_tokens(tmp_path, capsys, edit, fragments):
    path = shipped_tokenizer_copy(tmp_path / "ckpt", edit)
    assert main(["chat", "--checkpoint", str(path), "--max-tokens", "1", "hi"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path / 'tokenizer.json'}: "), err
    for fragment in fragments:
        assert fragment in err[0], err[0]


def test_chat_tokenizer_of_the_shipped_model_passes_the_harmony_check(tmp_path):
    from gptoss_np.text.chat import chat_tokenizer
    enc = chat_tokenizer(shipped_tokenizer_copy(tmp_path / "ckpt", lambda d: None))
    assert all(enc.encode_single_token(t) < 2265 for t in H.FORMATTING)
