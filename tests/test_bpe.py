"""The byte-level BPE trained on the corpus: training, compression, the harmony specials, and its tokenizer files
read back by our own loader and, independently, by Hugging Face `tokenizers` (transformers' fast tokenizer)."""

import json
import time
from collections import Counter

import pytest
import regex

import gptoss_np
from gptoss_np import InputError
from gptoss_np.text import bpe as B
from gptoss_np.text import corpus as C
from gptoss_np.text import harmony as H

SLICE = 400_000  # characters of training text for the fast tests


@pytest.fixture(scope="module")
def splits():
    return C.shakespeare_splits()


@pytest.fixture(scope="module")
def small(splits):
    """(ranks, encoding): 300 merges on a 400 KB slice of the training text."""
    ranks = B.train_bpe(splits[0][:SLICE], 300)
    return ranks, B.bpe_encoding(ranks)


@pytest.fixture(scope="module")
def checkpoint_dir(small, tmp_path_factory):
    """A folder as a gpt-oss checkpoint carries it: config.json (model_type gpt_oss) and our tokenizer files."""
    directory = tmp_path_factory.mktemp("ckpt")
    (directory / "config.json").write_text(json.dumps({"model_type": "gpt_oss"}))
    B.write_tokenizer_files(small[0], directory)
    return directory


def conversation():
    return [H.system_message("low"), H.developer_message("Answer in verse."),
            H.user_message("ROMEO:\nBut, soft! what light through yonder window breaks?"),
            H.Message("assistant", "The sun, the east.", channel="analysis"),
            H.Message("assistant", "JULIET:\nIt is the east, and I am the sun.", channel="final")]


def bytes_per_token(enc, text):
    return len(text.encode("utf-8")) / len(enc.encode_ordinary(text))


# ---- training ------------------------------------------------------------------------------------------------------

def naive_bpe(text, n_merges):
    """The textbook algorithm, every pair recounted at every merge (the incremental one must agree with it)."""
    chunks = Counter(c.encode() for c in regex.findall(B.DEFAULT_PATTERN, text))
    vocab = [bytes([i]) for i in range(256)]
    words = {c: list(c) for c in chunks}
    while len(vocab) < 256 + n_merges:
        pairs = Counter()
        for c, word in words.items():
            for p in zip(word, word[1:]):
                pairs[p] += chunks[c]
        if not pairs:
            break
        a, b = min(pairs, key=lambda p: (-pairs[p], vocab[p[0]], vocab[p[1]]))
        merged = vocab[a] + vocab[b]
        if merged not in vocab:
            vocab.append(merged)
        words = {c: replace_pair(word, a, b, vocab.index(merged)) for c, word in words.items()}
    return {t: i for i, t in enumerate(vocab)}


def replace_pair(word, a, b, new):
    """The merge written out here (not gptoss_np's merge_pair): (a, b) pairs, left to right, non-overlapping."""
    out, i = [], 0
    while i < len(word):
        pair = word[i:i + 2] == [a, b]
        out.append(new if pair else word[i])
        i += 2 if pair else 1
    return out


def test_the_merge_replaces_pairs_left_to_right_without_overlap():
    for merge in (replace_pair, B.merge_pair):  # the test's own and the package's, on hand-worked cases
        assert merge([97, 97, 97], 97, 97, 256) == [256, 97]
        assert merge([97, 98, 97, 98, 99], 97, 98, 256) == [256, 256, 99]
        assert merge([98, 97], 97, 98, 256) == [98, 97] and merge([], 97, 98, 256) == []


def test_incremental_training_equals_the_naive_algorithm(splits):
    text = splits[0][:20_000]
    assert B.train_bpe(text, 60) == naive_bpe(text, 60)


def test_ranks_layout_and_ties(small):
    ranks = small[0]
    assert len(ranks) == 256 + 300 and sorted(ranks.values()) == list(range(556))
    assert all(ranks[bytes([b])] == b for b in range(256))
    assert B.check_ranks(ranks) is ranks  # every token is two earlier tokens joined
    assert B.train_bpe("abcd", 1) == {**{bytes([i]): i for i in range(256)}, b"ab": 256}  # tie: smallest bytes
    assert B.train_bpe("aaaa", 3) == {**{bytes([i]): i for i in range(256)}, b"aa": 256, b"aaaa": 257}  # ran out


def test_deterministic(splits):
    text = splits[0][:100_000]
    assert B.train_bpe(text, 200) == B.train_bpe(text, 200)


def test_round_trip(small, splits):
    enc = small[1]
    train, val = splits[0][:SLICE], splits[1]
    assert enc.decode(enc.encode_ordinary(train)) == train
    assert enc.decode(enc.encode_ordinary(val)) == val
    odd = "naïve café 😀 日本語\r\n\t  ’twas <|start|>"
    assert enc.decode(enc.encode_ordinary(odd)) == odd


def test_compression_improves_with_merges(splits):
    text, val = splits[0][:SLICE], splits[1][:100_000]
    per_token = [bytes_per_token(B.bpe_encoding(B.train_bpe(text, n)), val) for n in (0, 100, 300)]
    assert per_token[0] == 1.0 and per_token[0] < per_token[1] < per_token[2]


def test_default_bpe_compresses_validation_text(splits):
    """The full default: 2000 merges on the 4.36 MB training text (about 5 s here), 2.98 bytes/token measured."""
    start = time.perf_counter()
    ranks = B.train_default_bpe()
    seconds = time.perf_counter() - start
    enc = B.bpe_encoding(ranks)
    assert len(ranks) == 2256 and enc.n_vocab == 2256 + len(B.HARMONY_SPECIALS)
    assert bytes_per_token(enc, splits[1]) > 2.5
    assert enc.decode(enc.encode_ordinary(splits[1])) == splits[1]
    assert seconds < 60, seconds


def test_bad_arguments():
    with pytest.raises(InputError, match="text: expected a non-empty str"):
        B.train_bpe("", 10)
    with pytest.raises(InputError, match="n_merges=-1; expected an integer >= 0"):
        B.train_bpe("abc", -1)
    ranks = {bytes([i]): i for i in range(256)}
    with pytest.raises(InputError, match="ranks: token b'xyz' .* is not two tokens of lower rank joined"):
        B.bpe_encoding({**ranks, b"xyz": 256})
    del ranks[b"a"]
    with pytest.raises(InputError, match="ranks: expected a dict of token bytes -> ranks 0..n-1"):
        B.bpe_encoding(ranks)


# ---- special tokens ------------------------------------------------------------------------------------------------

def test_harmony_specials(small):
    ranks, enc = small
    assert {H.START, H.END, H.MESSAGE, H.CHANNEL, H.CONSTRAIN, H.RETURN, H.CALL} <= set(B.HARMONY_SPECIALS)
    for i, name in enumerate(B.HARMONY_SPECIALS):
        assert enc.encode(name, allowed_special="all") == [len(ranks) + i]
        assert len(enc.encode_ordinary(name)) > 1  # typed text is not the special token
    assert enc.n_vocab == len(ranks) + len(B.HARMONY_SPECIALS)
    assert H.stop_tokens(enc) == {enc.encode_single_token(H.RETURN), enc.encode_single_token(H.CALL)}


def test_harmony_prompt_and_reply(small):
    enc = small[1]
    tokens = H.render_for_completion(enc, conversation()[:3])
    tail = [enc.encode_single_token(H.START)] + enc.encode_ordinary("assistant")
    assert tokens[-len(tail):] == tail
    assert enc.decode(tokens).startswith("<|start|>system<|message|>You are ChatGPT")
    reply = ([enc.encode_single_token(H.CHANNEL)] + enc.encode_ordinary("final")
             + [enc.encode_single_token(H.MESSAGE)] + enc.encode_ordinary("Soft you now!")
             + [enc.encode_single_token(H.RETURN)])
    assert H.final_text(H.parse_reply(enc, reply)) == "Soft you now!"


# ---- the tokenizer files, read back ---------------------------------------------------------------------------------

def test_get_tokenizer_reads_our_files(small, checkpoint_dir, splits):
    ranks, enc = small
    ours = gptoss_np.get_tokenizer(checkpoint_dir)
    assert ours.source == str(checkpoint_dir / "tokenizer.json")  # its own files, not o200k_harmony
    assert ours._mergeable_ranks == enc._mergeable_ranks and ours._special_tokens == enc._special_tokens
    assert ours._pat_str == enc._pat_str and ours.n_vocab == enc.n_vocab
    paragraph = splits[1][5000:8000]
    assert ours.encode_ordinary(paragraph) == enc.encode_ordinary(paragraph)
    assert H.render_conversation(ours, conversation()) == H.render_conversation(enc, conversation())
    assert H.chat_prompt(ours, "Who's there?", "high") == H.chat_prompt(enc, "Who's there?", "high")


def test_transformers_reads_our_files(small, checkpoint_dir, splits):
    from transformers import PreTrainedTokenizerFast
    enc = small[1]
    hf = PreTrainedTokenizerFast(tokenizer_file=str(checkpoint_dir / "tokenizer.json"))
    val = splits[1]
    odd = "I'm  here,\tyou'LL see:  123 4567 naïve café\n\n  \n end   \r\n x's   😀🎉 ---> ’twas 日本語  "
    for text in (val, odd):
        assert hf.encode(text, add_special_tokens=False) == enc.encode_ordinary(text)
    rendered = H.render_conversation(enc, conversation())
    text = enc.decode(rendered)
    assert hf.encode(text, add_special_tokens=False) == rendered == enc.encode(text, allowed_special="all")
    assert hf.decode(rendered) == text
    for i, name in enumerate(B.HARMONY_SPECIALS):
        assert hf.convert_tokens_to_ids(name) == len(small[0]) + i


def test_tokenizer_config_files(small, checkpoint_dir):
    config = json.loads((checkpoint_dir / "tokenizer_config.json").read_text())
    specials = json.loads((checkpoint_dir / "special_tokens_map.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast"
    assert (config["bos_token"], config["eos_token"], config["pad_token"]) == ("<|startoftext|>", "<|return|>",
                                                                               "<|endoftext|>")
    assert {v["content"]: int(k) for k, v in config["added_tokens_decoder"].items()} == small[1]._special_tokens
    assert specials == {"bos_token": "<|startoftext|>", "eos_token": "<|return|>", "pad_token": "<|endoftext|>"}
