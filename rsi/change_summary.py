"""What a change does, in a few words: the line a reviewer reads in tables and transcripts.

describe_change(diff, rationale)   # "input_range 0.5 → 1.0" for a one-literal change,
                                   # else the rationale's first line, else the diff's size
"""

from __future__ import annotations

import re

from rsi.errors import RsiError
from sandbox.patch import parse_diff

TOKEN = re.compile(r"""[A-Za-z_][A-Za-z0-9_.]*|\d[\w.+-]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|\S""")
ASSIGNED_NAME = re.compile(r"^\s*(?:self\.)?([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]+)?=[^=]")
LITERAL = re.compile(r"""^(?:[-+]?\d[\w.+-]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|True|False|None)$""")


def first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def shorten(text: str, width: int) -> str:
    """At most `width` characters, with an ellipsis when something was cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def literal_change(before: str, after: str) -> str | None:
    """`name old → new` when two lines differ in exactly one literal, else None."""
    old, new = TOKEN.findall(before), TOKEN.findall(after)
    if len(old) != len(new):
        return None
    differing = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    if len(differing) != 1 or not all(LITERAL.match(token) for token in differing[0]):
        return None
    named = ASSIGNED_NAME.match(after)
    name = named.group(1) if named else after.split("=")[0].strip()[:40]
    return f"{name} {differing[0][0]} → {differing[0][1]}"


def describe_change(diff: str, rationale: str = "") -> str:
    try:
        changes = parse_diff(diff)
    except RsiError:
        changes = []
    if len(changes) == 1 and len(changes[0].added) == 1 and len(changes[0].removed) == 1:
        summary = literal_change(changes[0].removed[0].text, changes[0].added[0].text)
        if summary:
            return summary
    if first_line(rationale):
        return first_line(rationale)
    if not changes:
        return "empty diff" if not diff.strip() else "unparseable diff"
    files = ", ".join(change.path for change in changes[:3]) + (" …" if len(changes) > 3 else "")
    added = sum(len(change.added) for change in changes)
    removed = sum(len(change.removed) for change in changes)
    return f"{files} +{added} -{removed}"
