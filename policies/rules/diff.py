"""Rules on the shape of a diff: which paths it touches and how large it is."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from core.contracts import Finding
from core.errors import ConfigError
from policies.base import CheckContext, Params, Rule, compile_globs, rule_type
from sandbox.patch import AddedLine, FileChange

ChangeKind = Literal["added", "modified", "deleted", "renamed"]


class PathsParams(Params):
    patterns: list[str] = Field(default_factory=list)
    """gitignore-style patterns (matched with pathspec) of files the rule protects."""
    include_target_protected: bool = False
    """Also protect the target's rsi.toml [protected].paths."""
    changes: list[ChangeKind] = Field(default_factory=lambda: list(ChangeKind.__args__))  # type: ignore[attr-defined]
    """Which kinds of change the rule objects to (a rename counts for its old and its new path)."""


@rule_type
class PathsRule(Rule):
    kind = "paths"
    summary = "files matching gitignore-style globs may not be created / modified / deleted / renamed"
    Params = PathsParams
    params: PathsParams

    def setup(self) -> None:
        patterns = list(self.params.patterns)
        if self.params.include_target_protected and self.target is not None:
            patterns += self.target.protected.paths
        self.matcher = compile_globs(patterns, "params.patterns")

    def check(self, ctx: CheckContext) -> list[Finding]:
        findings = []
        for change in ctx.changes:
            if change.status not in self.params.changes:
                continue
            touched = {change.path} | ({change.old_path} if change.old_path else set())
            hits = sorted(p for p in touched if self.matcher.match_file(p))
            if hits:
                line = change.added[0].line_no if change.added else None
                findings.append(
                    self.finding(
                        f"{change.status} {hits[0]}: {self.spec.description or 'a protected path'}",
                        file=change.path,
                        line=line,
                        status=change.status,
                    )
                )
        return findings


class SizeParams(Params):
    max_files: int | None = Field(default=None, ge=0)
    """Most files one diff may change."""
    max_added: int | None = Field(default=None, ge=0)
    """Most lines added in total."""
    max_removed: int | None = Field(default=None, ge=0)
    """Most lines removed in total."""
    max_added_per_file: int | None = Field(default=None, ge=0)
    """Most lines added to any one file."""
    max_removed_per_file: int | None = Field(default=None, ge=0)
    """Most lines removed from any one file."""


@rule_type
class SizeRule(Rule):
    kind = "size"
    summary = "files changed, lines added/removed, per file and in total, against limits"
    Params = SizeParams
    params: SizeParams

    def example_context(self, example: Any) -> CheckContext:
        """Besides diffs and snippets: {files: N, added: N, removed: N} (spread over N files)."""
        if not (isinstance(example, dict) and "file" not in example):
            return super().example_context(example)
        unknown = set(example) - {"files", "added", "removed"}
        if unknown or not all(isinstance(v, int) and v >= 0 for v in example.values()):
            raise ConfigError(
                "a size example counts {files: N, added: N, removed: N} (non-negative integers)"
            )
        files = max(1, example.get("files", 1))
        changes = [
            FileChange(path=f"file{i}.py", old_path=f"file{i}.py", status="modified") for i in range(files)
        ]
        for kind in ("added", "removed"):
            for n in range(example.get(kind, 0)):
                getattr(changes[0], kind).append(AddedLine(n + 1, ""))
        return CheckContext(diff="", changes=changes, target=self.target)

    def check(self, ctx: CheckContext) -> list[Finding]:
        p = self.params
        added = sum(len(c.added) for c in ctx.changes)
        removed = sum(len(c.removed) for c in ctx.changes)
        findings = []
        for count, limit, what in (
            (len(ctx.changes), p.max_files, "files changed"),
            (added, p.max_added, "lines added"),
            (removed, p.max_removed, "lines removed"),
        ):
            if limit is not None and count > limit:
                findings.append(self.finding(f"{count} {what} (limit {limit})", count=count, limit=limit))
        for change in ctx.changes:
            for count, limit, what in (
                (len(change.added), p.max_added_per_file, "lines added to"),
                (len(change.removed), p.max_removed_per_file, "lines removed from"),
            ):
                if limit is not None and count > limit:
                    findings.append(
                        self.finding(
                            f"{count} {what} {change.path} (limit {limit} per file)",
                            file=change.path,
                            count=count,
                            limit=limit,
                        )
                    )
        return findings
