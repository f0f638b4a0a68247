"""The pieces every rule type shares: the check context, the rule spec, the Rule base class and
the registry of rule types.

A rule type is a `Rule` subclass with a `kind`, a pydantic `Params` model (its YAML `params`) and
a `check(ctx) -> list[Finding]`; `@rule_type` registers it under its kind.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, Literal

import pathspec
from pydantic import BaseModel, ConfigDict, Field

from core.contracts import Evaluation, Finding, VerdictKind
from core.errors import ConfigError
from core.paired import PairedComparison
from core.target import TargetSpec
from policies.source import FileView, file_views
from sandbox.patch import FileChange, parse_diff


@dataclass
class CheckContext:
    """What a rule sees: the parsed diff and, for evaluation rules, the measurements."""

    diff: str
    changes: list[FileChange]
    evaluation: Evaluation | None = None
    parent: Evaluation | None = None
    target: TargetSpec | None = None
    tree: Path | None = None
    """The patched tree, when the caller has it: code rules then parse whole files, not hunks."""
    new_sources: Mapping[str, str] | None = None
    """Whole post-patch texts by path (an alternative to `tree`; the rule examples use it)."""
    paired: PairedComparison | None = None
    """The evaluation against the parent's, seed by seed, at the policy's confidence level."""
    extra: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def files(self) -> list[FileView]:
        """One FileView per changed file: hunks with context, pieces of parsed code."""
        return file_views(self.diff, self.changes, self.tree, self.new_sources)


class RuleSpec(BaseModel):
    """One rule as written in the policy file."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    """Unique id, lower case (letters, digits, `.`, `_`, `-`); it names the rule in every finding."""
    description: str = ""
    """One sentence: what the rule protects and why."""
    type: str
    """The rule type (see policies/example.yaml for every type and its params)."""
    verdict: VerdictKind
    """What a finding of this rule means: allow (informational), review (a human decides), deny."""
    params: dict[str, Any] = Field(default_factory=dict)
    """The rule type's parameters."""
    examples: dict[Literal["match", "not_match"], list[Any]] = Field(default_factory=dict)
    """Diffs / snippets / measurements that must (match) or must not (not_match) make the rule fire."""


class PolicyFile(BaseModel):
    """A policy file: a name, the verdict when nothing matches, and the rules."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Short name, recorded with every verdict."""
    description: str = ""
    """What the policy is for."""
    default: VerdictKind = "allow"
    """The verdict when no rule finds anything."""
    confidence: float = Field(default=0.95, gt=0, lt=1)
    """Two-sided confidence level of the paired interval of a candidate's gain over its parent (same
    seeds, per-seed differences, Student's t); recorded with every verdict."""
    rules: list[RuleSpec]
    """The rules; the strictest verdict among their findings wins."""


class Params(BaseModel):
    """Base of every rule type's params: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NoParams(Params):
    pass


def compile_globs(patterns: Iterable[str], what: str) -> pathspec.GitIgnoreSpec:
    """gitignore-style patterns (pathspec), or a ConfigError naming the bad pattern."""
    patterns = list(patterns)
    for pattern in patterns:
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern])
        except (ValueError, TypeError) as exc:
            raise ConfigError(
                f"{what}: bad gitignore-style pattern {pattern!r} ({exc}); write it as in a .gitignore, "
                "e.g. 'tests/', '*.py', 'src/**/eval*.py'"
            ) from exc
    return pathspec.GitIgnoreSpec.from_lines(patterns)


class Rule:
    """A rule type: validates its params once, then judges each candidate."""

    kind: ClassVar[str]
    summary: ClassVar[str] = ""
    needs_evaluation: ClassVar[bool] = False
    Params: ClassVar[type[BaseModel]] = NoParams

    def __init__(self, spec: RuleSpec, target: TargetSpec | None) -> None:
        self.spec = spec
        self.target = target
        self.params = self.Params.model_validate(spec.params)
        self.setup()

    def setup(self) -> None:
        """Compile what the params describe (globs, patterns); raise ConfigError when they are bad."""

    def finding(
        self,
        message: str,
        file: str | None = None,
        line: int | None = None,
        verdict: VerdictKind | None = None,
        **evidence: Any,
    ) -> Finding:
        return Finding(
            rule_id=self.spec.id,
            verdict=verdict or self.spec.verdict,
            message=message,
            file=file,
            line=line,
            evidence=evidence,
        )

    def check(self, ctx: CheckContext) -> list[Finding]:
        raise NotImplementedError

    def example_context(self, example: Any) -> CheckContext:
        """A context from one example: a diff, or {file, before, after} (after alone = a new file)."""
        if isinstance(example, str):
            return CheckContext(diff=example, changes=parse_diff(example), target=self.target)
        if isinstance(example, dict) and isinstance(example.get("file"), str):
            return snippet_context(example, self.target)
        raise ConfigError(
            f"a {self.kind} example must be a unified diff (a string) or a mapping "
            "{file: PATH, before: TEXT, after: TEXT} (omit before for a new file, after for a deletion)"
        )


def snippet_context(example: dict[str, Any], target: TargetSpec | None) -> CheckContext:
    unknown = set(example) - {"file", "before", "after"}
    if unknown:
        raise ConfigError(f"unknown example keys {sorted(unknown)}; use file, before, after")
    path, before, after = example["file"], example.get("before"), example.get("after")
    if before is None and after is None:
        raise ConfigError("a snippet example needs `before`, `after` or both")
    diff = "".join(
        difflib.unified_diff(
            str(before or "").splitlines(keepends=True),
            str(after or "").splitlines(keepends=True),
            fromfile=f"a/{path}" if before is not None else "/dev/null",
            tofile=f"b/{path}" if after is not None else "/dev/null",
        )
    )
    sources = {path: str(after)} if after is not None else {}
    return CheckContext(diff=diff, changes=parse_diff(diff), target=target, new_sources=sources)


RULE_TYPES: dict[str, type[Rule]] = {}


def rule_type(cls: type[Rule]) -> type[Rule]:
    RULE_TYPES[cls.kind] = cls
    return cls
