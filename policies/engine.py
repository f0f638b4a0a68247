"""The policy engine: declarative YAML rules that judge a diff and its measured evaluation.

A policy file names a default verdict and an ordered list of rules. Each rule has an id, a type,
parameters, the verdict it gives when it fires (allow, review, deny) and examples that must /
must not make it fire; the examples are checked when the file loads, so a broken rule fails
loudly. The strictest verdict among the findings wins; no finding gives the policy's default.

    policy = load_policy(Path("policies/default.yaml"), target=spec)
    verdict = policy.check(proposal, evaluation, parent_evaluation)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import pathspec
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rsi.contracts import (
    VERDICT_ORDER,
    Evaluation,
    Finding,
    MetricResult,
    Proposal,
    TestResult,
    Verdict,
    VerdictKind,
)
from rsi.errors import ConfigError, PatchError
from rsi.target import TargetSpec
from sandbox.patch import FileChange, parse_diff

SHIPPED = Path(__file__).parent


@dataclass
class CheckContext:
    """What a rule sees: the parsed diff and, for evaluation rules, the measurements."""

    diff: str
    changes: list[FileChange]
    evaluation: Evaluation | None = None
    parent: Evaluation | None = None
    target: TargetSpec | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RuleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    description: str = ""
    type: str
    verdict: VerdictKind
    params: dict[str, Any] = Field(default_factory=dict)
    examples: dict[Literal["match", "not_match"], list[Any]] = Field(default_factory=dict)


class PolicyFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    default: VerdictKind = "allow"
    rules: list[RuleSpec]


class Rule:
    """A rule type: validates its params once, then judges each candidate."""

    kind: ClassVar[str]
    needs_evaluation: ClassVar[bool] = False
    Params: ClassVar[type[BaseModel]]

    def __init__(self, spec: RuleSpec, target: TargetSpec | None) -> None:
        self.spec = spec
        self.target = target
        self.params = self.Params.model_validate(spec.params)

    def finding(
        self, message: str, file: str | None = None, line: int | None = None, **evidence: Any
    ) -> Finding:
        return Finding(
            rule_id=self.spec.id,
            verdict=self.spec.verdict,
            message=message,
            file=file,
            line=line,
            evidence=evidence,
        )

    def check(self, ctx: CheckContext) -> list[Finding]:
        raise NotImplementedError

    def example_context(self, example: Any) -> CheckContext:
        """Build a context from one of the rule's examples (a diff for diff rules)."""
        if not isinstance(example, str):
            raise ConfigError(f"rule {self.spec.id}: a {self.kind} example must be a diff (a string)")
        return CheckContext(diff=example, changes=parse_diff(example), target=self.target)


RULE_TYPES: dict[str, type[Rule]] = {}


def rule_type(cls: type[Rule]) -> type[Rule]:
    RULE_TYPES[cls.kind] = cls
    return cls


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- diff rules -------------------------------------------------------------------------------


class PathsParams(_Params):
    patterns: list[str] = Field(default_factory=list)
    """gitignore-style patterns (matched with pathspec)."""
    include_target_protected: bool = False
    """Also protect the target's rsi.toml [protected].paths."""
    changes: list[Literal["added", "modified", "deleted", "renamed"]] = [
        "added",
        "modified",
        "deleted",
        "renamed",
    ]
    """Which kinds of change the rule forbids."""


@rule_type
class PathsRule(Rule):
    kind = "paths"
    Params = PathsParams

    def __init__(self, spec: RuleSpec, target: TargetSpec | None) -> None:
        super().__init__(spec, target)
        params: PathsParams = self.params  # type: ignore[assignment]
        patterns = list(params.patterns)
        if params.include_target_protected and target is not None:
            patterns += target.protected.paths
        try:
            self.matcher = pathspec.GitIgnoreSpec.from_lines(patterns)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"rule {spec.id}: bad path pattern: {exc}") from exc

    def check(self, ctx: CheckContext) -> list[Finding]:
        params: PathsParams = self.params  # type: ignore[assignment]
        findings = []
        for change in ctx.changes:
            touched = {change.path} | ({change.old_path} if change.old_path else set())
            hits = sorted(p for p in touched if self.matcher.match_file(p))
            if hits and change.status in params.changes:
                line = change.added[0].line_no if change.added else None
                findings.append(
                    self.finding(
                        f"{change.status} protected path {hits[0]}",
                        file=change.path,
                        line=line,
                        status=change.status,
                    )
                )
        return findings


class SizeParams(_Params):
    max_files: int | None = None
    max_added: int | None = None
    max_removed: int | None = None


@rule_type
class SizeRule(Rule):
    kind = "size"
    Params = SizeParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        params: SizeParams = self.params  # type: ignore[assignment]
        added = sum(len(c.added) for c in ctx.changes)
        removed = sum(len(c.removed) for c in ctx.changes)
        findings = []
        if params.max_files is not None and len(ctx.changes) > params.max_files:
            findings.append(self.finding(f"{len(ctx.changes)} files changed (limit {params.max_files})"))
        if params.max_added is not None and added > params.max_added:
            findings.append(self.finding(f"{added} lines added (limit {params.max_added})"))
        if params.max_removed is not None and removed > params.max_removed:
            findings.append(self.finding(f"{removed} lines removed (limit {params.max_removed})"))
        return findings


# -- evaluation rules -------------------------------------------------------------------------


class EvaluationRule(Rule):
    needs_evaluation = True

    def example_context(self, example: Any) -> CheckContext:
        """Evaluation examples are mappings: {failure, tests_failed, metric: [...], parent: [...]}."""
        if not isinstance(example, dict):
            raise ConfigError(f"rule {self.spec.id}: a {self.kind} example must be a mapping of measurements")
        direction = self.target.metric.direction if self.target else example.get("direction", "higher")

        def evaluation(values: list[float] | None, failed: int = 0, failure: str | None = None) -> Evaluation:
            metric = None
            if values:
                metric = MetricResult(
                    name="metric", direction=direction, per_seed=dict(enumerate(float(v) for v in values))
                )
            return Evaluation(
                parent_commit="0" * 40,
                diff_sha256="",
                backend="example",
                ok=failure is None,
                failure=failure,
                tests=TestResult(exit_code=1 if failed else 0, failed=failed, passed=5),
                metric=metric,
            )

        return CheckContext(
            diff="",
            changes=[],
            evaluation=evaluation(
                example.get("metric"), example.get("tests_failed", 0), example.get("failure")
            ),
            parent=evaluation(example.get("parent")) if example.get("parent") else None,
            target=self.target,
        )


class NoParams(_Params):
    pass


@rule_type
class TestsPassRule(EvaluationRule):
    kind = "tests_pass"
    Params = NoParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        evaluation = ctx.evaluation
        if evaluation is None:
            return []
        if evaluation.failure == "patch_rejected":
            return [self.finding(f"patch could not be applied: {evaluation.failure_detail}")]
        if evaluation.failure is not None:
            return [
                self.finding(f"evaluation failed ({evaluation.failure}): {evaluation.failure_detail[:300]}")
            ]
        tests = evaluation.tests
        if tests is None or not tests.ok:
            failed = tests.failed + tests.errors if tests else "?"
            return [self.finding(f"the target's tests did not pass ({failed} failed)")]
        return []


class MetricImprovesParams(_Params):
    min_spreads: float = 1.0
    """The mean must beat the parent's by more than this many spreads (the larger of the two stds)."""
    min_delta: float = 0.0
    """...and by at least this absolute amount."""


@rule_type
class MetricImprovesRule(EvaluationRule):
    kind = "metric_improves"
    Params = MetricImprovesParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        params: MetricImprovesParams = self.params  # type: ignore[assignment]
        candidate, parent = ctx.evaluation, ctx.parent
        if candidate is None or candidate.metric is None or parent is None or parent.metric is None:
            return []
        gain = improvement(candidate.metric, parent.metric)
        noise = max(candidate.metric.std, parent.metric.std)
        needed = max(params.min_spreads * noise, params.min_delta)
        if gain <= needed:
            return [
                self.finding(
                    f"{candidate.metric.name} {candidate.metric.mean:.4f} vs parent {parent.metric.mean:.4f}: "
                    f"gain {gain:+.4f} does not exceed the noise threshold {needed:.4f}",
                    gain=gain,
                    threshold=needed,
                )
            ]
        return []


def improvement(candidate: MetricResult, parent: MetricResult) -> float:
    """Signed gain in the metric's own direction (positive = better)."""
    delta = candidate.mean - parent.mean
    return delta if candidate.direction == "higher" else -delta


# -- loading ----------------------------------------------------------------------------------


class LoadedPolicy:
    def __init__(self, source: str, text: str, spec: PolicyFile, rules: list[Rule]) -> None:
        self.source = source
        self.name = spec.name
        self.spec = spec
        self.rules = rules
        self.content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()

    def check(self, proposal: Proposal, evaluation: Evaluation | None, parent: Evaluation | None) -> Verdict:
        try:
            changes = parse_diff(proposal.diff)
        except PatchError as exc:
            finding = Finding(rule_id="patch-format", verdict="deny", message=str(exc))
            return self._verdict([finding])
        ctx = CheckContext(
            diff=proposal.diff,
            changes=changes,
            evaluation=evaluation,
            parent=parent,
            target=self.rules[0].target if self.rules else None,
        )
        return self.judge(ctx)

    def judge(self, ctx: CheckContext) -> Verdict:
        findings: list[Finding] = []
        for rule in self.rules:
            if rule.needs_evaluation and ctx.evaluation is None:
                continue
            findings.extend(rule.check(ctx))
        return self._verdict(findings)

    def _verdict(self, findings: list[Finding]) -> Verdict:
        verdict: VerdictKind = self.spec.default
        if findings:
            verdict = max((f.verdict for f in findings), key=VERDICT_ORDER.__getitem__)
        return Verdict(
            verdict=verdict, findings=findings, policy_name=self.name, policy_hash=self.content_hash
        )


def _rule_lines(text: str) -> list[int]:
    """1-based line of each rule in the file, for error messages."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return []
    if not isinstance(node, yaml.MappingNode):
        return []
    for key, value in node.value:
        if getattr(key, "value", None) == "rules" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def parse_policy(text: str, source: str, target: TargetSpec | None = None) -> LoadedPolicy:
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(
            f"{where}: not valid YAML ({getattr(exc, 'problem', exc)}). Fix the syntax."
        ) from exc
    lines = _rule_lines(text)

    def where(index: int | None) -> str:
        if index is not None and index < len(lines):
            return f"{source}:{lines[index]}"
        return source

    try:
        spec = PolicyFile.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = err["loc"]
        index = loc[1] if len(loc) > 1 and loc[0] == "rules" and isinstance(loc[1], int) else None
        rule_id = ""
        if index is not None and isinstance(raw, dict):
            rule_id = (
                f" rule {raw['rules'][index].get('id', '?')!s}:"
                if isinstance(raw["rules"][index], dict)
                else ""
            )
        field_path = ".".join(str(p) for p in loc)
        raise ConfigError(
            f"{where(index)}:{rule_id} {field_path}: {err['msg']}. See policies/example.yaml."
        ) from exc
    rules: list[Rule] = []
    seen: set[str] = set()
    for index, rule_spec in enumerate(spec.rules):
        if rule_spec.id in seen:
            raise ConfigError(f"{where(index)}: rule {rule_spec.id}: duplicate rule id; ids must be unique.")
        seen.add(rule_spec.id)
        rule_class = RULE_TYPES.get(rule_spec.type)
        if rule_class is None:
            raise ConfigError(
                f"{where(index)}: rule {rule_spec.id}: unknown type {rule_spec.type!r}; known types: "
                f"{', '.join(sorted(RULE_TYPES))}."
            )
        try:
            rule = rule_class(rule_spec, target)
        except ValidationError as exc:
            err = exc.errors()[0]
            raise ConfigError(
                f"{where(index)}: rule {rule_spec.id}: params.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            ) from exc
        except ConfigError as exc:
            raise ConfigError(f"{where(index)}: {exc}") from exc
        _check_examples(rule, where(index))
        rules.append(rule)
    return LoadedPolicy(source, text, spec, rules)


def _check_examples(rule: Rule, where: str) -> None:
    for expected, examples in (
        ("match", rule.spec.examples.get("match", [])),
        ("not_match", rule.spec.examples.get("not_match", [])),
    ):
        for number, example in enumerate(examples, start=1):
            try:
                fired = bool(rule.check(rule.example_context(example)))
            except (PatchError, ConfigError, ValueError, TypeError) as exc:  # ValueError: pydantic's too
                raise ConfigError(
                    f"{where}: rule {rule.spec.id}: {expected} example {number} is invalid: {exc}"
                ) from exc
            if fired != (expected == "match"):
                verb = "should fire but does not" if expected == "match" else "should not fire but does"
                raise ConfigError(
                    f"{where}: rule {rule.spec.id}: {expected} example {number} {verb}. Fix the rule's "
                    "params or the example."
                )


def load_policy(path: Path, target: TargetSpec | None = None) -> LoadedPolicy:
    if not path.is_file():
        shipped = sorted(p.name for p in SHIPPED.glob("*.yaml"))
        raise ConfigError(
            f"{path}: no policy file there. Shipped policies: {', '.join(shipped)} in {SHIPPED}."
        )
    return parse_policy(path.read_text(encoding="utf-8"), str(path), target)


def resolve_policy_path(name_or_path: str) -> Path:
    """A path, or the name of a shipped policy ("default", "strict")."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return path
    return SHIPPED / f"{name_or_path}.yaml"


# Rule types kept in their own modules register themselves on import.
from policies import integrity_rule as _integrity_rule  # noqa: E402, F401
