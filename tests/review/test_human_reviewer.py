"""The human reviewer: the loop waits for the person, except where the policy has already said no."""

from __future__ import annotations

import threading

import pytest

from core.contracts import Candidate, Evaluation, Finding, Proposal, Verdict
from core.errors import ConfigError
from review.human import HumanReviewer


def candidate(verdict: str) -> Candidate:
    finding = Finding(rule_id="protected-paths", verdict=verdict, message="modified protected path rsi.toml")  # type: ignore[arg-type]
    return Candidate(
        generation=1,
        parent_commit="p" * 40,
        proposal=Proposal(diff="", rationale="r", proposer="test"),
        evaluation=Evaluation(parent_commit="p" * 40, diff_sha256="d", backend="docker", ok=True),
        parent_evaluation=None,
        verdict=Verdict(verdict=verdict, findings=[finding], policy_name="default", policy_hash="h"),  # type: ignore[arg-type]
    )


def test_a_denied_candidate_is_rejected_by_the_policy_without_waiting() -> None:
    seen: list[Candidate] = []
    decision = HumanReviewer(seen.append, by="human:t", review_denials=False).decide(candidate("deny"))
    assert (decision.decision, decision.by) == ("reject", "policy")
    assert "protected-paths" in decision.reason and seen == []


def test_an_allowed_candidate_waits_for_the_human_and_deny_cannot_be_accepted() -> None:
    reviewer = HumanReviewer(lambda c: None, by="human:t", review_denials=True)
    results = []
    waiter = threading.Thread(target=lambda: results.append(reviewer.decide(candidate("deny"))))
    waiter.start()
    while reviewer.waiting is None:
        threading.Event().wait(0.01)
    with pytest.raises(ConfigError, match="cannot be accepted"):
        reviewer.answer("accept")
    reviewer.answer("reject", reason="touches the contract")
    waiter.join(5)
    assert results[0].decision == "reject" and results[0].by == "human:t"
