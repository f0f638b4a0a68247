"""What a paused promotion looks like on the Change screen (SVG snapshots at 80×24 and 120×40):
teacher against students per seed with the lockbox, beside the code change that produced them.

Regenerate after a deliberate change with `make snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from review.app import make_app
from review.screens.change import ChangeScreen
from tests.core.bootstrap_trajectory import BASELINE_GENERATION, Generation, write_bootstrap_run
from tests.review.helpers import wait_until

PAUSED = [
    Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14)),
    Generation(scores=(0.40, 0.39), lockbox=(0.40, 0.38), paused=True),
]


@pytest.fixture
def trajectory(tmp_path: Path) -> Path:
    return write_bootstrap_run(tmp_path / "paused", BASELINE_GENERATION, PAUSED)


async def _open_paused(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_until(pilot, lambda: bool(app.all_events), what="the trajectory")
    await pilot.pause()
    app.open_change(2)
    await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_paused_promotion(snap_compare, trajectory: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = make_app("replay", trajectory=trajectory)
    assert snap_compare(app, terminal_size=size, run_before=_open_paused)
