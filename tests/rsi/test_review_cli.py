"""`rsi review RUN_DIR --accept N / --reject N --reason ...`: queued candidates decided from a script.

The run directory is a recorded one (real run.json, git lineage and hash-chained trajectory; the
measurements are given numbers): generation 1 was denied by policy, 2 and 3 wait for a human,
4 was rejected by the policy.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.trajectory import Event, TrajectoryReader
from review.queue import pending
from rsi.cli import app
from sandbox.lineage import Lineage
from tests.review.synthetic import standard_generations, write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", standard_generations())


def review(run_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["review", str(run_dir), *args])
    return result.exit_code, result.output


def events(run_dir: Path) -> list[Event]:
    reader = TrajectoryReader(run_dir / "trajectory.jsonl")
    reader.verify()  # every decision keeps the hash chain intact
    return list(reader.events())


def test_accept_records_the_human_and_commits_the_candidate(run_dir: Path) -> None:
    before = Lineage(run_dir / "lineage").head()
    code, out = review(
        run_dir, "--accept", "3", "--reason", "wider inputs match the held-out range", "--by", "human:ci"
    )
    assert code == 0, out
    assert "generation 3: accept by human:ci" in out
    decision, commit = [e for e in events(run_dir) if e.generation == 3][-2:]
    assert decision.kind == "decision" and decision.data["decision"] == "accept"
    assert (
        decision.data["by"] == "human:ci"
        and decision.data["reason"] == "wider inputs match the held-out range"
    )
    assert commit.kind == "commit" and commit.data["tag"] == "gen-3" and commit.data["from_queue"]
    lineage = Lineage(run_dir / "lineage")
    tagged = lineage.repo.tags["gen-3"].commit
    assert tagged.hexsha == commit.data["commit"] == lineage.head()
    assert tagged.parents[0].hexsha == before
    assert "input_range: float = 1.0" in (tagged.tree / "config.py").data_stream.read().decode()
    assert "accept by human:ci" in str(tagged.message)
    assert [record.generation for record in pending(run_dir)] == [1, 2]


def test_reject_records_the_reason_and_commits_nothing(run_dir: Path) -> None:
    head = Lineage(run_dir / "lineage").head()
    code, out = review(run_dir, "--reject", "2", "--reason", "features are noise", "--by", "human:ci")
    assert code == 0, out
    last = events(run_dir)[-1]
    assert (last.kind, last.generation) == ("decision", 2)
    assert (last.data["decision"], last.data["by"], last.data["reason"]) == (
        "reject",
        "human:ci",
        "features are noise",
    )
    lineage = Lineage(run_dir / "lineage")
    assert lineage.head() == head and "gen-2" not in [tag.name for tag in lineage.repo.tags]
    assert [record.generation for record in pending(run_dir)] == [1, 3]


def test_several_decisions_in_one_call(run_dir: Path) -> None:
    code, out = review(run_dir, "--accept", "3", "--reject", "2", "--reason", "triaged", "--by", "human:ci")
    assert code == 0, out
    decided = [(e.generation, e.data["decision"]) for e in events(run_dir) if e.kind == "decision"][-2:]
    assert decided == [(3, "accept"), (2, "reject")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reject", "2"], "--reject needs --reason"),
        (["--accept", "1", "--reason", "ok"], "cannot be accepted"),
        (["--accept", "4", "--reason", "ok"], "not waiting for review"),
        (["--accept", "99", "--reason", "ok"], "not waiting for review"),
    ],
    ids=["reject-without-reason", "policy-deny", "already-decided", "no-such-generation"],
)
def test_refusals_are_clear_and_change_nothing(run_dir: Path, args: list[str], message: str) -> None:
    before = (run_dir / "trajectory.jsonl").read_bytes()
    code, out = review(run_dir, *args)
    assert code == 2 and message in " ".join(out.split()), out
    assert (run_dir / "trajectory.jsonl").read_bytes() == before
