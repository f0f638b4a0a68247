"""A live run in the TUI with real Docker: the human denies nothing, rejects, skips and accepts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.trajectory import TrajectoryReader
from review.app import make_app
from review.screens.change import ChangeScreen
from rsi.config import RunConfig
from rsi.live import live_run
from rsi.loop import RunParts
from sandbox.base import SandboxConfig
from sandbox.lineage import Lineage
from tests.conftest import IMAGE, TARGET
from tests.review.helpers import screen_text, wait_until
from tests.review.synthetic import better_diff, protected_diff
from tests.rsi.test_loop_docker import ScriptedProposer

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_live_run_reject_skip_accept_and_deny_cannot_be_accepted(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    proposer = ScriptedProposer(
        [
            ("raise the step budget", protected_diff()),
            ("widen the input range", better_diff()),
            ("widen the input range, again", better_diff()),
        ]
    )
    config = RunConfig(
        target=TARGET,
        run_dir=tmp_path / "run",
        generations=3,
        seeds=[0],
        heldout_size=300,
        review="human",
        human_reviews_denials=True,
        sandbox=SandboxConfig(image=IMAGE),
    )

    def use_scripted(parts: RunParts) -> None:
        parts.proposer = proposer

    app = make_app("live", live=live_run(config, customize=use_scripted), by="human:tester")

    def waiting_on(generation: int) -> bool:
        screen = app.screen
        return (
            app.state.awaiting == generation
            and isinstance(screen, ChangeScreen)
            and screen.generation == generation
        )

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: waiting_on(1), timeout=150, what="generation 1 to wait")
            await pilot.press("a")  # a policy deny: refused, nothing recorded
            await pilot.pause(0.2)
            assert app.state.records[1].decision is None
            assert "cannot be accepted" in screen_text(app)
            await pilot.press("r")
            await pilot.press(*"touches the budget")
            await pilot.press("enter")
            await wait_until(pilot, lambda: waiting_on(2), timeout=150, what="generation 2 to wait")
            assert app.state.status(1) in ("denied", "failed")
            await pilot.press("s")
            await wait_until(pilot, lambda: waiting_on(3), timeout=150, what="generation 3 to wait")
            await pilot.press("a")
            await wait_until(pilot, lambda: not app.running, timeout=120, what="the run to finish")
            assert "run completed" in screen_text(app)
            await pilot.press("q")

    asyncio.run(drive())
    assert app.summary is not None and app.summary.accepted == 1
    events = list(TrajectoryReader(config.run_dir / "trajectory.jsonl").events())
    decisions = [
        (e.generation, e.data["decision"], e.data["by"], e.data["reason"])
        for e in events
        if e.kind == "decision"
    ]
    assert decisions[0] == (1, "reject", "human:tester", "touches the budget")
    assert decisions[1][:3] == (2, "queue", "human:tester")
    assert decisions[2][:3] == (3, "accept", "human:tester")
    assert events[-1].kind == "run_finished" and events[-1].data["status"] == "completed"
    log = Lineage(config.run_dir / "lineage").log()
    assert (
        log[0][1].startswith("generation 3: widen the input range") and "accept by human:tester" in log[0][1]
    )
    # The rejection's reason went back to the agent.
    assert proposer.contexts[1].history[0].reason.endswith("touches the budget")
