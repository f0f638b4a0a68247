"""`rsi replay TRAJ --verify`: re-execute a recorded run and say whether it reproduced.

    report = verify_trajectory(Path("runs/x/trajectory.jsonl"))
    print(report.table()); sys.exit(0 if report.ok else 1)

The recorded run is executed again in a fresh, temporary run: the same target, image id, policy
text, seeds and held-out seed, with the replay proposer feeding back the recorded proposals (no
network) and a reviewer that applies the recorded decisions, so every generation has the same
parent as it had. Per generation it compares the parent tree, the diff, the tests, the metric
(within noise), the failure, the verdict and the decision the policy would take. Commit hashes are
never compared: they hold timestamps; git tree hashes and diff hashes are.
"""

from __future__ import annotations

import secrets
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.contracts import Candidate, Decision, Evaluation, MetricResult
from core.errors import ConfigError, RsiError, RunInterrupted, TrajectoryError
from core.events import ProposalStarted
from core.fold import GenerationRecord, RunRecord, fold, live_events, session_seconds
from core.run import Observer
from core.trajectory import TRAJECTORY_FILE, Event, TrajectoryReader
from rsi.config import CheckpointConfig, RunConfig


@dataclass
class Check:
    name: str
    recorded: str
    reproduced: str
    ok: bool


@dataclass
class GenerationCheck:
    generation: int
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)


@dataclass
class VerifyReport:
    trajectory: Path
    rows: list[GenerationCheck]
    divergences: list[str]
    original_s: float
    verify_s: float
    contract_differences: list[str] = field(default_factory=list)
    """Where the live target files differ from the recorded contract (the recorded one was used)."""
    audit_draws: dict[str, int] = field(default_factory=dict)
    """How many of the re-execution's audits drew their integrity controls as recorded, how many afresh."""

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows) and not self.divergences

    def table_rows(self) -> list[list[str]]:
        rows = []
        for row in self.rows:
            cells = [str(row.generation) if row.generation else "baseline"]
            for check in row.checks:
                mark = "" if check.ok else " ✗"
                same = check.recorded == check.reproduced
                cells.append((check.recorded if same else f"{check.recorded} → {check.reproduced}") + mark)
            cells.append("ok" if row.ok else "DIVERGED")
            rows.append(cells)
        return rows


COLUMNS = ["gen", "parent tree", "diff", "tests", "metric", "failure", "verdict", "decision", "result"]


# -- what the recorded run applied ------------------------------------------------------------


def applied_decisions(events: list[Event]) -> dict[int, Decision]:
    """The decision that held for each generation when the run moved on to the next one."""
    applied: dict[int, Decision] = {}
    started_later: set[int] = set()
    for event in events:
        if event.kind == "proposal_started" and event.generation is not None:
            started_later.update(g for g in applied if g < event.generation)
        if (
            event.kind == "decision"
            and event.generation is not None
            and event.generation not in started_later
        ):
            applied[event.generation] = Decision.model_validate(event.data)
    return applied


class RecordedReviewer:
    """Applies the recorded decisions (so parents match), and notes what the policy would decide."""

    def __init__(self, decisions: dict[int, Decision], mode: str) -> None:
        self.decisions = decisions
        self.mode = mode
        self.policy_would: dict[int, str] = {}

    def decide(self, candidate: Candidate) -> Decision:
        from review.headless import PolicyReviewer

        if self.mode in ("auto", "queue", "strict"):
            try:
                self.policy_would[candidate.generation] = PolicyReviewer(self.mode).decide(candidate).decision  # type: ignore[arg-type]
            except RunInterrupted:
                self.policy_would[candidate.generation] = "queue"
        recorded = self.decisions.get(candidate.generation)
        if recorded is None:
            raise TrajectoryError(f"no decision recorded for generation {candidate.generation}.")
        return Decision(decision=recorded.decision, by="replay", reason=f"as recorded ({recorded.by})")


# -- comparing --------------------------------------------------------------------------------


def metric_text(metric: MetricResult | None) -> str:
    return f"{metric.mean:.4f}±{metric.std:.4f}" if metric else "—"


def metric_check(
    recorded: MetricResult | None, reproduced: MetricResult | None, spreads: float, absolute: float
) -> Check:
    if recorded is None or reproduced is None:
        return Check("metric", metric_text(recorded), metric_text(reproduced), recorded is reproduced)
    noise = max(spreads * max(recorded.std, reproduced.std), absolute)
    ok = abs(recorded.mean - reproduced.mean) <= noise
    return Check("metric", metric_text(recorded), metric_text(reproduced), ok)


def tests_text(evaluation: Evaluation | None) -> str:
    if evaluation is None:
        return "missing"
    tests = evaluation.tests
    return f"{tests.passed}p/{tests.failed + tests.errors}f" if tests else "not run"


def evaluation_checks(
    recorded: Evaluation | None, reproduced: Evaluation | None, spreads: float, absolute: float
) -> list[Check]:
    rec_diff = recorded.diff_sha256[:10] if recorded else "missing"
    rep_diff = reproduced.diff_sha256[:10] if reproduced else "missing"
    rec_tests, rep_tests = tests_text(recorded), tests_text(reproduced)
    rec_fail = (recorded.failure or "none") if recorded else "missing"
    rep_fail = (reproduced.failure or "none") if reproduced else "missing"
    return [
        *teacher_checks(recorded, reproduced),
        Check("diff", rec_diff, rep_diff, rec_diff == rep_diff),
        Check("tests", rec_tests, rep_tests, rec_tests == rep_tests),
        metric_check(
            recorded.metric if recorded else None,
            reproduced.metric if reproduced else None,
            spreads,
            absolute,
        ),
        Check("failure", rec_fail, rep_fail, rec_fail == rep_fail),
    ]


def teacher_checks(recorded: Evaluation | None, reproduced: Evaluation | None) -> list[Check]:
    """Bootstrapping targets: the re-executed run re-derives every teacher by promoting its own
    students, so the teacher each generation learned from, and the student it trained, must hash
    the same (training is deterministic for a seed and a teacher)."""
    if recorded is None or recorded.teacher_sha256 is None:
        return []
    checks = []
    for name in ("teacher_sha256", "student_sha256"):
        rec = getattr(recorded, name) or "none"
        rep = (getattr(reproduced, name) or "none") if reproduced else "missing"
        checks.append(Check(name.removesuffix("_sha256"), rec[:10], rep[:10], rec == rep))
    return checks


def compare_generation(
    recorded: GenerationRecord,
    reproduced: GenerationRecord | None,
    recorded_tree: str,
    reproduced_tree: str,
    policy_would: str | None,
    spreads: float = 2.0,
    absolute: float = 1e-6,
) -> GenerationCheck:
    row = GenerationCheck(recorded.generation)
    known_tree = recorded_tree not in ("", "not recorded")
    row.checks.append(
        Check(
            "parent tree",
            recorded_tree[:10],
            reproduced_tree[:10],
            not known_tree or recorded_tree == reproduced_tree,
        )
    )
    row.checks += evaluation_checks(
        recorded.evaluation, reproduced.evaluation if reproduced else None, spreads, absolute
    )
    rec_verdict = recorded.verdict.verdict if recorded.verdict else "missing"
    rep_verdict = reproduced.verdict.verdict if reproduced and reproduced.verdict else "missing"
    row.checks.append(Check("verdict", rec_verdict, rep_verdict, rec_verdict == rep_verdict))
    row.checks.append(decision_check(recorded.decision, policy_would))
    return row


def decision_check(decision: Decision | None, policy_would: str | None) -> Check:
    """A policy's decision must be taken again; a human's (or a checkpoint's) is applied as recorded."""
    if decision is None:
        return Check("decision", "missing", policy_would or "?", False)
    recorded = f"{decision.decision} ({decision.by.split(':')[0]})"
    if decision.by != "policy":
        return Check("decision", recorded, recorded, True)
    reproduced = f"{policy_would} (policy)"
    return Check("decision", recorded, reproduced, policy_would == decision.decision)


# -- re-executing -----------------------------------------------------------------------------


def _run_started(events: list[Event], path: Path) -> dict[str, Any]:
    for event in events:
        if event.kind == "run_started":
            return event.data
    raise TrajectoryError(f"{path}: no run_started event; there is no recorded configuration to re-execute.")


def verification_config(
    started: dict[str, Any], trajectory: Path, work: Path, generations: int, target: Path | None
) -> RunConfig:
    """The recorded configuration, pointed at a temporary run with the replay proposer."""
    original = RunConfig.model_validate(started["config"])
    policy = started.get("policy", {})
    policy_file = work / "recorded-policy.yaml"
    policy_file.write_text(policy.get("text", ""), encoding="utf-8")
    config = original.model_copy(
        update={
            "run_id": "verify-" + secrets.token_hex(3),
            "run_dir": work / "run",
            "target": (target or original.target).resolve(),
            "generations": generations,
            "max_evaluations": generations,  # with K candidates per generation: the recorded ones only
            "proposer": "replay",
            "replay_from": trajectory.resolve(),
            "policy": str(policy_file),
            "checkpoints": CheckpointConfig(),
            "max_wall_s": None,
            "max_dollars": None,
        },
        deep=True,
    )
    if started.get("image"):
        config.sandbox.image = str(started["image"])
    if not config.target.is_dir():
        raise ConfigError(
            f"the recorded target {config.target} is gone; pass --target DIR with the same files."
        )
    return config


def verify_trajectory(
    trajectory: Path,
    observer: Observer | None = None,
    spreads: float = 2.0,
    absolute: float = 1e-6,
    target: Path | None = None,
    keep: Path | None = None,
) -> VerifyReport:
    """Re-execute every recorded generation and compare; raise only if it cannot be re-executed."""
    from rsi.compose import RecordedContract, build_run

    reader = TrajectoryReader(trajectory)
    reader.verify()
    all_events = list(reader.events())
    events = live_events(all_events)
    recorded = fold(events)
    decisions = applied_decisions(events)
    generations = max((g.generation for g in recorded.decided), default=0)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rsi-verify-", dir=keep) as tmp:
        run_started = _run_started(events, trajectory)
        config = verification_config(run_started, trajectory, Path(tmp), generations, target)
        contract = RecordedContract.from_run_started(run_started)
        reviewer = RecordedReviewer(decisions, config.review)
        loop, parts = build_run(config, observer=observer, reviewer=reviewer, contract=contract)
        tree_of = parts.lineage.tree_of
        parts.proposer.tree_of = tree_of  # type: ignore[attr-defined]
        loop.state.chosen_nodes.update(_recorded_parent_nodes(events))
        # The integrity controls draw what the recording drew: the same seed, budgets and
        # relabelling, so a control near its threshold is judged as it was, not drawn afresh.
        parts.evaluator.recorded_secrets.update(recorded_secrets(events))
        try:
            summary = loop.run()
        finally:
            parts.trajectory.close()
        if summary.status != "completed":
            raise RsiError(f"the re-execution did not complete ({summary.status}): {summary.reason}")
        reproduced = fold(list(TrajectoryReader(config.run_dir / TRAJECTORY_FILE).events()))
        rows = _compare(recorded, reproduced, events, tree_of, reviewer, spreads, absolute)
        divergences = list(getattr(parts.proposer, "divergences", []))
    return VerifyReport(
        trajectory,
        rows,
        divergences,
        session_seconds(all_events),
        time.monotonic() - started,
        contract_differences=list(parts.contract_differences),
        audit_draws=dict(parts.evaluator.audit_draws),
    )


def _recorded_parent_nodes(events: list[Event]) -> dict[int, str]:
    """Each candidate's parent as the search tree names it (`gen-N`), so the re-execution builds
    on the same nodes whatever its metrics' noise would make the strategy draw."""
    return {
        e.generation: str(e.data["parent_node"])
        for e in events
        if e.kind == "proposal_started" and e.generation is not None and e.data.get("parent_node")
    }


def recorded_secrets(events: list[Event]) -> dict[tuple[str, tuple[int, ...]], str]:
    """The secret each recorded (tree, seeds) was audited with, from its `rerun` check, wherever an
    event holds an evaluation (baselines, candidates, parents, races, elite checks)."""
    found: dict[tuple[str, tuple[int, ...]], str] = {}

    def visit(value: Any) -> None:
        if isinstance(value, dict):
            if isinstance(value.get("tree"), str) and isinstance(value.get("checks"), list):
                for check in value["checks"]:
                    secret = check.get("measured", {}).get("secret") if isinstance(check, dict) else None
                    if check.get("check") == "rerun" and isinstance(secret, str) and secret:
                        # An evaluation merged over extra seeds keeps its first audit's checks.
                        seeds = check["measured"].get("audited_seeds") or value.get("seeds") or []
                        found.setdefault((value["tree"], tuple(sorted(seeds))), secret)
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    for event in events:
        visit(event.data)
    return found


def _recorded_trees(events: list[Event]) -> dict[int, str]:
    return {
        e.generation: ProposalStarted.model_validate(e.data).parent_tree or ""
        for e in events
        if e.kind == "proposal_started" and e.generation is not None
    }


def _compare(
    recorded: RunRecord,
    reproduced: RunRecord,
    events: list[Event],
    tree_of: Any,
    reviewer: RecordedReviewer,
    spreads: float,
    absolute: float,
) -> list[GenerationCheck]:
    baseline = GenerationCheck(0, [Check("parent tree", "", "", True)])
    baseline.checks += evaluation_checks(recorded.baseline, reproduced.baseline, spreads, absolute)
    baseline.checks += [Check("verdict", "", "", True), Check("decision", "", "", True)]
    rows = [baseline]
    trees = _recorded_trees(events)
    for state in recorded.decided:
        again = reproduced.generations.get(state.generation)
        reproduced_tree = tree_of(again.parent_commit) if again and again.parent_commit else "missing"
        recorded_tree = trees.get(state.generation) or "not recorded"
        rows.append(
            compare_generation(
                state,
                again,
                recorded_tree,
                reproduced_tree,
                reviewer.policy_would.get(state.generation),
                spreads,
                absolute,
            )
        )
    return rows
