"""A candidate's patched tree is built once and read as it is by the policy and the lineage."""

from __future__ import annotations

from pathlib import Path

from core.contracts import Proposal
from policies.engine import load_policy, resolve_policy_path
from sandbox.lineage import Lineage
from sandbox.patch import diff_stat
from sandbox.patched import patched_tree
from tests.conftest import file_diff, make_diff

EDIT_DELETE_ADD = (
    file_diff("model.py", "x = 1\n", "x = 10\n")
    + file_diff("old.py", "y = 2\n", None)
    + file_diff("scripts/new.py", None, "print('new')\n")
)


def lineage_of(tmp_path: Path, name: str) -> Lineage:
    source = tmp_path / f"{name}-source"
    source.mkdir()
    (source / "model.py").write_text("x = 1\n")
    (source / "old.py").write_text("y = 2\n")
    return Lineage.create(tmp_path / name, source)


def files_of(lineage: Lineage) -> dict[str, str]:
    return {
        str(p.relative_to(lineage.path)): p.read_text()
        for p in lineage.path.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(lineage.path).parts
    }


def test_the_patched_tree_is_committed_as_it_is_and_equals_the_diff_applied(tmp_path: Path) -> None:
    by_tree, by_diff = lineage_of(tmp_path, "by-tree"), lineage_of(tmp_path, "by-diff")
    with patched_tree(by_tree, by_tree.head(), EDIT_DELETE_ADD) as patched:
        assert patched.error is None and patched.stat == diff_stat(EDIT_DELETE_ADD)
        sha = by_tree.commit_candidate(EDIT_DELETE_ADD, 1, "generation 1: edit", patched=patched)
    assert by_tree.tree_of(sha) == patched.tree  # the tree evaluated is the tree committed
    other = by_diff.commit_candidate(EDIT_DELETE_ADD, 1, "generation 1: edit")
    assert by_diff.tree_of(other) == by_tree.tree_of(sha)
    assert (
        files_of(by_tree) == files_of(by_diff) == {"model.py": "x = 10\n", "scripts/new.py": "print('new')\n"}
    )
    assert by_tree.repo.git.status("--porcelain") == ""


def test_a_tree_built_from_another_parent_is_not_committed_the_diff_is_applied(tmp_path: Path) -> None:
    lineage = lineage_of(tmp_path, "lineage")
    first = file_diff("model.py", "x = 1\n", "x = 2\n")
    later = file_diff("old.py", "y = 2\n", "y = 3\n")
    base = lineage.head()
    with patched_tree(lineage, base, later) as stale:
        lineage.commit_candidate(first, 1, "generation 1: first")
        sha = lineage.commit_candidate(later, 2, "generation 2: later", patched=stale)
    assert lineage.tree_of(sha) != stale.tree
    assert files_of(lineage) == {"model.py": "x = 2\n", "old.py": "y = 3\n"}


def test_an_unusable_diff_gives_no_files_and_the_policy_denies_it_without_parsing_again(
    tmp_path: Path,
) -> None:
    lineage = lineage_of(tmp_path, "lineage")
    policy = load_policy(resolve_policy_path("default"))
    garbled = "diff --git a/model.py b/model.py\n--- a/model.py\n+++ b/elsewhere.py\n"
    stale = make_diff(lineage.path, "model.py", "x = 1", "x = 3").replace("x = 1", "x = 7")
    with (
        patched_tree(lineage, lineage.head(), garbled) as unparsed,
        patched_tree(lineage, lineage.head(), stale) as unapplied,
    ):
        assert unparsed.changes is None and unparsed.path is None and unparsed.error
        assert unapplied.changes and unapplied.path is None and unapplied.error
        verdict = policy.check(
            Proposal(diff=garbled, rationale="", proposer="t"), None, None, patched=unparsed
        )
    assert verdict.verdict == "deny" and verdict.findings[0].rule_id == "patch-format"
    assert verdict.findings[0].message == unparsed.error
