"""What a change does, in a few words: the line a reviewer reads in tables and transcripts.

describe_change(diff, rationale)   # "input_range 0.5 → 1.0" for a one-literal change,
                                   # else the rationale's first line, else the diff's size
"""

from __future__ import annotations

import re
from functools import lru_cache

from core.diff import diff_lines
from core.visible import visible

TOKEN = re.compile(r"""[A-Za-z_][A-Za-z0-9_.]*|\d[\w.+-]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|\S""")
ASSIGNED_NAME = re.compile(r"^\s*(?:self\.)?([A-Za-z_][A-Za-z0-9_]*)\s*(?::[^=]+)?=[^=]")
LITERAL = re.compile(r"""^(?:[-+]?\d[\w.+-]*|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|True|False|None)$""")


def first_line(text: str | None) -> str:
    """The first line with words, as it is shown (hidden characters as code points, core.visible)."""
    return next((visible(line.strip()) for line in (text or "").split("\n") if line.strip()), "")


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


def changed_lines(diff: str) -> tuple[list[str], list[str], list[str]]:
    """The files, removed lines and added lines of a unified diff, read in one pass (this runs for
    every row of a 2,000-generation table, so it does not validate: `rsi` parses diffs strictly
    where it applies them)."""
    files: list[str] = []
    removed: list[str] = []
    added: list[str] = []
    for kind, line in diff_lines(diff):
        if kind == "new-file":
            name = line[4:].strip()
            files.append(name[2:] if name.startswith(("a/", "b/")) else name)
        elif kind == "add":
            added.append(line)
        elif kind == "del":
            removed.append(line)
    return files, removed, added


@lru_cache(maxsize=4096)
def describe_change(diff: str, rationale: str = "") -> str:
    """The line a reviewer reads about a change, with hidden characters shown as code points."""
    return visible(_describe_change(diff, rationale))


def _describe_change(diff: str, rationale: str) -> str:
    files, removed, added = changed_lines(diff)
    if len(files) == 1 and len(removed) == 1 and len(added) == 1:
        summary = literal_change(removed[0], added[0])
        if summary:
            return summary
    if first_line(rationale):
        return first_line(rationale)
    if not files:
        return "empty diff" if not diff.strip() else "unparseable diff"
    names = ", ".join(files[:3]) + (" …" if len(files) > 3 else "")
    return f"{names} +{len(added)} -{len(removed)}"
