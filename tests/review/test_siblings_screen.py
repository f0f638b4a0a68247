"""Reviewing a generation of K = 4 candidates side by side: mark two, accept them, reject the rest
with one reason — seven keys and one screen instead of one change screen per candidate."""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.fold import fold
from core.trajectory import TRAJECTORY_FILE, TrajectoryReader
from review.app import make_app
from review.screens.siblings import SiblingsScreen
from tests.review.helpers import queue_shown, screen_text, wait_until
from tests.review.synthetic import k_generations, write_run


def siblings_shown(app: object) -> bool:
    screen = app.screen  # type: ignore[attr-defined]
    return isinstance(screen, SiblingsScreen) and screen.ready


def decisions(run_dir: Path) -> dict[int, tuple[str, str, str]]:
    run = fold(list(TrajectoryReader(run_dir / TRAJECTORY_FILE).events()))
    return {
        g: (r.decision.decision, r.decision.by, r.decision.reason)
        for g, r in run.generations.items()
        if r.decision is not None
    }


def test_accept_two_of_four_candidates_and_reject_the_rest_with_one_reason(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", k_generations())

    async def drive() -> None:
        app = make_app("review", run_dir=run_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: queue_shown(app), what="the queue")
            await pilot.press("g")
            await wait_until(pilot, lambda: siblings_shown(app), what="the siblings")
            text = screen_text(app)
            assert "4 candidate(s) from parent" in text and "0.660±0.025" in text and "+0.510±0.050" in text
            await pilot.press("j", "space", "space", "a")  # mark 2 and 3, accept them
            await pilot.press(*"within noise", "enter")  # one reason for 1 and 4
            await wait_until(pilot, lambda: not app.state.records or not any(
                app.state.is_decidable(g) for g in app.state.records
            ), what="every candidate decided")  # fmt: skip
            await wait_until(pilot, lambda: "Nothing from this parent" in screen_text(app), what="refresh")

    asyncio.run(drive())
    decided = decisions(run_dir)
    assert {g: d[0] for g, d in decided.items()} == {1: "reject", 2: "accept", 3: "accept", 4: "reject"}
    assert decided[1][2] == decided[4][2] == "within noise"
    assert all(d[1].startswith("human:") for d in decided.values())


def test_a_denied_candidate_cannot_be_accepted_from_the_side_by_side_view(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", k_generations())

    async def drive() -> None:
        app = make_app("review", run_dir=run_dir)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: queue_shown(app), what="the queue")
            await pilot.press("g")
            await wait_until(pilot, lambda: siblings_shown(app), what="the siblings")
            await pilot.press("space", "a")  # gen 1: denied by the policy
            await wait_until(pilot, lambda: bool(app._notifications), what="the refusal")
            assert "denied by the policy" in str(list(app._notifications)[-1].message)
            assert siblings_shown(app)

    asyncio.run(drive())
    assert {g: d[0] for g, d in decisions(run_dir).items()} == {g: "queue" for g in (1, 2, 3, 4)}
