"""The human at the keyboard as a Reviewer: the loop thread waits until the TUI answers.

    reviewer = HumanReviewer(on_waiting=lambda candidate: app.call_from_thread(show, candidate))
    # loop thread:  decision = reviewer.decide(candidate)      (blocks)
    # UI thread:    reviewer.answer("accept", reason="")      (unblocks it)

Skipping records a `queue` decision: the candidate waits in the run's review queue
(`rsi review RUN_DIR`). Closing the app while a candidate waits queues it the same way.
"""

from __future__ import annotations

import getpass
import queue
import threading
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.contracts import Candidate, Decision
from core.errors import ConfigError

HumanChoice = Literal["accept", "reject", "skip"]


def human_name() -> str:
    try:
        return f"human:{getpass.getuser()}"
    except Exception:  # no user name in this environment (some containers)
        return "human:unknown"


class HumanReviewerConfig(BaseModel):
    """Settings of the reviewer that asks the person at the keyboard."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = None
    """Who decides, as recorded (`human:<name>`); None: the login name."""
    review_denials: bool = True
    """Stop at candidates the policy denied too (they can only be rejected or skipped)."""


class HumanReviewer:
    config_class = HumanReviewerConfig

    @classmethod
    def from_config(
        cls, config: HumanReviewerConfig, *, ask_human: Callable[[Candidate], None]
    ) -> HumanReviewer:
        """`ask_human` shows the person a waiting candidate (the review app's hook)."""
        return cls(ask_human, by=config.by, review_denials=config.review_denials)

    def __init__(
        self, on_waiting: Callable[[Candidate], None], by: str | None = None, review_denials: bool = True
    ) -> None:
        self.on_waiting = on_waiting
        self.review_denials = review_denials
        """False: a policy deny is rejected by the policy at once (a human could only reject it)."""
        self.by = by or human_name()
        self._answers: queue.Queue[Decision] = queue.Queue(maxsize=1)
        self._lock = threading.Lock()
        self.waiting: Candidate | None = None
        self._closed = False

    def decide(self, candidate: Candidate) -> Decision:
        if candidate.verdict.verdict == "deny" and not self.review_denials:
            return Decision(decision="reject", by="policy", reason=candidate.verdict.reasons())
        with self._lock:
            if self._closed:
                return self._left_for_later()
            self.waiting = candidate
        self.on_waiting(candidate)
        decision = self._answers.get()
        with self._lock:
            self.waiting = None
        return decision

    def answer(self, choice: HumanChoice, reason: str = "") -> Decision:
        """Decide the waiting candidate (UI thread); a policy deny cannot be accepted."""
        with self._lock:
            candidate = self.waiting
            if candidate is None:
                raise ConfigError("no candidate is waiting for a decision right now.")
            if choice == "accept" and candidate.verdict.verdict == "deny":
                raise ConfigError(
                    f"generation {candidate.generation} was denied by policy ({candidate.verdict.reasons()}); "
                    "it cannot be accepted. Reject it (r) or skip it (s)."
                )
            self.waiting = None
        decision = Decision(
            decision="queue" if choice == "skip" else choice,
            by=self.by,
            reason=reason or ("skipped: left in the review queue for later" if choice == "skip" else ""),
        )
        self._answers.put(decision)
        return decision

    def close(self) -> None:
        """The app is closing: a waiting candidate goes to the review queue, later ones too."""
        with self._lock:
            self._closed = True
            waiting = self.waiting
            self.waiting = None
        if waiting is not None:
            self._answers.put(self._left_for_later())

    def _left_for_later(self) -> Decision:
        return Decision(
            decision="queue", by=self.by, reason="the reviewer closed the TUI: left in the review queue"
        )
