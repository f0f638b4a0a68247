"""Accepting a candidate: one lineage commit message and one `commit` event, on a real git lineage."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.accept import accept
from core.contracts import Candidate, Decision, Proposal, Verdict
from core.events import CommitRecorded
from core.trajectory import TrajectoryReader, TrajectoryWriter
from sandbox.lineage import Lineage
from tests.conftest import TARGET, make_diff
from tests.rsi.synthetic_run import evaluation


def test_accept_commits_on_the_lineage_and_records_the_commit(tmp_path: Path) -> None:
    source = tmp_path / "target"
    shutil.copytree(TARGET, source, ignore=shutil.ignore_patterns("__pycache__"))
    lineage = Lineage.create(tmp_path / "lineage", source)
    parent = lineage.head()
    diff = make_diff(source, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")
    candidate = Candidate(
        generation=4,
        parent_commit=parent,
        proposal=Proposal(diff=diff, rationale="wider inputs\nmore lines", proposer="offline"),
        evaluation=evaluation(parent, 0.6),
        parent_evaluation=evaluation(parent, 0.5),
        verdict=Verdict(verdict="allow", policy_name="default", policy_hash="f" * 64),
    )
    decision = Decision(decision="accept", by="human:alice", reason="looks right")
    with TrajectoryWriter.open(tmp_path / "trajectory.jsonl", run_id="r") as writer:
        sha = accept(candidate, decision, lineage, writer.append, from_queue=True)
    (event,) = TrajectoryReader(tmp_path / "trajectory.jsonl").events()
    recorded = CommitRecorded.model_validate(event.data)
    assert event.kind == "commit" and event.generation == 4
    assert (recorded.commit, recorded.parent, recorded.tag) == (sha, parent, "gen-4")
    assert recorded.tree == lineage.tree_of(sha) and recorded.from_queue and recorded.recovered is None
    message = str(lineage.repo.commit(sha).message)
    assert message.startswith("generation 4: wider inputs\n")
    assert "(+0.1000 vs parent)" in message and "decision: accept by human:alice: looks right" in message
    assert lineage.head() == sha and lineage.repo.commit("gen-4").hexsha == sha
