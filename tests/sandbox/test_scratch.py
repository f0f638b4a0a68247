"""Host scratch directories: what a killed process leaves, the next run removes; nothing else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sandbox.scratch import OWNED, remove_stale, scratch_dir
from tests.conftest import ROOT

MAKES_SCRATCH = """
import sys, time
from sandbox.scratch import make_scratch_dir, scratch_dir
held = scratch_dir("candidate")
kept = make_scratch_dir("labels")
(kept / "socket").write_text("x")
print(held.name, kept, flush=True)
time.sleep(600)
"""


def owner(tmp: Path) -> tuple[subprocess.Popen[str], list[Path]]:
    """A real process holding two scratch directories in `tmp`, and their paths."""
    process = subprocess.Popen(
        [sys.executable, "-c", MAKES_SCRATCH],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    return process, [Path(p) for p in process.stdout.readline().split()]


def test_a_killed_owners_scratch_is_removed_and_a_live_ones_kept(tmp_path: Path) -> None:
    killed, left = owner(tmp_path)
    alive, held = owner(tmp_path)
    try:
        os.kill(killed.pid, signal.SIGKILL)
        killed.wait()
        assert all(p.is_dir() and OWNED.fullmatch(p.name) for p in left + held), left + held
        # Named like scratch but not a directory of a dead owner: a link to one, a file, an unrelated
        # directory, a name whose pid is not a number.
        target = tmp_path / "elsewhere"
        target.mkdir()
        (tmp_path / f"rsi-candidate-{killed.pid}-link").symlink_to(target)
        (tmp_path / f"rsi-stage-{killed.pid}-file").write_text("x")
        (tmp_path / "rsi-evaluate-logs-abc").mkdir()
        (tmp_path / "unrelated").mkdir()
        with scratch_dir("stage") as mine:  # this process's own, while it is in use
            removed = remove_stale(tmp_path)
            assert sorted(removed) == sorted(left)
            assert Path(mine).is_dir()
        assert not any(p.exists() for p in left)
        assert all(p.is_dir() for p in held) and target.is_dir()
        assert {p.name for p in tmp_path.iterdir()} == {
            *(p.name for p in held),
            f"rsi-candidate-{killed.pid}-link",
            f"rsi-stage-{killed.pid}-file",
            "rsi-evaluate-logs-abc",
            "unrelated",
            "elsewhere",
        }
    finally:
        alive.kill()
        alive.wait()
    assert sorted(remove_stale(tmp_path)) == sorted(held)  # its owner is gone now too
