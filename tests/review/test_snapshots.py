"""What the review app looks like (SVG snapshots; Textual is pinned so they stay stable).

Regenerate after a deliberate change with `make snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from review.app import make_app
from review.screens.change import ChangeScreen
from review.screens.queue import QueueScreen
from tests.review.helpers import wait_until
from tests.review.synthetic import (
    k_generations,
    lockbox_generations,
    mixed_generations,
    standard_generations,
    tree_generations,
    write_run,
)


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Fixed commit dates give the lineage fixed hashes, so the screens show the same commit ids.
    monkeypatch.setenv("GIT_AUTHOR_DATE", "1740819600 +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1740819600 +0000")
    return write_run(tmp_path / "run", standard_generations())


async def _queue_loaded(pilot) -> None:  # type: ignore[no-untyped-def]
    app = pilot.app
    await wait_until(
        # The screen is current as soon as it is pushed; its table is filled when it mounts.
        pilot,
        lambda: isinstance(app.screen, QueueScreen) and app.state.records and app.screen.ready,
        what="the queue",
    )
    await pilot.pause()


def _open(generation: int, *keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _queue_loaded(pilot)
        pilot.app.open_change(generation)
        await wait_until(pilot, lambda: isinstance(pilot.app.screen, ChangeScreen), what="the change")
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_queue_80x24(snap_compare, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app("review", run_dir=run_dir), terminal_size=(80, 24), run_before=_queue_loaded)


def test_run_screen_light_theme_80x24(snap_compare, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _queue_loaded(pilot)
        await pilot.press("escape", "ctrl+t")
        await pilot.pause()

    assert snap_compare(make_app("review", run_dir=run_dir), terminal_size=(80, 24), run_before=run_before)


def test_change_denied_120x40(snap_compare, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app("review", run_dir=run_dir), terminal_size=(120, 40), run_before=_open(1))


def test_change_side_by_side_review_verdict_120x40(snap_compare, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        make_app("review", run_dir=run_dir), terminal_size=(120, 40), run_before=_open(3, "v")
    )


def test_change_80x24(snap_compare, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(make_app("review", run_dir=run_dir), terminal_size=(80, 24), run_before=_open(2))


def test_reject_modal(snap_compare, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    assert snap_compare(
        make_app("review", run_dir=run_dir), terminal_size=(100, 30), run_before=_open(3, "r", *"noise")
    )


def test_help_overlay(snap_compare, run_dir: Path) -> None:  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _queue_loaded(pilot)
        await pilot.press("question_mark")
        await pilot.pause()

    assert snap_compare(make_app("review", run_dir=run_dir), terminal_size=(110, 34), run_before=run_before)


def test_run_screen_lockbox_gap_80x24(snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GIT_AUTHOR_DATE", "1740819600 +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1740819600 +0000")
    run_dir = write_run(tmp_path / "run", lockbox_generations(lockbox_follows=False))

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_until(pilot, lambda: bool(pilot.app.all_events), what="the trajectory")
        await pilot.pause()

    app = make_app("replay", trajectory=run_dir / "trajectory.jsonl")
    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def _replay_at_end(run_dir: Path):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await wait_until(pilot, lambda: bool(pilot.app.all_events), what="the trajectory")
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_run_screen_plot_of_a_mixed_run(
    snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GIT_AUTHOR_DATE", "1740819600 +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1740819600 +0000")
    run_dir = write_run(tmp_path / "run", mixed_generations(), advance=True)
    app = make_app("replay", trajectory=run_dir / "trajectory.jsonl")
    assert snap_compare(app, terminal_size=size, run_before=_replay_at_end(run_dir))


def _tree_shown(pilot) -> bool:  # type: ignore[no-untyped-def]
    from review.screens.tree import TreeScreen

    screen = pilot.app.screen
    return isinstance(screen, TreeScreen) and screen.ready


def _open_tree(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _queue_loaded(pilot)
        await pilot.press("escape", "t")
        await wait_until(pilot, lambda: _tree_shown(pilot), what="the tree")
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_tree_view(
    snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GIT_AUTHOR_DATE", "1740819600 +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1740819600 +0000")
    run_dir = write_run(tmp_path / "run", tree_generations())
    assert snap_compare(
        make_app("review", run_dir=run_dir), terminal_size=size, run_before=_open_tree("j", "j")
    )


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_k_candidates_side_by_side(  # type: ignore[no-untyped-def]
    snap_compare, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]
) -> None:
    from review.screens.siblings import SiblingsScreen

    monkeypatch.setenv("GIT_AUTHOR_DATE", "1740819600 +0000")
    monkeypatch.setenv("GIT_COMMITTER_DATE", "1740819600 +0000")
    run_dir = write_run(tmp_path / "run", k_generations())

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await _queue_loaded(pilot)
        await pilot.press("g")
        await wait_until(
            pilot, lambda: isinstance(pilot.app.screen, SiblingsScreen) and pilot.app.screen.ready
        )
        await pilot.press("j", "space", "space")
        await pilot.pause()

    assert snap_compare(make_app("review", run_dir=run_dir), terminal_size=size, run_before=run_before)
