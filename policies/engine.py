"""The policy engine: declarative YAML rules that judge a diff and its measured evaluation.

A policy file names a default verdict and an ordered list of rules. Each rule has an id, a type,
parameters, the verdict it gives when it fires (allow, review, deny) and examples that must /
must not make it fire; the examples are checked when the file loads, so a broken rule fails
loudly. The strictest verdict among the findings wins; no finding gives the policy's default.

    policy = load_policy(Path("policies/default.yaml"), target=spec)
    verdict = policy.check(proposal, evaluation, parent_evaluation)

Rule types live in policies/rules/ (one module per family); policies/example.yaml documents each.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

import policies.rules  # noqa: F401  (registers the rule types)
from core.contracts import VERDICT_ORDER, Evaluation, Finding, Proposal, Verdict, VerdictKind
from core.diff import FileChange, PatchedTree
from core.errors import ConfigError, PatchError
from core.paired import PairedComparison, paired_comparison
from core.target import TargetSpec
from policies.base import RULE_TYPES, CheckContext, PolicyFile, Rule, RuleSpec
from sandbox.patch import parse_diff

SHIPPED = Path(__file__).parent
EXAMPLE_FILE = "policies/example.yaml"

__all__ = [
    "RULE_TYPES",
    "CheckContext",
    "LoadedPolicy",
    "Rule",
    "RuleSpec",
    "load_policy",
    "parse_policy",
    "resolve_policy_path",
]


class LoadedPolicy:
    """A validated policy whose rule examples all passed: `check` gives the verdict on a candidate."""

    def __init__(
        self, source: str, text: str, spec: PolicyFile, rules: list[Rule], target: TargetSpec | None = None
    ) -> None:
        self.source = source
        self.name = spec.name
        self.spec = spec
        self.rules = rules
        self.target = target
        self.content_hash = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self.confidence = spec.confidence
        """The level of every paired interval this policy judges by (racing uses it too)."""

    def check(
        self,
        proposal: Proposal,
        evaluation: Evaluation | None,
        parent: Evaluation | None,
        tree: Path | None = None,
        patched: PatchedTree | None = None,
    ) -> Verdict:
        """The verdict on a proposal (and, when given, its evaluation against the parent's).

        `tree` is the patched tree when the caller has it: code rules then read whole files.
        `patched` (instead of `tree`): the candidate's tree as built once, its diff parsed already.
        """
        if patched is not None and patched.diff != proposal.diff:
            raise ValueError("the patched tree given was built from another diff than the proposal's")
        changes, error = _parsed(proposal.diff, patched)
        if changes is None:
            return self._verdict([Finding(rule_id="patch-format", verdict="deny", message=error)])
        if patched is not None:
            tree = patched.path
        ctx = CheckContext(
            diff=proposal.diff,
            changes=changes,
            evaluation=evaluation,
            parent=parent,
            target=self.target,
            tree=tree,
        )
        return self.judge(ctx)

    def judge(self, ctx: CheckContext) -> Verdict:
        if ctx.paired is None:
            ctx.paired = paired_against_parent(ctx.evaluation, ctx.parent, self.spec.confidence)
        findings: list[Finding] = []
        for rule in self.rules:
            if rule.needs_evaluation and ctx.evaluation is None:
                continue
            findings.extend(_run_rule(rule, ctx))
        return self._verdict(findings, ctx.paired)

    def _verdict(self, findings: list[Finding], paired: PairedComparison | None = None) -> Verdict:
        verdict: VerdictKind = self.spec.default
        if findings:
            verdict = max((f.verdict for f in findings), key=VERDICT_ORDER.__getitem__)
        return Verdict(
            verdict=verdict,
            findings=findings,
            policy_name=self.name,
            policy_hash=self.content_hash,
            paired=paired,
        )


def paired_against_parent(
    evaluation: Evaluation | None, parent: Evaluation | None, confidence: float
) -> PairedComparison | None:
    """The candidate's metric against its parent's on the seeds both were measured on; None when
    either has no metric or they share fewer than two seeds (no interval to speak of)."""
    if evaluation is None or parent is None or evaluation.metric is None or parent.metric is None:
        return None
    child_seeds, parent_seeds = evaluation.metric.per_seed, parent.metric.per_seed
    if len(set(child_seeds) & set(parent_seeds)) < 2:
        return None
    return paired_comparison(parent_seeds, child_seeds, evaluation.metric.direction, confidence)


def _parsed(diff: str, patched: PatchedTree | None) -> tuple[list[FileChange] | None, str]:
    """The diff's file changes (parsed once: the patched tree's when given), or why there are none."""
    if patched is not None:
        return patched.changes, patched.error or ""
    try:
        return parse_diff(diff), ""
    except PatchError as exc:
        return None, str(exc)


def _run_rule(rule: Rule, ctx: CheckContext) -> list[Finding]:
    """A rule that crashes fails closed: its own finding, at least `review`, never a silent allow."""
    try:
        return rule.check(ctx)
    except (RecursionError, MemoryError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
        verdict = max(rule.spec.verdict, "review", key=VERDICT_ORDER.__getitem__)
        return [
            Finding(
                rule_id=rule.spec.id,
                verdict=verdict,
                message=f"the rule could not judge this diff ({type(exc).__name__}: {exc}); a human should",
                evidence={"internal_error": repr(exc)[:500]},
            )
        ]


# -- loading ----------------------------------------------------------------------------------


class _Locator:
    """Lines of the policy's YAML nodes, so errors can say where."""

    def __init__(self, root: yaml.Node | None, source: str) -> None:
        self.root = root
        self.source = source

    def line(self, path: tuple[Any, ...]) -> int | None:
        node, line = self.root, None
        for key in path:
            if node is None:
                break
            line = node.start_mark.line + 1
            node = _child(node, key)
        if node is not None:
            line = node.start_mark.line + 1
        return line

    def where(self, path: tuple[Any, ...]) -> str:
        line = self.line(path)
        return f"{self.source}:{line}" if line else self.source


def _child(node: yaml.Node, key: Any) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == str(key):
                # A key whose value is a scalar: point at the key's line (the value may be elsewhere).
                return v if not isinstance(v, yaml.ScalarNode) else k
        return None
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None


def _duplicate_keys(node: yaml.Node | None, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = getattr(key, "value", None)
            if isinstance(name, str) and name in seen:
                raise ConfigError(
                    f"{source}:{key.start_mark.line + 1}: key {name!r} appears twice in the same mapping; "
                    "YAML would silently keep the last one. Remove one."
                )
            if isinstance(name, str):
                seen.add(name)
            _duplicate_keys(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _duplicate_keys(item, source)


def _read_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise ConfigError(
            f"{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}). Fix the syntax "
            f"(see {EXAMPLE_FILE} for a valid policy)."
        ) from exc
    _duplicate_keys(root, source)
    return raw, root


def _rule_label(raw: Any, index: int | None) -> str:
    if index is None or not isinstance(raw, dict) or not isinstance(raw.get("rules"), list):
        return ""
    rules = raw["rules"]
    if index < len(rules) and isinstance(rules[index], dict):
        return f" rule {rules[index].get('id', f'#{index + 1}')!s}:"
    return f" rule #{index + 1}:"


def _schema_error(exc: ValidationError, raw: Any, locate: _Locator) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    index = loc[1] if len(loc) > 1 and loc[0] == "rules" and isinstance(loc[1], int) else None
    field_path = ".".join(str(p) for p in loc) or "(top level)"
    hint = "a policy needs `name` and a list of `rules` (each: id, type, verdict, params, examples)"
    if (loc and loc[-1] == "verdict") or "verdict" in field_path:
        hint = "a verdict is one of allow, review, deny"
    elif loc and loc[-1] == "id":
        hint = "a rule id is lower case letters, digits, '.', '_' or '-'"
    return ConfigError(
        f"{locate.where(loc)}:{_rule_label(raw, index)} {field_path}: {err['msg']}. Fix: {hint}; "
        f"see {EXAMPLE_FILE}."
    )


def _params_error(exc: ValidationError, spec: RuleSpec, index: int, locate: _Locator) -> ConfigError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    known = ", ".join(RULE_TYPES[spec.type].Params.model_fields) or "none"
    field_path = ".".join(str(p) for p in loc)
    return ConfigError(
        f"{locate.where(('rules', index, 'params', *loc))}: rule {spec.id}: params.{field_path}: "
        f"{err['msg']}. Fix: the params of a {spec.type} rule are: {known} (see {EXAMPLE_FILE})."
    )


def parse_policy(text: str, source: str, target: TargetSpec | None = None) -> LoadedPolicy:
    """Validate a policy's text, build its rules and check every rule's examples."""
    raw, root = _read_yaml(text, source)
    locate = _Locator(root, source)
    try:
        spec = PolicyFile.model_validate(raw)
    except ValidationError as exc:
        raise _schema_error(exc, raw, locate) from exc
    rules: list[Rule] = []
    seen: dict[str, int] = {}
    for index, rule_spec in enumerate(spec.rules):
        where = locate.where(("rules", index))
        if rule_spec.id in seen:
            raise ConfigError(
                f"{where}: rule {rule_spec.id}: duplicate rule id (first used by rule #{seen[rule_spec.id] + 1}); "
                "ids must be unique."
            )
        seen[rule_spec.id] = index
        rule_class = RULE_TYPES.get(rule_spec.type)
        if rule_class is None:
            raise ConfigError(
                f"{locate.where(('rules', index, 'type'))}: rule {rule_spec.id}: unknown type "
                f"{rule_spec.type!r}; known types: {', '.join(sorted(RULE_TYPES))} (see {EXAMPLE_FILE})."
            )
        try:
            rule = rule_class(rule_spec, target)
        except ValidationError as exc:
            raise _params_error(exc, rule_spec, index, locate) from exc
        except ConfigError as exc:
            raise ConfigError(
                f"{locate.where(('rules', index, 'params'))}: rule {rule_spec.id}: {exc}"
            ) from exc
        _check_examples(rule, index, locate)
        rules.append(rule)
    return LoadedPolicy(source, text, spec, rules, target)


def _check_examples(rule: Rule, index: int, locate: _Locator) -> None:
    for expected in ("match", "not_match"):
        for number, example in enumerate(rule.spec.examples.get(expected, []), start=1):
            where = locate.where(("rules", index, "examples", expected, number - 1))
            try:
                findings = rule.check(rule.example_context(example))
            except (PatchError, ConfigError) as exc:
                raise ConfigError(
                    f"{where}: rule {rule.spec.id}: {expected} example {number} is invalid: {exc}"
                ) from exc
            if bool(findings) != (expected == "match"):
                verb = "should fire but does not" if expected == "match" else "should not fire but does"
                got = f" (it found: {findings[0].message})" if findings else ""
                raise ConfigError(
                    f"{where}: rule {rule.spec.id}: {expected} example {number} {verb}{got}. Fix the rule's "
                    "params or the example."
                )


def load_policy(path: Path, target: TargetSpec | None = None) -> LoadedPolicy:
    if not path.is_file():
        shipped = sorted(p.name for p in SHIPPED.glob("*.yaml"))
        raise ConfigError(
            f"{path}: no policy file there. Shipped policies: {', '.join(shipped)} in {SHIPPED}."
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the policy ({exc}). Check the file.") from exc
    return parse_policy(text, str(path), target)


def resolve_policy_path(name_or_path: str) -> Path:
    """A path, or the name of a shipped policy ("default", "strict")."""
    path = Path(name_or_path)
    if path.exists() or path.suffix in (".yaml", ".yml") or "/" in name_or_path:
        return path
    return SHIPPED / f"{name_or_path}.yaml"
