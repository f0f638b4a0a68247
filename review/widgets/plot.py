"""The metric over generations, drawn in the terminal: each candidate as a marker that says how it
ended (accepted ●, rejected ×, denied ✖, failed !, waiting ?), and as lines the parent it was
measured against, the best so far and the lineage's lockbox score (a held-out set no decision uses:
it should rise with the best). Axes carry the metric's name, its range and the generations.

Lines are box-drawing steps (heavy for the best so far, dashed for the lockbox); markers are whole
characters drawn over them, so a candidate is never a single dot. A 2,000-generation run places each generation at
its scaled x position; where several candidates share a column the most telling marker wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.text import Text
from textual.color import Color
from textual.reactive import reactive
from textual.widget import Widget

from review.state import SeriesPoint

LINES = ("lockbox", "parent", "best")  # a later line is drawn over an earlier one in a shared cell


@dataclass(frozen=True)
class Strokes:
    """The box-drawing characters of one line style."""

    flat: str
    rise: str
    up_from: str
    """Where a step leaves its old level going up (┘)."""
    up_to: str
    """Where it arrives at the new, higher level (┌)."""
    down_from: str
    down_to: str


STROKES = {
    "best": Strokes("━", "┃", "┛", "┏", "┓", "┗"),
    "parent": Strokes("─", "│", "┘", "┌", "┐", "└"),
    "lockbox": Strokes("╌", "╎", "┘", "┌", "┐", "└"),
}
AXIS_WIDTH = 9  # "  0.6600 ┤"


@dataclass(frozen=True)
class Marker:
    glyph: str
    color: tuple[str, str]
    """(theme variable, fallback colour)"""
    rank: int
    """Which marker wins a cell several candidates share: the higher."""


MARKERS = {
    "accepted": Marker("●", ("success", "#4ebf71"), 5),
    "denied": Marker("✖", ("error", "#ba3c5b"), 4),
    "awaiting review": Marker("?", ("warning", "#ffa62b"), 3),
    "rejected": Marker("×", ("accent", "#ff8c42"), 2),
    "failed": Marker("!", ("error", "#ba3c5b"), 1),
    "deciding": Marker("·", ("foreground", "#e0e0e0"), 0),
    "running": Marker("·", ("foreground", "#e0e0e0"), 0),
}
LINE_COLORS = {
    "best": ("success", "#4ebf71"),
    "parent": ("foreground-muted", "#9e9e9e"),
    "lockbox": ("primary", "#9d7cd8"),
}
NICE_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 10**9)
LINE_KEYS = {"best": "━ best", "parent": "─ parent", "lockbox": "╌ lockbox"}


class MetricPlot(Widget):
    DEFAULT_CSS = """
    MetricPlot { height: 1fr; min-height: 7; }
    """

    points: reactive[list[SeriesPoint]] = reactive(list)
    """Repainted only when a point changed: a replay step usually changes one generation."""

    def __init__(self, metric_name: str = "metric", direction: str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.metric_name = metric_name
        self.direction = direction

    def render(self) -> Text:
        values = [
            v for p in self.points for name in ("candidate", *LINES) if (v := getattr(p, name)) is not None
        ]
        if not values:
            return Text(f"{self.metric_name}: waiting for the baseline…", style="dim")
        # Rows: the plot, the x axis with its generation numbers, the key (with the metric's name).
        width = max(4, self.size.width - AXIS_WIDTH - 1)
        height = max(2, self.size.height - 2)
        low, high = min(values), max(values)
        margin = (high - low) * 0.05 if high > low else 0.5
        low, high = low - margin, high + margin
        last = max(self.points[-1].generation, 1)

        def x_of(generation: int) -> int:
            return round(generation / last * (width * 2 - 1))

        def y_of(value: float) -> int:
            """In quarter rows (callers divide by 4), so markers and lines round alike."""
            return round((high - value) / (high - low) * (height * 4 - 1))

        cells: list[list[tuple[str, str] | None]] = [[None] * width for _ in range(height)]
        for line in LINES:
            strokes = STROKES[line]
            previous: tuple[int, int] | None = None
            for point in self.points:
                value = getattr(point, line)
                if value is None:
                    continue
                col, row = min(width - 1, x_of(point.generation) // 2), y_of(value) // 4
                if previous is None:
                    cells[row][col] = (strokes.flat, line)
                else:
                    # A step: hold the old value up to this generation, then move to the new one.
                    old_col, old_row = previous
                    for step_col in range(old_col + 1, col):
                        cells[old_row][step_col] = (strokes.flat, line)
                    if row == old_row:
                        cells[row][col] = (strokes.flat, line)
                    else:
                        up = row < old_row
                        cells[old_row][col] = (strokes.up_from if up else strokes.down_from, line)
                        for between in range(min(row, old_row) + 1, max(row, old_row)):
                            cells[between][col] = (strokes.rise, line)
                        cells[row][col] = (strokes.up_to if up else strokes.down_to, line)
                previous = (col, row)

        markers: dict[tuple[int, int], Marker] = {}
        for point in self.points[1:]:
            if point.candidate is None:
                continue
            marker = MARKERS.get(point.status, MARKERS["running"])
            cell = (y_of(point.candidate) // 4, x_of(point.generation) // 2)
            if cell not in markers or markers[cell].rank < marker.rank:
                markers[cell] = marker

        text = Text(no_wrap=True, overflow="crop")
        for row in range(height):
            value = high - (row + 0.5) / height * (high - low)
            label = f"{value:.4f}" if row in (0, height // 2, height - 1) else ""
            text.append(f"{label:>{AXIS_WIDTH - 1}}", style="dim")
            text.append("┤" if label else "│", style="dim")
            for col in range(width):
                drawn = markers.get((row, col))
                if drawn is not None:
                    text.append(drawn.glyph, style=f"bold {self._color(*drawn.color)}")
                    continue
                stroke = cells[row][col]
                if stroke is None:
                    text.append(" ")
                else:
                    text.append(stroke[0], style=self._color(*LINE_COLORS[stroke[1]]))
            text.append("\n")
        text.append(self._x_axis(width, last, x_of))
        text.append(self._key(width))
        return text

    def _x_axis(self, width: int, last: int, x_of: Callable[[int], int]) -> Text:
        """`gen └──1────2────3` : the generation numbers written into the axis at their ticks."""
        step = next(n for n in NICE_STEPS if last / n <= max(2, width // 8))
        ticks = sorted({*range(0, last + 1, step), last})
        axis = ["─"] * width
        for generation in ticks:
            label = str(generation)
            col = min(width - 1, x_of(generation) // 2)
            start = max(0, min(col - len(label) // 2, width - len(label)))
            if all(char == "─" for char in axis[max(0, start - 1) : start + len(label) + 1]):
                axis[start : start + len(label)] = label
        return Text(f"{'gen':>{AXIS_WIDTH - 2}} └" + "".join(axis) + "\n", style="dim")

    def _key(self, width: int) -> Text:
        statuses = {point.status for point in self.points[1:] if point.candidate is not None}
        entries = [
            (f"{marker.glyph} {status}", self._color(*marker.color))
            for status, marker in MARKERS.items()
            if status in statuses
        ]
        entries += [
            (LINE_KEYS[line], self._color(*LINE_COLORS[line]))
            for line in reversed(LINES)
            if any(getattr(point, line) is not None for point in self.points)
        ]
        better = f" ({self.direction} is better)" if self.direction else ""
        title = f"{self.metric_name}{better}"
        text = Text()
        if len(title) + 2 + sum(len(entry) + 2 for entry, _ in entries) <= width + AXIS_WIDTH:
            text.append(f"{title}  ", style="bold")
        else:
            text.append(f"{self.metric_name:>{AXIS_WIDTH - 1}} ", style="bold")
        for entry, color in entries:
            text.append(f"{entry}  ", style=color)
        return text

    def _color(self, variable: str, fallback: str) -> str:
        """A theme colour as plain #rrggbb (theme variables may carry an alpha Rich cannot parse)."""
        try:
            return Color.parse(self.app.theme_variables.get(variable, fallback)).hex6
        except Exception:  # a theme without this variable, or an unparseable value
            return fallback
