"""End to end in a real terminal: `rsi run` opens the TUI in tmux; the user watches a generation,
accepts it, and the lineage has the commit."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.trajectory import TrajectoryReader
from sandbox.lineage import Lineage
from tests.conftest import IMAGE, IN_CI, ROOT, TARGET

pytestmark = [pytest.mark.docker, pytest.mark.slow]

# Only the contract is protected: whatever the offline proposer tries, a human decides it.
POLICY = """\
name: watch
description: Protect the contract; everything else is for the human at the keyboard.
default: allow
rules:
  - id: protected-paths
    description: The target's contract may not be touched.
    type: paths
    verdict: deny
    params: {patterns: ["rsi.toml"], include_target_protected: true}
"""


def tmux(*args: str) -> str:
    done = subprocess.run(["tmux", *args], capture_output=True, text=True, check=False)
    return done.stdout


def wait_for_screen(session: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if text in screen:
            return screen
        time.sleep(0.5)
    raise AssertionError(f"{text!r} never appeared on the terminal; last screen:\n{screen}")


def test_rsi_run_in_a_terminal_watch_and_accept(docker_client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    if shutil.which("tmux") is None:
        if IN_CI:
            pytest.fail("tmux is not installed (CI=true: this test must run)")
        pytest.skip("tmux is not installed")
    policy = tmp_path / "watch.yaml"
    policy.write_text(POLICY)
    run_dir = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "rsi",
        "run",
        "--target",
        str(TARGET),
        "--run-dir",
        str(run_dir),
        "--generations",
        "1",
        "--seeds",
        "1",
        "--policy",
        str(policy),
        "--proposer",
        "offline",
        "--image",
        IMAGE,
    ]
    shell = f"cd {shlex.quote(str(ROOT))} && {shlex.join(command)}; echo EXIT:$?; sleep 60"
    session = f"rsi-e2e-{os.getpid()}"
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40", shell)
    tmux("resize-window", "-t", session, "-x", "120", "-y", "40")
    try:
        screen = wait_for_screen(session, "Your decision", timeout=300)
        assert "generation 1" in screen and "awaiting review" in screen
        assert "claimed vs measured" in screen and "measured:" in screen
        tmux("send-keys", "-t", session, "a")
        screen = wait_for_screen(session, "run completed", timeout=120)
        assert "1 accepted" in screen
        tmux("send-keys", "-t", session, "q")
        screen = wait_for_screen(session, "EXIT:", timeout=60)
        assert "EXIT:0" in screen, screen
        assert "run finished" in screen  # the plain summary is left in the terminal
    finally:
        tmux("kill-session", "-t", session)
    decisions = [e for e in TrajectoryReader(run_dir / "trajectory.jsonl").events() if e.kind == "decision"]
    assert [(d.generation, d.data["decision"]) for d in decisions] == [(1, "accept")]
    assert decisions[0].data["by"].startswith("human:")
    log = Lineage(run_dir / "lineage").log()
    assert len(log) == 2 and log[0][1].startswith("generation 1:")
    assert f"accept by {decisions[0].data['by']}" in log[0][1]
