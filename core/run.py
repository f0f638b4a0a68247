"""Watching a run: the observer that sees it as it goes, and the summary of how it ended.

class Printer:                        # any object with these two methods is an Observer
    def on_event(self, event): ...
    def on_progress(self, phase, details): ...
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from core.contracts import Usage
from core.trajectory import Event


class Observer(Protocol):
    """Sees every trajectory event as it is written, and live progress that is not recorded."""

    def on_event(self, event: Event) -> None: ...

    def on_progress(self, phase: str, details: dict[str, Any]) -> None: ...


class NullObserver:
    def on_event(self, event: Event) -> None:
        pass

    def on_progress(self, phase: str, details: dict[str, Any]) -> None:
        pass


@dataclass
class RunSummary:
    """How a run (or one session of it) ended."""

    status: str
    generations: int
    accepted: int
    baseline_metric: float | None
    best_metric: float | None
    head: str
    usage: Usage
    reason: str = ""
    signal: int | None = None
    """The interruption signal that ended the run, if one did."""
