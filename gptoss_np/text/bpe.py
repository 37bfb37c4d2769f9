"""A small byte-level BPE for a chat model trained on the corpus, and the tokenizer files a checkpoint carries.

Training is the standard byte-level BPE: the text is split into pre-token chunks by o200k's regex (the split
gpt-oss's own tokenizer uses, so `tokenizer.json` can say it with the same `Split` pre-tokenizer the real
gpt-oss file has, and it keeps a word's leading space, capitalised names and `:\\n` after a speaker as pieces of
their own), then the most frequent adjacent pair of tokens, counted over all chunks, is merged into a new token,
again and again. Ties go to the pair whose bytes (left, then right) sort first, so training is deterministic.

Speed: the unique chunks are counted once (35,801 kinds among a million chunks in the Shakespeare training
text); the pair counts and a pair -> chunks index are kept up to date per merge, touching only the chunks that
hold the merged pair, and a heap with lazy deletion finds the next best pair. 2000 merges on 4.36 MB take about
5 s on one core.

The result is a tiktoken `mergeable_ranks` dict {token bytes: rank}: the 256 single bytes at ranks 0..255, then
one new token per merge. A merge whose bytes already exist as a token (`a`+`bc` after `ab`+`c` made `abc`) is
applied with that token's id and adds no rank, so `n_merges` new tokens always means a vocabulary of
256 + n_merges. The harmony special tokens get the ids right after (HARMONY_SPECIALS).
"""

from __future__ import annotations

import heapq
import json
import os
from collections import Counter

import regex

from ..errors import InputError
from .tokenizer import O200K_PATTERN, byte_to_unicode, make_tokenizer

DEFAULT_MERGES = 2000
DEFAULT_PATTERN = O200K_PATTERN
# harmony's tokens (gptoss_np.text.harmony uses start, end, message, channel, constrain, return, call), in the
# order of their o200k_harmony ids (199998, 199999, 200002, 200003, 200005, 200006, 200007, 200008, 200012)
HARMONY_SPECIALS = ("<|startoftext|>", "<|endoftext|>", "<|return|>", "<|constrain|>", "<|channel|>",
                    "<|start|>", "<|end|>", "<|message|>", "<|call|>")
# what gpt-oss's tokenizer_config.json names them
BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<|startoftext|>", "<|return|>", "<|endoftext|>"
BYTE_TEXT = byte_to_unicode()  # byte -> its character in byte-level BPE text


# ---- training -----------------------------------------------------------------------------------------------------

def pretoken_counts(text, pattern=DEFAULT_PATTERN):
    """{chunk bytes: how often}: the text split by the pre-tokenizer regex, each chunk UTF-8 encoded."""
    counts = Counter(regex.findall(pattern, text))
    return {chunk.encode("utf-8"): n for chunk, n in counts.items()}


def merge_pair(word, a, b, new):
    """`word` (token ids) with each non-overlapping (a, b), left to right, replaced by `new`."""
    out, i, n = [], 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == a and word[i + 1] == b:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def train_bpe(text, n_merges=DEFAULT_MERGES, pattern=DEFAULT_PATTERN):
    """{token bytes: rank}: 256 bytes at ranks 0..255, then up to n_merges tokens, each the most frequent pair
    (count over pre-token chunks; ties: smallest (left bytes, right bytes)) merged."""
    if not isinstance(text, str) or not text:
        raise InputError(f"text: expected a non-empty str to train on, got {type(text).__name__} of length "
                         f"{len(text) if hasattr(text, '__len__') else '?'}")
    if not isinstance(n_merges, int) or isinstance(n_merges, bool) or n_merges < 0:
        raise InputError(f"n_merges={n_merges!r}; expected an integer >= 0")
    vocab = [bytes([i]) for i in range(256)]  # id -> bytes
    ids = {t: i for i, t in enumerate(vocab)}  # bytes -> id
    chunks = pretoken_counts(text, pattern)
    words = [list(chunk) for chunk in chunks]  # [chunk][token ids]; starts as the chunk's bytes
    freq = list(chunks.values())
    pairs, where = Counter(), {}  # (a, b) -> count over all chunks; (a, b) -> {chunk index} (a superset)
    for w, (word, n) in enumerate(zip(words, freq)):
        for p in zip(word, word[1:]):
            pairs[p] += n
            where.setdefault(p, set()).add(w)
    heap = [(-n, vocab[a], vocab[b], a, b) for (a, b), n in pairs.items()]
    heapq.heapify(heap)
    added = 0
    while added < n_merges and heap:
        neg, _, _, a, b = heapq.heappop(heap)
        if pairs.get((a, b), 0) != -neg:
            continue  # stale: the pair's count changed since this entry was pushed
        merged = vocab[a] + vocab[b]
        new = ids.get(merged)
        if new is None:
            new = ids[merged] = len(vocab)
            vocab.append(merged)
            added += 1
        changed = set()
        for w in where.pop((a, b)):
            word, n = words[w], freq[w]
            if not any(x == a and y == b for x, y in zip(word, word[1:])):
                continue
            for p in zip(word, word[1:]):
                pairs[p] -= n
                changed.add(p)
            word = words[w] = merge_pair(word, a, b, new)
            for p in zip(word, word[1:]):
                pairs[p] += n
                changed.add(p)
                where.setdefault(p, set()).add(w)
        for p in changed:
            n = pairs[p]
            if n > 0:
                heapq.heappush(heap, (-n, vocab[p[0]], vocab[p[1]], p[0], p[1]))
            else:
                del pairs[p]
                where.pop(p, None)
    return {t: i for i, t in enumerate(vocab)}


def train_default_bpe(n_merges=DEFAULT_MERGES):
    """The chat model's BPE: train_bpe on shakespeare_splits()'s training text (2000 merges: 2256 ranks)."""
    from .corpus import shakespeare_splits
    return train_bpe(shakespeare_splits()[0], n_merges)


# ---- the tiktoken encoding ----------------------------------------------------------------------------------------

def check_ranks(ranks, where="ranks"):
    """The ranks, checked: ids 0..n-1 each once, the 256 single bytes at their own value, every longer token the
    concatenation of two tokens of lower rank (what train_bpe makes; what a merge list can express)."""
    if not isinstance(ranks, dict) or sorted(ranks.values()) != list(range(len(ranks))):
        raise InputError(f"{where}: expected a dict of token bytes -> ranks 0..n-1, each rank once")
    for b in range(256):
        if ranks.get(bytes([b])) != b:
            raise InputError(f"{where}: byte {b} has rank {ranks.get(bytes([b]))}; expected the 256 single bytes "
                             "at ranks 0..255")
    for token, rank in ranks.items():
        if rank >= 256 and not any(ranks.get(token[:k], rank) < rank and ranks.get(token[k:], rank) < rank
                                   for k in range(1, len(token))):
            raise InputError(f"{where}: token {token!r} (rank {rank}) is not two tokens of lower rank joined; "
                             "expected a byte-level BPE vocabulary")
    return ranks


def special_token_ids(ranks):
    """{harmony special token: id}: HARMONY_SPECIALS in order, right after the merged vocabulary."""
    return {name: len(ranks) + i for i, name in enumerate(HARMONY_SPECIALS)}


def bpe_encoding(ranks, name="shakespeare_bpe", pattern=DEFAULT_PATTERN):
    """A tiktoken.Encoding (a gptoss_np Tokenizer) of the trained ranks with the harmony specials after them."""
    check_ranks(ranks)
    return make_tokenizer(name, pattern, dict(ranks), special_token_ids(ranks), source=f"trained BPE {name!r}")


# ---- the Hugging Face tokenizer files -----------------------------------------------------------------------------

def bpe_merges(ranks):
    """[(left, right)] for a merge-list BPE that merges exactly as tiktoken does on these ranks.

    tiktoken merges the adjacent pair whose concatenation has the lowest rank, whatever the split; so every split
    of a token into two tokens is a merge, ordered by the rank of the result (then of left, then of right), as
    transformers' own tiktoken converter does."""
    merges = []
    for token, rank in ranks.items():
        for k in range(1, len(token)):
            left, right = ranks.get(token[:k]), ranks.get(token[k:])
            if left is not None and right is not None:
                merges.append((rank, left, right, token[:k], token[k:]))
    merges.sort()
    return [(left, right) for _, _, _, left, right in merges]


def byte_level_text(token):
    """A token's bytes as byte-level BPE text (GPT-2's byte-to-unicode characters, as in tokenizer.json)."""
    return "".join(BYTE_TEXT[b] for b in token)


def tokenizer_json(ranks, pattern=DEFAULT_PATTERN):
    """The Hugging Face `tokenizers` file as a dict: ByteLevel BPE, o200k-style Split pre-tokenizer, harmony specials.

    `ignore_merges`: a chunk that is a token is that token (tiktoken looks whole chunks up first too)."""
    check_ranks(ranks)
    text = {t: byte_level_text(t) for t in ranks}
    added = [{"id": i, "content": name, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for name, i in special_token_ids(ranks).items()]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                  "vocab": {text[t]: r for t, r in sorted(ranks.items(), key=lambda kv: kv[1])},
                  "merges": [[text[a], text[b]] for a, b in bpe_merges(ranks)]},
    }


def tokenizer_config_json(ranks):
    """tokenizer_config.json, as gpt-oss's: PreTrainedTokenizerFast, bos/eos/pad and the added tokens."""
    return {
        "added_tokens_decoder": {str(i): {"content": name, "lstrip": False, "normalized": False, "rstrip": False,
                                          "single_word": False, "special": True}
                                 for name, i in special_token_ids(ranks).items()},
        "bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN,
        "clean_up_tokenization_spaces": False, "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": 1000000000000000019884624838656, "tokenizer_class": "PreTrainedTokenizerFast",
    }


def special_tokens_map_json():
    """special_tokens_map.json: bos, eos and pad by name."""
    return {"bos_token": BOS_TOKEN, "eos_token": EOS_TOKEN, "pad_token": PAD_TOKEN}


def write_tokenizer_files(ranks, directory, pattern=DEFAULT_PATTERN):
    """Write tokenizer.json, tokenizer_config.json and special_tokens_map.json into `directory` (created if
    needed); get_tokenizer(directory) and transformers then encode as bpe_encoding(ranks) does. Returns the paths."""
    directory = os.fspath(directory)
    os.makedirs(directory, exist_ok=True)
    files = {"tokenizer.json": tokenizer_json(ranks, pattern), "tokenizer_config.json": tokenizer_config_json(ranks),
             "special_tokens_map.json": special_tokens_map_json()}
    paths = []
    for name, data in files.items():
        path = os.path.join(directory, name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=None if name == "tokenizer.json" else 2)
            f.write("\n")
        paths.append(path)
    return paths
