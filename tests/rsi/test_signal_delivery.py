"""Where an interruption is raised: never where raising breaks the interpreter's own bookkeeping,
never lost. The signal is made to arrive at every line the logging machinery runs (a tracer calls
the handler there, as the interpreter would between two of that line's instructions), and inside a
finalizer, which swallows whatever it raises."""

from __future__ import annotations

import io
import logging
import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import Any

import pytest

from rsi.interrupts import MAX_DEFER_S, Interrupts, SignalInterrupt

WAIT_S = 30.0
"""How long a test waits for a deferred interruption (it comes within milliseconds when idle)."""


def _in_logging(frame: FrameType) -> bool:
    name = frame.f_globals.get("__name__", "")
    return name == "logging" or name.startswith("logging.")


def _raised_in(exc: BaseException) -> FrameType:
    tb: TracebackType | None = exc.__traceback__
    assert tb is not None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame


def _free_for_another_thread(*locks: Any) -> bool:
    """Whether a thread other than this one can take each lock (a lock left held blocks it)."""
    taken: list[bool] = []

    def take() -> None:
        for lock in locks:
            got = lock.acquire(timeout=5)
            taken.append(got)
            if got:
                lock.release()

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return all(taken)


def _release_if_held(lock: Any) -> None:
    """Undo a leak so that a failing case does not hang every later test that logs from a thread."""
    while lock._is_owned():
        lock.release()


def _log_with_signal_at(interrupts: Interrupts, at: int, parent: logging.Logger) -> bool:
    """Log through `parent` (a fresh child logger: the module lock and the handler's lock are
    both taken) with SIGTERM arriving at the at-th event (a call or a line) run inside logging.
    Returns whether there was an at-th event."""
    seen = 0
    fired = False

    def tracer(frame: FrameType, event: str, arg: object) -> Any:
        nonlocal seen, fired
        if fired or not _in_logging(frame):
            return tracer if not fired else None
        seen += 1
        if seen == at:
            fired = True
            sys.settrace(None)
            interrupts._on_signal(signal.SIGTERM, frame)
            return None
        return tracer

    sys.settrace(tracer)
    try:
        parent.getChild(f"case{at}").warning("a line logged while a signal arrives")
    finally:
        sys.settrace(None)
    return fired


def test_a_signal_arriving_anywhere_inside_logging_is_raised_after_it_with_every_lock_free() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    parent = logging.getLogger("rsi.test.signal-delivery")
    parent.addHandler(handler)
    parent.propagate = False
    cases = 0
    try:
        for at in range(1, 10_000):
            interrupts = Interrupts()
            caught: SignalInterrupt | None = None
            with interrupts.installed():
                try:
                    if not _log_with_signal_at(interrupts, at, parent):
                        break
                    deadline = time.monotonic() + WAIT_S
                    while time.monotonic() < deadline:
                        time.sleep(0.001)
                except SignalInterrupt as exc:
                    caught = exc
            try:
                assert caught is not None, f"event {at}: the interruption was lost"
                assert caught.signum == signal.SIGTERM
                where = _raised_in(caught)
                assert not _in_logging(where), f"event {at}: raised inside logging at {where}"
                assert _free_for_another_thread(logging._lock, handler.lock), (
                    f"event {at}: a logging lock was left held"
                )
            finally:
                _release_if_held(logging._lock)
                _release_if_held(handler.lock)
            cases += 1
    finally:
        parent.removeHandler(handler)
    assert cases > 20, f"only {cases} points inside logging were tried"
    # Every line was still written, the last one (no event left to interrupt) included.
    assert stream.getvalue().count("a line logged") == cases + 1


def test_a_second_signal_raises_once_and_no_retry_cuts_into_the_cleanup() -> None:
    """A signal deferred inside logging, then a second one outside: one interruption, and the
    retry still due from the first does not raise another into the handling of the first."""
    parent = logging.getLogger("rsi.test.signal-delivery.twice")
    parent.addHandler(logging.NullHandler())
    parent.propagate = False
    interrupts = Interrupts()
    raised = 0
    with interrupts.installed():
        try:
            try:
                assert _log_with_signal_at(interrupts, 1, parent)  # deferred: inside logging
                interrupts._on_signal(signal.SIGINT, sys._getframe())  # the second, outside it
                time.sleep(WAIT_S)  # (under load the retry may have come first: the same one)
            except SignalInterrupt:
                raised += 1
                cleanup_ends = time.monotonic() + 0.5
                while time.monotonic() < cleanup_ends:
                    time.sleep(0.001)
        except SignalInterrupt:
            raised += 1
    assert raised == 1


def test_an_interruption_a_finalizer_swallowed_is_delivered_again() -> None:
    interrupts = Interrupts()

    class Finalized:
        def __del__(self) -> None:
            interrupts._on_signal(signal.SIGTERM, sys._getframe())

    caught: SignalInterrupt | None = None
    with interrupts.installed():
        try:
            Finalized()  # dropped at once: its finalizer runs, and what it raises is swallowed
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                time.sleep(0.001)
        except SignalInterrupt as exc:
            caught = exc
    assert caught is not None, "the interruption swallowed by the finalizer was lost"
    assert caught.signum == signal.SIGTERM


def test_code_stuck_inside_logging_is_still_interrupted() -> None:
    """A handler that never returns (a full pipe) must not make the run uninterruptible."""
    interrupts = Interrupts()
    arrived = threading.Event()

    class Stuck(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            arrived.set()
            deadline = time.monotonic() + WAIT_S
            while time.monotonic() < deadline:
                time.sleep(0.01)

    logger = logging.getLogger("rsi.test.signal-delivery.stuck")
    stuck = Stuck()
    logger.addHandler(stuck)
    logger.propagate = False
    caught: SignalInterrupt | None = None
    started = time.monotonic()
    try:
        with interrupts.installed():
            # SIGTERM arrives once the handler is stuck; this thread is the one interrupted.
            threading.Timer(
                0.2, lambda: arrived.wait(WAIT_S) and os.kill(os.getpid(), signal.SIGTERM)
            ).start()
            try:
                logger.warning("stuck")
            except SignalInterrupt as exc:
                caught = exc
    finally:
        logger.removeHandler(stuck)
        _release_if_held(stuck.lock)
    took = time.monotonic() - started
    assert caught is not None
    assert MAX_DEFER_S * 0.9 <= took < WAIT_S, took


@pytest.mark.parametrize("depth", [1, 3])
def test_a_signal_inside_an_atomic_step_is_raised_when_the_outermost_step_is_done(depth: int) -> None:
    interrupts = Interrupts()
    finished: list[int] = []
    with interrupts.installed(), pytest.raises(SignalInterrupt):

        def nest(level: int) -> None:
            with interrupts.atomic():
                if level == depth:
                    signal.raise_signal(signal.SIGINT)
                    time.sleep(0.05)  # the handler runs here and must not raise
                else:
                    nest(level + 1)
                finished.append(level)

        nest(1)
    assert finished == list(range(depth, 0, -1))
