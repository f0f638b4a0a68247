"""`rsi run --strategy`: parents chosen from the archive of the run, recorded, and a lineage that is
a tree of branches — reproduced by `replay --verify`, continued by `rsi resume` after a kill -9."""

from __future__ import annotations

import shutil
from pathlib import Path

import git
import pytest

from core.contracts import Evaluation, HistoryEntry, MetricResult
from core.fold import fold, live_events
from rsi.search.selector import ParentSelector, ancestry, siblings
from rsi.search.strategies import StrategyConfig
from rsi.state import LoopState
from sandbox.lineage import Lineage
from tests.rsi.test_resume_docker import RSI, events_of, finish, kill_at
from tests.rsi.test_search_loop import run_argv

BASE = "b" * 40


def commit(generation: int) -> str:
    return f"{generation:040x}"


def state_of(outcomes: list[tuple[int, float, str]]) -> LoopState:
    """A run's state: the baseline (r2 0.15), then (parent generation, r2, decision) per candidate."""
    state = LoopState()
    state.set_baseline(
        Evaluation(
            parent_commit=BASE,
            diff_sha256="0" * 64,
            backend="bwrap",
            ok=True,
            metric=MetricResult(name="r2", direction="higher", per_seed={0: 0.15}),
        )
    )
    for generation, (parent, r2, decision) in enumerate(outcomes, start=1):
        state.history.append(
            HistoryEntry(
                generation=generation,
                parent_commit=commit(parent) if parent else BASE,
                rationale=f"move {generation}",
                metric_mean=r2,
                decision=decision,
            )
        )
        if decision == "accept":
            state.commits[generation] = commit(generation)
    return state


TREE = [
    (0, 0.60, "accept"),
    (0, 0.55, "accept"),
    (1, 0.58, "reject"),
    (1, 0.70, "accept"),
    (2, 0.50, "reject"),
]


def test_the_archive_strategy_draws_the_same_parents_for_a_seed_and_favours_good_nodes() -> None:
    def draws(seed: int) -> list[list[str]]:
        selector = ParentSelector(StrategyConfig(name="archive", seed=seed), direction="higher")
        return [
            [c.node for c in selector.choose(state_of(TREE), [n, n + 1, n + 2], BASE)]
            for n in range(6, 30, 3)
        ]

    assert draws(3) == draws(3)
    assert draws(3) != draws(4)
    picked = [node for generation in draws(3) for node in generation]
    assert set(picked) <= {"gen-0", "gen-1", "gen-2", "gen-4"}  # accepted nodes and the root only
    assert picked.count("gen-4") > picked.count("gen-0")  # the best node is drawn most


def test_greedy_builds_on_the_lineage_head_and_best_first_on_the_best_nodes() -> None:
    greedy = ParentSelector(StrategyConfig(name="greedy"), direction="higher")
    assert [c.commit for c in greedy.choose(state_of(TREE), [6, 7], commit(2))] == [commit(2)] * 2
    beam = ParentSelector(StrategyConfig(name="best-first", beam=2), direction="higher")
    assert [c.node for c in beam.choose(state_of(TREE), [6, 7, 8], commit(2))] == ["gen-4", "gen-1", "gen-4"]


def test_a_demoted_node_is_never_chosen_and_greedy_falls_back_to_the_newest_that_is_not() -> None:
    state = state_of(TREE)
    state.elite_checked = {4: False, 1: True}  # gen-4 (the best, the head) was a lucky score
    greedy = ParentSelector(StrategyConfig(name="greedy"), direction="higher")
    assert [c.node for c in greedy.choose(state, [6, 7], commit(4))] == ["gen-2", "gen-2"]
    beam = ParentSelector(StrategyConfig(name="best-first", beam=2), direction="higher")
    assert [c.node for c in beam.choose(state, [6, 7], commit(4))] == ["gen-1", "gen-2"]
    archive, commit_of = beam.archive(state)
    assert {n.move: n.status for n in archive}["gen-4"] == "demoted" and "gen-4" not in commit_of


def test_a_recorded_parent_is_kept_and_an_unknown_one_is_a_clear_error() -> None:
    state = state_of(TREE)
    state.chosen_nodes = {6: "gen-2"}
    selector = ParentSelector(StrategyConfig(name="best-first"), direction="higher")
    assert selector.choose(state, [6], BASE)[0].commit == commit(2)
    state.chosen_nodes = {6: "gen-3"}  # gen-3 was rejected: no commit
    with pytest.raises(Exception, match="gen-3, which is not an accepted node"):
        selector.choose(state, [6], BASE)


def test_the_proposer_sees_the_parents_ancestry_and_its_siblings() -> None:
    state = state_of(TREE)
    assert [e.generation for e in ancestry(state, commit(4))] == [1, 4]
    assert ancestry(state, BASE) == []
    assert [e.generation for e in siblings(state.history, commit(1))] == [3, 4]


def test_a_node_accepted_off_an_older_one_starts_a_branch_and_every_node_is_tagged(tmp_path: Path) -> None:
    source = tmp_path / "target"
    source.mkdir()
    (source / "README.md").write_text("a target\n")
    lineage = Lineage.create(tmp_path / "lineage", source)
    base = lineage.head()

    def grow(parent: str, generation: int) -> str:
        lineage.grow_from(parent, generation)
        name = f"node_{generation}.txt"
        diff = (
            f"diff --git a/{name} b/{name}\nnew file mode 100644\n--- /dev/null\n+++ b/{name}\n"
            f"@@ -0,0 +1 @@\n+node {generation}\n"
        )
        return lineage.commit_candidate(diff, generation, f"generation {generation}")

    one = grow(base, 1)
    two = grow(one, 2)  # continues the branch
    three = grow(one, 3)  # `one` already has a child: a new branch
    four = grow(two, 4)  # back on the first branch's tip
    repo = git.Repo(lineage.path)
    assert sorted(b.name for b in repo.branches) == sorted(["lineage", "branch-3"])
    assert lineage.branches()["branch-3"] == three and repo.commit(three).parents[0].hexsha == one
    assert repo.commit(four).parents[0].hexsha == two
    assert {t.name: t.commit.hexsha for t in repo.tags} == {
        "gen-0": base,
        "gen-1": one,
        "gen-2": two,
        "gen-3": three,
        "gen-4": four,
    }


@pytest.mark.bwrap
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_best_first_grows_a_tree_of_branches_that_replay_verify_reproduces(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = run_argv(run_dir, "--candidates", "2", "--max-evaluations", "8", "--strategy", "best-first")
    assert "status completed" in finish(argv)
    live = live_events(events_of(run_dir))
    started = {e.generation: e.data for e in live if e.kind == "proposal_started"}
    assert {data["strategy"] for data in started.values()} == {"best-first"}
    run = fold(live)
    parents = {g.parent_commit for g in run.decided}
    assert len(parents) > 1  # candidates were proposed from more than one node
    repo = git.Repo(run_dir / "lineage")
    for record in run.decided:
        if record.commit:  # every accepted node sits on its own parent, tagged
            assert repo.commit(record.commit).parents[0].hexsha == record.parent_commit
            assert repo.tags[f"gen-{record.generation}"].commit.hexsha == record.commit
    # A node accepted on a parent that already had an accepted child starts a branch. Which
    # candidates are accepted depends on their measurements, so count from what the run recorded.
    accepted = [e.data for e in live if e.kind == "commit"]
    with_child: set[str] = set()
    forks = 0
    for record in sorted(run.decided, key=lambda r: r.generation):
        if record.commit:
            forks += record.parent_commit in with_child
            with_child.add(record.parent_commit)
    assert accepted and len(repo.branches) == 1 + forks
    verified = finish([*RSI, "replay", str(run_dir), "--verify"])
    assert "reproduced" in verified and "DIVERGED" not in verified


@pytest.mark.bwrap
@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_kill_9_in_a_tree_generation_resumes_on_the_recorded_parents(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    argv = run_argv(run_dir, "--candidates", "2", "--max-evaluations", "6", "--strategy", "best-first")
    kill_at(argv, run_dir, "evaluation:5")  # generation 5-6 measured, one recorded, nothing decided
    before = {e.generation: e.data["parent_node"] for e in events_of(run_dir) if e.kind == "proposal_started"}
    finish([*RSI, "resume", str(run_dir)])
    live = live_events(events_of(run_dir))
    after = {e.generation: e.data["parent_node"] for e in live if e.kind == "proposal_started"}
    assert after == before  # the unfinished candidates keep the parents they were proposed from
    run = fold(live)
    assert [g.generation for g in run.decided] == [1, 2, 3, 4, 5, 6] and run.undecided == []
    verified = finish([*RSI, "replay", str(run_dir), "--verify"])
    assert "reproduced" in verified and "DIVERGED" not in verified
