"""One generation's candidates measured at once, whatever parents they were proposed from.

    evaluations = evaluate_across(evaluator, parents, diffs, labels)   # in the input order

Candidates of one parent go through `Sandbox.evaluate_many` together (today's path when the whole
generation has one parent); the groups of different parents run side by side, so a tree search
keeps the cores as busy as a line.

CPython (3.11 at least) keeps the AST constructor's recursion depth in state shared by all threads,
so two `ast.parse` calls at once (the harness's integrity checks parse each candidate's files in
its evaluation thread) can fail with "AST constructor recursion depth mismatch" (CPython issue
106905). While candidates are measured in parallel, `ast.parse` is therefore serialised.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.contracts import Evaluation, Sandbox
from core.diff import PatchedTree

_PARSE_LOCK = threading.Lock()


def _serialised(parse: Callable[..., Any]) -> Callable[..., Any]:
    def parse_one_at_a_time(*args: Any, **kwargs: Any) -> Any:
        with _PARSE_LOCK:
            return parse(*args, **kwargs)

    parse_one_at_a_time.serialised = True  # type: ignore[attr-defined]
    return parse_one_at_a_time


def serialise_ast_parsing() -> None:
    """Make `ast.parse` safe to call from several threads (idempotent)."""
    if not getattr(ast.parse, "serialised", False):
        ast.parse = _serialised(ast.parse)


def evaluate_across(
    evaluator: Sandbox,
    parents: Sequence[str],
    diffs: Sequence[str],
    labels: Sequence[str],
    patched: Sequence[PatchedTree] | None = None,
) -> list[Evaluation]:
    """patched: each candidate's tree, built once (else each evaluation builds its own)."""
    serialise_ast_parsing()
    groups: dict[str, list[int]] = {}
    for index, parent in enumerate(parents):
        groups.setdefault(parent, []).append(index)
    if len(groups) == 1:
        return evaluator.evaluate_many(parents[0], diffs, labels=labels, patched=patched)
    pool = ThreadPoolExecutor(max_workers=len(groups))
    futures = {
        parent: pool.submit(
            evaluator.evaluate_many,
            parent,
            [diffs[i] for i in indices],
            [labels[i] for i in indices],
            [patched[i] for i in indices] if patched is not None else None,
        )
        for parent, indices in groups.items()
    }
    results: dict[int, Evaluation] = {}
    try:
        for parent, indices in groups.items():
            results.update(zip(indices, futures[parent].result(), strict=True))
    finally:
        # An interruption does not wait for the other groups: the run removes its sandboxes.
        pool.shutdown(wait=False, cancel_futures=True)
    return [results[index] for index in range(len(diffs))]
