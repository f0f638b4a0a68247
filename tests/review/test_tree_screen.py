"""The Tree screen: every candidate under the node it came from, the best path marked, a change
opened from it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from review.app import make_app
from review.screens.change import ChangeScreen
from review.screens.tree import TreeScreen
from tests.review.helpers import queue_shown, screen_text, wait_until
from tests.review.synthetic import tree_generations, write_run


def tree_shown(app: object) -> bool:
    screen = app.screen  # type: ignore[attr-defined]
    return isinstance(screen, TreeScreen) and screen.ready


def test_the_tree_shows_each_candidate_under_its_parent_and_marks_the_best_path(tmp_path: Path) -> None:
    app = make_app("review", run_dir=write_run(tmp_path / "run", tree_generations()))
    asyncio.run(drive(app))


async def drive(app) -> None:  # type: ignore[no-untyped-def]
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: queue_shown(app), what="the queue")
        await pilot.press("escape", "t")
        await wait_until(pilot, lambda: tree_shown(app), what="the tree")
        await pilot.pause()
        lines = screen_text(app).splitlines()
        row = {g: next(i for i, line in enumerate(lines) if f"gen {g} " in line) for g in range(1, 8)}
        depth = {g: (lines[row[g]].index(f"gen {g} ") - 2 * ("▼" in lines[row[g]])) // 3 for g in row}
        assert depth == {1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 3, 7: 3}
        assert row[1] < row[3] < row[2] < row[4] < row[6] < row[7] < row[5]  # children below their parent
        starred = {g for g in row if "★" in lines[row[g]]}
        assert starred == {2, 4}  # baseline → gen 2 → gen 4, the best accepted node
        assert "awaiting review" in lines[row[7]] and "failed" in lines[row[5]]
        await pilot.press("j", "j", "j", "enter")  # down from above the baseline: baseline, gen 1, gen 3
        await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
        assert app.screen.generation == 3  # type: ignore[attr-defined]
        await pilot.press("escape")
        await wait_until(pilot, lambda: tree_shown(app), what="the tree again")
