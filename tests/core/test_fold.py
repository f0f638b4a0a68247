"""The one fold: superseded events never count, whether a view folds a whole run or one event at a time."""

from __future__ import annotations

from pathlib import Path

from core.contracts import Decision
from core.fold import GenerationRecord, fold, fold_event
from core.trajectory import TRAJECTORY_FILE, Event, TrajectoryReader, TrajectoryWriter
from review.queue import pending
from tests.rsi.synthetic_run import evaluation, write_run


def crashed_and_resumed(run_dir: Path) -> list[Event]:
    """A two-generation run whose generation 3 was in flight at a crash, then ran again and was queued."""
    config = write_run(run_dir, [(0.6, "accept"), (0.5, "reject")])
    path = run_dir / TRAJECTORY_FILE
    measured = evaluation("p", 0.7).model_dump(mode="json")
    with TrajectoryWriter.open(path, run_id=config.run_id) as writer:
        first = writer.append("proposal_started", {"parent": "old"}, 3)
        writer.append("proposal", {"diff": "", "rationale": "first try", "proposer": "offline"}, 3)
        writer.append("evaluation", measured, 3)
        writer.append("run_resumed", {"superseded_seqs": [first.seq, first.seq + 1, first.seq + 2]})
        writer.append("proposal_started", {"parent": "new"}, 3)
        writer.append("proposal", {"diff": "", "rationale": "second try", "proposer": "offline"}, 3)
        writer.append("evaluation", measured, 3)
        writer.append("verdict", {"verdict": "review", "policy_name": "d", "policy_hash": "h"}, 3)
        writer.append("decision", Decision(decision="queue", by="policy").model_dump(mode="json"), 3)
    return list(TrajectoryReader(path).events())


def test_the_superseded_attempt_of_a_generation_is_left_out(tmp_path: Path) -> None:
    run = fold(crashed_and_resumed(tmp_path / "run"))
    third = run.generations[3]
    assert third.parent_commit == "new"
    assert third.proposal is not None and third.proposal.rationale == "second try"
    assert len(third.seqs) == 5 and run.sessions == 2
    assert [g.generation for g in run.decided] == [1, 2, 3] and run.in_flight is None


def test_folding_one_event_at_a_time_agrees_with_the_whole_fold(tmp_path: Path) -> None:
    events = crashed_and_resumed(tmp_path / "run")
    records: dict[int, GenerationRecord] = {}
    in_flight_seen = False
    for event in events:
        fold_event(records, event)
        in_flight_seen |= event.kind == "run_resumed" and 3 not in records
    assert in_flight_seen, "the run_resumed event drops the superseded attempt from a live view"
    assert records == fold(events).generations


def test_the_review_queue_reads_the_same_fold(tmp_path: Path) -> None:
    crashed_and_resumed(tmp_path / "run")
    queued = pending(tmp_path / "run")
    assert [record.generation for record in queued] == [3]
    assert queued[0].parent_commit == "new" and queued[0].decision is not None
