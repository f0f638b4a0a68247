"""Text from a candidate shown as what it is, not as it renders.

A diff, a log or a test name comes from the candidate's tree, and a terminal renders some characters
as something else or as nothing: bidirectional controls reorder what follows them ("Trojan Source":
code that reads one way and runs another), zero-width and other format characters hide between
letters, a carriage return or an escape sequence moves the cursor and overwrites what was shown,
colours it or retitles the window. Everything the harness shows a person passes through `visible`,
which writes each such character as its code point (`⟨U+202E⟩`); the policy's `hidden_text` rule
finds them in a diff with `hidden_characters`.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.console import Console, ConsoleOptions, ConsoleRenderable, RenderableType, RenderHook, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

SHOWN_AS_IS = frozenset("\n\t")
HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})
"""Controls, format characters (bidi, zero-width), surrogates, private use, unassigned code points
("Other"); line and paragraph separators and every space but the ASCII one ("Separator")."""
MARK_OPEN, MARK_CLOSE = "⟨", "⟩"


def is_hidden(char: str) -> bool:
    """Whether `char` renders as something other than itself, or as nothing: exactly the characters
    `str.isprintable` rejects (Unicode "Other" and "Separator", but the ASCII space), bar newline
    and tab."""
    return not char.isprintable() and char not in SHOWN_AS_IS


def hidden_characters(text: str) -> list[tuple[int, str]]:
    """(index, character) of every hidden character in `text`."""
    if is_plain(text):
        return []
    return [(index, char) for index, char in enumerate(text) if is_hidden(char)]


def is_plain(text: str) -> bool:
    """No hidden character (the common case, checked at C speed)."""
    return text.isprintable() or text.replace("\n", "").replace("\t", "").isprintable()


def code_point(char: str) -> str:
    return f"U+{ord(char):04X}"


def describe(char: str) -> str:
    """`U+202E RIGHT-TO-LEFT OVERRIDE`; a control character has no name, only its code point."""
    name = unicodedata.name(char, "")
    return f"{code_point(char)} {name}".rstrip()


def visible(text: str) -> str:
    """`text` with every hidden character written as `⟨U+XXXX⟩` (newlines and tabs kept)."""
    if is_plain(text):
        return text
    return "".join(_mark(char) for char in text)


def _mark(char: str) -> str:
    return f"{MARK_OPEN}{code_point(char)}{MARK_CLOSE}" if is_hidden(char) else char


def split_visible(text: str) -> list[tuple[str, bool]]:
    """`text` in runs of (piece, is_a_mark): a renderer styles the marks so they stand out."""
    runs: list[tuple[str, bool]] = []
    start = 0
    for index, char in hidden_characters(text):
        if index > start:
            runs.append((text[start:index], False))
        runs.append((_mark(char), True))
        start = index + 1
    if start < len(text):
        runs.append((text[start:], False))
    return runs


def shown(text: str, style: str | Style = "") -> Text:
    """`text` as a Rich Text with every hidden character written as its code point, in reverse video
    (a Text, never markup: words from a candidate are not styles)."""
    out = Text(style=style)
    for piece, is_mark in split_visible(text):
        out.append(piece, style="reverse" if is_mark else None)
    return out


class _Shown:
    """A renderable drawn as `inner` is, with hidden characters in its text made visible."""

    def __init__(self, inner: RenderableType) -> None:
        self.inner = inner

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for segment in console.render(self.inner, options):
            if segment.control or not hidden_characters(segment.text):
                yield segment
            else:
                for piece, is_mark in split_visible(segment.text):
                    style = (segment.style or Style()) + Style(reverse=True) if is_mark else segment.style
                    yield Segment(piece, style)


class ShowHidden(RenderHook):
    """A console render hook: everything printed shows hidden characters as code points, so a test
    name, a log line or a rationale cannot move the cursor, recolour or retitle the terminal, write
    its clipboard, or reorder what follows it."""

    def process_renderables(self, renderables: list[ConsoleRenderable]) -> list[ConsoleRenderable]:
        return [shown_rich_text(r) if isinstance(r, Text) else _Shown(r) for r in renderables]


def shown_rich_text(text: Text) -> Text:
    """A copy of a Rich Text with each hidden character replaced by its mark, styles kept (before
    layout, so wrapping sees the text as it is drawn)."""
    found = hidden_characters(text.plain)
    if not found:
        return text
    cuts = sorted({i for index, _ in found for i in (index, index + 1)})
    out = Text(
        style=text.style, justify=text.justify, overflow=text.overflow, no_wrap=text.no_wrap, end=text.end
    )
    for piece in text.divide(cuts):
        if len(piece.plain) == 1 and is_hidden(piece.plain):
            out.append(_mark(piece.plain), style="reverse")
        else:
            out.append_text(piece)
    return out


def showing_console(**options: Any) -> Console:
    """A Rich console whose output passes through `ShowHidden`."""
    console = Console(**options)
    console.push_render_hook(ShowHidden())
    return console
