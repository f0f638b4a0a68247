"""What must stay readable at 80×24 (and 120×40): dialogs whole, the decision line on one line,
data shown as text, not markup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from review.app import QUIT_QUESTION, make_app
from review.screens.change import ChangeScreen
from review.screens.modals import ConfirmScreen
from tests.review.helpers import queue_shown, screen_text, wait_until
from tests.review.synthetic import Gen, better_diff, standard_generations, write_run


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_the_quit_question_is_shown_whole(tmp_path: Path, size: tuple[int, int]) -> None:
    app = make_app("review", run_dir=write_run(tmp_path / "run", standard_generations()))

    async def drive() -> None:
        async with app.run_test(size=size) as pilot:
            await wait_until(pilot, lambda: queue_shown(app), what="the queue")
            app.push_screen(ConfirmScreen(QUIT_QUESTION))
            await pilot.pause(0.2)
            shown = screen_text(app)
            # Wrapped inside a bordered dialog, so compare word by word: none may be cut off.
            words = [word for line in shown.splitlines() for word in line.split()]
            for word in QUIT_QUESTION.split():
                assert word in words, (word, shown)

    asyncio.run(drive())


@pytest.mark.parametrize("generation", [1, 2, 3])  # deny, review, allow
def test_the_decision_keys_are_on_the_decision_line_at_80x24(tmp_path: Path, generation: int) -> None:
    app = make_app("review", run_dir=write_run(tmp_path / "run", standard_generations()))

    async def drive() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: queue_shown(app), what="the queue")
            app.open_change(generation)
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
            await pilot.pause(0.2)
            lines = screen_text(app).splitlines()
            holding = [line for line in lines if "r reject" in line and "s skip" in line]
            assert holding, "\n".join(lines)
            if generation != 1:
                assert "a accept" in holding[0]
            if generation == 2:  # the review prompt fits one line
                assert "Review asked" in holding[0]

    asyncio.run(drive())


def test_recorded_words_in_square_brackets_are_shown_as_written(tmp_path: Path) -> None:
    words = "Use [bold]x[/bold] and [metric].heldout"
    gens = [Gen(words, better_diff(), [0.6, 0.61, 0.59], decision="queue", reason="[protected-paths] why")]
    app = make_app("review", run_dir=write_run(tmp_path / "run", gens))

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: queue_shown(app), what="the queue")
            await pilot.pause(0.2)
            assert "[protected-paths] why" in screen_text(app)
            app.open_change(1)
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
            await pilot.pause(0.2)
            assert words in screen_text(app)

    asyncio.run(drive())
