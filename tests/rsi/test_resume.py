"""Resume without Docker: folding live events, and making a crashed lineage agree with the trajectory."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.fold import fold, live_events
from core.trajectory import TrajectoryReader, TrajectoryWriter
from rsi.resume import reconcile_lineage
from sandbox.lineage import Lineage
from tests.conftest import TARGET, make_diff
from tests.rsi.synthetic_run import write_run


def test_superseded_events_are_left_out_and_the_in_flight_generation_found(tmp_path: Path) -> None:
    config = write_run(tmp_path / "r", [(0.6, "accept")])
    path = tmp_path / "r" / "trajectory.jsonl"
    with TrajectoryWriter.open(path, run_id=config.run_id) as writer:
        started = writer.append("proposal_started", {"parent": "p"}, 2)
        writer.append("proposal", {"diff": "", "rationale": "half", "proposer": "offline"}, 2)
    run = fold(list(TrajectoryReader(path).events()))
    assert run.in_flight is not None and run.in_flight.generation == 2
    assert run.in_flight.seqs == [started.seq, started.seq + 1]
    with TrajectoryWriter.open(path, run_id=config.run_id) as writer:
        writer.append("run_resumed", {"superseded_seqs": run.in_flight.seqs})
    live = live_events(list(TrajectoryReader(path).events()))
    assert all(event.generation != 2 for event in live)
    assert fold(live).in_flight is None and [g.generation for g in fold(live).decided] == [1]


def lineage_with_one_commit(tmp_path: Path) -> tuple[Lineage, str, str]:
    source = tmp_path / "target"
    shutil.copytree(TARGET, source, ignore=shutil.ignore_patterns("__pycache__"))
    lineage = Lineage.create(tmp_path / "lineage", source)
    baseline = lineage.head()
    diff = make_diff(source, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")
    return lineage, baseline, diff


def accepted_run(tmp_path: Path, commit: str | None) -> object:
    config = write_run(tmp_path / "r", [(0.6, "accept")])
    path = tmp_path / "r" / "trajectory.jsonl"
    if commit is None:  # the crash came between the decision and the commit event
        lines = path.read_text().splitlines(keepends=True)
        kept = [
            line for line in lines if '"kind":"commit"' not in line and '"kind":"run_finished"' not in line
        ]
        path.write_text("".join(kept))
        (tmp_path / "r" / "trajectory.head").unlink()
    del config
    return fold(live_events(list(TrajectoryReader(path).events())))


def test_a_commit_made_before_the_crash_is_recovered(tmp_path: Path) -> None:
    lineage, baseline, diff = lineage_with_one_commit(tmp_path)
    sha = lineage.commit_candidate(diff, 1, "generation 1: wider inputs\n")
    repair = reconcile_lineage(lineage, accepted_run(tmp_path, None), baseline)  # type: ignore[arg-type]
    assert repair.recovered == [(1, sha)] and repair.to_commit == []
    assert lineage.head() == sha and lineage.repo.commit("gen-1").hexsha == sha


def test_a_commit_the_crash_prevented_is_still_to_make_and_a_dirty_tree_is_cleaned(tmp_path: Path) -> None:
    lineage, baseline, diff = lineage_with_one_commit(tmp_path)
    (lineage.path / "config.py").write_text("half-applied")  # killed inside git apply
    (lineage.path / ".git" / "index.lock").write_text("")  # and inside git add
    repair = reconcile_lineage(lineage, accepted_run(tmp_path, None), baseline)  # type: ignore[arg-type]
    assert repair.to_commit == [1] and repair.recovered == []
    assert "index.lock" in " ".join(repair.notes) and not (lineage.path / ".git" / "index.lock").exists()
    assert "input_range: float = 0.5" in (lineage.path / "config.py").read_text()
    assert lineage.commit_candidate(diff, 1, "generation 1: wider inputs\n")  # the commit can be made now


def test_a_lineage_head_the_trajectory_does_not_know_is_reset(tmp_path: Path) -> None:
    lineage, baseline, diff = lineage_with_one_commit(tmp_path)
    lineage.commit_candidate(diff, 7, "generation 7: not in the trajectory\n")
    run = fold([])
    repair = reconcile_lineage(lineage, run, baseline)
    assert lineage.head() == baseline and "gen-7" not in [t.name for t in lineage.repo.tags]
    assert any("reset to" in note for note in repair.notes) and any("gen-7" in note for note in repair.notes)
