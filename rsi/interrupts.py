"""How a run is interrupted: signals abandon the step in flight, never half an atomic step.

An interruption — Ctrl-C, SIGINT/SIGTERM to the process or its process group, SIGHUP when the
terminal closes — raises `SignalInterrupt` where the loop is, unless it is inside an `atomic()`
step (an event and its status, a lineage commit and its event): then it takes effect when the
outermost such step is done.

Nor is it raised where raising would break the interpreter's own bookkeeping: inside `logging`,
whose locks are taken and released by hand (an exception between the two leaves a lock held, and
the next thread that logs — a sandbox's worker — waits forever, and the run with it), it is
delivered again a moment later; and one that a finalizer swallowed ("Exception ignored in …") is
delivered again too, so no interruption is ever lost.

    interrupts = Interrupts()
    with interrupts.installed():
        with interrupts.atomic():
            ...   # finishes even if a signal arrives
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

INTERRUPT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
"""Signals that end a run cleanly: the exit code is 128 + the signal's number (130, 143, 129)."""


RETRY_S = 0.01
"""How soon an interruption that could not be raised where it arrived is delivered again."""

MAX_DEFER_S = 2.0
"""How long an interruption waits for code that must not be cut to return: past it, it is raised
anyway (a run stuck inside such code must still end on a signal)."""

_HAND_LOCKED = ("logging",)
"""Packages that take and release their locks by hand, outside `with`: raising between the two
leaves the lock held for good."""


def _inside_hand_locked(frame: FrameType | None) -> bool:
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if any(module == name or module.startswith(name + ".") for name in _HAND_LOCKED):
            return True
        frame = frame.f_back
    return False


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
        self._deferred_since: float | None = None
        self._owed = False
        """A delivery is due again (on the next SIGALRM); cleared whenever the interruption is raised,
        so a retry never raises a second one into the cleanup of the first."""

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
            self._raise(self.signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is None:
            self.signal = signum
        self._deliver(frame)

    def _on_retry(self, signum: int, frame: FrameType | None) -> None:
        if self._owed:
            self._owed = False
            self._deliver(frame)

    def _deliver(self, frame: FrameType | None) -> None:
        """Raise the interruption here, or have it delivered again shortly if here is unsafe."""
        if self._atomic_depth > 0 or self.finishing or self.signal is None:
            self._deferred_since = None
            return  # the outermost atomic step raises it when done; a finishing run keeps going
        if _inside_hand_locked(frame):
            now = time.monotonic()
            self._deferred_since = self._deferred_since or now
            if now - self._deferred_since < MAX_DEFER_S:
                self._again()
                return
        self._raise(self.signal)

    def _again(self) -> None:
        self._owed = True
        signal.setitimer(signal.ITIMER_REAL, RETRY_S)

    def _raise(self, signum: int) -> None:
        self._owed, self._deferred_since = False, None
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise SignalInterrupt(signum)

    def _on_unraisable(self, unraisable: Any, previous: Any) -> None:
        """A finalizer swallowed the interruption: deliver it again, where it can be raised."""
        if isinstance(unraisable.exc_value, SignalInterrupt) and not self.finishing:
            self._again()
            return
        previous(unraisable)

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """SIGINT, SIGTERM and SIGHUP abandon the step in flight while inside (SIGALRM is taken
        for delivering an interruption again; see the module's docstring)."""
        previous: dict[int, Any] = {}
        try:
            for interrupt in INTERRUPT_SIGNALS:
                previous[interrupt] = signal.signal(interrupt, self._on_signal)
            previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._on_retry)
        except ValueError:  # not the main thread (the TUI runs the loop in a worker)
            yield
            return
        previous_hook = sys.unraisablehook
        sys.unraisablehook = lambda unraisable: self._on_unraisable(unraisable, previous_hook)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            sys.unraisablehook = previous_hook
            for signum, handler in previous.items():
                signal.signal(signum, handler)
