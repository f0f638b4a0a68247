"""A headless run in a real terminal (tmux): the progress bar stays below the printed blocks and
leaves no remnant, and the blocks say what changed."""

from __future__ import annotations

import re
import shlex
import shutil
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import IN_CI, ROOT
from tests.review.test_tmux_e2e import tmux

pytestmark = [pytest.mark.bwrap, pytest.mark.slow]
RSI = str(Path(sys.executable).with_name("rsi"))


def test_the_bar_never_runs_into_the_blocks(tmp_path: Path) -> None:
    for tool in ("tmux", "bwrap"):
        if shutil.which(tool) is None:
            if IN_CI:
                pytest.fail(f"{tool} is not installed (CI=true: this test must run)")
            pytest.skip(f"{tool} is not installed")
    session = f"rsi-bar-{tmp_path.name[-12:]}"
    command = (
        f"cd {shlex.quote(str(ROOT))} && {shlex.quote(RSI)} run --headless --backend bwrap "
        f"--generations 2 --seeds 2 --run-dir {shlex.quote(str(tmp_path / 'run'))}; echo run-exit-$?-code"
    )
    tmux("new-session", "-d", "-s", session, "-x", "110", "-y", "50")
    try:
        tmux("send-keys", "-t", session, command, "Enter")
        deadline = time.monotonic() + 400
        screen = ""
        # The typed command holds `run-exit-$?-code`; only the shell's answer holds a number.
        while not re.search(r"run-exit-\d+-code", screen) and time.monotonic() < deadline:
            time.sleep(1)
            screen = tmux("capture-pane", "-p", "-S", "-", "-t", session)
        assert "run-exit-0-code" in screen, screen
        lines = screen.splitlines()
        remnants = [line for line in lines if line.startswith("generations ") and "━" in line]
        assert not remnants, "\n".join(remnants)  # the transient bar left nothing, nothing ran into it
        assert any(line.startswith("generation 1 ─") for line in lines), screen
        assert "  change    input_range 0.5 → 1.0" in lines, screen
    finally:
        tmux("kill-session", "-t", session)
