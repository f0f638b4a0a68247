"""In a real terminal at 120×40: `rsi review` opens a change side by side and the changed value is
on screen, on both halves."""

from __future__ import annotations

import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.review.synthetic import standard_generations, write_run
from tests.review.test_tmux_e2e import tmux, wait_for_screen

RSI = str(Path(sys.executable).with_name("rsi"))


def test_side_by_side_shows_the_changed_value_at_120x40(tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is not installed (CI=true: this test must run)")
        pytest.skip("tmux is not installed")
    run_dir = write_run(tmp_path / "run", standard_generations())
    session = f"rsi-side-{tmp_path.name[-12:]}"
    command = f"env TERM=xterm-256color {shlex.quote(RSI)} review {shlex.quote(str(run_dir))}"
    # The terminal is 120×40 before the app starts, so it lays out wide from its first frame.
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40")
    tmux("resize-window", "-t", session, "-x", "120", "-y", "40")
    assert tmux("display", "-p", "-t", session, "#{window_width}x#{window_height}").strip() == "120x40"
    tmux("send-keys", "-t", session, f"exec {command}", "Enter")
    try:
        wait_for_screen(session, "wait for your decision", timeout=60)
        tmux("send-keys", "-t", session, "Down", "Down", "Enter")  # generation 3: input_range 0.5 → 1.0
        wait_for_screen(session, "Your decision", timeout=30)
        tmux("send-keys", "-t", session, "v")
        deadline = time.monotonic() + 30
        changed: list[str] = []
        while not changed and time.monotonic() < deadline:
            time.sleep(0.5)
            screen = tmux("capture-pane", "-p", "-t", session)
            changed = [line for line in screen.splitlines() if "= 0.5" in line and "= 1.0" in line]
        assert any("config.py" in line and "rationale" in line for line in screen.splitlines()), (
            f"not the wide layout (the diff beside the rationale):\n{screen}"
        )
        assert changed, f"the changed line does not show both values side by side:\n{screen}"
    finally:
        tmux("kill-session", "-t", session)
