"""cgroup hierarchy detection and counter parsing, on real file layouts.

This host runs cgroup v1 with an empty hybrid v2 hierarchy; mounting cgroup2 in a private mount
namespace gives the same empty hierarchy (the memory, pids and cpu controllers stay bound to v1),
so the v2 readers are exercised on files laid out as the kernel lays them out, written to a tmp
directory, and the delegation check on the real hybrid hierarchy.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contracts import Evaluation, PhaseLog, PhaseUsage
from sandbox.base import ExecResult, SandboxConfig, UsageSample
from sandbox.bwrap_backend import CgroupV2Limits
from sandbox.cgroups import (
    OffCpuSampler,
    PeakCounter,
    hierarchy,
    own_v2_cgroup,
    read_v1,
    read_v2,
    v2_delegation_problem,
)
from sandbox.evaluate import _Phase
from sandbox.phase_budget import RULE_ID, PhaseBudgetConfig, phase_budget_findings

V2_MOUNTINFO = (
    "24 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
    "25 1 0:23 / /proc rw,nosuid - proc proc rw\n"
)
V1_MOUNTINFO = (
    "30 25 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
    "31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n"
    "33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
)


def test_hierarchy_is_read_from_the_mount_table(tmp_path: Path) -> None:
    for text, expected in ((V2_MOUNTINFO, "v2"), (V1_MOUNTINFO, "v1"), ("", "none")):
        (tmp_path / "mountinfo").write_text(text)
        assert hierarchy(tmp_path / "mountinfo") == expected
    assert hierarchy(tmp_path / "missing") == "none"
    assert hierarchy() in ("v1", "v2", "none")  # this host's own table parses


def test_v2_counters_from_the_kernels_file_layout(tmp_path: Path) -> None:
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    (tmp_path / "memory.peak").write_text(f"{96 * 2**20}\n")
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n")
    (tmp_path / "pids.events").write_text("max 3\n")
    counters = read_v2(tmp_path)
    assert (counters.cpu_s, counters.peak_memory_mb, counters.oom_kills, counters.pids_limit_hits) == (
        2.5,
        96.0,
        1,
        3,
    )
    # A missing file is unmeasured, never 0.
    (tmp_path / "memory.events").unlink()
    assert read_v2(tmp_path).oom_kills is None


def test_v1_counters_from_the_kernels_file_layout(tmp_path: Path) -> None:
    for controller in ("cpuacct", "memory", "pids"):
        (tmp_path / controller).mkdir()
    (tmp_path / "cpuacct" / "cpuacct.usage").write_text("1500000000\n")
    (tmp_path / "memory" / "memory.max_usage_in_bytes").write_text(f"{64 * 2**20}\n")
    (tmp_path / "memory" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    (tmp_path / "pids" / "pids.events").write_text("max 0\n")
    counters = read_v1({c: tmp_path / c for c in ("cpuacct", "memory", "pids")})
    assert (counters.cpu_s, counters.peak_memory_mb, counters.oom_kills, counters.pids_limit_hits) == (
        1.5,
        64.0,
        2,
        0,
    )


def test_a_peak_counter_reads_through_its_own_open_file(tmp_path: Path) -> None:
    (tmp_path / "memory.peak").write_text(f"{10 * 2**20}\n")
    peak = PeakCounter(tmp_path)
    assert peak.read() == 10 * 2**20
    peak.close()
    assert PeakCounter(tmp_path / "absent").read() is None


def test_delegation_needs_the_three_controllers(tmp_path: Path) -> None:
    (tmp_path / "cgroup.subtree_control").write_text("cpuset cpu io memory pids\n")
    assert v2_delegation_problem(tmp_path) is None
    (tmp_path / "cgroup.subtree_control").write_text("cpu io\n")
    problem = v2_delegation_problem(tmp_path)
    assert problem and "memory, pids" in problem and "Delegate=yes" in problem
    assert "cannot read" in (v2_delegation_problem(tmp_path / "absent") or "")


def test_this_hosts_hybrid_v2_hierarchy_is_not_taken_for_delegated_cgroups() -> None:
    unified = Path("/sys/fs/cgroup/unified")
    if not (unified / "cgroup.subtree_control").exists():
        pytest.skip("no hybrid v2 hierarchy on this host")
    problem = v2_delegation_problem(unified)
    assert problem and "memory" in problem  # its controllers are bound to v1 here
    parent, why = CgroupV2Limits.parent(SandboxConfig(cgroup_parent=unified))
    if hierarchy() == "v1":
        assert parent is None and "not mounted at /sys/fs/cgroup" in why
    assert own_v2_cgroup() is not None


def _phase(
    exit_code: int, output: str, before: UsageSample, after: UsageSample, timed_out: bool = False
) -> _Phase:
    result = ExecResult(exit_code=exit_code, output=output, duration_s=1.0, timed_out=timed_out)
    return _Phase("train-seed-0", "python train.py", result, before, after)


def test_out_of_memory_is_classified_with_and_without_counters() -> None:
    unmeasured = UsageSample(accounting="rlimit-only")
    assert _phase(137, "", unmeasured, unmeasured).failure("train_crashed") == "out_of_memory"
    assert _phase(1, "MemoryError", unmeasured, unmeasured).failure("train_crashed") == "out_of_memory"
    assert _phase(137, "", unmeasured, unmeasured, timed_out=True).failure("train_crashed") == "timeout"
    assert _phase(1, "boom", unmeasured, unmeasured).failure("train_crashed") == "train_crashed"
    before = UsageSample(accounting="cgroup-v2", oom_kills=0, pids_limit_hits=0)
    after = UsageSample(accounting="cgroup-v2", oom_kills=1, pids_limit_hits=0)
    assert _phase(137, "", before, after).failure("train_crashed") == "out_of_memory"
    # With counters, a SIGKILL that was no OOM kill is not called one.
    assert _phase(137, "", before, before).failure("train_crashed") == "train_crashed"
    phase = _phase(0, "", unmeasured, unmeasured)
    assert phase.usage.cpu_s is None and phase.usage.oom_kills is None  # unmeasured, not 0


def _evaluation(**usages: PhaseUsage) -> Evaluation:
    phases = [
        PhaseLog(phase=name, command="", exit_code=0, duration_s=1.0, output_tail="", usage=usage)
        for name, usage in usages.items()
    ]
    return Evaluation(parent_commit="p", diff_sha256="d", backend="bwrap", ok=True, phases=phases)


def test_phase_budget_compares_each_phase_with_the_parents_same_phase() -> None:
    parent = _evaluation(
        tests=PhaseUsage(accounting="cgroup-v1", cpu_s=2.0, log_bytes=100, peak_memory_mb=50.0),
        predict=PhaseUsage(accounting="cgroup-v1", cpu_s=0.15, log_bytes=60),
    )
    candidate = _evaluation(
        tests=PhaseUsage(accounting="cgroup-v1", cpu_s=6.0, log_bytes=150, peak_memory_mb=60.0),
        predict=PhaseUsage(accounting="cgroup-v1", cpu_s=0.4, log_bytes=60),
    )
    found = phase_budget_findings(candidate, parent, PhaseBudgetConfig())
    assert [(f.rule_id, f.evidence["phase"], f.evidence["quantity"]) for f in found] == [
        (RULE_ID, "tests", "cpu_s")
    ]  # the predict's 2.7x is under the absolute floor
    assert found[0].evidence["ratio"] == pytest.approx(3.0) and found[0].evidence["candidate"] == 6.0
    assert phase_budget_findings(candidate, None, PhaseBudgetConfig()) == []
    assert phase_budget_findings(candidate, parent, PhaseBudgetConfig(enabled=False)) == []


def test_controls_are_compared_by_role_whatever_seed_they_drew() -> None:
    """The controls' seeds are secret per evaluation: a leak in a control whose seed the parent's
    controls did not draw (or a control the parent never ran) is still held to the parent's phase."""
    usage = PhaseUsage(accounting="cgroup-v1", cpu_s=0.2, log_bytes=300, peak_memory_mb=19.0)
    parent = _evaluation(**{"train-seed-0": usage, "train-seed-1": usage, "train-seed-1-relabelled": usage})
    leak = PhaseUsage(accounting="cgroup-v1", cpu_s=0.2, log_bytes=2**20, peak_memory_mb=405.0)
    for control in ("train-seed-2-relabelled", "train-seed-0-relabelled-2", "train-seed-2-disguised"):
        candidate = _evaluation(**{"train-seed-0": usage, "train-seed-1": usage, control: leak})
        found = phase_budget_findings(candidate, parent, PhaseBudgetConfig())
        assert {(f.evidence["phase"], f.evidence["quantity"]) for f in found} == {
            (control, "log_bytes"),
            (control, "peak_memory_mb"),
        }, control
    # A control measures less than the plain phase it falls back to: that is not an escape.
    lean = PhaseUsage(accounting="cgroup-v1", cpu_s=0.2, log_bytes=300, peak_memory_mb=19.0)
    plain = _evaluation(**{"train-seed-0": usage.model_copy(update={"artifact_bytes": 4580})})
    assert (
        phase_budget_findings(_evaluation(**{"train-seed-1-repeat": lean}), plain, PhaseBudgetConfig()) == []
    )
    # The same role of another seed is no leak.
    same = _evaluation(**{"train-seed-2": usage, "train-seed-0-relabelled": usage})
    assert phase_budget_findings(same, parent, PhaseBudgetConfig()) == []


def test_unmeasured_is_never_compared_as_zero() -> None:
    measured = _evaluation(train=PhaseUsage(accounting="cgroup-v1", cpu_s=0.3, peak_memory_mb=20.0))
    blind = _evaluation(train=PhaseUsage(accounting="rlimit-only"))
    # Neither side measured: nothing to say (a host without accounting is not flooded).
    assert phase_budget_findings(blind, blind.model_copy(), PhaseBudgetConfig()) == []
    # The parent measured, the candidate escaped the measurement: that is a finding.
    found = phase_budget_findings(blind, measured, PhaseBudgetConfig(), verdict="deny")
    assert {f.evidence["quantity"] for f in found} == {"cpu_s", "peak_memory_mb"}
    assert all(f.evidence["unmeasured"] and f.verdict == "deny" and "unmeasured" in f.message for f in found)
    # Only the candidate measured: no reference, no finding.
    assert phase_budget_findings(measured, blind, PhaseBudgetConfig()) == []


def test_a_phase_shorter_than_one_thread_sample_has_not_escaped_it() -> None:
    """The thread sampler reads every 0.04 s: a phase that ended first has no thread count though
    it was measured (its off-CPU reading says the sampler ran), while a phase whose sampler could
    not run at all (no pids on this host) did escape the count the parent has."""
    parent = _evaluation(
        restore=PhaseUsage(accounting="cgroup-v1", cpu_s=0.01, off_cpu_s=0.0, peak_threads=4)
    )
    short = _evaluation(restore=PhaseUsage(accounting="cgroup-v1", cpu_s=0.01, off_cpu_s=0.0))
    assert phase_budget_findings(short, parent, PhaseBudgetConfig()) == []
    blind = _evaluation(restore=PhaseUsage(accounting="cgroup-v1", cpu_s=0.01))
    found = phase_budget_findings(blind, parent, PhaseBudgetConfig())
    assert {f.evidence["quantity"] for f in found} == {"off_cpu_s", "peak_threads"}


def test_wall_time_is_judged_only_where_waiting_is_not_measured() -> None:
    """An honest training on a loaded machine: 30x its parent's wall time, no more CPU and no wait
    of its own. Where off-CPU time is measured, load is not held against it; a wait is."""
    parent = _evaluation(train=PhaseUsage(accounting="cgroup-v1", cpu_s=0.5, wall_s=1.2, off_cpu_s=0.0))
    loaded = _evaluation(train=PhaseUsage(accounting="cgroup-v1", cpu_s=0.6, wall_s=37.0, off_cpu_s=0.04))
    assert phase_budget_findings(loaded, parent, PhaseBudgetConfig()) == []
    both = phase_budget_findings(loaded, parent, PhaseBudgetConfig(wall_beside_off_cpu=True))
    assert [f.evidence["quantity"] for f in both] == ["wall_s"]
    waits = _evaluation(train=PhaseUsage(accounting="cgroup-v1", cpu_s=0.5, wall_s=2.5, off_cpu_s=1.2))
    assert [f.evidence["quantity"] for f in phase_budget_findings(waits, parent, PhaseBudgetConfig())] == [
        "off_cpu_s"
    ]
    blind = [
        _evaluation(train=usage.model_copy(update={"off_cpu_s": None}))
        for usage in (loaded.phases[0].usage, parent.phases[0].usage)
        if usage is not None
    ]
    assert [
        f.evidence["quantity"] for f in phase_budget_findings(blind[0], blind[1], PhaseBudgetConfig())
    ] == ["wall_s"]


def test_old_evaluations_without_phase_usage_still_load() -> None:
    old = '{"parent_commit":"p","diff_sha256":"d","backend":"docker","ok":true,"phases":[{"phase":"tests","command":"x","exit_code":0,"duration_s":1.0,"output_tail":"","cpu_s":1.0}]}'
    evaluation = Evaluation.model_validate_json(old)
    assert evaluation.phases[0].usage is None and evaluation.accounting is None
    assert phase_budget_findings(evaluation, evaluation.model_copy(), PhaseBudgetConfig()) == []


def test_v2_cpu_counter_of_a_real_kernel_cgroup() -> None:
    """On this hybrid host the v2 hierarchy has no memory or pids controller, but every v2 cgroup
    has the core cpu.stat: a real process's CPU time is read from it, the rest is unmeasured."""
    import os
    import subprocess
    import sys

    unified = Path("/sys/fs/cgroup/unified")
    if not os.access(unified, os.W_OK):
        pytest.skip("no writable cgroup v2 hierarchy here")
    child = unified / f"rsi-test-{os.getpid()}"
    child.mkdir()
    try:
        burn = "import time\nend = time.process_time() + 0.4\nwhile time.process_time() < end: pass"
        procs = str(child / "cgroup.procs")
        subprocess.run(
            [sys.executable, "-c", burn],
            check=True,
            preexec_fn=lambda: Path(procs).write_text(str(os.getpid())),
        )
        counters = read_v2(child)
        assert counters.cpu_s is not None and counters.cpu_s >= 0.35
        assert counters.peak_memory_mb is None and counters.oom_kills is None  # no memory controller
    finally:
        child.rmdir()


def sampled(command: list[str]) -> tuple[float | None, float]:
    """Run a real process under the off-CPU sampler: (its estimate, the wall seconds it took)."""
    import subprocess
    import time

    def family(pid: int) -> list[int]:
        """The process and its descendants, as a cgroup would list them."""
        found = [pid]
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                found += [p for child in (task / "children").read_text().split() for p in family(int(child))]
            except OSError:
                continue
        return found

    process = subprocess.Popen(command)
    started = time.monotonic()
    with OffCpuSampler(lambda: family(process.pid) if process.poll() is None else []) as sampler:
        process.wait()
    wall = time.monotonic() - started
    return sampler.off_cpu_s(wall), wall


def test_waiting_by_choice_is_off_cpu_and_waiting_for_a_cpu_is_not() -> None:
    """A process that blocks (sleep, select on a silent pipe) is off-CPU for about as long as it
    blocks; processes that compute — more of them than the machine has cores, so most of their wall
    time is spent waiting for a CPU — are not, however long that wait."""
    import os
    import sys

    off_cpu, _ = sampled(["sleep", "1.2"])
    assert off_cpu is not None and 0.9 <= off_cpu <= 1.6, off_cpu
    select = "import os, select\nr, w = os.pipe()\nselect.select([r], [], [], 1.2)"
    off_cpu, _ = sampled([sys.executable, "-c", select])
    assert off_cpu is not None and off_cpu >= 0.8, off_cpu
    busy = "import time\nend = time.monotonic() + 1.5\nwhile time.monotonic() < end: pass"
    crowd = [
        "sh",
        "-c",
        " & ".join([f"{sys.executable} -c '{busy}'"] * (2 * (os.cpu_count() or 1))) + "; wait",
    ]
    off_cpu, wall = sampled(crowd)
    assert off_cpu is not None and off_cpu <= 0.3, (off_cpu, wall)


def test_a_sandbox_this_host_cannot_see_is_unmeasured() -> None:
    with OffCpuSampler(lambda: None) as sampler:
        pass
    assert sampler.off_cpu_s(3.0) is None
