"""A live run for the review app: the composition root builds it, the app starts and shows it.

    app = make_app("live", live=live_run(config))               # rsi run in a terminal
    app = make_app("live", live=live_run(config, resume=True))  # rsi resume in a terminal

The app never builds a run itself: it calls `start` with its hooks (observer, the human at the
keyboard), and the reviewer is chosen here, by rsi.compose.make_reviewer, like everywhere else.
"""

from __future__ import annotations

from collections.abc import Callable

from core.run import RunSummary
from review.app import LiveRun, RunHooks
from rsi.compose import build_run, make_reviewer
from rsi.config import RunConfig
from rsi.loop import RunParts
from rsi.resume import resume_run


def live_run(
    config: RunConfig, resume: bool = False, customize: Callable[[RunParts], None] | None = None
) -> LiveRun:
    """The run `config` describes, to start (or, with `resume`, continue) inside the app.

    customize: adjusts the built parts before the loop starts (tests swap in a scripted proposer)."""

    def start(hooks: RunHooks) -> RunSummary:
        reviewer = make_reviewer(config, ask_human=hooks.ask_human, by=hooks.by)
        hooks.on_reviewer(reviewer)
        if resume:
            summary, _ = resume_run(
                config.run_dir, hooks.observer, config.generations, reviewer, hooks.on_loop
            )
            return summary
        loop, parts = build_run(config, observer=hooks.observer, reviewer=reviewer)
        if customize is not None:
            customize(parts)
        hooks.on_loop(loop)
        try:
            return loop.run()
        finally:
            parts.trajectory.close()

    return LiveRun(config.run_id, config.run_dir, start)
