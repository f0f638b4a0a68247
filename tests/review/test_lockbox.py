"""The lockbox in the review app: its curve on the Run screen, the overfitting flag, the Change screen."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from core.trajectory import TrajectoryReader
from review.app import make_app
from review.screens.change import ChangeScreen
from review.screens.run import RunScreen
from review.state import RunState
from review.widgets.plot import MetricPlot
from tests.review.helpers import screen_text, wait_until
from tests.review.synthetic import lockbox_generations, standard_generations, write_run


def run_state(run_dir: Path) -> RunState:
    return RunState.from_events(list(TrajectoryReader(run_dir / "trajectory.jsonl").events()))


@pytest.fixture
def overfit_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "overfit", lockbox_generations(lockbox_follows=False))


@pytest.fixture
def honest_run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "honest", lockbox_generations(lockbox_follows=True))


def test_series_carries_the_lineage_heads_lockbox(overfit_run: Path, tmp_path: Path) -> None:
    state = run_state(overfit_run)
    assert [round(p.lockbox or 0, 3) for p in state.series()] == [0.14, 0.155, 0.16, 0.165]
    assert [round(p.best or 0, 3) for p in state.series()] == [0.15, 0.30, 0.45, 0.60]
    assert len(state.lineage()) == 4
    # A candidate that is not accepted does not move the lockbox series.
    queued = run_state(write_run(tmp_path / "queued", standard_generations()))
    assert [p.lockbox for p in queued.series()] == pytest.approx([0.14] * 5)


def test_state_flags_a_flat_lockbox_and_not_a_rising_one(overfit_run: Path, honest_run: Path) -> None:
    gap = run_state(overfit_run).lockbox_gap()
    assert gap is not None and gap.rule_id == "integrity.lockbox-gap"
    assert gap.evidence["lockbox"] == pytest.approx([0.14, 0.155, 0.16, 0.165])
    assert run_state(honest_run).lockbox_gap() is None
    assert run_state(honest_run).series()[-1].lockbox == pytest.approx(0.58)


def test_run_screen_shows_the_flag_only_once_the_lineage_overfits(overfit_run: Path) -> None:
    app = make_app("replay", trajectory=overfit_run / "trajectory.jsonl")

    async def drive() -> None:
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_until(pilot, lambda: bool(app.all_events), what="the trajectory")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, RunScreen)
            flag = screen.query_one("#lockbox-flag")
            assert flag.display
            text = screen_text(app)
            assert (
                "⚠ lockbox gap  selection +0.4500 but lockbox +0.0250 over 3 accepted generation(s): adaptive"
                in text
            )
            assert "╌ lockbox" in text  # the plot draws the lineage's lockbox and names it in its key
            assert screen.query_one(MetricPlot).points[-1].lockbox == pytest.approx(0.165)
            await pilot.press("g")  # back to the first event: nothing accepted yet
            await pilot.pause()
            assert not flag.display

    asyncio.run(drive())


def test_run_screen_of_an_honest_lineage_has_no_flag(honest_run: Path) -> None:
    app = make_app("replay", trajectory=honest_run / "trajectory.jsonl")

    async def drive() -> None:
        async with app.run_test(size=(110, 30)) as pilot:
            await wait_until(pilot, lambda: bool(app.all_events), what="the trajectory")
            await pilot.pause()
            assert not app.screen.query_one("#lockbox-flag").display
            assert "lockbox gap" not in screen_text(app) and "╌ lockbox" in screen_text(app)

    asyncio.run(drive())


def test_change_screen_shows_the_lockbox_next_to_the_selection_score(overfit_run: Path) -> None:
    app = make_app("replay", trajectory=overfit_run / "trajectory.jsonl")

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: bool(app.all_events), what="the trajectory")
            app.open_change(3)
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
            await pilot.pause()
            text = screen_text(app)
            assert "mean  0.1500±0.0100  0.6000±0.0050  +0.4500" in text
            assert "lockbox  0.1400±0.0100  0.1650±0.0050  +0.0250" in text
            assert "lockbox: scored, never used for decisions" in text

    asyncio.run(drive())
