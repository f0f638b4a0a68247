"""A bootstrapping run in the review app: a succession finding (a flaw compounding across successors)
is flagged on the Run screen, an honest chain of successors is not; the Change screen of a promotion
shows teacher against students per seed (with the lockbox) beside the diff, and a paused promotion."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from review.app import make_app
from review.screens.change import ChangeScreen
from review.screens.run import RunScreen
from tests.core.bootstrap_trajectory import BASELINE_GENERATION, Generation, write_bootstrap_run
from tests.review.helpers import screen_text, wait_until
from tests.rsi.test_promotion import BOOTSTRAP, POLICY, rsi, run_args

HOLLOW = [
    Generation(scores=(0.30, 0.31), lockbox=(0.06, 0.07)),
    Generation(scores=(0.45, 0.46), lockbox=(0.07, 0.06)),
]
HONEST = [
    Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14)),
    Generation(scores=(0.40, 0.39), lockbox=(0.40, 0.39)),
]


def flag_shown(trajectory: Path) -> tuple[bool, str]:
    app = make_app("replay", trajectory=trajectory)
    shown: list[tuple[bool, str]] = []

    async def drive() -> None:
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_until(pilot, lambda: bool(app.all_events), what="the trajectory")
            await pilot.pause()
            assert isinstance(app.screen, RunScreen)
            shown.append((bool(app.screen.query_one("#succession-flag").display), screen_text(app)))

    asyncio.run(drive())
    return shown[0]


def test_successors_gaining_only_on_the_selection_set_are_flagged(tmp_path: Path) -> None:
    shown, text = flag_shown(write_bootstrap_run(tmp_path / "hollow", BASELINE_GENERATION, HOLLOW))
    assert shown
    assert "⚠ succession.compounding  2 successive promotions (generations 1, 2) gained" in text


def test_an_honest_chain_of_successors_is_not_flagged(tmp_path: Path) -> None:
    shown, text = flag_shown(write_bootstrap_run(tmp_path / "honest", BASELINE_GENERATION, HONEST))
    assert not shown and "succession." not in text


PAUSED = [
    Generation(scores=(0.15, 0.14), lockbox=(0.15, 0.14)),
    Generation(scores=(0.40, 0.39), lockbox=(0.40, 0.38), paused=True),
]


def change_screen_text(trajectory: Path, generation: int, size: tuple[int, int] = (120, 40)) -> str:
    app = make_app("replay", trajectory=trajectory)
    seen: list[str] = []

    async def drive() -> None:
        async with app.run_test(size=size) as pilot:
            await wait_until(pilot, lambda: bool(app.all_events), what="the trajectory")
            await pilot.pause()
            app.open_change(generation)
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
            await pilot.pause()
            assert app.screen.query_one("#promotion").display
            seen.append(" ".join(screen_text(app).split()))

    asyncio.run(drive())
    return seen[0]


def test_a_paused_promotion_shows_teacher_against_students(tmp_path: Path) -> None:
    text = change_screen_text(write_bootstrap_run(tmp_path / "paused", BASELINE_GENERATION, PAUSED), 2)
    assert "promotion · teacher vs students" in text
    assert "⏸ paused before promotion" in text
    assert "student of gen 1" in text  # generation 2 learned from generation 1's student
    assert "0→ 0.1500 0.4000 +0.2500" in text  # seed 0: the student that would be promoted
    assert "1 0.1500 0.3900 +0.2400" in text
    assert "lockbox — 0.3900±0.0141" in text
    assert "teacher_votes: int = 3" in text  # the code change that produced it, beside


def test_a_promoted_generation_says_so(tmp_path: Path) -> None:
    text = change_screen_text(write_bootstrap_run(tmp_path / "honest", BASELINE_GENERATION, HONEST), 1)
    assert "promoted: its seed-0 student is the teacher now" in text
    assert "gen-0 teacher" in text


@pytest.mark.bwrap
@pytest.mark.slow
def test_a_real_run_paused_on_promotion_shows_it_in_the_review_app(tmp_path: Path) -> None:
    """`rsi run --pause-on-promotion` on bubblewrap, then `rsi review`: the queued generation's Change
    screen says the run waits before promoting, with the teacher against each seed's student."""
    if shutil.which("bwrap") is None:
        pytest.skip("bwrap is not installed")
    target = tmp_path / "bootstrap"
    shutil.copytree(BOOTSTRAP, target, ignore=shutil.ignore_patterns("runs", "__pycache__"))
    contract = target / "rsi.toml"
    contract.write_text(contract.read_text().replace("steps = 1500", "steps = 200"))
    (tmp_path / "policy.yaml").write_text(POLICY)
    run_dir = tmp_path / "run"
    paused = rsi(*run_args(target, run_dir, 1, "--pause-on-promotion"))
    assert paused.returncode == 3, paused.stdout[-3000:] + paused.stderr[-3000:]
    app = make_app("review", run_dir=run_dir)
    seen: list[str] = []

    async def drive() -> None:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: 1 in app.state.records, what="the run")
            app.open_change(1)
            await wait_until(pilot, lambda: isinstance(app.screen, ChangeScreen), what="the change")
            await pilot.pause()
            seen.append(" ".join(screen_text(app).split()))

    asyncio.run(drive())
    assert "⏸ paused before promotion" in seen[0] and "gen-0 teacher" in seen[0]
    assert "0→ 0.0660" in seen[0]  # the gen-0 teacher's score beside seed 0's student
