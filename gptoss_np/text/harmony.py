"""The harmony chat format of gpt-oss: conversations rendered to tokens, and the model's reply parsed by channel.

A message is `<|start|>` header `<|message|>` content, then `<|end|>` (or `<|call|>` for an assistant's tool call).
The header is the role, an optional ` to=recipient`, an optional `<|channel|>` name and an optional content type.
Rendering goes fragment by fragment: formatting tokens come from the special-token table and every piece of text
(role, recipient, channel, content type, content) is encoded on its own with `encode_ordinary`, so special-token
strings typed by a user stay plain text. The assistant answers on channels: `analysis` (chain of thought, never
shown as the answer), `commentary` (tool calls, preambles) and `final` (the answer). `<|return|>` ends the reply,
`<|call|>` hands over to a tool.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, replace

from ..errors import InputError

START, END, MESSAGE, CHANNEL = "<|start|>", "<|end|>", "<|message|>", "<|channel|>"
CONSTRAIN, RETURN, CALL = "<|constrain|>", "<|return|>", "<|call|>"
FORMATTING = (START, END, MESSAGE, CHANNEL, CONSTRAIN, RETURN, CALL)  # the specials a conversation renders or stops on
ROLES = ("system", "developer", "user", "assistant", "tool")
EFFORTS = ("low", "medium", "high")
CHANNELS = ("analysis", "commentary", "final")
MODEL_IDENTITY = "You are ChatGPT, a large language model trained by OpenAI."
KNOWLEDGE_CUTOFF = "2024-06"


@dataclass(frozen=True)
class Message:
    """One harmony message. `name` is a tool's name (it replaces the role in the header) or an author's name."""

    role: str
    content: str
    channel: str | None = None
    recipient: str | None = None
    content_type: str | None = None
    name: str | None = None


# ---- message content ------------------------------------------------------------------------------------------

def check_effort(reasoning):
    """The reasoning effort, validated: low, medium or high."""
    if reasoning not in EFFORTS:
        raise InputError(f"reasoning={reasoning!r}; expected one of {', '.join(EFFORTS)}")
    return reasoning


def system_content(reasoning="medium", date=None, identity=MODEL_IDENTITY, knowledge_cutoff=KNOWLEDGE_CUTOFF,
                   channels=CHANNELS, function_tools=False):
    """The system message text: identity and dates, the reasoning effort, the valid channels."""
    top = [identity, f"Knowledge cutoff: {knowledge_cutoff}"] + ([f"Current date: {date}"] if date else [])
    channel_line = f"# Valid channels: {', '.join(channels)}. Channel must be included for every message."
    if function_tools:
        channel_line += "\nCalls to these tools must go to the commentary channel: 'functions'."
    return "\n\n".join(["\n".join(top), f"Reasoning: {check_effort(reasoning)}", channel_line])


def developer_content(instructions):
    """The developer message text for plain instructions (no tools)."""
    return f"# Instructions\n\n{instructions}"


def system_message(reasoning="medium", date=None):
    return Message("system", system_content(reasoning, date))


def developer_message(instructions):
    return Message("developer", developer_content(instructions))


def user_message(text):
    return Message("user", text)


# ---- rendering --------------------------------------------------------------------------------------------------

def special(enc, token):
    """The id of a harmony formatting token in `enc` (which must be o200k_harmony or hold its specials)."""
    try:
        return enc.encode_single_token(token)
    except KeyError:
        raise InputError(f"tokenizer {enc.name!r} has no special token {token}; expected the o200k_harmony "
                         "tokenizer (get_tokenizer('o200k_harmony'))") from None


def render_header(enc, m):
    """Tokens of a message header: role (or tool name), ` to=recipient`, `<|channel|>` name, content type."""
    if m.role not in ROLES:
        raise InputError(f"message role {m.role!r}; expected one of {', '.join(ROLES)}")
    if m.role == "tool":
        if not m.name:
            raise InputError("a tool message needs name= (the tool, e.g. 'functions.get_weather')")
        tokens = enc.encode_ordinary(m.name)
    else:
        tokens = enc.encode_ordinary(m.role) + (enc.encode_ordinary(f":{m.name}") if m.name else [])
    if m.recipient and m.recipient != "all":
        tokens += enc.encode_ordinary(f" to={m.recipient}")
    if m.channel:
        tokens += [special(enc, CHANNEL)] + enc.encode_ordinary(m.channel)
    if m.content_type:
        if m.content_type.startswith(CONSTRAIN):
            rest = m.content_type[len(CONSTRAIN):]
            tokens += enc.encode_ordinary(" ") + [special(enc, CONSTRAIN)] + (enc.encode_ordinary(rest) if rest else [])
        else:
            tokens += enc.encode_ordinary(f" {m.content_type}")
    return tokens


def render_message(enc, m):
    """Tokens of one message, from `<|start|>` to its `<|end|>` (`<|call|>` for an assistant's tool call)."""
    end = CALL if m.role == "assistant" and m.recipient else END
    return ([special(enc, START)] + render_header(enc, m) + [special(enc, MESSAGE)] + enc.encode_ordinary(m.content)
            + [special(enc, end)])


def drop_old_analysis(messages):
    """Harmony's history rule: once the last assistant message is final, analysis before the first final goes."""
    assistant = [m for m in messages if m.role == "assistant"]
    if not assistant or assistant[-1].channel != "final":
        return list(messages)
    first_final = next(i for i, m in enumerate(messages) if m.channel == "final")
    return [m for i, m in enumerate(messages) if not (i < first_final and m.channel == "analysis")]


def render_conversation(enc, messages, drop_analysis=True):
    """Tokens of a whole conversation, message after message."""
    kept = drop_old_analysis(messages) if drop_analysis else messages
    return [t for m in kept for t in render_message(enc, m)]


def render_for_completion(enc, messages, role="assistant", drop_analysis=True):
    """The conversation followed by `<|start|>` + role: the prompt the model continues."""
    return render_conversation(enc, messages, drop_analysis) + [special(enc, START)] + enc.encode_ordinary(role)


def chat_prompt(enc, question, reasoning="medium", developer=None, date=None):
    """Prompt tokens for one user question: system (with the effort), optional developer instructions, user."""
    messages = [system_message(reasoning, date)]
    if developer:
        messages.append(developer_message(developer))
    return render_for_completion(enc, messages + [user_message(question)])


def stop_tokens(enc, end_of_message=False):
    """Ids that end the assistant's turn: `<|return|>` and `<|call|>` (plus `<|end|>` if end_of_message)."""
    names = (RETURN, CALL) + ((END,) if end_of_message else ())
    return frozenset(special(enc, n) for n in names)


# ---- parsing the reply ------------------------------------------------------------------------------------------

def parse_header(header_text, role=None):
    """(role, name, channel, recipient, content_type) from a decoded header such as
    'assistant<|channel|>commentary to=functions.f <|constrain|>json'; `role` is given for the first message."""
    channel, text = None, header_text
    at = text.find(CHANNEL)
    if at >= 0:
        rest = text[at + len(CHANNEL):]
        stop = next((i for i, c in enumerate(rest) if c.isspace() or c == "<"), len(rest))
        channel, text = rest[:stop] or None, text[:at] + " " + rest[stop:]
    words = text.replace(CONSTRAIN, " " + CONSTRAIN).split()
    name = None
    if role is None and words:
        first = words.pop(0)
        role, _, name = first.partition(":")
        if role not in ROLES:
            role, name = "tool", first
        name = name or None
    elif words and words[0] == role:
        words.pop(0)
    recipient = next((w[3:] for w in words if w.startswith("to=")), None)
    content_type = " ".join(w for w in words if not w.startswith("to=")) or None
    return role or "assistant", name, channel, recipient, content_type


@dataclass
class Delta:
    """New content text of the message being generated, with that message's channel."""

    channel: str | None
    text: str


class ReplyParser:
    """Turns the model's tokens, fed one at a time, into messages; content arrives as Deltas while it streams.

    Content ends only at a real `<|end|>`, `<|return|>` or `<|call|>` token (any other token, `<|start|>` included,
    is content), so text that merely spells one, in the analysis say, stays where it is. Lenient, so that any
    token sequence (a random model's too) parses: tokens outside a message are kept in `stray`, and a header cut
    short by an end token is dropped."""

    def __init__(self, enc, role="assistant"):
        self.enc = enc
        self.start, self.message, self.end = special(enc, START), special(enc, MESSAGE), special(enc, END)
        self.done_ids = stop_tokens(enc)
        self.messages, self.stray, self.tokens = [], [], []
        self.state, self.role, self.header = "header", role, []
        self.current, self.decoder, self.text = None, None, []
        self.stop_token = None  # the <|return|> / <|call|> id that ended the reply

    @property
    def done(self):
        return self.stop_token is not None

    def feed(self, token):
        """Consume one token id; return a Delta when it adds content text, else None."""
        token = int(token)
        self.tokens.append(token)
        if self.done:
            self.stray.append(token)
        elif token in self.done_ids or token == self.end:
            self._finish()
            self.state = "between"
            if token in self.done_ids:
                self.stop_token = token
        elif self.state == "between":
            if token == self.start:
                self.state, self.role, self.header = "header", None, []
            else:
                self.stray.append(token)
        elif self.state == "header":
            if token == self.message:
                self._open()
            else:
                self.header.append(token)
        else:
            text = self.decoder.decode(self._bytes(token))
            if text:
                self.text.append(text)
                return Delta(self.current.channel, text)
        return None

    def close(self):
        """End of generation: keep a message cut off mid-content (a reply stopped by the token limit)."""
        self._finish()
        return self.messages

    def _bytes(self, token):
        try:
            return self.enc.decode_single_token_bytes(token)
        except KeyError:  # an id the tokenizer does not define (model vocab > tokenizer vocab)
            return "\ufffd".encode()

    def _open(self):
        role, name, channel, recipient, content_type = parse_header(self.enc.decode(self.header), self.role)
        self.current = Message(role, "", channel, recipient, content_type, name)
        self.decoder, self.text, self.state = codecs.getincrementaldecoder("utf-8")("replace"), [], "content"

    def _finish(self):
        if self.state == "content":
            tail = self.decoder.decode(b"", final=True)
            self.messages.append(replace(self.current, content="".join(self.text) + tail))
        self.state, self.current, self.header = "between", None, []


def parse_reply(enc, tokens, role="assistant"):
    """The messages in a completion (the tokens generated after `<|start|>assistant`)."""
    parser = ReplyParser(enc, role)
    for t in tokens:
        parser.feed(t)
    return parser.close()


def final_text(messages):
    """The user-facing answer: the content of the assistant's final-channel messages, and nothing else."""
    return "".join(m.content for m in messages if m.role == "assistant" and m.channel == "final")


def analysis_text(messages):
    """The chain of thought: the content of the analysis-channel messages."""
    return "".join(m.content for m in messages if m.channel == "analysis")
