"""Recorded runs for the review app's tests and benchmarks, written without running anything.

The run directory is real (run.json, a git lineage of the bundled target, a hash-chained
trajectory that TrajectoryReader verifies); the evaluations are given numbers instead of measured
ones, and the verdicts come from the real default policy. Timestamps are fixed so that screenshots
are stable.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.contracts import Decision, Evaluation, MetricResult, Proposal, Resources, TestResult, Verdict
from core.target import TargetSpec
from core.trajectory import GENESIS_HASH, Event, line_hash
from policies.engine import load_policy, resolve_policy_path
from rsi.config import RunConfig
from sandbox.lineage import Lineage
from sandbox.patch import diff_sha256
from tests.conftest import TARGET, file_diff, make_diff

RUN_ID = "feedc0de"
START = datetime(2025, 3, 1, 9, 0, 0, tzinfo=UTC)


@dataclass
class Gen:
    rationale: str
    diff: str
    metric: list[float] | None
    """Per-seed metric; None when the evaluation failed."""
    decision: str | None = "queue"
    by: str = "policy"
    reason: str = ""
    failure: str | None = None
    tests_failed: int = 0
    claimed: str | None = None
    verdict: Verdict | None = field(default=None, repr=False)
    lockbox: list[float] | None = None
    """Per-seed lockbox score; None: not scored."""
    parent: int | None = None
    """The accepted generation it is proposed from (0: the baseline); None: as `advance` says."""
    output: str | None = None
    """The test run's output tail and the failure's detail, when not the usual ones."""


def protected_diff() -> str:
    return make_diff(TARGET, "rsi.toml", "steps = 3000", "steps = 30000")


def better_diff() -> str:
    return make_diff(TARGET, "config.py", "input_range: float = 0.5", "input_range: float = 1.0")


def lr_diff() -> str:
    return make_diff(TARGET, "config.py", "learning_rate: float = 0.02", "learning_rate: float = 0.05")


def big_diff(lines: int = 450, name: str = "features.py") -> str:
    body = "".join(
        f"def feature_{i}(x):\n    return x * {i} + {i % 7}  # scaled\n\n" for i in range(lines // 3)
    )
    return file_diff(name, None, body)


def standard_generations() -> list[Gen]:
    """Four queued candidates (deny, review, allow, allow) and one the policy already rejected."""
    return [
        Gen(
            "Train longer by raising the step budget",
            protected_diff(),
            [0.31, 0.30, 0.32],
            lockbox=[0.29, 0.30, 0.28],
            decision="queue",
            by="human:alice",
            reason="skipped: left in the review queue for later",
            claimed="R² up by ~0.15",
        ),
        Gen(
            "Add hand-made features for the student",
            big_diff(),
            [0.18, 0.17, 0.19],
            lockbox=[0.15, 0.14, 0.16],
            claimed="small gain from richer inputs",
        ),
        Gen(
            "Widen the training input range to match the held-out range",
            better_diff(),
            [0.66, 0.65, 0.67],
            lockbox=[0.64, 0.65, 0.63],
            claimed="R² from 0.15 to about 0.6",
        ),
        Gen(
            "Raise the learning rate",
            lr_diff(),
            [0.10, 0.40, 0.12],
            failure="tests_failed",
            tests_failed=2,
            decision="reject",
            reason="tests failed",
        ),
    ]


class ChainWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[str] = []
        self.prev = GENESIS_HASH

    def append(self, kind: str, data: dict[str, Any], generation: int | None = None) -> None:
        seq = len(self.lines)
        event = Event(
            seq=seq,
            ts=(START + timedelta(seconds=7 * seq)).isoformat(timespec="milliseconds"),
            run_id=RUN_ID,
            kind=kind,
            generation=generation,
            data=data,
            prev_hash=self.prev,
        )
        line = json.dumps(
            event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        self.lines.append(line)
        self.prev = line_hash(line)

    def save(self) -> None:
        self.path.write_text("\n".join(self.lines) + "\n", encoding="utf-8")


def lockbox_generations(lockbox_follows: bool) -> list[Gen]:
    """Three accepted candidates whose selection metric rises 0.15 → 0.60; the lockbox rises with
    it (`lockbox_follows`) or stays flat, which is adaptive overfitting of the lineage."""
    gens = []
    for index, value in enumerate((0.30, 0.45, 0.60), start=1):
        lockbox = value - 0.02 if lockbox_follows else 0.15 + 0.005 * index
        gens.append(
            Gen(
                f"tune the learning rate, step {index}",
                lr_diff(),
                [value, value + 0.005, value - 0.005],
                lockbox=[lockbox, lockbox + 0.005, lockbox - 0.005],
                decision="accept",
            )
        )
    return gens


def evaluation(
    parent: str,
    diff: str,
    metric: list[float] | None,
    failure: str | None = None,
    failed: int = 0,
    lockbox: list[float] | None = None,
    output: str | None = None,
) -> Evaluation:
    return Evaluation(
        parent_commit=parent,
        diff_sha256=diff_sha256(diff),
        backend="docker",
        image="sha256:0123456789ab",
        ok=failure is None,
        failure=failure,  # type: ignore[arg-type]
        failure_detail=output or ("tests exited 1: 2 failed" if failure else ""),
        tests=TestResult(
            exit_code=1 if failed else 0,
            passed=12 - failed,
            failed=failed,
            duration_s=2.5,
            output_tail=output
            if output
            else "FAILED tests/test_train.py::test_loss_decreases - assert 0.9 < 0.5\n"
            if failed
            else "12 passed",
        ),
        metric=MetricResult(name="r2", direction="higher", per_seed=dict(enumerate(metric)))
        if metric
        else None,
        lockbox=MetricResult(name="r2", direction="higher", per_seed=dict(enumerate(lockbox)))
        if lockbox and metric
        else None,
        seeds=[0, 1, 2],
        resources=Resources(wall_s=14.2, cpu_s=11.8, peak_memory_mb=96.0, overhead_s=1.3),
    )


def write_run(
    run_dir: Path, gens: list[Gen], planned: int | None = None, finished: bool = True, advance: bool = False
) -> Path:
    """A run directory whose trajectory records the given generations; returns the run dir."""
    spec = TargetSpec.load(TARGET)
    config = RunConfig(
        run_id=RUN_ID,
        target=TARGET,
        run_dir=run_dir,
        generations=planned or len(gens),
        heldout_seed=7,
        review="queue",
    )
    config.save()
    lineage = Lineage.create(run_dir / "lineage", TARGET)
    head = lineage.head()
    policy = load_policy(resolve_policy_path("default"), target=spec)
    chain = ChainWriter(run_dir / "trajectory.jsonl")
    chain.append(
        "run_started",
        {
            "config": config.model_dump(mode="json"),
            "target": spec.model_dump(mode="json"),
            "policy": {"name": policy.name, "hash": policy.content_hash},
            "baseline_commit": head,
        },
    )
    parent = evaluation(head, "", [0.15, 0.16, 0.14], lockbox=[0.14, 0.15, 0.13])
    chain.append("baseline", {"commit": head, "evaluation": parent.model_dump(mode="json")}, 0)
    cached_verdicts: dict[str, Verdict] = {}
    nodes = {0: (head, parent)}
    for number, gen in enumerate(gens, start=1):
        if gen.parent is not None:  # a tree: built on the node it names
            head, parent = nodes[gen.parent]
        proposal = Proposal(
            diff=gen.diff, rationale=gen.rationale, claimed_effect=gen.claimed, proposer="offline"
        )
        measured = evaluation(
            head, gen.diff, gen.metric, gen.failure, gen.tests_failed, gen.lockbox, gen.output
        )
        key = f"{diff_sha256(gen.diff)}{gen.metric}{gen.failure}"
        verdict = gen.verdict or cached_verdicts.get(key) or policy.check(proposal, measured, parent)
        cached_verdicts[key] = verdict
        chain.append("proposal_started", {"parent": head, "proposer": "offline"}, number)
        chain.append("proposal", {**proposal.model_dump(mode="json"), "diff_stat": ""}, number)
        chain.append("evaluation", measured.model_dump(mode="json"), number)
        chain.append("verdict", verdict.model_dump(mode="json"), number)
        if gen.decision is not None:
            decision = Decision(
                decision=gen.decision,
                by=gen.by,
                reason=gen.reason or verdict.reasons(),  # type: ignore[arg-type]
                at=(START + timedelta(minutes=number)).isoformat(timespec="milliseconds"),
            )
            chain.append("decision", decision.model_dump(mode="json"), number)
            if gen.decision == "accept":
                chain.append(
                    "commit", {"commit": f"{number:040x}", "parent": head, "tag": f"gen-{number}"}, number
                )
                nodes[number] = (f"{number:040x}", measured)
                if advance:  # later candidates are measured against this one, as in a real run
                    head, parent = f"{number:040x}", measured
    if finished:
        accepted = sum(1 for gen in gens if gen.decision == "accept")
        chain.append(
            "run_finished", {"status": "completed", "reason": "", "accepted": accepted, "head": head}
        )
    chain.save()
    return run_dir


def many_generations(count: int) -> list[Gen]:
    """A long run for the benchmarks: small diffs, a slowly rising metric, mixed decisions."""
    diff = lr_diff()
    gens = []
    for index in range(count):
        value = 0.15 + 0.5 * index / max(count, 1) + 0.02 * ((index * 7919) % 13) / 13
        decision = ("accept", "reject", "reject", "queue")[index % 4]
        gens.append(
            Gen(
                f"step {index}: tune the learning rate",
                diff,
                [value, value + 0.01, value - 0.01],
                decision=decision,
                reason="bench",
            )
        )
    return gens


def k_generations() -> list[Gen]:
    """One generation of K = 4 candidates from the baseline, all waiting for a human: a denial, two
    allowed gains and a small gain the policy sends to review."""
    return [
        Gen("Train longer", protected_diff(), [0.31, 0.30, 0.32], claimed="R² up by ~0.15"),
        Gen("Widen the input range", better_diff(), [0.66, 0.65, 0.67], claimed="R² to about 0.6"),
        Gen("Raise the learning rate", lr_diff(), [0.40, 0.42, 0.38], claimed="faster convergence"),
        Gen("Add hand-made features", big_diff(), [0.18, 0.17, 0.19], claimed="richer inputs"),
    ]


def tree_generations() -> list[Gen]:
    """A finished tree search: two branches from the baseline, each grown further, with rejected,
    denied and failed leaves; the best node is on the second branch."""
    lr, better = lr_diff(), better_diff()
    return [
        Gen("Raise the learning rate", lr, [0.30, 0.31, 0.29], decision="accept", parent=0),
        Gen("Widen the input range", better, [0.60, 0.61, 0.59], decision="accept", parent=0),
        Gen("Lower the label noise", lr, [0.28, 0.27, 0.29], decision="reject", parent=1),
        Gen("Halve the init scale", lr, [0.70, 0.71, 0.69], decision="accept", parent=2),
        Gen(
            "Double the hidden size",
            lr,
            [0.10, 0.40, 0.12],
            failure="tests_failed",
            tests_failed=2,
            decision="reject",
            parent=2,
        ),
        Gen("Train longer", protected_diff(), [0.75, 0.74, 0.76], decision="reject", parent=4),
        Gen("Switch to adam", lr, [0.72, 0.71, 0.73], decision="queue", parent=4),
    ]


def mixed_generations() -> list[Gen]:
    """A finished run with every kind of outcome: accepted steps up, rejections below, one
    rejected within the noise, a denial scoring high, a failure."""
    return [
        Gen(
            "Raise the learning rate",
            lr_diff(),
            [0.30, 0.31, 0.29],
            decision="accept",
            lockbox=[0.28, 0.29, 0.27],
        ),
        Gen("Shrink the batch", lr_diff(), [0.22, 0.21, 0.23], decision="reject", reason="worse"),
        Gen("Train longer", protected_diff(), [0.55, 0.56, 0.54], decision="reject", reason="denied"),
        Gen(
            "Widen the input range",
            better_diff(),
            [0.62, 0.63, 0.61],
            decision="accept",
            lockbox=[0.6, 0.61, 0.59],
        ),
        Gen("Nudge the decay", lr_diff(), [0.63, 0.60, 0.66], decision="reject", reason="within noise"),
        Gen(
            "Raise the rate again",
            lr_diff(),
            None,
            failure="train_crashed",
            decision="reject",
            reason="crashed",
        ),
        Gen("Add features", big_diff(40), [0.70, 0.71, 0.69], decision="accept", lockbox=[0.66, 0.67, 0.65]),
        Gen("Lower the rate", lr_diff(), [0.50, 0.52, 0.48], decision="reject", reason="worse"),
    ]
