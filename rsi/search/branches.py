"""The lineage as a tree: an accepted candidate is committed on top of its own parent.

    lineage = TreeLineage(run_dir / "lineage")
    lineage.grow_from(parent, generation=7)       # check out the branch whose tip is `parent`,
    sha = lineage.commit_candidate(diff, 7, msg)  # or start `branch-7` there; then commit

A candidate built on the newest accepted commit continues its branch (a greedy run stays on the
one `lineage` branch, as before); one built on an older node starts a new branch named after the
first generation it holds. Every node keeps its `gen-N` tag, so the tree reads from the tags and
the branches alike (`git log --graph --all`).
"""

from __future__ import annotations

import gc
from pathlib import Path

from sandbox.lineage import Lineage

BRANCH_PREFIX = "branch-"


class TreeLineage(Lineage):
    """A lineage whose accepted candidates grow from the parent they were proposed from."""

    @classmethod
    def start(cls, path: Path, source: Path) -> TreeLineage:
        """`Lineage.create`, typed as the tree it makes.

        The repository object `create` initialised with is garbage once it returns, its git helper
        processes still attached; it is collected here, not at whatever moment the collector
        picks — a finaliser that runs while Ctrl-C is handled prints a traceback of its own."""
        lineage = cls.create(path, source)
        assert isinstance(lineage, TreeLineage)
        gc.collect()
        return lineage

    def grow_from(self, parent: str, generation: int) -> None:
        if self.head() == parent:
            return
        tips = [branch for branch in self.repo.branches if branch.commit.hexsha == parent]
        if tips:
            self.repo.git.checkout(tips[0].name)
        else:
            self.repo.git.checkout("-b", f"{BRANCH_PREFIX}{generation}", parent)

    def branches(self) -> dict[str, str]:
        """Every branch of the tree and the commit at its tip."""
        return {branch.name: branch.commit.hexsha for branch in self.repo.branches}
