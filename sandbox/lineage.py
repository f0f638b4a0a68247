"""The lineage: a git repository in the run directory whose `lineage` branch holds every accepted
generation as one commit (the metric and the decision in its message, a `gen-N` tag on it).

    lineage = Lineage.create(run_dir / "lineage", source=Path("target_repo"))
    tree = lineage.export(lineage.head(), into=tmpdir)    # a fresh copy of a commit's files
    sha = lineage.commit_candidate(diff, generation=3, message="...")
    sha = lineage.commit_candidate(diff, 3, "...", patched=patched)   # the evaluated files, as they are
"""

from __future__ import annotations

import gc
import io
import re
import shutil
import tarfile
import threading
from pathlib import Path

import git

from core.diff import PatchedTree
from core.errors import ConfigError, PatchError
from sandbox.patch import apply_diff

BRANCH = "lineage"
BRANCH_PREFIX = "branch-"
"""Branches of a tree lineage other than the first are called branch-N."""
IGNORED = shutil.ignore_patterns(".git", "__pycache__", "*.pyc", ".pytest_cache", ".venv", ".ruff_cache")
FULL_SHA = re.compile(r"[0-9a-f]{40}")
ARCHIVE_CACHE_SIZE = 8
"""Commits whose archives stay in memory (parents of recent generations; a target is small)."""
AUTHOR = git.Actor("rsi-sandbox", "rsi-sandbox@localhost")


class Lineage:
    def __init__(self, path: Path) -> None:
        try:
            self.repo = git.Repo(path)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
            raise ConfigError(f"{path}: not a lineage repository (no git repository there).") from exc
        self.path = path
        self._archives: dict[str, bytes] = {}
        self._cache_lock = threading.Lock()

    @classmethod
    def create(cls, path: Path, source: Path) -> Lineage:
        """Start a lineage from a copy of the target's files; the first commit is generation 0."""
        if path.exists():
            raise ConfigError(f"{path}: already exists; use `rsi resume` to continue that run.")
        shutil.copytree(source, path, ignore=IGNORED, symlinks=True)
        repo = git.Repo.init(path, initial_branch=BRANCH)
        with repo.config_writer() as config:
            config.set_value("user", "name", AUTHOR.name)
            config.set_value("user", "email", AUTHOR.email)
            config.set_value("commit", "gpgsign", "false")
        repo.git.add(A=True)
        repo.index.commit("generation 0: baseline (the target as given)", author=AUTHOR, committer=AUTHOR)
        repo.create_tag("gen-0")
        lineage = cls(path)
        # The repository object used above is garbage now, its git helper processes attached: it is
        # collected here, not at whatever moment the collector picks (a finaliser running while
        # Ctrl-C is handled prints a traceback of its own).
        del repo
        gc.collect()
        return lineage

    def head(self) -> str:
        """The branch head, even when a signal that ended the run killed GitPython's persistent
        `git cat-file` helpers (they share the process group): those are restarted."""
        try:
            return self.repo.head.commit.hexsha
        except Exception:
            self.repo.git.clear_cache()
            return self.repo.head.commit.hexsha

    def tree_of(self, commit: str) -> str:
        return self.repo.commit(commit).tree.hexsha

    def grow_from(self, parent: str, generation: int) -> None:
        """Check out the branch whose tip is `parent`, or start `branch-N` there (N: the first
        generation it will hold). A candidate built on the newest accepted commit continues its
        branch, so a run that always builds on the head stays on the one `lineage` branch; every
        node keeps its `gen-N` tag, so the tree reads from the tags and the branches alike."""
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

    def export(self, commit: str, into: Path) -> Path:
        """Write the files of `commit` into a fresh directory (no .git), and return it."""
        into.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(self._archive(commit))) as archive:
            archive.extractall(into, filter="data")
        return into

    def _archive(self, commit: str) -> bytes:
        """The tar of a commit's files; kept for full commit ids (immutable), so the parent that
        every candidate of a generation starts from costs one `git archive`, not one each."""
        if not FULL_SHA.fullmatch(commit):
            return self._run_archive(commit)
        with self._cache_lock:
            cached = self._archives.get(commit)
        if cached is None:
            cached = self._run_archive(commit)
            with self._cache_lock:
                self._archives[commit] = cached
                while len(self._archives) > ARCHIVE_CACHE_SIZE:
                    self._archives.pop(next(iter(self._archives)))
        return cached

    def _run_archive(self, commit: str) -> bytes:
        buffer = io.BytesIO()
        self.repo.archive(buffer, commit, format="tar")
        return buffer.getvalue()

    def commit_candidate(
        self, diff: str, generation: int, message: str, patched: PatchedTree | None = None
    ) -> str:
        """Apply an accepted diff on the branch head and commit it, atomically: all or nothing.

        `patched`: the candidate's files, built from the head with this diff: they are committed as
        they are (the tree evaluated is the tree committed) and the diff is not applied again."""
        try:
            if patched is not None and patched.path is not None and patched.matches(self.head(), diff):
                self._stage_files_of(patched.path)
            else:
                apply_diff(diff, self.path)
                self.repo.git.add(A=True)
            commit = self.repo.index.commit(message, author=AUTHOR, committer=AUTHOR)
            self.repo.create_tag(f"gen-{generation}", ref=commit, force=True)
        except (PatchError, git.GitCommandError) as exc:
            self.repo.git.reset("--hard", "HEAD")
            self.repo.git.clean("-fdx")
            raise PatchError(f"could not commit generation {generation} to the lineage: {exc}") from exc
        return commit.hexsha

    def _stage_files_of(self, tree: Path) -> None:
        """Make the index and the working files those of `tree` (a directory outside the lineage)."""
        self.repo.git.execute(
            ["git", "-C", str(tree), f"--git-dir={self.repo.git_dir}", "--work-tree=.", "add", "-A"]
        )
        # The lineage's own files follow the index (a later diff without a tree applies to them).
        self.repo.git.checkout("--", ".")
        self.repo.git.clean("-fd")

    def log(self) -> list[tuple[str, str]]:
        return [(c.hexsha, str(c.message).strip()) for c in self.repo.iter_commits(BRANCH)]
