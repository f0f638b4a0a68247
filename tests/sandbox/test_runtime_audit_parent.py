"""A candidate's runtime audit is read against its parent's (sandbox/runtime_audit.py): an event the
parent's code raised too, word for word, is what the tree already did, and is counted, not reported.

Libraries a target imports compile text of their own (SciPy's array-API shims and f2py's helpers at
import, attrs' and pydantic's generated methods: hundreds of events), so a target that uses them
would otherwise have every candidate denied. Here the target's own model module compiles a fixed
text as such a library does; an honest candidate that changes a setting must stay clean, and one
that compiles any other text, or the same text under another name, must still be denied."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.contracts import Evaluation, PhaseLog
from sandbox.runtime_audit import (
    RULE_ID,
    event_digest,
    parent_digests,
    read_audit,
    recorded,
    runtime_findings,
    text_digest,
)
from tests.conftest import IN_CI, TARGET, make_diff
from tests.honest_cases import config_diff, make_evaluator

LIBRARY_LIKE = '\n_IDENTITY = eval(compile("lambda v: v", "<generated>", "eval"))\n'
"""What a library does at import: a fixed text compiled and run (f2py's `l_not`, SciPy's `clone_module`)."""


def runtime_of(evaluation: Evaluation) -> tuple[list[str], int]:
    """The runtime findings' messages, and how many events were excused as the parent's."""
    check = next(c for c in evaluation.checks if c.check == "runtime")
    return [f.message for f in evaluation.integrity if f.rule_id == RULE_ID], int(
        check.measured.get("excused", 0)
    )


@pytest.mark.bwrap
def test_a_candidate_is_judged_against_what_its_parent_already_did(tmp_path: Path) -> None:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    target = tmp_path / "target"
    shutil.copytree(TARGET, target, ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache"))
    model = target / "model.py"
    model.write_text(model.read_text(encoding="utf-8") + LIBRARY_LIKE, encoding="utf-8")
    evaluator = make_evaluator("bwrap", tmp_path / "work", [0], heldout_size=200, target=target)
    head = evaluator.lineage.head()
    parent = evaluator.evaluate(head, "", label="parent")
    assert parent.ok, parent.failure_detail
    findings, _ = runtime_of(parent)
    assert findings, "the parent has no parent: its own compiled text is a finding"
    assert parent_digests(parent), "the parent's events are remembered for its children"

    honest = evaluator.evaluate(head, config_diff(input_range=1.0), label="honest")
    assert honest.ok, honest.failure_detail
    findings, excused = runtime_of(honest)
    assert findings == [] and excused > 0, (findings, excused)

    other_text = make_diff(
        target, "model.py", LIBRARY_LIKE, LIBRARY_LIKE.replace("lambda v: v", "lambda v: v + 0")
    )
    renamed = make_diff(target, "model.py", LIBRARY_LIKE, LIBRARY_LIKE.replace("<generated>", "<shim>"))
    for label, diff in (("other-text", other_text), ("renamed", renamed)):
        hostile = evaluator.evaluate(head, diff, label=label)
        findings, _ = runtime_of(hostile)
        assert findings and "code ran that came from no file" in findings[0], (label, findings)


def test_excused_events_are_counted_and_tampering_never_is() -> None:
    start = '{"event":"audit.start","roots":["/usr/"],"pid":1}\n'
    text = '{"event":"compile","why":"compiled from text that is no file","filename":"<g>","source":"1","pid":%d,"stack":[]}\n'
    forged = '{"event":"audit.forged","why":"x","pid":1}\n'
    first = read_audit(start + text % 1 + forged)
    assert [e.kind for e in first.events] == ["dynamic-code", "tampered"] and len(first.digests) == 2
    # The same events in another process, with the parent's digests: the text is excused (its pid
    # and stack are where it was raised, not what it was), the tampering is not.
    again = read_audit(start + text % 7 + forged, frozenset(first.digests))
    assert again.excused == 1 and [e.kind for e in again.events] == ["tampered"] and again.total == 1
    record = {"event": "compile", "source": "1", "filename": "<g>"}
    assert event_digest({**record, "pid": 3, "stack": [["a", 1, "f"]]}) == event_digest(record)
    assert event_digest({**record, "source": "1 " + "x" * 300}) != event_digest(
        {**record, "source": "1 " + "y" * 300}
    )
    # A name's string hash written into generated text (attrs' __hash__) differs in every process.
    hashed = "def __hash__(self):\n    return hash((%d, self.a))"
    assert event_digest({**record, "source": hashed % 8440578193626539783}) == event_digest(
        {**record, "source": hashed % -161950780457068877}
    )
    assert event_digest({**record, "source": hashed % 7}) != event_digest({**record, "source": hashed % 8})


def verdicts_of(phase: str, text: str, rewritten: frozenset[tuple[str, str]] = frozenset()) -> list[str]:
    """The runtime findings' verdicts for one phase whose hooks wrote `text`."""
    log = PhaseLog(
        phase=phase, command="x", exit_code=0, duration_s=1.0, output_tail="", audit=read_audit(text)
    )
    evaluation = Evaluation(
        parent_commit="p", diff_sha256="d", backend="bwrap", ok=True, seeds=[0], phases=[log]
    )
    return [f.verdict for f in runtime_findings(evaluation, rewritten)]


def test_text_a_library_compiled_goes_to_a_human_and_the_trees_own_is_denied() -> None:
    """The frame that compiled a text decides the verdict: a library's (under the environment's
    roots) may be compiling text of its own, and goes to review with the text; the tree's is a deny,
    and so is a phase with both."""
    start = '{"event":"audit.start","roots":["/env/"],"pid":1}\n'
    compiled = (
        '{"event":"compile","why":"compiled from text that is no file","filename":"<g>","source":"%s",'
        '"pid":1,"stack":[["%s",3,"f"]]}\n'
    )
    by_library = compiled % ("lambda v: v", "/env/lib/python3.11/site-packages/shim.py")
    by_tree = compiled % ("lambda v: -v", "/workspace/model.py")

    def verdicts(text: str) -> list[str]:
        return verdicts_of("train-seed-0", text)

    assert verdicts(start + by_library) == ["review"]
    assert verdicts(start + by_tree) == ["deny"]
    assert verdicts(start + by_library + by_tree) == ["deny"]
    # A library's path as the name the text is compiled under is no library's frame.
    named = (compiled % ("1", "/workspace/x.py")).replace('"<g>"', '"/env/lib/x.py"')
    assert verdicts(start + named) == ["deny"]


def test_in_the_relabelled_control_only_the_harnesss_own_text_is_excused() -> None:
    """The relabelled control compiles the label file as the harness rewrote it: that text, under
    that name, is the harness's. Any other text compiled under the same name there is judged."""
    written = "def teacher(x):\n    return client(x)\n"
    start = '{"event":"audit.start","roots":["/env/"],"pid":1}\n'

    def compiled(text: str) -> str:
        return json.dumps(
            {
                "event": "compile",
                "why": "compiled from text that is not the staged tree's data.py",
                "filename": "/tmp/run-1/src/data.py",
                "staged": "data.py",
                "source": text,
                "pid": 1,
                "stack": [["/tmp/run-1/src/train.py", 3, "<module>"]],
            }
        )

    def judged(text: str) -> list[str]:
        harness = frozenset({("data.py", text_digest(recorded(written)))})
        return verdicts_of("train-seed-0-relabelled", start + compiled(text) + "\n", harness)

    assert judged(written) == []
    assert judged("import os\nos.system('true')\n") == ["deny"]
