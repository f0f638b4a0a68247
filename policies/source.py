"""Code as the policy sees it: each changed file's hunks, and the changed Python parsed with `ast`.

The policy is given a diff, not a tree. When the caller passes the patched tree (or the whole new
texts), a changed file is parsed whole. Otherwise each hunk's side (context plus added lines for
the new side, context plus removed lines for the old) is parsed as a fragment: dedented, wrapped
in `if True:` headers when it starts inside a block, trimmed of context lines that do not parse,
and, as a last resort, split into single lines. Each parsed `Piece` keeps the file's own line
numbers, so findings point at real lines.
"""

from __future__ import annotations

import ast
import codecs
import io
import re
import sys
import textwrap
import tokenize
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Literal

from unidiff import PatchSet
from unidiff.errors import UnidiffParseError

from core.pysource import parse_module
from sandbox.patch import FileChange

Side = Literal["old", "new"]
CONVENTIONAL_ALIASES = {"np": "numpy", "pd": "pandas", "sp": "subprocess", "sk": "sklearn"}
DEF_LINE = re.compile(r"^(\s*)(?:async\s+def|def|class)\s+([A-Za-z_]\w*)")


@dataclass
class HunkLine:
    kind: str
    """' ' context, '+' added, '-' removed."""
    old_no: int | None
    new_no: int | None
    text: str


@dataclass
class Hunk:
    section: str
    """The text after the second @@ (git puts the enclosing function or class there)."""
    lines: list[HunkLine]

    def side(self, side: Side) -> list[tuple[int, str]]:
        """(line number, text) of one side of the hunk, in order."""
        if side == "new":
            return [(ln.new_no, ln.text) for ln in self.lines if ln.kind != "-" and ln.new_no is not None]
        return [(ln.old_no, ln.text) for ln in self.lines if ln.kind != "+" and ln.old_no is not None]


@dataclass
class Piece:
    """A parsed fragment of one side of a file; `module`'s line numbers are the file's own."""

    module: ast.Module
    text: str
    offset: int
    """File line = line in `text` + offset (headers added to make a fragment parse are negative)."""
    origin: tuple[int, ...] = ()
    """When a line of the fragment is several lines of code (a lone carriage return ends a line for
    Python, not for a diff): the file line of each line of `text`, instead of `offset`."""

    def file_line(self, line: int) -> int:
        """The file's line number of line `line` of `text`."""
        if self.origin:
            return self.origin[min(max(line, 1), len(self.origin)) - 1]
        return line + self.offset


def parse_text(text: str) -> ast.Module | None:
    try:
        return parse_module(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def parse_error(text: str) -> str | None:
    """Why `text` does not parse here, or None when it does."""
    try:
        parse_module(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        return f"{type(exc).__name__}: {str(exc)[:120]}"
    return None


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _parse_block(lines: list[tuple[int, str]]) -> Piece | None:
    """Parse consecutive lines as a module, wrapping them when they start inside a block."""
    if any("\r" in t.removesuffix("\r") for _, t in lines):
        return _parse_split_block(lines)
    texts = [t.removesuffix("\r").replace("\t", "    ") for _, t in lines]
    if not any(t.strip() for t in texts):
        return None
    body = textwrap.dedent("\n".join(texts)).split("\n")
    nonblank = [b for b in body if b.strip()]
    if nonblank and nonblank[-1].rstrip().endswith(":"):
        body.append(" " * (_indent(nonblank[-1]) + 4) + "pass")
    first = _indent(nonblank[0])
    # Starting deeper than later lines means the fragment begins inside a block: open one per level.
    levels = sorted({_indent(b) for b in nonblank if _indent(b) < first})
    headers = [" " * level + "if True:" for level in levels]
    text = "\n".join([*headers, *body]) + "\n"
    module = parse_text(text)
    if module is None:
        return None
    offset = lines[0][0] - 1 - len(headers)
    ast.increment_lineno(module, offset)
    return Piece(module, text, offset)


def _parse_split_block(lines: list[tuple[int, str]]) -> Piece | None:
    """`_parse_block` of lines some of which hold lone carriage returns: each is split where Python
    splits it, and every node is numbered with the diff line it came from."""
    split = [(no, part) for no, text in lines for part in text.removesuffix("\r").split("\r")]
    piece = _parse_block([(index, text) for index, (_, text) in enumerate(split, start=1)])
    if piece is None:
        return None
    origin = [split[0][0]] * (-piece.offset) + [no for no, _ in split]
    origin += [split[-1][0]] * (piece.text.count("\n") + 1 - len(origin))
    for node in ast.walk(piece.module):
        for attribute in ("lineno", "end_lineno"):
            value = getattr(node, attribute, None)
            if isinstance(value, int):
                setattr(node, attribute, origin[min(max(value - piece.offset, 1), len(origin)) - 1])
    return Piece(piece.module, piece.text, 0, tuple(origin))


def _single_line(line_no: int, text: str) -> Piece | None:
    stripped = text.strip()
    if stripped.endswith(":"):
        stripped += " pass"
    return _parse_block([(line_no, stripped)])


def parse_fragment(lines: list[tuple[int, str]], focus: set[int]) -> list[Piece]:
    """Pieces covering the focus lines of a fragment: the whole, trimmed, runs, or single lines."""
    focus_at = [i for i, (no, _) in enumerate(lines) if no in focus]
    if not focus_at:
        return []
    head, tail = focus_at[0], len(lines) - 1 - focus_at[-1]
    for lead in range(min(head, 4) + 1):
        for trail in range(min(tail, 4) + 1):
            piece = _parse_block(lines[lead : len(lines) - trail])
            if piece is not None:
                return [piece]
    pieces: list[Piece] = []
    for run in _runs(lines, focus):
        piece = _parse_block(run)
        if piece is not None:
            pieces.append(piece)
            continue
        pieces.extend(p for no, text in run if (p := _single_line(no, text)) is not None)
    return pieces


def _runs(lines: list[tuple[int, str]], focus: set[int]) -> Iterator[list[tuple[int, str]]]:
    run: list[tuple[int, str]] = []
    for no, text in lines:
        if no in focus:
            run.append((no, text))
        elif run:
            yield run
            run = []
    if run:
        yield run


@dataclass
class FileView:
    """One changed file: its change, its hunks, and its changed code parsed into pieces."""

    change: FileChange
    hunks: list[Hunk]
    whole_new: str | None = None
    """The whole post-patch text, when known (a tree was given, or the file is new)."""
    whole_old: str | None = None
    """The whole pre-patch text, when known (the file is deleted)."""
    _cache: dict[Side, list[Piece]] = field(default_factory=dict)

    @cached_property
    def python_source(self) -> str | None:
        """The text Python runs, when it differs from `whole_new`: a coding declaration (`# -*-
        coding: utf-7 -*-`) makes Python decode the file's bytes otherwise than as UTF-8, as the
        diff, the reviewer and `whole_new` read them. The code rules parse this text then, the
        whole file."""
        return as_python_reads(self.whole_new) if self.is_python else None

    @property
    def path(self) -> str:
        return self.change.path

    @property
    def is_python(self) -> bool:
        return self.path.endswith((".py", ".pyi"))

    @cached_property
    def added_lines(self) -> set[int]:
        """The lines this change brings in: its added lines, or every line of a Python file that a
        rename or copy makes from another path (it has no added lines of its own, yet its code is
        new where it now is: a text file renamed to `.py` becomes importable code).

        Numbered as the parsed code is: a diff's line ends only at a line feed, Python's also at a
        lone carriage return, so one added line `import math\\rimport subprocess` is two lines
        of code, and both are the change's."""
        if self.python_source is not None:  # the text that runs is not the diff's: all of it
            return set(range(1, self._python_lines(self.python_source)[-1] + 1))
        moved = self.change.old_path is not None and self.change.old_path != self.path
        if moved and self.is_python and self.whole_new is not None:
            return set(range(1, self._python_lines(self.whole_new)[-1] + 1))
        numbers = {a.line_no for a in self.change.added}
        if not self.is_python or self.whole_new is None or "\r" not in self.whole_new:
            return numbers
        starts = self._python_lines(self.whole_new)
        return {
            python_no
            for no in numbers
            if 0 < no < len(starts)
            for python_no in range(starts[no - 1], starts[no])
        }

    @staticmethod
    def _python_lines(text: str) -> list[int]:
        """For each line of `text` split at line feeds, the Python line it starts on (1-based), and
        one more entry: the line after the last. A carriage return not followed by a line feed
        starts a new Python line."""
        starts, python_no = [], 1
        for line in text.split("\n"):
            starts.append(python_no)
            python_no += 1 + line.count("\r") - line.endswith("\r")
        return [*starts, python_no]

    @cached_property
    def removed_lines(self) -> set[int]:
        return {r.line_no for r in self.change.removed}

    def focus(self, side: Side) -> set[int]:
        return self.added_lines if side == "new" else self.removed_lines

    def pieces(self, side: Side) -> list[Piece]:
        """Parsed code of one side, covering (at least) its changed lines."""
        if side not in self._cache:
            self._cache[side] = self._pieces(side)
        return self._cache[side]

    def _pieces(self, side: Side) -> list[Piece]:
        if not self.is_python:
            return []
        whole = (self.python_source or self.whole_new) if side == "new" else self.whole_old
        if whole is not None:
            module = parse_text(whole)
            if module is not None:
                return [Piece(module, whole, 0)]
        focus = self.focus(side)
        return [piece for hunk in self.hunks for piece in parse_fragment(hunk.side(side), focus)]

    def nodes(self, side: Side) -> Iterator[ast.AST]:
        """Every node of the parsed pieces of one side."""
        for piece in self.pieces(side):
            yield from ast.walk(piece.module)

    def changed_nodes(self, side: Side) -> Iterator[ast.AST]:
        """Nodes that start on, or span, a changed line of that side."""
        focus = self.focus(side)
        for node in self.nodes(side):
            start = getattr(node, "lineno", None)
            if start is None:
                continue
            end = getattr(node, "end_lineno", None) or start
            if start in focus or (end > start and any(start <= n <= end for n in focus)):
                yield node

    def aliases(self, side: Side) -> dict[str, str]:
        """Local name -> dotted origin, from every import visible on that side."""
        return import_aliases(self.nodes(side))

    def data_names(self, side: Side) -> frozenset[str]:
        """Names the whole file binds to data only (`data_only_names`); empty when only hunks are
        known (a binding elsewhere in the file may be an import)."""
        pieces = self.pieces(side)
        whole = (self.python_source or self.whole_new) if side == "new" else self.whole_old
        if whole is not None and len(pieces) == 1 and pieces[0].text == whole:
            return data_only_names(pieces[0].module)
        return frozenset()

    def enclosing(self, side: Side) -> dict[int, list[str]]:
        """For each changed line, the names of the functions/classes around it (outermost first)."""
        whole = (self.python_source or self.whole_new) if side == "new" else self.whole_old
        module = parse_text(whole) if whole is not None and self.is_python else None
        if module is not None:
            return _enclosing_from_ast(module, self.focus(side))
        result: dict[int, list[str]] = {}
        for hunk in self.hunks:
            lines = hunk.side(side)
            for index, (no, text) in enumerate(lines):
                if no in self.focus(side):
                    result[no] = _enclosing_from_text(lines[: index + 1], text, hunk.section)
        return result


def _enclosing_from_ast(module: ast.Module, focus: set[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {no: [] for no in focus}

    def visit(node: ast.AST, chain: list[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                inner = [*chain, child.name]
                end = child.end_lineno or child.lineno
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                for no in focus:
                    if first <= no <= end:
                        result[no] = inner
                visit(child, inner)
            else:
                visit(child, chain)

    visit(module, [])
    return result


def _enclosing_from_text(before: list[tuple[int, str]], line: str, section: str) -> list[str]:
    """Walk back through the hunk for `def`/`class` lines indented less than the changed line."""
    chain: list[str] = []
    own = DEF_LINE.match(line)
    if own:
        chain.append(own.group(2))
    level = _indent(line) if line.strip() else 10**6
    for _, text in reversed(before[:-1]):
        match = DEF_LINE.match(text)
        if match and len(match.group(1)) < level:
            chain.insert(0, match.group(2))
            level = len(match.group(1))
        elif text.strip() and _indent(text) < level:
            level = _indent(text)
        if level == 0:
            return chain
    header = DEF_LINE.match(section.strip())
    if header and (not chain or chain[0] != header.group(2)):
        chain.insert(0, header.group(2))
    return chain


STAR = "*"
"""The aliases' key for the modules a file star-imports, separated by spaces."""


def import_aliases(nodes: Iterator[ast.AST]) -> dict[str, str]:
    """Local name -> dotted origin: from imports, from `from M import *` (kept under STAR and read by
    `resolve`), and from plain assignments of an imported name to another (`_o = os`)."""
    aliases: dict[str, str] = {}
    assignments: list[tuple[str, ast.AST]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    aliases[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                if alias.name == "*":
                    aliases[STAR] = f"{aliases.get(STAR, '')} {node.module}".strip()
                else:
                    aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if node.value is not None:
                for target in targets:
                    assignments += _bound(target, node.value)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            # A parameter's default binds its name as an assignment does (`def f(_out=os)`).
            positional = [*node.args.posonlyargs, *node.args.args]
            defaults = list(
                zip(positional[len(positional) - len(node.args.defaults) :], node.args.defaults, strict=True)
            )
            defaults += [
                (a, d) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults, strict=True) if d
            ]
            assignments += [(arg.arg, default) for arg, default in defaults]
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                if item.optional_vars is not None:
                    assignments += _bound(item.optional_vars, item.context_expr)
        elif isinstance(node, ast.For | ast.AsyncFor | ast.comprehension) and isinstance(
            node.iter, ast.Tuple | ast.List | ast.Set
        ):
            # Iterating a literal sequence binds the target to each element in turn.
            for element in node.iter.elts:
                assignments += _bound(node.target, element)
    # An alias of an alias resolves too: a few passes reach chains as long as any honest code's.
    for _ in range(3):
        for name, value in assignments:
            chain = dotted(value) if isinstance(value, ast.Name | ast.Attribute) else None
            if chain and name not in aliases:
                origin, imported = resolve(chain, aliases)
                if imported:
                    aliases[name] = origin
    return aliases


DATA_VALUES = (
    ast.Constant,
    ast.List,
    ast.Tuple,
    ast.Set,
    ast.Dict,
    ast.ListComp,
    ast.SetComp,
    ast.DictComp,
    ast.JoinedStr,
)
"""Expressions whose value is never a module or a function: a literal, a display, a comprehension
(its elements may be anything, the container is data)."""


def data_only_names(module: ast.Module) -> frozenset[str]:
    """Names whose every binding anywhere in `module` is a plain assignment of a DATA_VALUES
    expression (`trace = []`, `code = 3`), and that nothing imports: such a name is the file's own
    data wherever it is used, never the module it shares a name with. Any other binding (an import,
    a parameter, a loop or `with` target, a def, a call's result, an unpacking) leaves the name an
    unknown, read as what it is named like."""
    plain: set[str] = set()
    other: set[str] = set()
    direct: set[int] = set()
    # ast.walk reaches a statement before the names it binds: `direct` is complete for a name
    # by the time the name itself is reached.
    for node in ast.walk(module):
        if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    direct.add(id(target))
                    (plain if isinstance(node.value, DATA_VALUES) else other).add(target.id)
        elif isinstance(node, ast.AugAssign):
            direct.add(id(node.target))  # `x += ...` keeps x's kind: a list stays a list
        elif isinstance(node, ast.Import | ast.ImportFrom):
            other.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            other.add(node.name)
        elif isinstance(node, ast.arg):
            other.add(node.arg)
        elif isinstance(node, ast.ExceptHandler | ast.MatchAs | ast.MatchStar | ast.MatchMapping):
            bound = node.rest if isinstance(node, ast.MatchMapping) else node.name
            if bound:
                other.add(bound)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and id(node) not in direct:
            # Any other store (a loop's or `with`'s target, an unpacking, a comprehension's
            # variable) is an unknown binding.
            other.add(node.id)
    return frozenset(plain - other)


def _bound(target: ast.AST, value: ast.AST) -> list[tuple[str, ast.AST]]:
    """(name, value) for each name a binding of `value` to `target` makes: a plain name, and the
    elements of a tuple or list unpacked from a literal one of the same length (`a, b = os, sys`)."""
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if (
        isinstance(target, ast.Tuple | ast.List)
        and isinstance(value, ast.Tuple | ast.List)
        and len(target.elts) == len(value.elts)
    ):
        return [pair for t, v in zip(target.elts, value.elts, strict=True) for pair in _bound(t, v)]
    return []


def dotted(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain (calls in the chain are skipped: `a().b` -> `a.b`)."""
    parts: list[str] = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        else:
            return None


def resolve(name: str, aliases: dict[str, str]) -> tuple[str, bool]:
    """The dotted origin of a name through the imports, and whether an import was seen for it."""
    root, _, rest = name.partition(".")
    if root == "__builtins__" and root not in aliases:
        # The module's builtins, as a module or its dict: `__builtins__.exec` is `builtins.exec`.
        return (f"builtins.{rest}" if rest else "builtins"), True
    if root in aliases and root != STAR:
        origin = aliases[root]
        return (f"{origin}.{rest}" if rest else origin), True
    for module in aliases.get(STAR, "").split():
        # `from os import *` binds every public name of os: `system` is `os.system`. Only modules
        # already loaded here are asked (nothing is imported on a candidate's say).
        loaded = sys.modules.get(module)
        if loaded is not None and not root.startswith("_") and hasattr(loaded, root):
            return f"{module}.{name}", True
    if rest and root in CONVENTIONAL_ALIASES:
        # A hunk may not show the import; `np.` means numpy everywhere.
        return f"{CONVENTIONAL_ALIASES[root]}.{rest}", False
    return name, False


def file_views(
    diff: str,
    changes: list[FileChange],
    tree: Path | None = None,
    new_sources: Mapping[str, str] | None = None,
) -> list[FileView]:
    """One FileView per change of a diff (hunks re-read with their context lines); whole post-patch
    files come from `new_sources` or the patched `tree` when given."""
    try:
        patches = list(PatchSet(diff)) if diff.strip() else []
    except (UnidiffParseError, ValueError):
        patches = []
    views = []
    for index, change in enumerate(changes):
        hunks = _hunks(patches[index]) if index < len(patches) else []
        views.append(
            FileView(
                change=change,
                hunks=hunks,
                whole_new=_whole_new(change, tree, new_sources),
                whole_old="\n".join(r.text for r in change.removed) + "\n"
                if change.status == "deleted"
                else None,
            )
        )
    return views


def declared_codec(first_lines: list[str]) -> str | None:
    """The codec a Python file's first two lines declare (PEP 263), normalised as Python does
    (`utf-8` for none); None when the declaration names no codec Python knows."""
    data = "".join(line + "\n" for line in first_lines[:2]).encode("utf-8", "surrogateescape")
    try:
        named = tokenize.detect_encoding(io.BytesIO(data).readline)[0]
        return codecs.lookup(named).name  # `utf8`, `UTF_8` and `utf-8` are one codec
    except (SyntaxError, LookupError):
        return None


def as_python_reads(text: str | None) -> str | None:
    """`text` (a file's bytes read as UTF-8) as Python decodes the same bytes when it runs them,
    when that differs; None when it is the same text (or Python could not decode it: then it
    cannot run it either)."""
    if text is None:
        return None
    codec = declared_codec(text.split("\n", 2)[:2])
    if codec in (None, "utf-8", "utf-8-sig"):
        return None
    try:
        decoded = text.encode("utf-8", "surrogateescape").decode(codec)
    except (UnicodeError, LookupError):
        return None
    return decoded if decoded != text else None


def _hunks(patched) -> list[Hunk]:
    hunks = []
    for hunk in patched:
        lines = [
            HunkLine(
                kind=line.line_type,
                old_no=line.source_line_no,
                new_no=line.target_line_no,
                text=line.value.rstrip("\n").rstrip("\r"),
            )
            for line in hunk
            if line.line_type in (" ", "+", "-")
        ]
        hunks.append(Hunk(section=hunk.section_header or "", lines=lines))
    return hunks


def _whole_new(change: FileChange, tree: Path | None, new_sources: Mapping[str, str] | None) -> str | None:
    if change.status == "deleted":
        return None
    if new_sources is not None and change.path in new_sources:
        return new_sources[change.path]
    if tree is not None:
        path = Path(tree) / change.path
        try:
            if path.is_file() and path.resolve().is_relative_to(Path(tree).resolve()):
                # As written: no newline translation, so line numbers are the diff's (a line feed
                # ends a line); FileView.added_lines maps them to Python's.
                return path.read_bytes().decode("utf-8", errors="replace")
        except OSError:
            return None
    if change.status == "added":
        return "\n".join(a.text for a in change.added) + "\n"
    return None
