"""Python source parsed into a syntax tree, safely from several threads.

    module = parse_module(text, filename="train.py")
    expression = parse_expression("x * 2")
    value = literal("[1, 2.5]")
    with parsing():  # a library that parses with ast.parse itself (bandit)
        manager.run_tests()

CPython (3.11 at least) keeps the AST converter's recursion depth in state that all threads share,
so two `ast.parse` calls at once can fail with "AST constructor recursion depth mismatch" (CPython
issue 106905). The harness parses candidates' files in the threads that measure them side by side
(integrity audits, artifact checks) while the loop's thread may parse for the policy; every parse of
ours goes through this one lock. Parsing is milliseconds; the lock costs nothing measurable.
(A check of the relabelled control's training audit, run in its own thread while the evaluation's
thread read the seeds' audits, failed a whole evaluation this way in CI.)

A library that parses on its own (bandit's checks) runs inside `parsing()`, under the same lock.

ruff's banned-api rule (TID251, pyproject.toml) keeps `ast.parse` and `ast.literal_eval` out of the
harness's own modules: code that runs inside a sandbox, in its own process, is exempt.
"""

from __future__ import annotations

import ast
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

_LOCK = threading.RLock()


@contextlib.contextmanager
def parsing() -> Iterator[None]:
    """Hold the parse lock while code that calls `ast.parse` itself runs (a library's)."""
    with _LOCK:
        yield


def parse_module(source: str, filename: str = "<unknown>") -> ast.Module:
    """The module's syntax tree; raises SyntaxError (or ValueError for NUL bytes) like `ast.parse`."""
    with _LOCK:
        return ast.parse(source, filename=filename)  # noqa: TID251


def parse_expression(source: str) -> ast.expr:
    """One expression's syntax tree."""
    with _LOCK:
        return ast.parse(source, mode="eval").body  # noqa: TID251


def literal(source: str | ast.AST) -> Any:
    """The value a literal's text (or an already parsed node) stands for, as `ast.literal_eval`
    gives it; raises ValueError, SyntaxError… as it does."""
    node = parse_expression(source) if isinstance(source, str) else source
    return ast.literal_eval(node)  # noqa: TID251  (a node: nothing is parsed)
