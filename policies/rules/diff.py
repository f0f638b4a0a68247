"""Rules on the shape of a diff: which paths it touches, how large it is, and what it hides from a reader."""

from __future__ import annotations

import io
import re
import tokenize
import unicodedata
from typing import Any, Literal

from pydantic import Field
from rich.cells import cell_len

from core.change_summary import shorten
from core.contracts import Finding
from core.errors import ConfigError
from core.visible import MARK_CLOSE, MARK_OPEN, code_point, describe, hidden_characters, visible
from policies.base import CheckContext, Params, Rule, compile_globs, rule_type
from policies.source import FileView, declared_codec
from sandbox.patch import AddedLine, FileChange

NAME_LIKE = re.compile(r"\w+")
ChangeKind = Literal["added", "modified", "deleted", "renamed"]


class PathsParams(Params):
    patterns: list[str] = Field(default_factory=list)
    """gitignore-style patterns (matched with pathspec) of files the rule protects."""
    include_target_protected: bool = False
    """Also protect the target's rsi.toml [protected].paths."""
    changes: list[ChangeKind] = Field(default_factory=lambda: list(ChangeKind.__args__))  # type: ignore[attr-defined]
    """Which kinds of change the rule objects to (a rename counts for its old and its new path)."""


@rule_type
class PathsRule(Rule):
    kind = "paths"
    summary = "files matching gitignore-style globs may not be created / modified / deleted / renamed"
    Params = PathsParams
    params: PathsParams

    def setup(self) -> None:
        patterns = list(self.params.patterns)
        if self.params.include_target_protected and self.target is not None:
            patterns += self.target.protected.paths
        self.matcher = compile_globs(patterns, "params.patterns")

    def check(self, ctx: CheckContext) -> list[Finding]:
        findings = []
        for change in ctx.changes:
            if change.status not in self.params.changes:
                continue
            touched = {change.path} | ({change.old_path} if change.old_path else set())
            hits = sorted(p for p in touched if self.matcher.match_file(p))
            if hits:
                line = change.added[0].line_no if change.added else None
                findings.append(
                    self.finding(
                        f"{change.status} {hits[0]}: {self.spec.description or 'a protected path'}",
                        file=change.path,
                        line=line,
                        status=change.status,
                    )
                )
        return findings


class SizeParams(Params):
    max_files: int | None = Field(default=None, ge=0)
    """Most files one diff may change."""
    max_added: int | None = Field(default=None, ge=0)
    """Most lines added in total."""
    max_removed: int | None = Field(default=None, ge=0)
    """Most lines removed in total."""
    max_added_per_file: int | None = Field(default=None, ge=0)
    """Most lines added to any one file."""
    max_removed_per_file: int | None = Field(default=None, ge=0)
    """Most lines removed from any one file."""


@rule_type
class SizeRule(Rule):
    kind = "size"
    summary = "files changed, lines added/removed, per file and in total, against limits"
    Params = SizeParams
    params: SizeParams

    def example_context(self, example: Any) -> CheckContext:
        """Besides diffs and snippets: {files: N, added: N, removed: N} (spread over N files)."""
        if not (isinstance(example, dict) and "file" not in example):
            return super().example_context(example)
        unknown = set(example) - {"files", "added", "removed"}
        if unknown or not all(isinstance(v, int) and v >= 0 for v in example.values()):
            raise ConfigError(
                "a size example counts {files: N, added: N, removed: N} (non-negative integers)"
            )
        files = max(1, example.get("files", 1))
        changes = [
            FileChange(path=f"file{i}.py", old_path=f"file{i}.py", status="modified") for i in range(files)
        ]
        for kind in ("added", "removed"):
            for n in range(example.get(kind, 0)):
                getattr(changes[0], kind).append(AddedLine(n + 1, ""))
        return CheckContext(diff="", changes=changes, target=self.target)

    def check(self, ctx: CheckContext) -> list[Finding]:
        p = self.params
        added = sum(len(c.added) for c in ctx.changes)
        removed = sum(len(c.removed) for c in ctx.changes)
        findings = []
        for count, limit, what in (
            (len(ctx.changes), p.max_files, "files changed"),
            (added, p.max_added, "lines added"),
            (removed, p.max_removed, "lines removed"),
        ):
            if limit is not None and count > limit:
                findings.append(self.finding(f"{count} {what} (limit {limit})", count=count, limit=limit))
        for change in ctx.changes:
            for count, limit, what in (
                (len(change.added), p.max_added_per_file, "lines added to"),
                (len(change.removed), p.max_removed_per_file, "lines removed from"),
            ):
                if limit is not None and count > limit:
                    findings.append(
                        self.finding(
                            f"{count} {what} {change.path} (limit {limit} per file)",
                            file=change.path,
                            count=count,
                            limit=limit,
                        )
                    )
        return findings


class HiddenTextParams(Params):
    max_line_chars: int | None = Field(default=200, ge=1)
    """Added lines wider than this many terminal columns (tabs to 8, wide characters 2) are findings
    too: the diff view does not wrap, and what a line holds past the screen's edge is read by no one
    who does not scroll there (None: no limit)."""
    identifiers: bool = True
    """Also report Python names and file paths spelled with characters outside ASCII (a Cyrillic
    `а` in `sсore` makes a name that looks like another one)."""


@rule_type
class HiddenTextRule(Rule):
    kind = "hidden_text"
    summary = (
        "characters that render as something else or as nothing (bidi and other format controls, "
        "escape sequences, carriage returns, odd spaces) in added lines or paths; non-ASCII Python names"
    )
    Params = HiddenTextParams
    params: HiddenTextParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        findings: list[Finding] = []
        for view in ctx.files:
            change = view.change
            for path in dict.fromkeys(p for p in (change.path, change.old_path) if p):
                for _, char in hidden_characters(path)[:1]:
                    findings.append(
                        self.finding(
                            f"the path {visible(path)!r} holds {describe(char)}: it reads otherwise than it is",
                            file=change.path,
                            character=code_point(char),
                        )
                    )
                if self.params.identifiers and not hidden_characters(path) and not path.isascii():
                    # A file name is a module name once imported: `trаin.py` (Cyrillic а) beside
                    # train.py reads as the same file.
                    others = [describe(c) for c in dict.fromkeys(path) if not c.isascii()]
                    findings.append(
                        self.finding(
                            f"the path {spelled(path)!r} is spelled with {', '.join(others[:3])}: "
                            "it may look like another path",
                            file=change.path,
                            path=spelled(path),
                        )
                    )
            limit = self.params.max_line_chars
            for line_no, text in _added_texts(view) if limit is not None else []:
                # Measured as a terminal draws it: a tab takes up to 8 columns and a wide
                # character 2, so 99 tabs in a 199-character line put its end past column 450.
                width = cell_len(text.expandtabs(8))
                if limit is not None and width > limit:
                    findings.append(
                        self.finding(
                            f"{change.path}:{line_no} is {width:,} columns wide: a reviewer's "
                            f"screen shows its start; past column {limit} it reads "
                            f"{shorten(visible(_past_column(text, limit).strip()), 120)!r}",
                            file=change.path,
                            line=line_no,
                            length=len(text),
                            columns=width,
                        )
                    )
            for line_no, text in _added_texts(view):
                found = hidden_characters(text)
                if found:
                    chars = list(dict.fromkeys(char for _, char in found))
                    findings.append(
                        self.finding(
                            f"{change.path}:{line_no} holds {', '.join(describe(c) for c in chars[:3])}"
                            f"{' …' if len(chars) > 3 else ''}: the line renders otherwise than it runs; "
                            f"it reads {shorten(visible(text.strip()), 120)!r}",
                            file=change.path,
                            line=line_no,
                            characters=[code_point(c) for c in chars],
                        )
                    )
            for line_no, side, text in _header_lookalikes(change):
                findings.append(
                    self.finding(
                        f"{change.path}:{line_no}: {'an' if side == 'added' else 'a'} {side} line reads "
                        "as a diff's file header "
                        f"({shorten(visible(text), 80)!r}): a reader that does not count the hunk's "
                        "lines takes what follows for another file",
                        file=change.path,
                        line=line_no if side == "added" else None,
                    )
                )
            if view.is_python and (codec := _declared(view)) not in (None, "utf-8", "utf-8-sig"):
                shown = ""
                if view.python_source is not None:
                    runs = view.python_source.split("\n")
                    reads = (view.whole_new or "").split("\n")
                    first = next((i for i, line in enumerate(runs) if i >= len(reads) or reads[i] != line), 0)
                    shown = (
                        f"; Python runs line {first + 1} as {shorten(visible(runs[first].strip()), 100)!r}"
                    )
                findings.append(
                    self.finding(
                        f"{change.path} declares the source encoding {codec!r}: Python decodes it "
                        "otherwise than as the UTF-8 the diff shows, and may run text no one reads"
                        f"{shown}",
                        file=change.path,
                        line=1,
                        codec=codec,
                    )
                )
            if self.params.identifiers and view.is_python:
                for line_no, name in _foreign_names(view):
                    others = [describe(c) for c in dict.fromkeys(name) if not c.isascii()]
                    findings.append(
                        self.finding(
                            f"{change.path}:{line_no}: the name {spelled(name)!r} is spelled with "
                            f"{', '.join(others[:3])}: it may look like another name "
                            f"(Python reads it as {unicodedata.normalize('NFKC', name)!r})",
                            file=change.path,
                            line=line_no,
                            name=name,
                        )
                    )
        return findings


def spelled(name: str) -> str:
    """A name with each character outside ASCII written as its code point: `sc⟨U+043E⟩re`."""
    return "".join(c if c.isascii() else f"{MARK_OPEN}{code_point(c)}{MARK_CLOSE}" for c in name)


def _past_column(text: str, column: int) -> str:
    """What of `text` a terminal draws past `column` (tabs to 8 columns, wide characters 2)."""
    drawn = 0
    for index, char in enumerate(text):
        drawn = (drawn // 8 + 1) * 8 if char == "\t" else drawn + cell_len(char)
        if drawn > column:
            return text[index:]
    return ""


def _added_texts(view: FileView) -> list[tuple[int, str]]:
    """(line number, text) of what the change brings into a file: its added lines, or every line of
    a file renamed or copied into a Python path (numbered at line feeds, as the diff is)."""
    moved = view.change.old_path is not None and view.change.old_path != view.path
    if moved and view.is_python and view.whole_new is not None:
        texts = list(enumerate(view.whole_new.split("\n"), start=1))
    else:
        texts = [(a.line_no, a.text) for a in view.change.added]
    # A carriage return that only ends the line is how a CRLF file ends each line.
    return [(n, t.removesuffix("\r")) for n, t in texts]


def _header_lookalikes(change: FileChange) -> list[tuple[int, str, str]]:
    """Added lines whose diff form starts `+++ `, removed ones whose diff form starts `--- `."""
    found = [(a.line_no, "added", "+" + a.text) for a in change.added if a.text.startswith("++ ")]
    return found + [(r.line_no, "removed", "-" + r.text) for r in change.removed if r.text.startswith("-- ")]


def _declared(view: FileView) -> str | None:
    """The codec the file's first two lines declare, from the whole new text or its added lines."""
    if view.whole_new is not None:
        first = view.whole_new.split("\n", 2)[:2]
    else:
        by_line = {a.line_no: a.text for a in view.change.added}
        if not by_line.keys() & {1, 2}:
            return None
        first = [by_line.get(1, ""), by_line.get(2, "")]
    return declared_codec(first) or "an unknown codec"


def _foreign_names(view: FileView) -> list[tuple[int, str]]:
    """Names (Python's NAME tokens) with non-ASCII characters on the lines the change brings in."""
    added = view.added_lines
    rows: list[int] | None = None
    if view.whole_new is not None:
        source = view.whole_new
    else:
        texts = _added_texts(view)
        source, rows = "\n".join(t for _, t in texts) + "\n", [n for n, _ in texts]
    found: list[tuple[int, str]] = []
    try:
        # Read with universal newlines, as Python reads source: rows are then numbered as
        # FileView.added_lines is.
        for token in tokenize.generate_tokens(io.StringIO(source, newline=None).readline):
            if token.type != tokenize.NAME or token.string.isascii():
                continue
            row = token.start[0]
            line_no = row if rows is None else rows[min(row, len(rows)) - 1]
            if line_no in added:
                found.append((line_no, token.string))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        found = []
        # Unparseable text: every word with a letter outside ASCII that Python would take for a name.
        for line_no, text in _added_texts(view):
            found += [(line_no, w) for w in NAME_LIKE.findall(text) if not w.isascii() and w.isidentifier()]
    return found
