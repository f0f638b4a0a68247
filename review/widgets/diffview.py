"""A unified diff, syntax-highlighted, unified or side by side, rendered lazily line by line.

Only the visible lines are highlighted and drawn (Textual's line API), so a 5,000-line diff opens
as fast as a 50-line one. `jump_to(file, line)` scrolls to a line of the new file and marks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import ClassVar

from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_for_filename
from pygments.util import ClassNotFound
from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax, SyntaxTheme
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from core.diff import HUNK_HEADER, diff_lines
from core.visible import split_visible, visible

GUTTER = 12  # "12345 12345 "
HIDDEN = Style(reverse=True, bold=True)
MORE = "»"
"""Drawn at the right edge of a line that goes on past it (in the HIDDEN style)."""
"""A character that renders as something else or as nothing, drawn as its code point (core.visible)."""
SIDE_GUTTER = 8  # "12345 " and the sign "+ " in front of each half's code


@dataclass(slots=True)
class DiffRow:
    kind: str
    """file | hunk | add | del | ctx | meta"""
    text: str
    file: str
    old_no: int | None = None
    new_no: int | None = None


@dataclass(slots=True)
class SideRow:
    left: DiffRow | None
    right: DiffRow | None
    header: DiffRow | None = None


def parse_rows(diff: str) -> list[DiffRow]:
    """Rows of a unified diff, tolerant of anything odd (shown as meta lines, never an error), its
    lines classified as git reads them (core.diff.diff_lines: a hunk holds as many lines as its
    header counts, whatever they start with)."""
    rows: list[DiffRow] = []
    current, old_no, new_no = "", 0, 0
    opened = False
    for kind, line in diff_lines(diff):
        if kind == "git":
            # Each file's section is named as it opens: a section of headers alone (a new empty
            # file, a mode change, a rename) has no `+++` line, and its headers must not read as
            # the previous file's (red team, round fifteen).
            _, _, target = line.rpartition(" b/")
            current = target.strip() or line
            rows.append(DiffRow("file", visible(current), current))
            opened = True
            continue
        if kind in ("index", "old-file"):
            continue
        if kind == "new-file":
            target = line[4:].strip()
            named = target[2:] if target.startswith(("a/", "b/")) else target
            if not (opened and named == current):  # a `+++` naming another file is shown too
                current = named
                rows.append(DiffRow("file", visible(current), current))
            opened = False
        elif kind == "hunk":
            match = HUNK_HEADER.match(line)
            assert match is not None
            old_no, new_no = int(match.group(1)), int(match.group(3))
            rows.append(DiffRow("hunk", visible(line), current))
        elif kind == "add":
            rows.append(DiffRow("add", line, current, None, new_no))
            new_no += 1
        elif kind == "del":
            rows.append(DiffRow("del", line, current, old_no, None))
            old_no += 1
        elif kind == "ctx":
            rows.append(DiffRow("ctx", line, current, old_no, new_no))
            old_no, new_no = old_no + 1, new_no + 1
        else:
            rows.append(DiffRow("meta", visible(line), current))
    return rows


def side_by_side(rows: list[DiffRow]) -> list[SideRow]:
    """Pair removed lines with the added lines that replace them; context on both sides."""
    paired: list[SideRow] = []
    removed: list[DiffRow] = []
    added: list[DiffRow] = []

    def flush() -> None:
        for index in range(max(len(removed), len(added))):
            paired.append(
                SideRow(
                    removed[index] if index < len(removed) else None,
                    added[index] if index < len(added) else None,
                )
            )
        removed.clear()
        added.clear()

    for row in rows:
        if row.kind == "del":
            if added:
                flush()
            removed.append(row)
        elif row.kind == "add":
            added.append(row)
        else:
            flush()
            if row.kind == "ctx":
                paired.append(SideRow(row, row))
            else:
                paired.append(SideRow(None, None, header=row))
    flush()
    return paired


def first_difference_shift(pair: SideRow, code_width: int) -> int:
    """How many leading characters to hide on both halves of a changed line so that its first
    difference, and some of what follows it, fit in `code_width` columns (0 when it already fits)."""
    if pair.left is None or pair.right is None or pair.left is pair.right:
        return 0
    old, new = pair.left.text.expandtabs(4), pair.right.text.expandtabs(4)
    if max(len(old), len(new)) <= code_width:
        return 0
    common = 0
    for old_char, new_char in zip(old, new, strict=False):
        if old_char != new_char:
            break
        common += 1
    shown_after = min(max(len(old), len(new)) - common, code_width // 2)
    if common + shown_after <= code_width:
        return 0
    # Keep a few characters before the difference as context (the `= ` before a value).
    return max(0, common + shown_after - code_width + 1)


@lru_cache(maxsize=64)
def lexer_for(path: str) -> Lexer:
    try:
        return get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return TextLexer(stripnl=False, ensurenl=False)


@dataclass(frozen=True)
class Palette:
    syntax: SyntaxTheme
    add: Style
    delete: Style
    file: Style
    hunk: Style
    gutter: Style
    mark: Style


def palette(dark: bool) -> Palette:
    if dark:
        return Palette(
            Syntax.get_theme("monokai"),
            Style(bgcolor="#173a22"),
            Style(bgcolor="#45181c"),
            Style(bold=True, color="#e6e6e6", bgcolor="#2b3440"),
            Style(color="#6cb6ff"),
            Style(color="#7d8590"),
            Style(bgcolor="#6b5a00"),
        )
    return Palette(
        Syntax.get_theme("friendly"),
        Style(bgcolor="#dafbe1"),
        Style(bgcolor="#ffebe9"),
        Style(bold=True, color="#1f2328", bgcolor="#d8dee4"),
        Style(color="#0550ae"),
        Style(color="#59636e"),
        Style(bgcolor="#fff0a8"),
    )


class DiffView(ScrollView, can_focus=True):
    """The diff of one candidate. `v` toggles unified / side by side."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
        Binding("v", "toggle_view", "View", show=False),
    ]

    DEFAULT_CSS = """
    DiffView { background: $surface; }
    DiffView:focus { background-tint: $foreground 3%; }
    """

    side: reactive[bool] = reactive(False)

    def __init__(self, diff: str = "", *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.rows: list[DiffRow] = []
        self.pairs: list[SideRow] = []
        self.marked: int | None = None
        self._cache: dict[tuple[int, int, bool, bool], Strip] = {}
        self._longest = 0
        self.load(diff)

    def load(self, diff: str) -> None:
        self.rows = parse_rows(diff)
        self.pairs = []
        self.marked = None
        # In cells as drawn (tabs expanded, hidden characters spelled out): a line of tabs is far
        # wider than its length, and the view must scroll to its end (red team, round fifteen).
        self._longest = max((cell_len(visible(row.text.expandtabs(4))) for row in self.rows), default=0)
        self._cache.clear()
        self._resize_virtual()

    # -- geometry -----------------------------------------------------------------------

    def _line_count(self) -> int:
        return len(self.pairs) if self.side else len(self.rows)

    def _resize_virtual(self) -> None:
        if self.side and not self.pairs:
            self.pairs = side_by_side(self.rows)
        width = self.size.width if self.side else self._longest + GUTTER + 2
        self.virtual_size = Size(max(width, 1), self._line_count())
        self.refresh()

    def watch_side(self) -> None:
        marked_row = self._marked_row()
        self._cache.clear()
        self._resize_virtual()
        if marked_row is not None:
            self.mark_row(marked_row)

    def on_resize(self) -> None:
        if self.side:
            self._cache.clear()
            self._resize_virtual()

    # Scrolling a long diff jumps at once: an animation would trail behind held keys.
    def action_scroll_down(self) -> None:
        self.scroll_relative(y=1, animate=False)

    def action_scroll_up(self) -> None:
        self.scroll_relative(y=-1, animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def action_page_up(self) -> None:
        self.scroll_page_up(animate=False)

    def action_scroll_home(self) -> None:
        self.scroll_home(animate=False)

    def action_scroll_end(self) -> None:
        self.scroll_end(animate=False)

    def action_toggle_view(self) -> None:
        self.side = not self.side

    # -- finding a line -----------------------------------------------------------------

    def row_for(self, file: str, line: int | None) -> int | None:
        """Index (in unified rows) of the given new-file line, else the nearest after it, else the file."""
        header = None
        best: int | None = None
        for index, row in enumerate(self.rows):
            if row.file != file:
                continue
            if row.kind == "file" and header is None:
                header = index
            if line is not None and row.new_no is not None and row.new_no >= line:
                if row.new_no == line:
                    return index
                best = index if best is None else best
        return best if best is not None else header

    def jump_to(self, file: str | None, line: int | None) -> bool:
        if not file:
            return False
        index = self.row_for(file, line)
        if index is None:
            return False
        self.mark_row(index)
        return True

    def _marked_row(self) -> int | None:
        return self.marked

    def mark_row(self, index: int) -> None:
        self.marked = index
        self._cache.clear()
        y = index if not self.side else self._pair_index(self.rows[index])
        self.scroll_to(y=max(0, y - 3), animate=False)
        self.refresh()

    def _pair_index(self, row: DiffRow) -> int:
        for index, pair in enumerate(self.pairs):
            if row in (pair.left, pair.right, pair.header):
                return index
        return 0

    # -- drawing ------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = y + scroll_y
        width = self.size.width
        if index >= self._line_count():
            return Strip.blank(width)
        dark = self.app.current_theme.dark
        key = (index, width, self.side, dark)
        strip = self._cache.get(key)
        if strip is None:
            colors = palette(dark)
            strip = (
                self._side_strip(index, width, colors) if self.side else self._unified_strip(index, colors)
            )
            if len(self._cache) > 4000:
                self._cache.clear()
            self._cache[key] = strip
        shown = strip.crop_extend(scroll_x, scroll_x + width, None)
        if not self.side and width > 1 and self._row_cells(self.rows[index]) > scroll_x + width:
            # The line goes on past the edge: say so where the eye is, not only in the scrollbar.
            shown = Strip.join([shown.crop(0, width - 1), Strip([Segment(MORE, HIDDEN)])])
        return shown

    @staticmethod
    def _row_cells(row: DiffRow) -> int:
        """The cells a unified row's own content takes (its padding to the longest row aside)."""
        if row.kind not in ("add", "del", "ctx"):
            return 0
        return GUTTER + 2 + cell_len(visible(row.text.expandtabs(4)))

    def _unified_strip(self, index: int, colors: Palette) -> Strip:
        row = self.rows[index]
        mark = colors.mark if index == self.marked else None
        gutter = f"{_no(row.old_no)} {_no(row.new_no)} "
        segments = [Segment(gutter, colors.gutter + mark if mark else colors.gutter)]
        segments += self._code_segments(row, colors, mark)
        width = self._longest + GUTTER + 2
        return Strip(segments).extend_cell_length(width, _row_background(row, colors, mark))

    def _side_strip(self, index: int, width: int, colors: Palette) -> Strip:
        pair = self.pairs[index]
        if pair.header is not None:
            row = pair.header
            style = colors.file if row.kind == "file" else colors.hunk
            text = row.text if row.kind != "file" else f" {row.text}"
            return Strip([Segment(text, style)]).extend_cell_length(width, style).crop(0, width)
        half = max(10, (width - 1) // 2)
        # Both halves of a changed line start at the same column, chosen so the first difference is
        # on screen: on a narrow half the changed value is the part a reviewer must not miss.
        shift = first_difference_shift(pair, half - SIDE_GUTTER)
        left = self._half(pair.left, "old", half, colors, shift)
        right = self._half(pair.right, "new", width - half - 1, colors, shift)
        return Strip.join([left, Strip([Segment("│", colors.gutter)]), right])

    def _half(self, row: DiffRow | None, side: str, width: int, colors: Palette, shift: int = 0) -> Strip:
        if row is None:
            return Strip.blank(width)
        number = row.old_no if side == "old" else row.new_no
        mark = colors.mark if self.marked is not None and self.rows[self.marked] is row else None
        background = _row_background(row, colors, mark)
        segments = [Segment(f"{_no(number)} ", colors.gutter)]
        code = self._code_segments(row, colors, mark)
        if shift and row.kind in ("add", "del"):
            sign, rest = code[0], Strip(code[1:])
            shifted = rest.crop(shift, rest.cell_length)
            code = [sign, Segment("…", colors.gutter + background), *shifted]
        segments += code
        strip = Strip(segments)
        if strip.cell_length > width > 1 and row.kind in ("add", "del", "ctx"):
            # Halves cut most lines: marked quietly (the unified view marks the few long ones loud).
            return Strip.join([strip.crop(0, width - 1), Strip([Segment(MORE, colors.gutter + background)])])
        return strip.extend_cell_length(width, background).crop(0, width)

    def _code_segments(self, row: DiffRow, colors: Palette, mark: Style | None) -> list[Segment]:
        background = _row_background(row, colors, mark)
        if row.kind == "file":
            return [Segment(f"── {row.text} ", colors.file)]
        if row.kind == "hunk":
            return [Segment(row.text, colors.hunk)]
        if row.kind == "meta":
            return [Segment(row.text, colors.gutter)]
        sign = {"add": "+", "del": "-"}.get(row.kind, " ")
        segments = [Segment(sign + " ", background + Style(bold=True))]
        text = row.text.expandtabs(4)
        for token_type, value in lexer_for(row.file or "x.txt").get_tokens(text):
            style = colors.syntax.get_style_for_token(token_type) + background
            for piece, is_mark in split_visible(value.replace("\n", "")):
                segments.append(Segment(piece, style + HIDDEN if is_mark else style))
        return segments


def _row_background(row: DiffRow, colors: Palette, mark: Style | None) -> Style:
    if mark is not None:
        return mark
    if row.kind == "add":
        return colors.add
    if row.kind == "del":
        return colors.delete
    if row.kind == "file":
        return colors.file
    return Style()


def _no(number: int | None) -> str:
    return f"{number:>5}" if number is not None else "     "
