"""The Claude agent end to end: scripted Messages API on loopback, real SDK, real Docker exploration."""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import Any

import docker
import pytest

from agent.claude import ClaudeProposer
from agent.config import ClaudeConfig
from agent.replay import ReplayProposer
from core.contracts import Proposal, ProposalContext
from core.trajectory import Event, TrajectoryReader
from rsi.compose import build_run
from rsi.config import RunConfig
from sandbox.base import SandboxConfig
from sandbox.docker_backend import DockerBackend
from sandbox.lineage import Lineage
from tests.agent.fake_api import FakeMessagesAPI, fault, submit_reply, tool_reply, tool_use
from tests.conftest import IMAGE, TARGET, labelled_containers, sandboxes_of

pytestmark = pytest.mark.docker

KEY = "sk-ant-docker-" + secrets.token_hex(12)
EDITOR = "str_replace_based_edit_tool"
WIDEN = {
    "command": "str_replace",
    "path": "/workspace/config.py",
    "old_str": "input_range: float = 0.5",
    "new_str": "input_range: float = 1.0",
}


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    return KEY


@pytest.fixture
def backend(docker_client) -> DockerBackend:  # type: ignore[no-untyped-def]
    return DockerBackend(SandboxConfig(image=IMAGE), image=IMAGE, run_id=f"agent-test-{secrets.token_hex(3)}")


def context(generation: int = 1) -> ProposalContext:
    return ProposalContext(
        generation=generation,
        objective="imitate the teacher",
        metric_name="r2",
        direction="higher",
        parent_commit="0123456789abcdef",
        parent_metric_mean=0.15,
        parent_metric_std=0.01,
    )


class RecordingObserver:
    def __init__(self) -> None:
        self.progress: list[tuple[str, dict[str, Any]]] = []

    def on_event(self, event: Event) -> None:
        pass

    def on_progress(self, phase: str, details: dict[str, Any]) -> None:
        self.progress.append((phase, details))


class RecordingProposer:
    """Keeps the contexts the loop hands to the real proposer (to replay them later)."""

    def __init__(self, inner: ClaudeProposer) -> None:
        self.inner = inner
        self.name = inner.name
        self.contexts: list[ProposalContext] = []

    def propose(self, context: ProposalContext, parent_tree: Path) -> Proposal:
        self.contexts.append(context)
        return self.inner.propose(context, parent_tree)


def test_generation_explores_submits_is_accepted_and_replays(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    exploration_env: list[list[str]] = []
    config = RunConfig(
        target=TARGET,
        run_dir=tmp_path / "run",
        generations=1,
        seeds=[0],
        heldout_size=300,
        proposer="claude",
        sandbox=SandboxConfig(image=IMAGE),
    )

    def edit_after_inspecting_the_sandbox(body: dict[str, Any]) -> dict[str, Any]:
        labels = [f"rsi.run_id={config.run_id}", "rsi.candidate=explore-gen-0001"]
        for listed in labelled_containers(docker_client, labels):
            with contextlib.suppress(docker.errors.NotFound):  # the engine may remove it meanwhile
                exploration_env.append(docker_client.containers.get(listed.id).attrs["Config"]["Env"])
        return tool_reply(tool_use(EDITOR, WIDEN))

    script = [
        tool_reply(tool_use("bash", {"command": "env && python -m pytest -q -x tests"}), cache_write=3000),
        tool_reply(
            tool_use(EDITOR, {"command": "view", "path": "config.py", "view_range": [29, 31]}),
            cache_read=3000,
        ),
        edit_after_inspecting_the_sandbox,
        tool_reply(
            tool_use(
                "bash",
                {
                    "command": "python train.py --seed 0 --out /tmp/q --steps 200 | tail -1; mkdir -p out && touch out/model.npz"
                },
            ),
            cache_read=3500,
        ),
        submit_reply(
            "widen the training input range to the held-out domain",
            "r2 from 0.15 to above 0.5",
            cache_read=4000,
        ),
    ]
    observer = RecordingObserver()
    with FakeMessagesAPI(script) as api:
        config.claude = ClaudeConfig(base_url=api.url)
        loop, parts = build_run(config, observer=observer)
        recording = RecordingProposer(parts.proposer)  # type: ignore[arg-type]
        parts.proposer = recording
        try:
            summary = loop.run()
        finally:
            parts.trajectory.close()

    assert summary.status == "completed", summary.reason
    assert summary.accepted == 1 and summary.usage.cache_read_tokens == 10_500
    events = list(TrajectoryReader(config.run_dir / "trajectory.jsonl").events())
    proposal = Proposal.model_validate(next(e.data for e in events if e.kind == "proposal"))
    assert proposal.stop_reason == "submitted" and proposal.claimed_effect == "r2 from 0.15 to above 0.5"
    assert proposal.diff.startswith("diff --git a/config.py b/config.py")
    assert "+    input_range: float = 1.0" in proposal.diff and "model.npz" not in proposal.diff
    tools = [e for e in proposal.transcript if e["kind"] == "tool"]
    assert "HOME=/tmp" in tools[0]["result"] and "passed" in tools[0]["result"]
    assert "input_range: float = 0.5" in tools[1]["result"]
    assert "final_train_loss=" in tools[3]["result"]
    assert [d["tool"] for _, d in observer.progress if "tool" in d] == [
        "bash",
        EDITOR,
        EDITOR,
        "bash",
        "submit",
    ]
    # The key reached the API and nowhere else: not the exploration container, not the run directory.
    assert exploration_env and all(KEY not in "\n".join(env) for env in exploration_env)
    assert all(KEY.encode() not in path.read_bytes() for path in config.run_dir.rglob("*") if path.is_file())
    assert sandboxes_of(docker_client, config.run_id) == []

    # Model-level replay: the recorded responses drive the agent again, tools re-run in a fresh sandbox.
    replay = ReplayProposer(config.run_dir / "trajectory.jsonl", backend=parts.proposer.inner.backend)  # type: ignore[attr-defined]
    recorded_view = next(
        e for e in replay.recorded[1].transcript if e["kind"] == "tool" and e["name"] == EDITOR
    )
    recorded_view["result"] = recorded_view["result"].replace("0.5", "0.25")  # pretend the parent differed
    generation_context = recording.contexts[0]
    tree = Lineage(config.run_dir / "lineage").export(generation_context.parent_commit, tmp_path / "tree")
    replayed = replay.propose(generation_context, tree)
    assert replayed.diff == proposal.diff and replayed.proposer == "replay:claude"
    assert len(replay.divergences) == 1, replay.divergences
    assert replay.divergences[0].startswith(f"generation 1 step 2 tool {EDITOR}: result differs (line 2")


def test_exploration_sees_no_heldout_data_evaluator_or_key(backend: DockerBackend) -> None:
    snoop = (
        "ls -la /heldout; cat /heldout/inputs.npy | head -c 10; "
        "find / \\( -path /proc -o -path /sys \\) -prune -o \\( -name '*label*' -o -name '*heldout*' "
        "-o -name 'evaluate.py' -o -name '*.npy' \\) -print 2>/dev/null; "
        "grep -rl TrustedEvaluator / --include='*.py' 2>/dev/null; echo ENV; env; "
        "cat /proc/1/environ | tr '\\0' '\\n'"
    )
    script = [
        tool_reply(
            tool_use("bash", {"command": snoop}), tool_use(EDITOR, {"command": "view", "path": "/heldout"})
        ),
        submit_reply(),
    ]
    with FakeMessagesAPI(script) as api:
        proposer = ClaudeProposer(ClaudeConfig(base_url=api.url), backend=backend)
        proposal = proposer.propose(context(), TARGET)
    snooped, viewed, _ = (e for e in proposal.transcript if e["kind"] == "tool")
    output = snooped["result"]
    assert "No such file or directory" in output and "ENV" in output and "HOME=/tmp" in output
    found = output.split("ENV")[0].splitlines()
    assert not [line for line in found if "heldout" in line and line.startswith("/")]
    data_files = [
        line for line in found if line.endswith(".npy") and "/numpy/" not in line
    ]  # numpy's own test data
    assert not data_files and not [
        line for line in found if line.endswith("evaluate.py") or "TrustedEvaluator" in line
    ]
    assert KEY not in output and "ANTHROPIC" not in output
    assert viewed["is_error"] is True
    assert proposal.diff == ""


def test_step_limit_keeps_the_change_made_so_far(backend: DockerBackend) -> None:
    script = [
        tool_reply(tool_use(EDITOR, WIDEN)),
        tool_reply(tool_use("bash", {"command": "git status 2>&1 | head -2; python -c 'print(2 + 2)'"})),
        submit_reply(),
    ]
    with FakeMessagesAPI(script) as api:
        proposal = ClaudeProposer(ClaudeConfig(base_url=api.url, max_steps=2), backend=backend).propose(
            context(), TARGET
        )
    assert proposal.stop_reason == "steps" and len(api.requests) == 2
    assert "+    input_range: float = 1.0" in proposal.diff
    last_tool = [e for e in proposal.transcript if e["kind"] == "tool"][-1]
    assert last_tool["result"].rstrip().endswith("4")


def test_persistent_outage_pauses_the_run_and_keeps_the_trajectory(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with FakeMessagesAPI([fault(529)] * 4) as api:
        config = RunConfig(
            target=TARGET,
            run_dir=tmp_path / "run",
            generations=2,
            seeds=[0],
            heldout_size=300,
            proposer="claude",
            sandbox=SandboxConfig(image=IMAGE),
            claude=ClaudeConfig(base_url=api.url, sdk_max_retries=1),
        )
        loop, parts = build_run(config)
        try:
            summary = loop.run()
        finally:
            parts.trajectory.close()
    assert summary.status == "paused" and "rsi resume" in summary.reason
    reader = TrajectoryReader(config.run_dir / "trajectory.jsonl")
    reader.verify()
    kinds = [e.kind for e in reader.events()]
    assert kinds[-3:] == ["proposal_started", "error", "run_finished"]
    finished = list(reader.events())[-1].data
    assert finished["status"] == "paused" and "kept failing" in finished["reason"]
