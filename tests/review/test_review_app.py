"""The review app on recorded runs (`rsi review`, `rsi replay`): decisions land in the trajectory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.trajectory import TrajectoryReader
from review.app import ReviewApp, make_app
from review.queue import pending
from review.screens.change import ChangeScreen
from review.screens.queue import QueueScreen
from review.screens.run import RunScreen
from sandbox.lineage import Lineage
from tests.review.helpers import queue_shown, screen_text, wait_until
from tests.review.synthetic import standard_generations, write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", standard_generations())


def decisions(run_dir: Path) -> list[tuple[int | None, str, str, str]]:
    events = TrajectoryReader(run_dir / "trajectory.jsonl").events()
    return [
        (e.generation, e.data["decision"], e.data["by"], e.data["reason"])
        for e in events
        if e.kind == "decision"
    ]


async def open_queued(pilot, app: ReviewApp, generation: int) -> ChangeScreen:  # type: ignore[no-untyped-def]
    # The run is folded in the background: the queue may show before this change reaches it.
    def listed() -> bool:
        return queue_shown(app) and str(generation) in app.screen.query_one("#queue").rows

    await wait_until(pilot, listed, what=f"generation {generation} in the queue")
    table = app.screen.query_one("#queue")
    table.move_cursor(row=table.get_row_index(str(generation)))
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change screen")
    assert app.screen.generation == generation  # type: ignore[attr-defined]
    return app.screen  # type: ignore[return-value]


def test_accept_from_the_queue_records_the_human_and_continues_the_lineage(run_dir: Path) -> None:
    app = make_app("review", run_dir=run_dir, by="human:tester")

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await open_queued(pilot, app, 3)
            await pilot.press("a")
            await wait_until(pilot, lambda: queue_shown(app) and 3 not in _waiting(app))

    asyncio.run(drive())
    assert decisions(run_dir)[-1][:3] == (3, "accept", "human:tester")
    log = Lineage(run_dir / "lineage").log()
    assert log[0][1].startswith("generation 3: Widen the training input range")
    assert "accept by human:tester" in log[0][1]
    assert [r.generation for r in pending(run_dir)] == [1, 2]


def test_reject_with_a_reason_typed_in_the_modal(run_dir: Path) -> None:
    app = make_app("review", run_dir=run_dir, by="human:tester")

    async def drive() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await open_queued(pilot, app, 3)
            await pilot.press("r")
            await pilot.press("enter")  # an empty reason is refused
            assert "RejectScreen" in type(app.screen).__name__
            await pilot.press(*"gain is noise")
            await pilot.press("enter")
            await wait_until(pilot, lambda: 3 not in _waiting(app), what="the rejection")

    asyncio.run(drive())
    assert decisions(run_dir)[-1] == (3, "reject", "human:tester", "gain is noise")
    assert len(Lineage(run_dir / "lineage").log()) == 1  # nothing committed


def test_skip_leaves_the_change_in_the_queue(run_dir: Path) -> None:
    app = make_app("review", run_dir=run_dir, by="human:tester")
    before = decisions(run_dir)

    async def drive() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await open_queued(pilot, app, 3)
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(app.screen, QueueScreen), what="back to the queue")

    asyncio.run(drive())
    assert decisions(run_dir) == before
    assert [r.generation for r in pending(run_dir)] == [1, 2, 3]


def test_a_policy_deny_cannot_be_accepted(run_dir: Path) -> None:
    app = make_app("review", run_dir=run_dir, by="human:tester")

    async def drive() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            change = await open_queued(pilot, app, 1)
            assert change.check_action("accept", ()) is False  # not offered in the footer
            footer_keys = [b.binding.description for b in app.active_bindings.values() if b.binding.show]
            assert "Accept" not in footer_keys and "Reject" in footer_keys
            bar = change.query_one("#decision-bar")
            await pilot.press("a")
            await pilot.pause(0.1)
            assert bar.has_class("-attention")  # `a` answers: the line that says why lights up
            assert isinstance(app.screen, ChangeScreen) and app.screen is change
            assert "cannot be accepted" in screen_text(app)
            await pilot.press("f", "enter")  # the protected-paths finding: the diff jumps to its line
            await pilot.pause(0.2)
            diff = change.query_one("#diff")
            assert diff.marked is not None and diff.rows[diff.marked].new_no == 16
            assert app.focused is diff

    asyncio.run(drive())
    assert [d for d in decisions(run_dir) if d[0] == 1 and d[1] == "accept"] == []


def test_a_review_verdict_needs_its_findings_looked_at_before_accept(run_dir: Path) -> None:
    app = make_app("review", run_dir=run_dir, by="human:tester")

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            change = await open_queued(pilot, app, 2)
            assert "see the findings (f) first" in screen_text(app)
            await pilot.press("a")  # refused: focuses the findings instead
            await pilot.pause(0.3)
            assert app.focused is change.query_one("#findings")
            assert 2 in _waiting(app)
            await pilot.press("a")
            await wait_until(pilot, lambda: 2 not in _waiting(app), what="the acceptance")

    asyncio.run(drive())
    assert decisions(run_dir)[-1][:3] == (2, "accept", "human:tester")


def test_replay_navigation_moves_through_events_and_generations(run_dir: Path) -> None:
    trajectory = run_dir / "trajectory.jsonl"
    events = list(TrajectoryReader(trajectory).events())
    app = make_app("replay", trajectory=trajectory)

    async def drive() -> None:
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: len(app.all_events) == len(events), what="the replay to load")
            screen = app.screen
            assert isinstance(screen, RunScreen) and screen.cursor == len(events) - 1
            table = screen.query_one("#generations")
            await pilot.press("g")
            assert screen.cursor == 0 and table.row_count == 0
            await pilot.press("right_square_bracket")
            assert events[screen.cursor].generation == 1 and events[screen.cursor].kind == "decision"
            assert table.row_count == 1
            await pilot.press("right_square_bracket")
            assert events[screen.cursor].generation == 2
            await pilot.press("left_square_bracket")
            assert events[screen.cursor].generation == 1
            await pilot.press("l")
            assert events[screen.cursor].kind == "proposal_started" and table.row_count == 2
            assert screen.shown_state.status(2) == "running"
            await pilot.press("h")
            await pilot.press("colon")
            await pilot.press(*"7", "enter")
            assert screen.cursor == 7
            await pilot.press("G")
            assert screen.cursor == len(events) - 1 and table.row_count == 4
            await pilot.press("enter")  # read-only: no decision keys
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
            assert app.screen.check_action("accept", ()) is False  # type: ignore[union-attr]
            await pilot.press("a")

    asyncio.run(drive())
    assert len(list(TrajectoryReader(trajectory).events())) == len(events)  # read-only


def test_help_overlay_lists_every_key(run_dir: Path) -> None:
    app = make_app("review", run_dir=run_dir)

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: queue_shown(app), what="the queue")
            await pilot.press("question_mark")
            text = screen_text(app)
            for words in ("accept", "reject", "skip", "side-by-side", "jump to an event", "first / last"):
                assert words in text
            await pilot.press("escape")
            assert isinstance(app.screen, QueueScreen)

    asyncio.run(drive())


def _waiting(app: ReviewApp) -> list[int]:
    return [g for g in app.state.records if app.state.is_decidable(g)]
