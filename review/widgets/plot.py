"""A small braille plot of the metric over generations: candidates, their parent, the best so far,
and the lineage's lockbox score (a held-out set no decision uses: it should rise with the best).

Each cell holds 2×4 braille dots, so a 40-column plot shows 80 generations before points share a
column; a 2,000-generation run is drawn by placing each generation at its scaled x position.
"""

from __future__ import annotations

from rich.text import Text
from textual.color import Color
from textual.reactive import reactive
from textual.widget import Widget

from review.state import SeriesPoint

# Braille dot bits, indexed [row][column] within a 4×2 cell.
DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
LAYERS = ("candidate", "parent", "lockbox", "best")  # later layers win a shared cell's colour
LABEL_WIDTH = 8


class MetricPlot(Widget):
    DEFAULT_CSS = """
    MetricPlot { height: 8; min-height: 5; }
    """

    points: reactive[list[SeriesPoint]] = reactive(list, always_update=True)

    def __init__(self, metric_name: str = "metric", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.metric_name = metric_name

    def render(self) -> Text:
        width = max(4, self.size.width - LABEL_WIDTH)
        height = max(2, self.size.height - 1)
        values = [v for p in self.points for layer in LAYERS if (v := getattr(p, layer)) is not None]
        if not values:
            return Text(f"{self.metric_name}: waiting for the baseline…", style="dim")
        low, high = min(values), max(values)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        cells = [[0] * width for _ in range(height)]
        owner: list[list[str | None]] = [[None] * width for _ in range(height)]
        last_generation = max(self.points[-1].generation, 1)

        def dot(dot_x: int, dot_y: int, layer: str) -> None:
            row, col = dot_y // 4, dot_x // 2
            cells[row][col] |= DOTS[dot_y % 4][dot_x % 2]
            owner[row][col] = layer

        for layer in LAYERS:
            previous: tuple[int, int] | None = None
            for point in self.points:
                value = getattr(point, layer)
                if value is None:
                    continue
                dot_x = round(point.generation / last_generation * (width * 2 - 1))
                dot_y = round((high - value) / (high - low) * (height * 4 - 1))
                if layer != "candidate" and previous is not None:
                    # parent, lockbox and best are steps: they hold their value until the next generation
                    for step_x in range(previous[0] + 1, dot_x):
                        dot(step_x, previous[1], layer)
                dot(dot_x, dot_y, layer)
                previous = (dot_x, dot_y)
        styles = {
            "candidate": self._color("accent", "#ffa62b"),
            "parent": self._color("foreground-muted", "#808080"),
            "lockbox": self._color("primary", "#0178d4"),
            "best": self._color("success", "#4ebf71"),
        }
        text = Text(no_wrap=True, overflow="crop")
        for index, row_bits in enumerate(cells):
            label = f"{high:.3f}" if index == 0 else f"{low:.3f}" if index == height - 1 else ""
            text.append(f"{label:>{LABEL_WIDTH - 1}} ", style="dim")
            for col, bits in enumerate(row_bits):
                cell_layer = owner[index][col]
                text.append(chr(0x2800 + bits), style=styles[cell_layer] if cell_layer else "")
            text.append("\n")
        text.append(" " * LABEL_WIDTH, style="dim")
        text.append("● candidate ", style=styles["candidate"])
        text.append("● parent ", style=styles["parent"])
        if any(point.lockbox is not None for point in self.points):
            text.append("● lockbox ", style=styles["lockbox"])
        text.append("● best", style=styles["best"])
        text.append(f"   gen 0…{self.points[-1].generation}", style="dim")
        return text

    def _color(self, variable: str, fallback: str) -> str:
        """A theme colour as plain #rrggbb (theme variables may carry an alpha Rich cannot parse)."""
        try:
            return Color.parse(self.app.theme_variables.get(variable, fallback)).hex6
        except Exception:  # a theme without this variable, or an unparseable value
            return fallback
