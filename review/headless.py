"""Reviewers that decide without a human at the keyboard.

`PolicyReviewer` turns the policy's verdict into a decision according to the review mode:

| mode   | allow    | review              | deny   |
|--------|----------|---------------------|--------|
| auto   | accept   | queue for a human   | reject |
| queue  | queue    | queue               | reject |
| strict | accept   | stop the run        | reject |
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from core.contracts import Candidate, Decision
from core.errors import RunInterrupted

ReviewMode = Literal["auto", "queue", "strict"]


class PolicyReviewerConfig(BaseModel):
    """Settings of the reviewer that decides by the policy's verdict."""

    model_config = ConfigDict(extra="forbid")

    mode: ReviewMode = "auto"
    """What each verdict becomes (the table above)."""


class PolicyReviewer:
    config_class = PolicyReviewerConfig

    def __init__(self, mode: ReviewMode = "auto") -> None:
        self.mode = mode

    @classmethod
    def from_config(cls, config: PolicyReviewerConfig) -> PolicyReviewer:
        return cls(config.mode)

    def decide(self, candidate: Candidate) -> Decision:
        verdict = candidate.verdict
        reason = verdict.reasons()
        if verdict.verdict == "deny":
            return Decision(decision="reject", by="policy", reason=reason)
        if verdict.verdict == "review":
            if self.mode == "strict":
                raise RunInterrupted(
                    f"generation {candidate.generation} needs a human (review verdict: {reason}); the run "
                    "stopped as --review strict asks. Decide it with `rsi review`, then `rsi resume`."
                )
            return Decision(decision="queue", by="policy", reason=f"needs a human: {reason}")
        if self.mode == "queue":
            return Decision(
                decision="queue", by="policy", reason="queue mode: every change waits for a human"
            )
        return Decision(
            decision="accept",
            by="policy",
            reason="allowed by policy: " + (reason if verdict.findings else "no rule objected"),
        )
