"""The review app never draws a candidate's hidden characters: every screen that shows a diff, a
rationale, a claimed effect, test output, findings or logs draws them as code points.

A recorded run carries text that would move the cursor, write the clipboard (OSC 52), clear the
screen or reorder what follows it; the screens are read back as the terminal would get them.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.visible import hidden_characters
from review.app import make_app
from review.screens.change import ChangeScreen
from review.screens.modals import LogsScreen
from tests.review.helpers import queue_shown, screen_text, wait_until
from tests.review.synthetic import Gen, write_run

HOSTILE = (
    "ok\x1b]52;c;cm0gLXJmIH4=\x07\x1b[2J\x1b[1A\u202eetar eht\u2066 hidden\u2069\u200b\x0b\x1c\u2028done"
)


def hostile_diff() -> str:
    return (
        "--- a/config.py\n+++ b/config.py\n@@ -1,2 +1,2 @@\n"
        '-"""Hyper-parameters."""\n'
        f'+"""Hyper-parameters.{HOSTILE}"""\n'
        " \n"
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    gens = [
        Gen(
            f"Raise the rate {HOSTILE}",
            hostile_diff(),
            [0.10, 0.40, 0.12],
            failure="tests_failed",
            tests_failed=1,
            claimed=f"R² up {HOSTILE}",
            output=f"FAILED tests/test_train.py::test_{HOSTILE}\n{HOSTILE}\n",
        )
    ]
    return write_run(tmp_path / "run", gens)


def drawn_hidden(text: str) -> list[str]:
    return sorted({f"U+{ord(c):04X}" for _, c in hidden_characters(text)})


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_no_screen_draws_a_hidden_character(run_dir: Path, size: tuple[int, int]) -> None:
    app = make_app("review", run_dir=run_dir, by="human:tester")
    seen: dict[str, str] = {}

    async def drive() -> None:
        async with app.run_test(size=size) as pilot:
            await wait_until(pilot, lambda: queue_shown(app) and "1" in app.screen.query_one("#queue").rows)
            seen["queue"] = screen_text(app)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change screen")
            await pilot.pause()
            seen["change"] = screen_text(app)
            await pilot.press("v")
            await pilot.pause()
            seen["change, side by side"] = screen_text(app)
            await pilot.press("L")
            await wait_until(pilot, lambda: isinstance(app.screen, LogsScreen), what="the logs")
            await pilot.pause(0.3)
            seen["logs"] = screen_text(app)

    asyncio.run(drive())
    drawn = {name: drawn_hidden(text) for name, text in seen.items()}
    assert not any(drawn.values()), drawn
    assert "⟨U+001B⟩" in seen["change"] and "⟨U+202E⟩" in seen["change"]
    assert "⟨U+001B⟩" in seen["logs"]


def test_a_line_that_goes_past_the_edge_is_marked_there(tmp_path: Path) -> None:
    tail = "; _ = [optimizer.step(p, g, rate) for _ in range(3)]"
    diff = "--- a/train.py\n+++ b/train.py\n@@ -1 +1 @@\n-rate = 1\n+rate = 1" + " " * 300 + tail + "\n"
    run = write_run(tmp_path / "run", [Gen("tidy the step", diff, [0.2, 0.21, 0.19])])
    app = make_app("review", run_dir=run, by="human:tester")
    seen: dict[str, str] = {}

    async def drive() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda: queue_shown(app) and "1" in app.screen.query_one("#queue").rows)
            await pilot.press("enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change screen")
            await pilot.pause()
            seen["change"] = screen_text(app)

    asyncio.run(drive())
    added = next(line for line in seen["change"].split("\n") if "+ rate = 1" in line)
    removed = next(line for line in seen["change"].split("\n") if "- rate = 1" in line)
    assert "»" in added and "»" not in removed, (added, removed)
