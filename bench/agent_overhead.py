"""The Claude agent's own overhead in one scripted generation (no model time, no real work).

    python bench/agent_overhead.py [--steps 8]

A scripted Messages API on loopback answers instantly; each step asks for `true` in bash, then the
agent submits. What remains is the agent's cost: SDK round trips, sandbox start, docker exec per
tool call, reading the workspace out and diffing it on the host. Targets: under 1 s per step (a bash call
is three docker execs: the command, the kill sweep, reading its log) and under 5 s fixed per
generation on a shared 2-core machine — small next to a model call (seconds) or a training run.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.claude import ClaudeProposer  # noqa: E402
from agent.config import ClaudeConfig  # noqa: E402
from core.contracts import ProposalContext  # noqa: E402
from sandbox.base import SandboxConfig  # noqa: E402
from sandbox.docker_backend import DockerBackend  # noqa: E402
from tests.agent.fake_api import FakeMessagesAPI, submit_reply, tool_reply, tool_use  # noqa: E402

TARGET_PER_STEP_S = 1.0
TARGET_FIXED_S = 5.0


def one_generation(backend: DockerBackend, steps: int) -> tuple[float, list[dict]]:  # type: ignore[type-arg]
    script = [tool_reply(tool_use("bash", {"command": "true"})) for _ in range(steps)] + [submit_reply()]
    context = ProposalContext(
        generation=1,
        objective="bench",
        metric_name="r2",
        direction="higher",
        parent_commit="0" * 40,
        parent_metric_mean=None,
        parent_metric_std=None,
    )
    with FakeMessagesAPI(script) as api:
        proposer = ClaudeProposer(ClaudeConfig(base_url=api.url), backend=backend)
        started = time.perf_counter()
        proposal = proposer.propose(context, ROOT / "target_repo")
        return time.perf_counter() - started, proposal.transcript


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    os.environ.setdefault("ANTHROPIC_API_KEY", "bench-" + secrets.token_hex(8))
    image = os.environ.get("RSI_TEST_IMAGE", "rsi-sandbox:latest")
    backend = DockerBackend(SandboxConfig(image=image), image=image, run_id=f"bench-{secrets.token_hex(3)}")
    fixed, _ = one_generation(backend, 0)  # one model call + submit: no sandbox opened
    total, transcript = one_generation(backend, args.steps)
    tool_s = [
        entry["duration_s"] for entry in transcript if entry["kind"] == "tool" and entry["name"] == "bash"
    ]
    open_and_diff = total - fixed * (args.steps + 1) - sum(tool_s)
    per_step = (total - open_and_diff) / args.steps
    table = Table(title=f"agent overhead, one scripted generation of {args.steps} bash steps")
    for column in ("measure", "value", "target", "ok"):
        table.add_column(column)
    rows = [
        ("model round trip (loopback, SDK)", fixed, None),
        ("bash tool call (docker exec + kill)", sum(tool_s) / len(tool_s), None),
        ("per step (round trip + tool)", per_step, TARGET_PER_STEP_S),
        ("sandbox start + workspace diff", open_and_diff, TARGET_FIXED_S),
        ("whole generation", total, None),
    ]
    for name, value, target in rows:
        ok = "" if target is None else ("yes" if value <= target else "NO")
        table.add_row(name, f"{value:.3f} s", "" if target is None else f"≤ {target} s", ok)
    Console().print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
