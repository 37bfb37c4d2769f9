"""The JSON files beside the weights (config.json, the shard index, tokenizer.json) are read through one bounded
reader (gptoss_np.formats.json_io): nesting too deep for Python's parser, a FIFO or a directory in place of the file
end in a GptOssError naming the file, in both loaders and the tokenizer, never a RecursionError or a hang."""

import os
import shutil

import pytest

import gptoss_np
from gptoss_np import GptOssError

gptoss_torch = pytest.importorskip("gptoss_torch")

DEEP = "[" * 100_000 + "]" * 100_000  # json.loads raises RecursionError on this


@pytest.fixture
def shipped(tmp_path):
    return shutil.copytree(gptoss_np.default_checkpoint(), tmp_path / "model")


def loaders():
    return [lambda d: gptoss_np.load_model(d, progress=False),
            lambda d: gptoss_torch.load_model(d, device="cpu", progress=False),
            gptoss_np.get_tokenizer]


@pytest.mark.parametrize("name,read", [("config.json", 0), ("config.json", 1), ("tokenizer.json", 2),
                                       ("model.safetensors.index.json", 0)])
@pytest.mark.parametrize("kind", ["deep", "fifo", "directory"])
def test_bad_json_file_is_named(shipped, name, read, kind):
    path = shipped / name
    os.remove(path)
    if kind == "deep":
        path.write_text(DEEP)
    elif kind == "fifo":
        os.mkfifo(path)  # reading it would block forever
    else:
        path.mkdir()
    with pytest.raises(GptOssError) as e:
        loaders()[read](str(shipped))
    assert name in str(e.value), str(e.value)
    if kind == "deep":
        assert "nest" in str(e.value)


def test_missing_tokenizer_json_does_not_become_o200k(shipped):
    """Without its tokenizer.json the shipped model (2265 tokens) must not fall back on o200k_harmony (201088
    tokens), which model_type gpt_oss alone would imply: every id would mean another string."""
    os.remove(shipped / "tokenizer.json")
    with pytest.raises(GptOssError) as e:
        gptoss_np.get_tokenizer(str(shipped))
    assert "tokenizer.json" in str(e.value) and "vocab_size 2265" in str(e.value), str(e.value)


def test_deep_json_really_overflows_the_parser():
    """The case above is a real one: Python's own parser gives up on it with a RecursionError."""
    import json
    with pytest.raises(RecursionError):
        json.loads(DEEP)
