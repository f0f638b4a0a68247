"""Timing checks read each phase's least reading: load only adds CPU and wall time."""

from __future__ import annotations

from core.contracts import PhaseLog, PhaseUsage, phase_reading, timed_phases


def phase(name: str, cpu: float | None, wall: float = 1.0, log_bytes: int = 10) -> PhaseLog:
    usage = PhaseUsage(accounting="cgroup-v1", cpu_s=cpu, wall_s=wall, log_bytes=log_bytes)
    return PhaseLog(
        phase=name, command="c", exit_code=0, duration_s=wall, output_tail="", cpu_s=cpu, usage=usage
    )


def test_reading_numbers_come_only_from_a_trailing_mark() -> None:
    assert phase_reading("train-seed-0~2") == ("train-seed-0", 2)
    assert phase_reading("train-seed-0") == ("train-seed-0", 1)
    assert phase_reading("odd~name") == ("odd~name", 1)
    assert phase_reading("a~b~3") == ("a~b", 3)


def test_each_phase_keeps_its_first_reading_with_the_least_timings() -> None:
    phases = [
        phase("tests", 6.0, wall=7.0, log_bytes=99),
        phase("train-seed-0", 0.5),
        phase("tests~2", 2.9, wall=3.1, log_bytes=1),
        phase("train-seed-0~2", 0.7, wall=0.4),
        phase("tests~3", 3.5, wall=2.5),
    ]
    timed = {p.phase: p for p in timed_phases(phases)}
    assert list(timed) == ["tests", "train-seed-0"]
    tests = timed["tests"]
    assert tests.cpu_s == 2.9 and tests.usage is not None and tests.usage.cpu_s == 2.9
    assert tests.usage.wall_s == 2.5
    assert tests.usage.log_bytes == 99  # what is not a timing is the first reading's
    assert timed["train-seed-0"].cpu_s == 0.5
    assert phases[0].cpu_s == 6.0  # the recorded readings themselves are untouched


def test_an_unmeasured_first_reading_stays_unmeasured() -> None:
    timed = timed_phases([phase("tests", None), phase("tests~2", 1.0)])
    assert timed[0].cpu_s is None and timed[0].usage is not None and timed[0].usage.cpu_s is None
