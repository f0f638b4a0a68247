"""What the screens need of the app that hosts them: its state, and the actions they trigger.

Screens are typed against `ReviewHost`, never against the app class, so the app imports its
screens and no screen imports the app.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from textual.screen import Screen

from core.trajectory import Event
from review.human import HumanChoice
from review.state import RunState

Mode = Literal["live", "replay", "review"]


class ReviewHost(Protocol):
    mode: Mode
    all_events: list[Event]
    """Every event read or received so far."""
    state: RunState
    """The run as those events tell it."""
    parsed: dict[int, Any]
    """Validated event models by seq, shared by every state of the trajectory."""
    now: str
    """What is happening now, in one line."""
    running: bool
    """A live run is still going."""

    @property
    def screen_stack(self) -> list[Screen[Any]]: ...

    def can_decide(self, generation: int) -> bool: ...

    def decide(self, generation: int, choice: HumanChoice, reason: str = "") -> None: ...

    def open_change(self, generation: int) -> None: ...

    def open_queue(self) -> None: ...

    def decide_many(self, accept: list[int], reject: list[int], reason: str) -> None:
        """Queued candidates decided together: accept some, reject the others with one reason."""
        ...
