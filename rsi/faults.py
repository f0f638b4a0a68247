"""Fault injection, for the crash tests only.

With the environment variable `RSI_FAULT_PAUSE=<point>:<generation>` the process blocks forever at
that point (after the event of that kind was written, or at `lineage_committed`: after the lineage
commit, before its `commit` event), writing run_dir/.fault-paused first, so a test can `kill -9` it
at an exact moment. `RSI_FAULT_PAUSE=<point>` alone names the first such event of the run, in or
outside a generation (an `elite_check` belongs to none).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

FAULT_PAUSE_ENV = "RSI_FAULT_PAUSE"
FAULT_MARKER = ".fault-paused"


def fault_point(run_dir: Path, point: str, generation: int | None) -> None:
    """Block forever here if RSI_FAULT_PAUSE names this point (crash tests kill -9 the process)."""
    wanted = os.environ.get(FAULT_PAUSE_ENV)
    if not wanted or wanted not in (point, f"{point}:{generation}"):
        return
    (run_dir / FAULT_MARKER).write_text(wanted, encoding="utf-8")
    while True:
        time.sleep(60)
