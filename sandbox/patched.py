"""A candidate's patched tree, built once: the parent exported, the diff parsed and applied.

The loop builds it as soon as a candidate is proposed and hands it to the evaluator (the sandbox's
staged files), the policy (whole post-patch files for the code rules) and the lineage (the files
committed when it is accepted), so the diff is parsed and applied once per candidate:

    with patched_tree(lineage, parent, diff) as patched:
        evaluation = evaluator.evaluate(parent, diff, label="gen-3", patched=patched)
        verdict = policy.check(proposal, evaluation, parent_eval, patched=patched)

A diff that does not parse or apply still gives a PatchedTree, without files (`path` None) and
with the reason (`error`): the evaluator records `patch_rejected`, the policy its finding.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.contracts import LineageStore
from core.diff import PatchedTree
from core.errors import PatchError
from sandbox.patch import apply_patches, file_changes, parse_patches
from sandbox.scratch import scratch_dir
from sandbox.tree import tree_id


def build_patched_tree(lineage: LineageStore, parent_commit: str, diff: str, into: Path) -> PatchedTree:
    """The parent's files in `into` (a new directory) with the diff applied."""
    try:
        patches = parse_patches(diff)
    except PatchError as exc:
        return PatchedTree(parent_commit, diff, changes=None, path=None, error=str(exc))
    tree = lineage.export(parent_commit, into)
    try:
        apply_patches(patches, tree)
    except PatchError as exc:
        return PatchedTree(parent_commit, diff, changes=file_changes(patches), path=None, error=str(exc))
    # Numbered where each hunk applied, not where its header says (see sandbox.patch.Hunk).
    return PatchedTree(parent_commit, diff, changes=file_changes(patches), path=tree, tree=tree_id(tree))


@contextmanager
def patched_tree(lineage: LineageStore, parent_commit: str, diff: str) -> Iterator[PatchedTree]:
    """A PatchedTree in a temporary directory, removed when the block ends."""
    with scratch_dir("candidate") as tmp:
        yield build_patched_tree(lineage, parent_commit, diff, Path(tmp) / "tree")
