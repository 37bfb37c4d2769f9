"""Bad arguments of the training verbs (`python -m gptoss_torch train`, `train-chat`, `ladder`): each ends in one
`error: ...` line naming the flag (or file) and what was expected, exit status 2, and before any data is prepared
or any step is trained (the `no_work` fixture fails the test if either starts). Before, these were a false
"validation split ... shorter than one window" for --batch-size 0, a ZeroDivisionError for --eval-every 0, torch's
ValueError for --lr nan, a FileExistsError after 15 s of data preparation for --out FILE, a silent overwrite of a
checkpoint that left its stale tokenizer.json behind, and exit 0 on --steps -3 or `ladder --only bogus`."""

import json
import math
import os

import pytest

torch = pytest.importorskip("torch")

import gptoss_np  # noqa: E402
import gptoss_np.text.bpe  # noqa: E402
import gptoss_np.text.corpus  # noqa: E402
from gptoss_np.errors import InputError  # noqa: E402
from gptoss_torch.cli import main  # noqa: E402
from gptoss_torch.train import chat_model, commands, loop  # noqa: E402

ROMEO = "ROMEO:\nBut soft, what light through yonder window breaks?\n\n"  # 58 bytes


def one_error_line(capsys, rc, *fragments):
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), (rc, err)
    for frag in fragments:
        assert frag in err[0], f"{frag!r} not in {err[0]}"


@pytest.fixture
def no_work(monkeypatch):
    """Any data preparation or training fails the test."""
    def fail(what):
        return lambda *a, **k: pytest.fail(f"{what} ran before the arguments were refused")
    monkeypatch.setattr(commands, "load_data", fail("load_data"))
    monkeypatch.setattr(commands, "train_one", fail("train_one"))
    monkeypatch.setattr(commands, "train", fail("train"))
    monkeypatch.setattr(chat_model, "train", fail("train"))
    monkeypatch.setattr(loop, "train", fail("train"))
    monkeypatch.setattr(gptoss_np.text.corpus, "shakespeare_splits", fail("shakespeare_splits"))
    monkeypatch.setattr(gptoss_np.text.bpe, "train_default_bpe", fail("train_default_bpe"))
    monkeypatch.setattr(gptoss_np.text.bpe, "train_bpe", fail("train_bpe"))
    import concurrent.futures
    monkeypatch.setattr(concurrent.futures, "ProcessPoolExecutor", fail("the ladder's process pool"))


@pytest.fixture
def files(tmp_path):
    """Paths the cases name: a 20-line text, a directory holding a checkpoint, results files of every bad kind."""
    small = tmp_path / "small.txt"
    small.write_text("ROMEO: But soft, what light through yonder window breaks?\n" * 20, encoding="utf-8")
    tiny = tmp_path / "tiny.txt"
    tiny.write_text("ROMEO:\nBut soft!\n" * 10, encoding="utf-8")  # 170 bytes: too few to split
    medium = tmp_path / "medium.txt"
    medium.write_text(ROMEO * 60, encoding="utf-8")  # 3480 bytes: enough for a window, not for --long-context
    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text("{}")
    (ck / "model.safetensors").write_bytes(b"")
    (tmp_path / "dir.json").mkdir()
    (tmp_path / "corrupt.json").write_text("[{\"step\": ")
    (tmp_path / "ints.json").write_text("[1, 2]")
    (tmp_path / "dict.json").write_text("{\"records\": []}")
    (tmp_path / "nostep.json").write_text(json.dumps([{"command": "x", "step": "99-bogus", "seed": 0}]))
    (tmp_path / "latin1.json").write_bytes(b"[\"caf\xe9\"]")
    return {k: str(v) for k, v in dict(tmp=tmp_path, small=small, tiny=tiny, medium=medium, ck=ck).items()}


TRAIN = [
    (["--steps", "1", "--batch-size", "0"], ["--batch-size 0", "expected an integer >= 1"]),
    (["--batch-size", "-2"], ["--batch-size -2", ">= 1"]),
    (["--val-batches", "0"], ["--val-batches 0", ">= 1"]),
    (["--val-batches", "-1"], ["--val-batches -1", ">= 1"]),
    (["--eval-every", "0"], ["--eval-every 0", ">= 1"]),
    (["--steps", "-3"], ["--steps -3", ">= 1"]),
    (["--steps", "0"], ["--steps 0", ">= 1"]),
    (["--warmup", "-5"], ["--warmup -5", ">= 0"]),
    (["--threads", "0"], ["--threads 0", ">= 1"]),
    (["--seed", "-1"], ["--seed -1", ">= 0"]),
    (["--lr", "-1"], ["--lr -1", "finite number > 0"]),
    (["--lr", "0"], ["--lr 0", "finite number > 0"]),
    (["--lr", "nan"], ["--lr nan", "finite number > 0"]),
    (["--lr", "inf"], ["--lr inf", "finite number > 0"]),
    (["--variant", "params", "--step", "03-rope"], ["--variant params --step 03-rope", "params of 04-swiglu"]),
    (["--data", "{small}"], ["--data {small}", "held-out last 10% is 116 bytes", "one window needs 257",
                             "at least about 2,570 bytes"]),
    (["--data", "{tiny}"], ["--data {tiny}: 170 characters", "about 2,570 bytes"]),
    (["--data", "{medium}", "--long-context"], ["--data {medium}", "--long-context", "needs 1,025"]),
    (["--data", "{tmp}/absent.txt"], ["--data {tmp}/absent.txt: cannot be read"]),
    (["--out", "/etc/passwd"], ["--out /etc/passwd", "is a file", "expected a directory"]),
    (["--out", "/etc/passwd/sub"], ["--out /etc/passwd/sub", "/etc/passwd is a file"]),
    (["--out", "/proc/no/such"], ["--out /proc/no/such", "cannot write in /proc"]),
    (["--out", "{ck}"], ["--out {ck}", "already holds checkpoint files ['config.json', 'model.safetensors']",
                         "--overwrite"]),
    (["--out", "{ck}", "--release"], ["--out {ck}", "already holds", "--overwrite"]),
    (["--overwrite"], ["--overwrite without --out"]),
    (["--release"], ["--release without --out"]),
]

CHAT = [
    (["--out", "/etc/passwd"], ["--out /etc/passwd", "is a file"]),
    (["--out", "{ck}"], ["--out {ck}", "already holds checkpoint files", "--overwrite"]),
    (["--out", "{tmp}/new", "--steps", "-1"], ["--steps -1", ">= 1"]),
    (["--out", "{tmp}/new", "--steps", "0"], ["--steps 0", ">= 1"]),
    (["--out", "{tmp}/new", "--seed", "-1"], ["--seed -1", ">= 0"]),
    (["--out", "{tmp}/new", "--threads", "0"], ["--threads 0", ">= 1"]),
]

LADDER = [
    (["--jobs", "0"], ["--jobs 0", ">= 1"]),
    (["--steps", "0"], ["--steps 0", ">= 1"]),
    (["--threads", "0"], ["--threads 0", ">= 1"]),
    (["--seeds", "-1"], ["--seeds -1", ">= 0"]),
    (["--seeds", "0", "1", "0"], ["--seeds 0 1 0", "seed 0 appears twice"]),
    (["--only", "bogus"], ["--only bogus", "not a chain step", "00-gpt2-xl", "09-mxfp4"]),
    (["--json", "{tmp}/dir.json"], ["--json {tmp}/dir.json", "is a directory"]),
    (["--json", "{tmp}/corrupt.json"], ["--json {tmp}/corrupt.json", "not JSON", "line 1", "a JSON list of records"]),
    (["--json", "{tmp}/ints.json"], ["--json {tmp}/ints.json", "record 0 is 1", "\"command\""]),
    (["--json", "{tmp}/dict.json"], ["--json {tmp}/dict.json", "holds a JSON dict", "a JSON list"]),
    (["--json", "{tmp}/nostep.json"], ["--json {tmp}/nostep.json", "record 0", "\"step\" of the chain"]),
    (["--json", "{tmp}/latin1.json"], ["--json {tmp}/latin1.json", "not UTF-8"]),
    (["--json", "/nonexistent/x.json"], ["--json /nonexistent/x.json", "/nonexistent does not exist"]),
]


def fill(items, files):
    return [s.format(**files) for s in items]


@pytest.mark.parametrize("verb, argv, fragments", [("train", a, f) for a, f in TRAIN] +
                         [("train-chat", a, f) for a, f in CHAT] + [("ladder", a, f) for a, f in LADDER])
def test_bad_training_arguments_are_refused_before_any_work(capsys, no_work, files, verb, argv, fragments):
    extra = ["--quiet"] if verb != "ladder" or "--json" in argv else ["--quiet", "--json", files["tmp"] + "/r.json"]
    one_error_line(capsys, main([verb, *fill(argv, files), *extra]), *fill(fragments, files))


def test_a_checkpoint_directory_is_left_as_it_was_when_refused(capsys, no_work, files):
    before = sorted(os.listdir(files["ck"]))
    one_error_line(capsys, main(["train-chat", "--out", files["ck"], "--quiet"]), "already holds")
    assert sorted(os.listdir(files["ck"])) == before


def test_an_out_that_does_not_exist_is_not_created_by_a_refusal(capsys, no_work, files):
    out = os.path.join(files["tmp"], "new", "deeper")
    one_error_line(capsys, main(["train", "--out", out, "--lr", "nan", "--quiet"]), "--lr nan")
    assert not os.path.exists(os.path.join(files["tmp"], "new"))


def test_a_bpe_too_short_for_a_window_names_data_before_training(capsys, monkeypatch, tmp_path):
    """Bytes say enough (2,900: 290 held out), but the BPE trained on the text encodes the held-out part in far
    fewer than 257 tokens: known only once the BPE is trained, and refused then, before any step."""
    monkeypatch.setattr(commands, "train", lambda *a, **k: pytest.fail("training ran"))
    text = tmp_path / "repeat.txt"
    text.write_text(ROMEO * 50, encoding="utf-8")
    one_error_line(capsys, main(["train", "--data", str(text), "--vocab", "bpe", "--quiet"]),
                   f"--data {text}", "BPE tokens", "one window needs 257", "expected a text file of at least")


def test_ladder_json_records_of_the_shipped_file_pass_and_09_selects_08s_runs():
    import argparse
    ap = argparse.ArgumentParser()
    commands.add_ladder_arguments(ap)
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "benchmarks",
                        "training_ladder.json")
    records = commands.check_ladder_arguments(ap.parse_args(["--json", path, "--only", "09-mxfp4"]))
    assert len(records) == len(json.load(open(path, encoding="utf-8"))) > 0
    assert commands.ladder_runs(["09-mxfp4"]) == [("08-moe", None)]


@pytest.mark.parametrize("field, value", [("steps", 0), ("batch_size", 0), ("eval_every", 0), ("warmup", -1),
                                          ("eval_batches", 0), ("lr", math.nan), ("lr", -1e-3),
                                          ("min_lr_ratio", 1.5), ("weight_decay", -0.1), ("grad_clip", 0.0),
                                          ("grad_clip", math.nan), ("aux_weight", math.inf), ("betas", (0.9, 1.0)),
                                          ("seed", -1), ("threads", 0)])
def test_the_training_loop_names_a_bad_setting(field, value):
    """gptoss_torch.train.loop.train, the library call: a setting out of range is refused naming its field."""
    cfg = gptoss_np.scale_down(gptoss_np.get_config("gpt-oss-20b"))
    tokens = torch.zeros(600, dtype=torch.long)
    with pytest.raises(InputError, match=f"TrainSettings.{field} "):
        loop.train(cfg, tokens, tokens, loop.TrainSettings(context=16, **{field: value}), progress=False)


def test_batches_name_what_is_short():
    from gptoss_torch.train.data import random_batch, validation_batches
    tokens = torch.arange(100)
    with pytest.raises(InputError, match="batch_size 0"):
        validation_batches(tokens, 0, 16)
    with pytest.raises(InputError, match="validation split of 100 tokens is shorter than one window of 129"):
        validation_batches(tokens, 4, 128)
    with pytest.raises(InputError, match="training split of 100 tokens: expected at least 130"):
        random_batch(tokens, 4, 128, torch.Generator().manual_seed(0))


def test_ladder_config_names_a_bad_variant():
    from gptoss_torch.train.ladder import ladder_config
    with pytest.raises(InputError, match="variant 'params' of step '03-rope'"):
        ladder_config("03-rope", "params")


def test_overwrite_replaces_every_file_of_the_old_model(capsys, tmp_path):
    """A BPE model in --out, then a byte-level one over it: refused without --overwrite (nothing touched); with it,
    no file of the old model stays (before: tokenizer.json stayed, tokenizer_config.json went, and the directory
    no longer loaded), and the new one loads."""
    import random
    rng = random.Random(0)  # varied text: a BPE leaves it long enough for a window (ROMEO * 120 it would not)
    text = tmp_path / "text.txt"
    text.write_text("".join(" ".join("".join(rng.choices("abcdefghij", k=5)) for _ in range(10)) + "\n"
                            for _ in range(120)), encoding="utf-8")
    out = tmp_path / "model"
    base = ["train", "--step", "00-gpt2-xl", "--data", str(text), "--steps", "1", "--batch-size", "1",
            "--eval-every", "1", "--val-batches", "1", "--quiet", "--release", "--out", str(out)]
    assert main(base + ["--vocab", "bpe"]) == 0
    bpe_files = sorted(os.listdir(out))
    assert "tokenizer.json" in bpe_files and "tokenizer_config.json" in bpe_files
    capsys.readouterr()
    one_error_line(capsys, main(base), f"--out {out}", "already holds checkpoint files", "--overwrite")
    assert sorted(os.listdir(out)) == bpe_files
    (out / "notes.txt").write_text("mine")  # not a file of the model: kept
    assert main(base + ["--overwrite"]) == 0
    assert sorted(os.listdir(out)) == ["config.json", "generation_config.json", "model.safetensors", "notes.txt",
                                       "training.json"]
    import gptoss_torch
    assert gptoss_torch.load_model(str(out), progress=False).cfg.vocab_size == 256
