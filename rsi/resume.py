"""`rsi resume RUN_DIR`: continue a run that stopped, paused or crashed, losing nothing.

    summary = resume_run(run_dir, observer=HeadlessProgress())

What a crash can leave, and what resuming does about it:
- a torn last line of the trajectory: dropped (it was never reported as written);
- a generation with some events but no decision (the in-flight candidate): a `run_resumed` event
  lists those events as superseded and the generation runs again — from its recorded proposal
  when there is one (no second model call), else from a new proposal;
- an `accept` decision whose lineage commit is missing: the commit is made now; a lineage commit
  whose `commit` event is missing: the event is recorded now (marked `recovered`); a lineage head
  or `gen-N` tag the trajectory does not know about: reset to what the trajectory recorded;
- sandbox containers of the crashed process: removed.
Readers fold a run with `core.fold.fold`, which drops superseded events, so every generation has
exactly one set of live events. The resumed loop starts from the `LoopState` that fold records.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.contracts import Reviewer
from core.errors import ConfigError
from core.fold import RunRecord, fold
from core.run import Observer, RunSummary
from core.trajectory import TRAJECTORY_FILE, TrajectoryReader
from rsi.compose import LINEAGE_DIR, build_run, make_reviewer
from rsi.config import RUN_CONFIG_FILE, RunConfig
from rsi.loop import GenerationLoop
from rsi.state import LoopState
from sandbox.lineage import Lineage

# -- the lineage ------------------------------------------------------------------------------


@dataclass
class LineageRepair:
    recovered: list[tuple[int, str]] = field(default_factory=list)
    """(generation, commit): committed on the lineage, but the crash came before its event."""
    to_commit: list[int] = field(default_factory=list)
    """Accepted generations whose lineage commit never happened."""
    notes: list[str] = field(default_factory=list)


def reconcile_lineage(lineage: Lineage, run: RunRecord, baseline_commit: str) -> LineageRepair:
    """Make the lineage agree with the trajectory (the trajectory is the record; git follows it)."""
    repair = LineageRepair()
    git_dir = lineage.path / ".git"
    for lock in sorted(git_dir.rglob("*.lock")):  # left by a process killed inside a git command
        lock.unlink()
        repair.notes.append(f"removed stale git lock {lock.relative_to(lineage.path)}")
    repo = lineage.repo
    committed = [g for g in run.decided if g.commit]
    expected: str = (committed[-1].commit if committed else None) or baseline_commit
    pending = [
        g.generation for g in run.decided if g.decision and g.decision.decision == "accept" and not g.commit
    ]
    head = lineage.head()
    accepted_commits = {baseline_commit} | {g.commit for g in committed if g.commit}
    if head != expected and head not in accepted_commits:  # a tree's head may be any accepted node
        commit = repo.commit(head)
        parent = run.generations[pending[0]].parent_commit if pending else None
        made_before_crash = (
            pending
            and commit.parents
            and commit.parents[0].hexsha in (expected, parent)
            and str(commit.message).startswith(f"generation {pending[0]}:")
        )
        if made_before_crash:
            repo.create_tag(f"gen-{pending[0]}", ref=commit, force=True)
            repair.recovered.append((pending.pop(0), head))
        else:
            repo.git.reset("--hard", expected)
            repair.notes.append(
                f"lineage head {head[:10]} is not in the trajectory; reset to {expected[:10]}"
            )
    repo.git.reset("--hard", "HEAD")
    repo.git.clean("-fdx")
    known = {f"gen-{g.generation}" for g in committed} | {f"gen-{g}" for g, _ in repair.recovered} | {"gen-0"}
    for tag in list(repo.tags):
        if tag.name.startswith("gen-") and tag.name not in known:
            repo.delete_tag(tag)
            repair.notes.append(f"removed tag {tag.name}: its commit is not in the trajectory")
    repair.to_commit = pending
    return repair


# -- resuming ---------------------------------------------------------------------------------


def load_run_config(run_dir: Path) -> RunConfig:
    if not (run_dir / RUN_CONFIG_FILE).is_file():
        raise ConfigError(
            f"{run_dir}: not a run directory (no {RUN_CONFIG_FILE}). Pass the --run-dir of an `rsi run`."
        )
    return RunConfig.load(run_dir)


def resume_run(
    run_dir: Path,
    observer: Observer | None = None,
    generations: int | None = None,
    reviewer: Reviewer | None = None,
    on_loop: Callable[[GenerationLoop], None] | None = None,
) -> tuple[RunSummary, GenerationLoop]:
    """Continue the run in run_dir; generations (when given) raises the planned total.

    reviewer: who decides from now on (default: its own policy mode; for a run a human was reviewing in
    the TUI, nobody until a human looks: changes queue for `rsi review`);
    on_loop: called with the loop before it runs (the TUI keeps it to stop it).
    """
    config = load_run_config(run_dir.resolve())
    if generations is not None and generations != config.generations:
        config.generations = generations
        config.save()
    loop, parts = build_run(
        config, observer=observer, reviewer=reviewer or make_reviewer(config, continuing=True), resume=True
    )
    if on_loop is not None:
        on_loop(loop)
    try:
        parts.remove_sandboxes()  # any left now is an orphan: this process holds the run's writer lock
        run = fold(list(TrajectoryReader(config.run_dir / TRAJECTORY_FILE).events()))
        if not run.started:
            return loop.run(), loop
        return _continue(loop, run), loop
    finally:
        parts.trajectory.close()


def _continue(loop: GenerationLoop, run: RunRecord) -> RunSummary:
    parts, config = loop.parts, loop.config
    lineage = Lineage(config.run_dir / LINEAGE_DIR)
    repair = reconcile_lineage(lineage, run, lineage.repo.commit("gen-0").hexsha)
    _restore(loop, run)
    in_flight = run.in_flight
    undecided = run.undecided
    decided = [g.generation for g in run.decided]
    next_generation = undecided[0].generation if undecided else (max(decided) + 1 if decided else 1)
    if next_generation > loop.last_number() and not (repair.recovered or repair.to_commit):
        raise ConfigError(
            f"{config.run_dir}: every planned generation ({config.generations}) is done; nothing to resume. "
            f"Pass --generations N (more than {config.generations}) to continue the run further."
        )
    superseded = [seq for record in undecided for seq in record.seqs]
    loop.record(
        "run_resumed",
        {
            "session": run.sessions + 1,
            "pid": os.getpid(),
            "previous_session_end": "finished" if run.last_kind == "run_finished" else "crashed",
            "next_generation": next_generation,
            "generations": config.generations,
            "superseded_generation": in_flight.generation if in_flight else None,
            "superseded_seqs": superseded,
            "reuses_recorded_proposal": bool(in_flight and in_flight.proposal),
            "superseded_generations": [record.generation for record in undecided],
            "recovered_commits": [{"generation": g, "commit": sha} for g, sha in repair.recovered],
            "commits_to_make": repair.to_commit,
            "lineage_notes": repair.notes,
            "orphans_removed": parts.leftover_sandboxes,
            "image": parts.run_info.get("image"),
            "policy_hash": parts.policy.content_hash,
            "contract_differences": parts.contract_differences,
            "reviewer": getattr(parts.reviewer, "mode", type(parts.reviewer).__name__),
            "elapsed_before_s": round(run.elapsed_s, 3),
        },
    )
    _finish_commits(loop, run, repair)
    return loop.run(first_generation=next_generation, record_start=False)


def _restore(loop: GenerationLoop, run: RunRecord) -> None:
    """Hand the loop the state its trajectory records; the evaluator remembers the recorded parents."""
    loop.state = LoopState.from_record(run)
    if run.baseline is not None:
        loop.parts.evaluator.remember(run.baseline)
    for evaluation in run.parent_evaluations.values():
        loop.parts.evaluator.remember(evaluation)
    for check in run.elite_checks.values():  # on fresh seeds: a parent's serves its other children
        loop.parts.evaluator.remember(check.parent_evaluation)
        loop.parts.evaluator.remember(check.evaluation)


def _finish_commits(loop: GenerationLoop, run: RunRecord, repair: LineageRepair) -> None:
    """Record the commits made before the crash; make those the crash prevented."""
    for generation, sha in repair.recovered:
        loop.record_recovered_commit(run.candidate(generation), sha)
    for generation in repair.to_commit:
        decision = run.generations[generation].decision
        assert decision is not None
        loop.accept(run.candidate(generation), decision)
