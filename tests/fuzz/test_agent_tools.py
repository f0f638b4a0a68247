"""Fuzzing the Claude agent's handling of the model's tool calls.

Whatever the model sends (unknown tools, inputs of any JSON shape for bash, the editor and submit,
text no shell or file can hold, blocks that are not blocks), the agent answers every tool call with
a tool_result (an error one when the call cannot run) and ends the generation with a Proposal, or
raises a clear RsiError; it never crashes.

The replies reach the agent the way a replayed run feeds them (`RecordedModel`), and the tools run
in a real exploration sandbox on the bubblewrap backend (a session costs a few tens of ms).
"""

from __future__ import annotations

import shutil
import string
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from agent.claude import AgentRun
from agent.config import ClaudeConfig
from agent.replay import RecordedModel
from agent.tools import EDITOR_NAME, TOOL_NAMES
from core.contracts import Proposal, ProposalContext
from core.errors import RsiError
from core.trajectory import TrajectoryReader, TrajectoryWriter
from sandbox.base import SandboxConfig
from sandbox.bwrap_backend import BwrapBackend
from tests.conftest import IN_CI, TARGET

pytestmark = pytest.mark.bwrap

FUZZ = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG = ClaudeConfig(max_steps=3, tool_timeout_s=5.0)
CONTEXT = ProposalContext(
    generation=1,
    objective="imitate the teacher",
    metric_name="r2",
    direction="higher",
    parent_commit="0123456789abcdef",
    parent_metric_mean=0.15,
    parent_metric_std=0.01,
)
SUBMIT = {
    "type": "tool_use",
    "id": "final",
    "name": "submit",
    "input": {"rationale": "done", "expected_effect": "x"},
}

# Text the model could send: ordinary, shell- and path-hostile, and code points no UTF-8 can hold
# (a JSON "\udcff" escape decodes to a lone surrogate).
hostile_text = st.sampled_from(
    ["", " ", "\n", "\x00", "a\x00b", "\udcff", "x\ud800y", "../../etc/passwd", "$(id)", "'", "é€😀"]
)
any_text = st.integers(0, 2).flatmap(lambda pick: hostile_text if pick == 0 else st.text(max_size=40))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(any_text, children, max_size=3),
    max_leaves=6,
)


def mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` four times in five, else `odd` (so the sandbox gets real work, not only rejections)."""
    return st.integers(0, 4).flatmap(lambda pick: odd if pick == 0 else usual)


CONFIG_LINES = [line for line in (TARGET / "config.py").read_text().splitlines() if line.strip()]


def with_extras(
    required: dict[str, st.SearchStrategy[Any]], optional: dict[str, st.SearchStrategy[Any]]
) -> st.SearchStrategy[dict[str, Any]]:
    """Mostly a well-formed input; now and then a key missing, a value of any JSON shape, stray keys."""
    well_formed = st.fixed_dictionaries(required, optional=optional)
    sloppy = st.builds(
        lambda known, stray: {**stray, **known},
        st.fixed_dictionaries(
            {}, optional={k: st.one_of(v, json_values) for k, v in (required | optional).items()}
        ),
        st.dictionaries(any_text, json_values, max_size=2),
    )
    return st.integers(0, 3).flatmap(lambda pick: sloppy if pick == 0 else well_formed)


bash_input = with_extras(
    {
        "command": mostly(
            st.sampled_from(
                [
                    "echo hi",
                    "ls -la",
                    "cat config.py",
                    "exit 3",
                    "echo new > notes.txt",
                    "rm -f train.py",
                    "ln -s /etc/passwd leak",
                    "mkdir -p deep/er && touch deep/er/f.py",
                    "head -c 100000 /dev/zero | tr '\\0' x",
                    "cd / && ls",
                    "python -c 'print(1/0)'",
                ]
            ),
            any_text,
        ),
    },
    {"restart": st.booleans()},
)
paths = mostly(
    st.sampled_from(
        [
            "config.py",
            "/workspace/config.py",
            "/workspace",
            "/workspace/new/dir/f.py",
            "/etc/passwd",
            "/",
            "../outside.py",
            "/workspace/../tmp/x",
            "model.py",
            "missing.py",
        ]
    ),
    any_text,
)
editor_input = with_extras(
    {
        "command": mostly(
            st.sampled_from(["view", "view", "create", "str_replace", "str_replace", "insert", "undo_edit"]),
            any_text,
        ),
        "path": paths,
    },
    {
        "file_text": any_text,
        "old_str": mostly(st.sampled_from(CONFIG_LINES), any_text),
        "new_str": any_text,
        "insert_line": st.integers(-3, 200),
        "insert_text": any_text,
        "view_range": st.lists(st.integers(-5, 300), min_size=0, max_size=3),
    },
)
submit_input = with_extras({"rationale": any_text}, {"expected_effect": any_text})
tool_inputs = {"bash": bash_input, EDITOR_NAME: editor_input, "submit": submit_input}


@st.composite
def tool_use_block(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly a call of a real tool with a plausible input; sometimes any name, input or id."""
    name = draw(st.sampled_from(["bash", "bash", EDITOR_NAME, EDITOR_NAME, EDITOR_NAME, "submit", ""]))
    name = name or draw(any_text)
    tool_input = draw(json_values if draw(st.integers(0, 5)) == 0 else tool_inputs.get(name, json_values))
    block_id = draw(st.text(string.ascii_letters, min_size=1, max_size=8) | any_text | json_values)
    block = {"type": "tool_use", "id": block_id, "name": name, "input": tool_input}
    if draw(st.integers(0, 7)) == 0:
        del block[draw(st.sampled_from(["id", "name", "input"]))]
    return block


blocks = st.one_of(
    tool_use_block(),
    st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(any_text, json_values)}),
    st.dictionaries(any_text, json_values, max_size=3),
    json_values,
)
contents = st.integers(0, 5).flatmap(
    lambda pick: (
        st.lists(blocks, max_size=4)
        if pick == 0
        else json_values
        if pick == 1
        else st.lists(tool_use_block(), min_size=1, max_size=3)
    )
)


def recorded(*contents: Any) -> RecordedModel:
    transcript = [
        {
            "kind": "response",
            "step": step,
            "content": content,
            "usage": {"input_tokens": 10, "output_tokens": 10},
        }
        for step, content in enumerate(contents, start=1)
    ]
    return RecordedModel(transcript, generation=1, source=Path("fuzz"))


@pytest.fixture(scope="module")
def backend() -> BwrapBackend:
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    config = SandboxConfig(memory_mb=256, workspace_mb=32, tmp_mb=32, pids_limit=64)
    return BwrapBackend(config, image="unused", run_id="fuzz-agent-tools")


def tool_uses(content: Any) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict) and block.get("type") == "tool_use"]


def assert_recordable(proposal: Proposal) -> None:
    """Whatever the model sent, the proposal (its transcript holds the raw replies) can be recorded."""
    with tempfile.TemporaryDirectory(prefix="rsi-fuzz-") as tmp:
        path = Path(tmp) / "trajectory.jsonl"
        with TrajectoryWriter.open(path, run_id="fuzz") as writer:
            writer.append("proposal", proposal.model_dump(mode="json"), generation=1)
        (event,) = TrajectoryReader(path).events()
        assert event.data == proposal.model_dump(mode="json")


def call(name: str, tool_input: Any) -> list[dict[str, Any]]:
    return [{"type": "tool_use", "id": "t1", "name": name, "input": tool_input}]


@FUZZ
@given(first=contents)
# Found by this test: lone surrogates reached the shell and the file writer (UnicodeEncodeError),
# and a reply whose content was not a list stopped the loop (TypeError).
@example(first=call("bash", {"command": "echo \udcff"}))
@example(first=call(EDITOR_NAME, {"command": "create", "path": "a.py", "file_text": "x\ud800"}))
@example(
    first=call(
        EDITOR_NAME, {"command": "insert", "path": "config.py", "insert_line": 1, "insert_text": "\udcff"}
    )
)
@example(first=call(EDITOR_NAME, {"command": "view", "path": "\udcff"}))
@example(
    first=call(
        EDITOR_NAME, {"command": "str_replace", "path": "config.py", "old_str": "steps", "new_str": "\udcff"}
    )
)
@example(first=True)
@example(first=["not a block", {"type": "text", "text": 5}])
def test_every_tool_call_gets_a_result_and_nothing_crashes(backend: BwrapBackend, first: Any) -> None:
    run = AgentRun(CONFIG, backend, recorded(first, [SUBMIT], [SUBMIT]))
    try:
        proposal = run.propose(CONTEXT, TARGET)
    except RsiError as exc:
        event(f"error {type(exc).__name__}: {str(exc)[:60]}")
        assert str(exc)
        return
    event(f"stop {proposal.stop_reason}")
    for entry in proposal.transcript:
        if entry.get("kind") == "tool":
            event(
                f"tool {entry['name'] if entry['name'] in TOOL_NAMES else 'other'} error={entry['is_error']}"
            )
    assert isinstance(proposal, Proposal) and proposal.stop_reason in ("submitted", "steps")
    assert_recordable(proposal)
    calls = tool_uses(first)
    answered = [entry for entry in proposal.transcript if entry.get("kind") == "tool" and entry["step"] == 1]
    assert len(answered) == len(calls)
    for call, entry in zip(calls, answered, strict=True):
        assert isinstance(entry["result"], str) and entry["result"]
        if call.get("name") not in TOOL_NAMES:
            assert entry["is_error"], entry
    if calls and not any(
        call.get("name") == "submit" and not entry["is_error"]
        for call, entry in zip(calls, answered, strict=True)
    ):
        results = next(e for e in proposal.transcript if e.get("kind") == "user" and e["step"] == 1)[
            "content"
        ]
        assert [r["type"] for r in results] == ["tool_result"] * len(calls)
