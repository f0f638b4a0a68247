"""The offline proposer: real diffs, deterministic, learns from the lineage history."""

from __future__ import annotations

from pathlib import Path

from agent.offline import OfflineProposer, _inverse, discover_knobs, search_order
from core.contracts import HistoryEntry, ProposalContext
from sandbox.patch import apply_diff, parse_diff
from tests.conftest import TARGET


def context(
    generation: int, parent: str = "p0", history: list[HistoryEntry] | None = None
) -> ProposalContext:
    return ProposalContext(
        generation=generation,
        objective="x",
        metric_name="r2",
        direction="higher",
        parent_commit=parent,
        parent_metric_mean=0.1,
        parent_metric_std=0.01,
        history=history or [],
    )


def test_knobs_are_found_outside_tests_and_protected_files() -> None:
    knobs = {k.name: k for k in discover_knobs(TARGET)}
    assert {"learning_rate", "input_range", "hidden_size", "optimizer"} <= set(knobs)
    assert "steps" not in knobs and "log_every" not in knobs  # the budget and logging are off limits
    assert knobs["optimizer"].choices == ("momentum", "adam")
    assert all(k.file == "config.py" for k in knobs.values())


def test_proposal_is_a_real_diff_that_applies(target_copy: Path) -> None:
    proposal = OfflineProposer(seed=0).propose(context(1), target_copy)
    (change,) = parse_diff(proposal.diff)
    assert change.path == "config.py" and len(change.added) == 1 and len(change.removed) == 1
    apply_diff(proposal.diff, target_copy)
    assert proposal.rationale.split(" — ")[0] in proposal.transcript[0]["key"]


def test_same_seed_same_proposals_and_different_seeds_explore_differently() -> None:
    knobs = discover_knobs(TARGET)
    assert [m.key for m in search_order(knobs, 3)] == [m.key for m in search_order(knobs, 3)]
    assert [m.key for m in search_order(knobs, 0)] != [m.key for m in search_order(knobs, 1)]


def test_moves_rejected_on_this_parent_are_not_proposed_again(target_copy: Path) -> None:
    proposer = OfflineProposer(seed=0)
    first = proposer.propose(context(1), target_copy)
    rejected = HistoryEntry(generation=1, parent_commit="p0", rationale=first.rationale, decision="reject")
    second = proposer.propose(context(2, history=[rejected]), target_copy)
    assert second.diff != first.diff


def test_after_an_accept_the_same_move_is_tried_again_but_never_its_undo(target_copy: Path) -> None:
    proposer = OfflineProposer(seed=0)
    first = proposer.propose(context(1), target_copy)
    key = first.rationale.split(" — ")[0]
    accepted = HistoryEntry(generation=1, parent_commit="p0", rationale=first.rationale, decision="accept")
    apply_diff(first.diff, target_copy)
    again = proposer.propose(context(2, parent="p1", history=[accepted]), target_copy)
    assert again.rationale.split(" — ")[0] == key
    rejected_again = HistoryEntry(
        generation=2, parent_commit="p1", rationale=again.rationale, decision="reject"
    )
    third = proposer.propose(context(3, parent="p1", history=[accepted, rejected_again]), target_copy)
    assert third.rationale.split(" — ")[0] not in (key, _inverse(key))
    assert _inverse(key) != ""
