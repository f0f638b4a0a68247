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
Readers fold a run with `live_events`, which drops superseded events, so every generation has
exactly one set of live events.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.contracts import Candidate, Decision, Evaluation, Proposal, Reviewer, Usage, Verdict
from core.errors import ConfigError
from core.trajectory import Event, TrajectoryReader
from rsi.compose import TRAJECTORY_FILE, build_run, remove_run_sandboxes
from rsi.config import RUN_CONFIG_FILE, RunConfig
from rsi.loop import GenerationLoop, Observer, RunSummary
from sandbox.lineage import Lineage


def live_events(events: list[Event]) -> list[Event]:
    """The events that count: every event but those a later `run_resumed` marked superseded."""
    superseded: set[int] = set()
    for event in events:
        if event.kind == "run_resumed":
            superseded.update(int(seq) for seq in event.data.get("superseded_seqs", []))
    return [event for event in events if event.seq not in superseded]


@dataclass
class GenerationState:
    """One generation as its live events record it; the latest decision is the one that holds."""

    generation: int
    parent_commit: str = ""
    proposal: Proposal | None = None
    evaluation: Evaluation | None = None
    verdict: Verdict | None = None
    decision: Decision | None = None
    commit: str | None = None
    seqs: list[int] = field(default_factory=list)

    def candidate(self, parent_evaluation: Evaluation | None) -> Candidate:
        if self.proposal is None or self.evaluation is None or self.verdict is None:
            raise ConfigError(f"generation {self.generation} was decided but its events are incomplete.")
        return Candidate(
            generation=self.generation,
            parent_commit=self.parent_commit,
            proposal=self.proposal,
            evaluation=self.evaluation,
            parent_evaluation=parent_evaluation,
            verdict=self.verdict,
        )


@dataclass
class RecordedRun:
    """What a run's trajectory says so far: the state a resumed loop starts from."""

    started: bool = False
    baseline: Evaluation | None = None
    parent_evaluations: dict[str, Evaluation] = field(default_factory=dict)
    generations: dict[int, GenerationState] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    elapsed_s: float = 0.0
    fired_checkpoints: set[str] = field(default_factory=set)
    sessions: int = 0
    last_kind: str | None = None

    @property
    def in_flight(self) -> GenerationState | None:
        undecided = [g for g in self.generations.values() if g.decision is None]
        return max(undecided, key=lambda g: g.generation) if undecided else None

    @property
    def decided(self) -> list[GenerationState]:
        return [g for _, g in sorted(self.generations.items()) if g.decision is not None]

    def parent_evaluation(self, commit: str) -> Evaluation | None:
        if self.baseline is not None and self.baseline.parent_commit == commit:
            return self.baseline
        return self.parent_evaluations.get(commit)


def fold(events: list[Event]) -> RecordedRun:
    """Fold live events into the state of the run."""
    run = RecordedRun()
    for event in events:
        _fold_run_event(run, event)
        if event.generation is not None and event.generation >= 1 and event.kind != "checkpoint":
            _fold_generation_event(
                run.generations.setdefault(event.generation, GenerationState(event.generation)), event
            )
    run.elapsed_s = session_seconds(events)
    run.last_kind = events[-1].kind if events else None
    return run


def _fold_run_event(run: RecordedRun, event: Event) -> None:
    data = event.data
    if event.kind in ("run_started", "run_resumed"):
        run.started = True
        run.sessions += 1
    elif event.kind == "baseline":
        run.baseline = Evaluation.model_validate(data["evaluation"])
    elif event.kind == "parent_evaluation":
        run.parent_evaluations[data["commit"]] = Evaluation.model_validate(data["evaluation"])
    elif event.kind == "proposal":
        run.usage = run.usage + Usage.model_validate(data.get("usage", {}))
    elif event.kind == "checkpoint":
        run.fired_checkpoints.add(str(data.get("key")))


def _fold_generation_event(state: GenerationState, event: Event) -> None:
    state.seqs.append(event.seq)
    data = event.data
    if event.kind == "proposal_started":
        state.parent_commit = str(data.get("parent", ""))
    elif event.kind == "proposal":
        state.proposal = Proposal.model_validate(data)
    elif event.kind == "evaluation":
        state.evaluation = Evaluation.model_validate(data)
    elif event.kind == "verdict":
        state.verdict = Verdict.model_validate(data)
    elif event.kind == "decision":
        state.decision = Decision.model_validate(data)
    elif event.kind == "commit":
        state.commit = str(data.get("commit"))


def session_seconds(events: list[Event]) -> float:
    """Wall time the run has used: each session from its start event to its last event."""
    total, start, last = 0.0, None, None
    for event in events:
        stamp = datetime.fromisoformat(event.ts)
        if event.kind in ("run_started", "run_resumed"):
            if start is not None and last is not None:
                total += (last - start).total_seconds()
            start = stamp
        last = stamp
    if start is not None and last is not None:
        total += (last - start).total_seconds()
    return total


# -- the lineage ------------------------------------------------------------------------------


@dataclass
class LineageRepair:
    recovered: list[tuple[int, str]] = field(default_factory=list)
    """(generation, commit): committed on the lineage, but the crash came before its event."""
    to_commit: list[int] = field(default_factory=list)
    """Accepted generations whose lineage commit never happened."""
    notes: list[str] = field(default_factory=list)


def reconcile_lineage(lineage: Lineage, run: RecordedRun, baseline_commit: str) -> LineageRepair:
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
    if head != expected:
        commit = repo.commit(head)
        made_before_crash = (
            pending
            and commit.parents
            and commit.parents[0].hexsha == expected
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


def _count_run_containers(config: RunConfig) -> int:
    """Sandboxes still labelled with this run (a crashed session's); build_run removes them."""
    if config.backend != "docker":
        return 0
    from sandbox.base import SANDBOX_LABEL
    from sandbox.docker_backend import connect

    client = connect()
    return len(
        client.containers.list(all=True, filters={"label": [SANDBOX_LABEL, f"rsi.run_id={config.run_id}"]})
    )


def _remove_run_containers(config: RunConfig) -> None:
    """Any container of this run left now is an orphan: this process holds the run's writer lock."""
    remove_run_sandboxes(config)


def load_run_config(run_dir: Path) -> RunConfig:
    if not (run_dir / RUN_CONFIG_FILE).is_file():
        raise ConfigError(
            f"{run_dir}: not a run directory (no {RUN_CONFIG_FILE}). Pass the --run-dir of an `rsi run`."
        )
    return RunConfig.load(run_dir)


def headless_reviewer(config: RunConfig) -> Reviewer:
    """Who decides when a run continues without a terminal: its own policy mode, or — for a run a
    human was reviewing in the TUI — nobody until a human looks (changes queue for `rsi review`)."""
    from review.headless import PolicyReviewer

    return PolicyReviewer("queue" if config.review == "human" else config.review)


def resume_run(
    run_dir: Path,
    observer: Observer | None = None,
    generations: int | None = None,
    reviewer: Reviewer | None = None,
    on_loop: Callable[[GenerationLoop], None] | None = None,
) -> tuple[RunSummary, GenerationLoop]:
    """Continue the run in run_dir; generations (when given) raises the planned total.

    reviewer: who decides from now on (default: the run's headless reviewer, see headless_reviewer);
    on_loop: called with the loop before it runs (the TUI keeps it to stop it).
    """
    config = load_run_config(run_dir.resolve())
    if generations is not None and generations != config.generations:
        config.generations = generations
        config.save()
    orphans = _count_run_containers(config)
    loop, parts = build_run(
        config, observer=observer, reviewer=reviewer or headless_reviewer(config), resume=True
    )
    if on_loop is not None:
        on_loop(loop)
    try:
        _remove_run_containers(config)
        run = fold(live_events(list(TrajectoryReader(config.run_dir / TRAJECTORY_FILE).events())))
        if not run.started:
            return loop.run(), loop
        return _continue(loop, run, orphans), loop
    finally:
        parts.trajectory.close()


def _continue(loop: GenerationLoop, run: RecordedRun, orphans: int) -> RunSummary:
    parts, config = loop.parts, loop.config
    baseline_commit = parts.lineage.repo.commit("gen-0").hexsha
    repair = reconcile_lineage(parts.lineage, run, baseline_commit)
    _restore(loop, run)
    in_flight = run.in_flight
    decided = [g.generation for g in run.decided]
    next_generation = in_flight.generation if in_flight else (max(decided) + 1 if decided else 1)
    if next_generation > config.generations and not (repair.recovered or repair.to_commit):
        raise ConfigError(
            f"{config.run_dir}: every planned generation ({config.generations}) is done; nothing to resume. "
            f"Pass --generations N (more than {config.generations}) to continue the run further."
        )
    superseded = in_flight.seqs if in_flight else []
    if in_flight is not None and in_flight.proposal is not None:
        loop.recorded_proposals[in_flight.generation] = in_flight.proposal
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
            "recovered_commits": [{"generation": g, "commit": sha} for g, sha in repair.recovered],
            "commits_to_make": repair.to_commit,
            "lineage_notes": repair.notes,
            "orphans_removed": orphans,
            "image": parts.run_info.get("image"),
            "policy_hash": parts.policy.content_hash,
            "contract_differences": parts.contract_differences,
            "reviewer": getattr(parts.reviewer, "mode", type(parts.reviewer).__name__),
            "elapsed_before_s": round(run.elapsed_s, 3),
        },
    )
    _finish_commits(loop, run, repair)
    return loop.run(first_generation=next_generation, record_start=False)


def _restore(loop: GenerationLoop, run: RecordedRun) -> None:
    """Put the recorded state into the loop: baseline, parents, history, counts, budgets."""
    evaluator = loop.parts.evaluator
    if run.baseline is not None:
        loop.baseline = run.baseline
        evaluator.remember(run.baseline)
        loop.best = run.baseline.metric.mean if run.baseline.metric else None
    for commit, evaluation in run.parent_evaluations.items():
        evaluator.remember(evaluation)
        loop.parent_evaluated.add(commit)
    loop.usage = run.usage
    loop.elapsed_before_s = run.elapsed_s
    loop.fired_checkpoints = set(run.fired_checkpoints)
    for state in run.decided:
        assert state.decision is not None
        candidate = state.candidate(run.parent_evaluation(state.parent_commit))
        loop.history.append(GenerationLoop._history_entry(candidate, state.decision))
        if state.commit:
            loop.accepted += 1
            _raise_best(loop, candidate)


def _raise_best(loop: GenerationLoop, candidate: Candidate) -> None:
    metric = candidate.evaluation.metric
    if metric is None:
        return
    if loop.best is None:
        loop.best = metric.mean
    else:
        loop.best = (
            max(loop.best, metric.mean) if metric.direction == "higher" else min(loop.best, metric.mean)
        )


def _finish_commits(loop: GenerationLoop, run: RecordedRun, repair: LineageRepair) -> None:
    """Record the commits made before the crash; make those the crash prevented."""
    for generation, sha in repair.recovered:
        state = run.generations[generation]
        loop.record_commit(state.candidate(run.parent_evaluation(state.parent_commit)), sha, recovered=True)
    for generation in repair.to_commit:
        state = run.generations[generation]
        assert state.decision is not None
        loop._commit(state.candidate(run.parent_evaluation(state.parent_commit)), state.decision)
