"""Messages the run (in its worker thread) and the loaders send to the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message

from core.contracts import Candidate
from core.run import RunSummary
from core.trajectory import Event


@dataclass
class RunEventPosted(Message):
    """The live loop wrote an event to the trajectory."""

    event: Event


@dataclass
class RunProgress(Message):
    """Live progress that is not recorded (the agent's tool call, seed 2 of 3…)."""

    phase: str
    details: dict[str, Any]


@dataclass
class CandidateWaiting(Message):
    """The loop is blocked until the human decides this candidate."""

    candidate: Candidate


@dataclass
class RunEnded(Message):
    """The live loop returned (summary) or could not start (error)."""

    summary: RunSummary | None
    error: str | None = None


@dataclass
class EventsLoaded(Message):
    """A recorded trajectory was read (replay, review queue)."""

    events: list[Event]
    error: str | None = None
    state: Any = None
    """The events folded into a RunState (done in the worker: the UI thread stays free)."""
