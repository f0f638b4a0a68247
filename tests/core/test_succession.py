"""The successors of a bootstrapping run read back from its trajectory, and the two fears measured:
a flaw compounding across successors (selection up, lockbox not following) and compute growing
faster than the gain."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.succession import (
    SuccessionLimits,
    compounding,
    compute_budget,
    compute_growth,
    succession_findings,
    successions,
)
from core.trajectory import TrajectoryReader
from tests.core.bootstrap_trajectory import BASELINE_GENERATION, GEN0_TEACHER, Generation, write_bootstrap_run

BASELINE = BASELINE_GENERATION


def rows_of(tmp_path: Path, generations: list[Generation], baseline: Generation = BASELINE):
    path = write_bootstrap_run(tmp_path / "run", baseline, generations)
    return successions(list(TrajectoryReader(path).events()))


def test_each_generation_names_its_teacher_and_what_each_cost(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        [
            Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14), cpu_s=2.0),
            Generation(scores=(0.10, 0.11), lockbox=(0.10, 0.11), accepted=False),
            Generation(scores=(0.40, 0.39), lockbox=(0.40, 0.39), cpu_s=3.0),
        ],
    )
    assert [r.generation for r in rows] == [0, 1, 2, 3]
    assert [r.promoted for r in rows] == [False, True, False, True]
    assert rows[1].teacher_sha256 == GEN0_TEACHER and rows[1].teacher_from is None
    assert rows[1].teacher_cpu_s is None  # made outside the run
    # Generations 2 and 3 learned from generation 1's first student, whose train phase cost 2.0 s.
    assert rows[2].teacher_from == rows[3].teacher_from == 1
    assert rows[3].teacher_score == 0.15 and rows[3].teacher_cpu_s == pytest.approx(2.0)
    assert rows[3].student_cpu_s == pytest.approx(3.05)  # seeds 0 and 1: 3.0 and 3.1
    assert rows[3].generation_cpu_s == pytest.approx(6.1)
    assert rows[3].promoted_score == 0.40
    assert rows[1].beats_teacher and rows[3].beats_teacher and not rows[2].beats_teacher


def test_successors_that_gain_on_both_sets_raise_nothing(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        [
            Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14)),
            Generation(scores=(0.40, 0.39), lockbox=(0.38, 0.39)),
            Generation(scores=(0.58, 0.57), lockbox=(0.57, 0.58)),
        ],
    )
    assert succession_findings(rows) == []


def test_successive_promotions_gaining_only_on_the_selection_set_are_a_finding(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        [
            Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14)),  # an honest gain
            Generation(scores=(0.30, 0.31), lockbox=(0.15, 0.16)),  # selection only
            Generation(scores=(0.45, 0.46), lockbox=(0.16, 0.15)),  # and again
        ],
    )
    found = compounding(rows)
    assert found is not None and found.rule_id == "succession.compounding" and found.verdict == "review"
    assert found.evidence["generations"] == [1, 2, 3]
    assert found.evidence["selection_gain"] == pytest.approx(0.31)
    assert found.evidence["lockbox_gain"] == pytest.approx(0.01)
    assert "2 successive promotions (generations 2, 3)" in found.message


def test_one_hollow_promotion_is_not_yet_a_compounding_flaw(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        [
            Generation(scores=(0.30, 0.31), lockbox=(0.07, 0.06)),  # selection only
            Generation(scores=(0.45, 0.46), lockbox=(0.30, 0.31)),  # the lockbox catches up
        ],
    )
    assert compounding(rows) is None
    assert compounding(rows, SuccessionLimits(window=1)) is not None


def test_compute_growing_faster_than_the_gain_is_a_finding(tmp_path: Path) -> None:
    rows = rows_of(
        tmp_path,
        [
            Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14), cpu_s=2.0),
            Generation(scores=(0.16, 0.15), lockbox=(0.16, 0.15), cpu_s=8.0),  # 4x compute, +7 %
            Generation(scores=(0.40, 0.39), lockbox=(0.40, 0.39), cpu_s=9.0),  # +12 % compute, +150 %
        ],
    )
    (found,) = compute_growth(rows)
    assert found.rule_id == "succession.compute-growth" and found.evidence["generations"] == [1, 2]
    assert found.evidence["compute_growth"] > 2.5 and found.evidence["relative_gain"] < 0.1


def test_a_generation_over_its_compute_budget_is_a_finding(tmp_path: Path) -> None:
    rows = rows_of(tmp_path, [Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14), cpu_s=5.0)])
    assert compute_budget(rows) == []  # no budget set
    (found,) = compute_budget(rows, SuccessionLimits(compute_budget_s=4.0))
    assert found.rule_id == "succession.compute-budget" and found.evidence["generation"] == 1


def test_a_run_without_a_teacher_has_no_successors(tmp_path: Path) -> None:
    from tests.rsi.synthetic_run import write_run

    write_run(tmp_path / "run", [(0.2, "accept")])
    assert successions(list(TrajectoryReader(tmp_path / "run" / "trajectory.jsonl").events())) == []
