"""The harness parses Python from several threads at once (the fresh sandboxes' audits beside the
evaluation's, candidates side by side): every parse goes through core.pysource's one lock.

CPython 3.11 keeps the parser's AST-converter recursion depth in state all threads share; when one
thread's conversion lets another run (a garbage collection that runs a finalizer), the other's
parse moves the depth and one of them fails with "SystemError: AST constructor recursion depth
mismatch". A CI run lost a whole red-team evaluation that way: the relabelled control's audit was
read in its own thread while the evaluation's thread read the seeds'.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from core.pysource import literal, parse_expression, parse_module
from policies.rules.code import run_bandit
from sandbox.runtime_audit import cython_registration, generated_shape, type_expression

# Code as a data class's generated __init__ is written: long, nested enough to take a while.
MODULE = "def __create_fn__(a, b):\n" + "".join(
    f"    x{i} = (a + {i}) * (b - {i}) if a else [b for _ in range({i})]\n" for i in range(150)
)
EXPRESSION = " | ".join(f"dict[str, list[tuple[int, T{i}]]]" for i in range(60))
LITERAL = repr([{"k": [i, float(i), str(i)]} for i in range(150)])

ENTRY_POINTS: list[tuple[str, Callable[[], Any], Callable[[Any], bool]]] = [
    # name, call, what it answers
    ("parse_module", lambda: parse_module(MODULE), lambda r: r.body[0].name == "__create_fn__"),
    ("parse_expression", lambda: parse_expression(EXPRESSION), lambda r: type(r).__name__ == "BinOp"),
    ("literal", lambda: literal(LITERAL), lambda r: r[3] == {"k": [3, 3.0, "3"]}),
    ("generated_shape", lambda: generated_shape(MODULE), lambda r: isinstance(r, bool)),
    ("type_expression", lambda: type_expression(EXPRESSION), lambda r: r is True),
    ("cython_registration", lambda: cython_registration(MODULE), lambda r: r is False),
]


class _Yields:
    """Garbage whose finalizer lets another thread run, as any finalizer may."""

    def __del__(self) -> None:
        time.sleep(0)


@contextmanager
def frequent_collections() -> Iterator[None]:
    before = gc.get_threshold()
    gc.set_threshold(50, 5, 5)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def hammer(calls: list[Callable[[], Any]], seconds: float, threads: int = 4) -> list[BaseException]:
    """Each thread cycles through `calls`, making cyclic garbage with finalizers, for `seconds`."""
    failures: list[BaseException] = []
    deadline = time.monotonic() + seconds

    def work(offset: int) -> None:
        turn = offset
        while time.monotonic() < deadline:
            junk = [_Yields() for _ in range(20)]
            for item in junk:
                item.cycle = item  # type: ignore[attr-defined]
            del junk
            try:
                calls[turn % len(calls)]()
            except SystemError as exc:
                failures.append(exc)
            turn += 1

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    with frequent_collections():
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    return failures


def test_every_parse_of_the_harness_holds_up_from_several_threads_at_once(tmp_path: Path) -> None:
    # bandit, which the policy runs, parses each file itself: inside `parsing()`, under the lock.
    source = tmp_path / "train.py"
    source.write_text(MODULE, encoding="utf-8")
    calls = [call for _, call, _ in ENTRY_POINTS] + [lambda: run_bandit([str(source)], [])]
    failures = hammer(calls, seconds=3.0)
    assert not failures, failures[:3]


def test_bandits_own_parsing_waits_for_the_harnesss(tmp_path: Path) -> None:
    source = tmp_path / "train.py"
    source.write_text(MODULE, encoding="utf-8")
    failures = hammer([lambda: run_bandit([str(source)], []), lambda: parse_module(MODULE)], seconds=3.0)
    assert not failures, failures[:3]


@pytest.mark.parametrize(
    ("call", "answers"), [(c, a) for _, c, a in ENTRY_POINTS], ids=[n for n, _, _ in ENTRY_POINTS]
)
def test_each_entry_point_still_answers_as_it_did(
    call: Callable[[], Any], answers: Callable[[Any], bool]
) -> None:
    result = call()
    assert answers(result), result
