"""One generation's candidates measured at once, whatever parents they were proposed from.

    evaluations = evaluate_across(evaluator, parents, diffs, labels)   # in the input order

Candidates of one parent go through `Sandbox.evaluate_many` together (today's path when the whole
generation has one parent); the groups of different parents run side by side, so a tree search
keeps the cores as busy as a line.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from core.contracts import Evaluation, Sandbox
from core.diff import PatchedTree


def evaluate_across(
    evaluator: Sandbox,
    parents: Sequence[str],
    diffs: Sequence[str],
    labels: Sequence[str],
    patched: Sequence[PatchedTree] | None = None,
) -> list[Evaluation]:
    """patched: each candidate's tree, built once (else each evaluation builds its own)."""
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
