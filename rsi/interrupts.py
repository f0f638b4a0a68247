"""How a run is interrupted: signals abandon the step in flight, never half an atomic step.

An interruption — Ctrl-C, SIGINT/SIGTERM to the process or its process group, SIGHUP when the
terminal closes — raises `SignalInterrupt` where the loop is, unless it is inside an `atomic()`
step (an event and its status, a lineage commit and its event): then it takes effect when the
outermost such step is done.

    interrupts = Interrupts()
    with interrupts.installed():
        with interrupts.atomic():
            ...   # finishes even if a signal arrives
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a run cleanly: the exit code is 128 + the signal's number (130, 143, 129)."""


class SignalInterrupt(KeyboardInterrupt):
    """An interruption signal arrived: abandon the step in flight (a BaseException, like Ctrl-C,
    so no `except Exception` on the way up mistakes it for a failure of the step)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Interrupts:
    """The interruption state of one run: the first signal received, atomic steps in progress."""

    def __init__(self) -> None:
        self.signal: int | None = None
        """The first interruption signal received (see INTERRUPT_SIGNALS)."""
        self.finishing = False
        """Set once the run records its end: from then on nothing is abandoned."""
        self._atomic_depth = 0

    @contextlib.contextmanager
    def atomic(self) -> Iterator[None]:
        """A step an interruption must not cut in two: a signal arriving inside takes effect when
        the outermost such step is done."""
        self._atomic_depth += 1
        try:
            yield
        finally:
            self._atomic_depth -= 1
        if self._atomic_depth == 0 and self.signal is not None and not self.finishing:
            raise SignalInterrupt(self.signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self.signal is None:
            self.signal = signum
        if self._atomic_depth == 0 and not self.finishing:
            raise SignalInterrupt(signum)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """SIGINT, SIGTERM and SIGHUP abandon the step in flight while inside."""
        previous: dict[int, Any] = {}
        try:
            for interrupt in INTERRUPT_SIGNALS:
                previous[interrupt] = signal.signal(interrupt, self._on_signal)
        except ValueError:  # not the main thread (the TUI runs the loop in a worker)
            yield
            return
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
