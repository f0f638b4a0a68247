"""Write a realistic trajectory without running anything: for tests of readers (report, resume)."""

from __future__ import annotations

from pathlib import Path

from core.contracts import Decision, Evaluation, Finding, MetricResult, Proposal, TestResult, Usage, Verdict
from core.trajectory import TrajectoryWriter
from rsi.config import RunConfig
from tests.conftest import TARGET


def evaluation(
    parent: str, mean: float, diff_sha: str = "d" * 64, failed: int = 0, lockbox: float | None = None
) -> Evaluation:
    return Evaluation(
        parent_commit=parent,
        diff_sha256=diff_sha,
        backend="docker",
        ok=failed == 0,
        failure="tests_failed" if failed else None,
        tests=TestResult(exit_code=1 if failed else 0, passed=42 - failed, failed=failed),
        metric=MetricResult(name="r2", direction="higher", per_seed={0: mean - 0.01, 1: mean + 0.01}),
        lockbox=MetricResult(name="r2", direction="higher", per_seed={0: lockbox - 0.005, 1: lockbox + 0.005})
        if lockbox is not None
        else None,
        seeds=[0, 1],
    )


def write_run(
    run_dir: Path,
    outcomes: list[tuple[float, str]],
    proposer: str = "offline",
    dollars: float = 0.0,
    lockbox: list[float] | None = None,
) -> RunConfig:
    """A run whose generation i has metric outcomes[i][0] and decision outcomes[i][1].

    With `lockbox`, the baseline's lockbox score is lockbox[0] and generation i's is lockbox[i].
    """
    config = RunConfig(target=TARGET, run_dir=run_dir, generations=len(outcomes), proposer=proposer)  # type: ignore[arg-type]
    config.save()
    with TrajectoryWriter.open(run_dir / "trajectory.jsonl", run_id=config.run_id) as writer:
        writer.append(
            "run_started", {"config": config.model_dump(mode="json"), "policy": {"name": "default"}}
        )
        parent, best = "c0" * 20, 0.15
        writer.append(
            "baseline",
            {
                "commit": parent,
                "evaluation": evaluation("", best, lockbox=lockbox[0] if lockbox else None).model_dump(
                    mode="json"
                ),
            },
            0,
        )
        for generation, (mean, decided) in enumerate(outcomes, start=1):
            writer.append(
                "proposal_started",
                {"parent": parent, "parent_tree": "t" * 40, "proposer": proposer},
                generation,
            )
            proposal = Proposal(
                diff=f"--- a/config.py\n+++ b/config.py\n@@ -1 +1 @@\n-x = {generation}\n+x = {generation + 1}\n",
                rationale=f"change {generation}",
                proposer=proposer,
                usage=Usage(dollars=dollars, model_calls=1 if dollars else 0),
            )
            writer.append("proposal", proposal.model_dump(mode="json"), generation)
            measured = evaluation(parent, mean, lockbox=lockbox[generation] if lockbox else None)
            writer.append("evaluation", measured.model_dump(mode="json"), generation)
            findings = (
                [] if mean > best else [Finding(rule_id="metric-improves", verdict="deny", message="no gain")]
            )
            verdict = Verdict(
                verdict="allow" if not findings else "deny",
                findings=findings,
                policy_name="default",
                policy_hash="h",
            )
            writer.append("verdict", verdict.model_dump(mode="json"), generation)
            writer.append(
                "decision", Decision(decision=decided, by="policy").model_dump(mode="json"), generation
            )  # type: ignore[arg-type]
            if decided == "accept":
                parent, best = f"c{generation}" * 20, mean
                writer.append("commit", {"commit": parent, "tag": f"gen-{generation}"}, generation)
        writer.append("run_finished", {"status": "completed", "accepted": 1})
    return config
