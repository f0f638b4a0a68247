"""How the review app writes a measured number: four decimals, a dash when there is none."""

from __future__ import annotations

from rich.text import Text


def number(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "—"


def signed(value: float | None) -> Text:
    """A gain with its sign, green when it is one and red when it is a loss."""
    if value is None:
        return Text("—")
    return Text(f"{value:+.4f}", style="green" if value > 0 else "red" if value < 0 else "")
