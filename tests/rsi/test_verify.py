"""Comparing a re-execution with the record (the re-execution itself runs in test_resume_docker)."""

from __future__ import annotations

from pathlib import Path

from core.contracts import Decision, Evaluation, IntegrityCheck, MetricResult, Verdict
from core.fold import GenerationRecord, fold, live_events
from core.trajectory import TrajectoryReader, TrajectoryWriter
from rsi.verify import applied_decisions, compare_generation, decision_check, metric_check, recorded_secrets
from tests.rsi.synthetic_run import evaluation, write_run


def state(
    mean: float, verdict: str = "allow", decision: str = "accept", by: str = "policy"
) -> GenerationRecord:
    return GenerationRecord(
        generation=1,
        parent_commit="p",
        evaluation=evaluation("p", mean),
        verdict=Verdict(verdict=verdict, policy_name="d", policy_hash="h"),  # type: ignore[arg-type]
        decisions=[Decision(decision=decision, by=by)],  # type: ignore[arg-type]
    )


def test_same_results_on_another_commit_reproduce() -> None:
    row = compare_generation(state(0.6), state(0.6), "tree", "tree", "accept")
    assert row.ok, row.checks


def test_metric_within_noise_passes_and_beyond_fails() -> None:
    metric = lambda *values: MetricResult(name="r2", direction="higher", per_seed=dict(enumerate(values)))  # noqa: E731
    assert metric_check(metric(0.50, 0.52), metric(0.51, 0.53), spreads=2.0, absolute=1e-6).ok
    assert not metric_check(metric(0.50, 0.52), metric(0.60, 0.62), spreads=2.0, absolute=1e-6).ok
    assert not metric_check(metric(0.5), metric(0.5001), spreads=2.0, absolute=1e-6).ok  # one seed: exact


def test_divergent_parent_tree_verdict_and_policy_decision_are_flagged() -> None:
    row = compare_generation(state(0.6), state(0.6, verdict="deny"), "tree-a", "tree-b", "reject")
    failed = {check.name for check in row.checks if not check.ok}
    assert failed == {"parent tree", "verdict", "decision"}


def test_a_humans_decision_is_applied_not_reproduced() -> None:
    assert decision_check(Decision(decision="accept", by="human:ann"), "queue").ok
    assert not decision_check(Decision(decision="accept", by="policy"), "reject").ok


def test_applied_decision_is_the_one_that_held_when_the_run_moved_on(tmp_path: Path) -> None:
    config = write_run(tmp_path / "r", [(0.6, "queue"), (0.7, "reject")])
    path = tmp_path / "r" / "trajectory.jsonl"
    with TrajectoryWriter.open(path, run_id=config.run_id) as writer:  # a human, the next morning
        writer.append("decision", Decision(decision="accept", by="human:ann").model_dump(mode="json"), 1)
    events = live_events(list(TrajectoryReader(path).events()))
    applied = applied_decisions(events)
    assert (
        applied[1].decision == "queue" and applied[2].decision == "reject"
    )  # generation 2 ran on the old parent
    assert fold(events).generations[1].decision.decision == "accept"  # type: ignore[union-attr]


def test_the_secrets_each_tree_was_audited_with_are_found_wherever_an_event_holds_it(tmp_path: Path) -> None:
    def audited(secret: str, seeds: list[int]) -> Evaluation:
        measured = evaluation("p", 0.5).model_copy(update={"tree": "t" * 40, "seeds": seeds})
        measured.metric = MetricResult(name="r2", direction="higher", per_seed=dict.fromkeys(seeds, 0.5))
        rerun = {"seed": seeds[0], "secret": secret, "audited_seeds": sorted(seeds)}
        measured.checks = [IntegrityCheck(check="rerun", status="clean", measured=rerun)]
        return measured

    first, extra = audited("first", [1, 0]), audited("extra", [2, 3])
    path = tmp_path / "trajectory.jsonl"
    with TrajectoryWriter.open(path, run_id="r") as writer:
        # a race: the extra seeds' audit, then the generation's evaluation merged over every seed
        writer.append("race", {"evaluation": extra.model_dump(mode="json")}, 1)
        writer.append("evaluation", {"evaluation": first.with_extra_seeds(extra).model_dump(mode="json")}, 1)
    found = recorded_secrets(list(TrajectoryReader(path).events()))
    assert found == {("t" * 40, (0, 1)): "first", ("t" * 40, (2, 3)): "extra"}
