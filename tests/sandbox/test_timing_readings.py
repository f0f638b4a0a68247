"""A timing finding is confirmed by measuring again: CPU that load adds to one reading is not the
candidate's, while work the candidate does is in every reading.

The load here is real and lands where the checks look: while the candidate's tests phase runs, six
busy processes are started inside its own container (`docker exec`, so the container's cgroup counts
them, as a noisy machine's contention shows up in a phase's CPU time)."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from core.contracts import Evaluation
from sandbox.evaluate import TrustedEvaluator
from sandbox.phase_budget import PhaseBudgetConfig
from tests.honest_cases import HONEST, make_evaluator

pytestmark = pytest.mark.docker

CASE = next(c for c in HONEST if c.id == "schedule")
BURN = "timeout 40 python3 -c 'while True: pass'"


def burn_during_first_tests(evaluator: TrustedEvaluator, label: str) -> list[str]:
    """From the start of `label`'s first tests phase, six busy processes in its container: they
    burn until the sandbox is reset for the next phase, which kills every process in it."""
    done: list[str] = []

    def inject() -> None:
        time.sleep(0.1)
        sessions = [s for s in list(evaluator._open_sessions) if hasattr(s, "container_id")]
        for session in sessions:
            subprocess.run(
                ["docker", "exec", session.container_id, "sh", "-c", " & ".join([BURN] * 6) + "; wait"],
                check=False,
                capture_output=True,
                timeout=60,
            )
            done.append(session.container_id)

    def progress(phase: str, details: dict[str, Any]) -> None:
        if phase == "tests" and details.get("label") == label and not done and not started:
            started.append(threading.Thread(target=inject, daemon=True))
            started[0].start()

    started: list[threading.Thread] = []
    evaluator.progress = progress
    return done


def phase_cpu(evaluation: Evaluation, name: str) -> float:
    return next(p.cpu_s for p in evaluation.phases if p.phase == name and p.cpu_s is not None)


@pytest.mark.usefixtures("docker_client")
@pytest.mark.parametrize("readings", [1, 2])
def test_cpu_load_in_one_reading_is_measured_away(readings: int, tmp_path: Path) -> None:
    evaluator = make_evaluator("docker", tmp_path, seeds=[0])
    evaluator.phase_budget = PhaseBudgetConfig(timing_readings=readings)
    head = evaluator.lineage.head()
    parent = evaluator.evaluate(head, "", label="baseline")
    assert parent.ok, parent.failure_detail
    injected = burn_during_first_tests(evaluator, "candidate")
    candidate = evaluator.evaluate(head, CASE.diff, label="candidate")
    assert candidate.ok and injected, (candidate.failure_detail, injected)
    inflated = phase_cpu(candidate, "tests")
    assert inflated > 2 * phase_cpu(parent, "tests") + 2, "the injected load missed the tests phase"
    budget = [f for f in candidate.integrity if f.rule_id == "integrity.phase-budget"]
    if readings == 1:
        # Judged on its first reading alone, the load looks like work moved into the tests.
        assert {f.evidence["phase"] for f in budget} == {"tests"}, candidate.integrity
        return
    assert candidate.integrity == [], [f.message for f in candidate.integrity]
    again = phase_cpu(candidate, "tests~2")
    assert again < inflated / 2, (again, inflated)
