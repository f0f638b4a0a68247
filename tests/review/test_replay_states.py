"""Replay states share records copy-on-write: stepping back and forth in any order must give the
same state as folding the events from the start."""

from __future__ import annotations

import random
from pathlib import Path

from core.trajectory import TrajectoryReader
from review.state import ReplayStates, RunState
from tests.review.synthetic import many_generations, write_run


def fingerprint(state: RunState) -> list[tuple[int, str, str | None, int]]:
    return [(g, state.status(g), r.commit, len(r.decisions or [])) for g, r in sorted(state.records.items())]


def test_any_order_of_steps_gives_the_state_folded_from_the_start(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run", many_generations(60))
    events = list(TrajectoryReader(run_dir / "trajectory.jsonl").events())
    states = ReplayStates(events, {})
    states.EVERY = 25  # several checkpoints, shared with the states stepped from them
    rng = random.Random(7)
    cursors = [len(events) - 1, 0, *[rng.randrange(len(events)) for _ in range(60)], 30, 31, 29]
    for cursor in cursors:
        stepped = states.at(cursor)
        assert fingerprint(stepped) == fingerprint(RunState.from_events(events[: cursor + 1])), cursor
