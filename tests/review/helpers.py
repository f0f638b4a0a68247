"""Helpers for driving the review app with Pilot."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot


async def wait_until(
    pilot: Pilot[object], condition: Callable[[], bool], timeout: float = 30, what: str = ""
) -> None:
    """Let the app work until `condition` holds (the loop runs in a worker thread). It is asked
    only while the current screen is mounted: a pushed screen is current before its widgets exist."""
    deadline = time.monotonic() + timeout
    while not (pilot.app.screen.is_mounted and condition()):
        if time.monotonic() > deadline:
            app = pilot.app
            raise AssertionError(
                f"timed out after {timeout:.0f}s waiting for {what or condition}; screens "
                f"{[type(s).__name__ for s in app.screen_stack]}, state: {getattr(app, 'now', '')}"
            )
        await pilot.pause(0.1)
    # A screen is current as soon as it is pushed: let it mount and lay out before anyone reads it.
    await pilot.pause()


def screen_text(app: object) -> str:
    """The screen as plain text, for assertions on what the user reads."""
    strips = app.screen._compositor.render_strips()  # type: ignore[attr-defined]
    return "\n".join("".join(segment.text for segment in strip) for strip in strips)


def queue_shown(app: object) -> bool:
    """The queue screen is current *and* mounted: a pushed screen is current before its table fills."""
    from review.screens.queue import QueueScreen

    screen = app.screen  # type: ignore[attr-defined]
    return isinstance(screen, QueueScreen) and screen.ready
