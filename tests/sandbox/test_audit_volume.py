"""The runtime audit's volume: a record that no pipe holds must neither hang the candidate nor go
unbudgeted.

Before, the sandbox's init emptied the audit's 1 MiB pipe only after a command ended: a tree that
built 1,400 named tuples (each an accepted record) filled it and blocked until its phase's timeout,
and a tree that built 1,100 wrote 33x its parent's record per phase with no finding (red team). Now
the init empties the pipe while the command runs and keeps 32 MiB of it (sandbox/init.py); what
passes that is a `deny`, and each phase's audit bytes are budgeted against the parent's
(sandbox/phase_budget.py). The volume is made several ways (named tuples, data classes, forged
events of accepted shape, many processes at once), in real sandboxes of each backend.
"""

from __future__ import annotations

import textwrap

import pytest

from core.contracts import Evaluation, MetricResult, PhaseAudit, PhaseLog, PhaseUsage
from sandbox.base import ExecResult
from sandbox.init import AUDIT_RECORD_CAP_BYTES
from sandbox.phase_budget import PhaseBudgetConfig, phase_budget_findings
from sandbox.runtime_audit import RULE_ID, audit_bytes, read_audit, runtime_findings
from tests.conftest import BOTH_BACKENDS, sandbox_backend


def _python(code: str) -> str:
    """`code` run by the sandbox's Python, from a file (no shell quoting of its own)."""
    return textwrap.dedent(code).strip() + "\n"


NAMED_TUPLES = _python(
    """
    import collections
    kept = [collections.namedtuple(f"Row{i}", ["index", "value", "weight"]) for i in range(10000)]
    print(len(kept))
    """
)
DATA_CLASSES = _python(
    """
    import dataclasses
    kept = [
        dataclasses.make_dataclass(f"Item{i}", [("a", int), ("b", float, 0.0)], frozen=True, order=True)
        for i in range(800)
    ]
    print(len(kept))
    """
)
FORGED = _python(
    """
    import sys
    # Events of the name and arguments an unpickler's data constructor raises: accepted records.
    for _ in range(40000):
        sys.audit("pickle.find_class", "numpy", "ndarray")
    print("forged")
    """
)
FLOOD = _python(
    """
    import sys
    def deep(n):
        if n:
            return deep(n - 1)
        for _ in range(int(sys.argv[1])):
            sys.audit("pickle.find_class", "numpy", "ndarray")
    deep(10)
    """
)
HONEST = _python(
    """
    import collections, dataclasses
    import numpy
    Point = collections.namedtuple("Point", "x y")
    @dataclasses.dataclass
    class Config:
        width: int = 32
        rate: float = 0.1
    print(Point(1, 2), Config(), numpy.zeros(2))
    """
)
PRODUCERS = {
    "named-tuples": "python3 /tmp/named_tuples.py",
    "data-classes": "python3 /tmp/data_classes.py",
    "forged-events": "python3 /tmp/forged.py",
    # Six processes at once, each writing some 0.6 MB.
    "processes": "for i in 1 2 3 4 5 6; do python3 /tmp/flood.py 2500 & done; wait",
}
"""Commands that each write more than the pipe's 1 MiB of accepted records, and more than ten times
what the honest command writes (213 KB with the image's NumPy 1.24)."""
FILES = {
    "/tmp/named_tuples.py": NAMED_TUPLES,
    "/tmp/data_classes.py": DATA_CLASSES,
    "/tmp/forged.py": FORGED,
    "/tmp/flood.py": FLOOD,
    "/tmp/honest.py": HONEST,
}
TIMEOUT_S = 120
"""Far above what any producer needs: one that blocked on the pipe would run into it."""


def _phase(name: str, result: ExecResult) -> PhaseLog:
    return PhaseLog(
        phase=name,
        command="x",
        exit_code=result.exit_code,
        duration_s=result.duration_s,
        output_tail="",
        usage=PhaseUsage(audit_bytes=audit_bytes(result.audit)),
        audit=read_audit(result.audit),
    )


def evaluation_of(*phases: PhaseLog) -> Evaluation:
    """An evaluation of these phases alone (tests/sandbox/test_runtime_audit.py uses it too)."""
    return Evaluation(
        parent_commit="p",
        diff_sha256="d",
        backend="bwrap",
        ok=True,
        seeds=[0],
        metric=MetricResult(name="r2", direction="higher", per_seed={0: 0.5}),
        phases=list(phases),
    )


@pytest.fixture(scope="module", params=BOTH_BACKENDS)
def volumes(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, ExecResult]:
    """Each producer, the honest command and the flood past the cap, run once in one sandbox of the
    backend, reset between them."""
    backend_name = request.param
    workspace = tmp_path_factory.mktemp(f"volume-{backend_name}")
    commands = {
        "honest": "python3 /tmp/honest.py",
        **PRODUCERS,
        # Past the cap, by eight processes at once, then an act the audit judges, written after it.
        "overflow": "for i in 1 2 3 4 5 6 7 8; do python3 /tmp/flood.py 24000 & done; wait; "
        "python3 -c 'exec(\"print(40 + 2)\")'",
        "after": "python3 /tmp/honest.py",
    }
    results: dict[str, ExecResult] = {}
    with sandbox_backend(backend_name, request, f"test-audit-volume-{backend_name}").open(
        workspace, None, "volume"
    ) as s:
        for index, (name, command) in enumerate(commands.items()):
            if index:
                s.reset()
            for path, code in FILES.items():
                s.write_file(path, code.encode())
            results[name] = s.exec(command, TIMEOUT_S)
    return results


@pytest.mark.parametrize("producer", list(PRODUCERS))
def test_more_than_the_pipe_holds_does_not_block(volumes: dict[str, ExecResult], producer: str) -> None:
    """Each producer writes more than the pipe's 1 MiB of records that are no finding: it ends on its
    own (not by the timeout), every byte reaches the host, and nothing is reported or dropped."""
    result = volumes[producer]
    audit = read_audit(result.audit)
    assert result.exit_code == 0 and not result.timed_out, result.output[-500:]
    assert audit.bytes_written > 1 << 20, audit.bytes_written
    assert audit.dropped_bytes == 0 and audit.events == [], audit.model_dump(exclude={"digests"})
    assert audit.processes == (6 if producer == "processes" else 1)
    assert runtime_findings(evaluation_of(_phase("train-seed-0", result))) == []


def test_a_record_past_the_cap_is_denied(volumes: dict[str, ExecResult]) -> None:
    """Eight processes write more than the init keeps: they do not block, the init's record ends with
    what it dropped, and the phase is denied, though the act written after the cap was not seen."""
    result = volumes["overflow"]
    audit = read_audit(result.audit)
    assert result.exit_code == 0 and not result.timed_out and "42" in result.output, result.output[-500:]
    assert result.audit is not None and len(result.audit) <= AUDIT_RECORD_CAP_BYTES + 200
    assert audit.dropped_bytes > 0 and audit.dropped_lines > 0
    assert audit.bytes_written == audit_bytes(result.audit) > AUDIT_RECORD_CAP_BYTES
    assert all(event.event != "compile" for event in audit.events)  # the exec was past the cap
    findings = runtime_findings(evaluation_of(_phase("predict-seed-0", result)))
    overflow = [f for f in findings if f.evidence.get("kinds") == ["overflow"]]
    assert len(overflow) == 1 and overflow[0].rule_id == RULE_ID and overflow[0].verdict == "deny"
    assert overflow[0].evidence["dropped_bytes"] == audit.dropped_bytes
    # The next command's record starts again empty: nothing dropped, nothing of the flood.
    after = read_audit(volumes["after"].audit)
    assert after.dropped_bytes == 0 and after.processes == 1 and after.bytes_written < 1 << 20


def test_a_phase_s_audit_bytes_are_budgeted_against_the_parent_s(volumes: dict[str, ExecResult]) -> None:
    """Each producer's phase, held to an honest parent's same phase, is an `audit_bytes` finding
    that says what was measured; the honest command held to itself is none."""
    parent = evaluation_of(_phase("train-seed-0", volumes["honest"]))
    honest = evaluation_of(_phase("train-seed-0", volumes["after"]))
    assert phase_budget_findings(honest, parent, PhaseBudgetConfig()) == []
    for producer in PRODUCERS:
        candidate = evaluation_of(_phase("train-seed-0", volumes[producer]))
        found = [
            f
            for f in phase_budget_findings(candidate, parent, PhaseBudgetConfig())
            if f.evidence["quantity"] == "audit_bytes"
        ]
        assert len(found) == 1, (producer, [f.message for f in found])
        assert found[0].evidence["candidate"] > 10 * found[0].evidence["parent"]
        assert "audit_bytes" in found[0].message


def test_the_init_s_overflow_line_counts_only_as_the_record_s_last() -> None:
    """The init's line adds what it dropped to the bytes written; the same line written by the
    candidate anywhere else is a line no hook writes (tampered), and drops nothing."""
    start = '{"event":"audit.start","roots":["/usr/"],"pid":1}\n'
    line = '{"event":"audit.overflow","kept":52,"dropped_bytes":1000,"dropped_lines":4,"cap":33554432}\n'
    overflowed = read_audit(start + line)
    assert (overflowed.dropped_bytes, overflowed.dropped_lines, overflowed.events) == (1000, 4, [])
    assert overflowed.bytes_written == audit_bytes(start + line) == len(start) + 1000
    forged = read_audit(line + start)
    assert forged.dropped_bytes == 0 and [e.kind for e in forged.events] == ["tampered"]
    assert audit_bytes(None) is None and read_audit(None) == PhaseAudit(answered=False)
