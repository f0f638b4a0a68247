"""Rules on what the trusted harness measured: tests, the metric against the parent, resources,
suspicious jumps, and the harness's own integrity findings.

Their examples are mappings of measurements:
    {metric: [per-seed values], parent: [per-seed values], tests_failed: N, failure: KIND,
     resources: {wall_s, cpu_s, peak_memory_mb}, parent_resources: {...},
     integrity: [{rule_id, message, verdict}],
     checks: all-clean | {<check>: clean | finding | not_run}}
"""

from __future__ import annotations

import fnmatch
from typing import Any, Literal

from pydantic import Field, ValidationError

from core.contracts import (
    VERDICT_ORDER,
    Evaluation,
    Finding,
    MetricResult,
    Resources,
    TestResult,
    VerdictKind,
)
from core.errors import ConfigError
from core.paired import PairedComparison
from policies.base import CheckContext, NoParams, Params, Rule, rule_type

EXAMPLE_KEYS = {
    "metric",
    "parent",
    "tests_failed",
    "failure",
    "resources",
    "parent_resources",
    "integrity",
    "direction",
    "checks",
}
BEHAVIOURAL_CHECKS = [
    "minimal-budget",
    "artifact-sensitivity",
    "artifact-data",
    "row-independence",
    "rerun",
    "budget",
    "relabelled",
]
"""The harness's behavioural integrity checks (sandbox/integrity.py) a size rule may trust."""


class EvaluationRule(Rule):
    needs_evaluation = True

    def example_context(self, example: Any) -> CheckContext:
        if not isinstance(example, dict):
            raise ConfigError(
                f"a {self.kind} example must be a mapping of measurements ({sorted(EXAMPLE_KEYS)})"
            )
        unknown = set(example) - EXAMPLE_KEYS
        if unknown:
            raise ConfigError(f"unknown example keys {sorted(unknown)}; known: {sorted(EXAMPLE_KEYS)}")
        # An example states its own direction (default: higher is better): a policy file's examples
        # hold whichever target it is loaded for, a lower-is-better metric included.
        direction = example.get("direction", "higher")
        try:
            candidate = _example_evaluation(
                example.get("metric"),
                direction,
                example.get("tests_failed", 0),
                example.get("failure"),
                example.get("resources"),
                example.get("integrity"),
                example.get("checks"),
            )
            parent = None
            if example.get("parent") or example.get("parent_resources"):
                parent = _example_evaluation(
                    example.get("parent"), direction, resources=example.get("parent_resources")
                )
        except (ValidationError, TypeError, ValueError) as exc:
            raise ConfigError(f"measurements do not fit an Evaluation: {exc}") from exc
        return CheckContext(diff="", changes=[], evaluation=candidate, parent=parent, target=self.target)


def _example_evaluation(
    values: list[float] | None,
    direction: str,
    failed: int = 0,
    failure: str | None = None,
    resources: dict[str, float] | None = None,
    integrity: list[dict[str, Any]] | None = None,
    checks: str | dict[str, str] | None = None,
) -> Evaluation:
    metric = None
    if values:
        metric = MetricResult(
            name="metric",
            direction=direction,  # type: ignore[arg-type]
            per_seed=dict(enumerate(float(v) for v in values)),
        )
    return Evaluation.model_validate(
        {
            "parent_commit": "0" * 40,
            "diff_sha256": "",
            "backend": "example",
            "ok": failure is None,
            "failure": failure,
            "tests": TestResult(exit_code=1 if failed else 0, failed=failed, passed=5),
            "metric": metric,
            "resources": Resources(**(resources or {})),
            "integrity": [{"verdict": "review", "message": "", **item} for item in integrity or []],
            "checks": _example_checks(checks),
        }
    )


def _example_checks(checks: str | dict[str, str] | None) -> list[dict[str, str]]:
    if checks is None:
        return []
    if checks == "all-clean":
        return [{"check": name, "status": "clean"} for name in BEHAVIOURAL_CHECKS]
    if not isinstance(checks, dict):
        raise ValueError(f"checks must be 'all-clean' or a mapping of check name to status, not {checks!r}")
    return [{"check": name, "status": status} for name, status in checks.items()]


@rule_type
class TestsPassRule(EvaluationRule):
    kind = "tests_pass"
    summary = "the evaluation completed and the target's own tests passed"
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
        return self._fewer_tests_than_the_parent(tests, ctx.parent.tests if ctx.parent else None)

    def _fewer_tests_than_the_parent(self, tests: TestResult, parent: TestResult | None) -> list[Finding]:
        """The test directory is protected, so a candidate's gate report with fewer tests than the
        parent's did not come from running them all (a forged report, a collection cut short)."""
        if parent is None or "gate_report" not in (tests.counts_from, parent.counts_from):
            return []
        if tests.counts_from != parent.counts_from:
            return []
        ran, before = _tests_reported(tests), _tests_reported(parent)
        if ran >= before:
            return []
        return [
            self.finding(
                f"the test gate reported {ran} tests where the parent's reported {before} from the same "
                "protected test directory: the tests did not all run (a report written by code under "
                "test, or collection cut short); run them and compare the gate reports"
            )
        ]


def _tests_reported(tests: TestResult) -> int:
    expected_failures = sum(1 for outcome in tests.not_passed.values() if outcome in ("xfailed", "xpassed"))
    return tests.passed + tests.failed + tests.errors + tests.skipped + expected_failures


class MetricImprovesParams(Params):
    min_spreads: float = Field(default=1.0, ge=0)
    """The mean must beat the parent's by more than this many spreads (the larger of the two stds)."""
    min_delta: float = Field(default=0.0, ge=0)
    """...and by at least this absolute amount."""
    unclear_gain: VerdictKind = "review"
    """The verdict (never stricter than the rule's own) on a gain above min_delta that stays within
    the seed spread: the paired interval (at the policy's confidence level) says whether it is
    significant, and more seeds or a human should settle it rather than a silent deny."""


@rule_type
class MetricImprovesRule(EvaluationRule):
    kind = "metric_improves"
    summary = "the metric beats the parent's by more than the noise (seed spread) and a minimum delta"
    Params = MetricImprovesParams
    params: MetricImprovesParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        candidate, parent = ctx.evaluation, ctx.parent
        if candidate is None or candidate.metric is None or parent is None or parent.metric is None:
            return []
        gain, noise = candidate.metric.gain_over(parent.metric), candidate.metric.noise_against(parent.metric)
        needed = max(self.params.min_spreads * noise, self.params.min_delta)
        if gain > needed:
            return []
        if gain > self.params.min_delta and ctx.paired is not None:
            return [self._unclear(ctx.paired, needed)]
        return [
            self.finding(
                f"{candidate.metric.name} {candidate.metric.mean:.4f} vs parent {parent.metric.mean:.4f}: "
                f"gain {gain:+.4f} does not exceed the noise threshold {needed:.4f}",
                gain=gain,
                threshold=needed,
            )
        ]

    def _unclear(self, paired: PairedComparison, needed: float) -> Finding:
        """A positive gain within the seed spread: its paired interval decides nothing alone."""
        verdict = min(self.params.unclear_gain, self.spec.verdict, key=VERDICT_ORDER.__getitem__)
        significance = (
            "significant on the paired seeds but"
            if paired.significant
            else "positive but not significant (the interval reaches zero) and"
        )
        return self.finding(
            f"{paired.summary()}: {significance} within the noise threshold {needed:.4f}; "
            "more seeds or a human should decide",
            verdict=verdict,
            gain=paired.gain,
            low=paired.low,
            high=paired.high,
            confidence=paired.confidence,
            seeds=paired.seeds,
            threshold=needed,
        )


class MetricJumpParams(Params):
    max_spreads: float = Field(default=10.0, gt=0)
    """A gain larger than this many spreads (the larger seed std of candidate and parent) is a finding."""
    min_noise: float = Field(default=0.0, ge=0)
    """Floor of the spread, so a deterministic metric (std 0) does not make every gain a jump."""
    min_gain: float = Field(default=0.0, ge=0)
    """Only gains at least this large (absolute) count as jumps."""
    trust_checks: list[str] = Field(default_factory=list)
    """Behavioural integrity checks (names in Evaluation.checks, e.g. 'minimal-budget') that, when every
    one of them ran and came out clean with no integrity finding at all, make a large gain no jump:
    the harness has then shown that training, not code, earned it. Empty: judge by size alone."""


@rule_type
class MetricJumpRule(EvaluationRule):
    kind = "metric_jump"
    summary = "a gain of more than N spreads: suspiciously good results go to a human"
    Params = MetricJumpParams
    params: MetricJumpParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        candidate, parent = ctx.evaluation, ctx.parent
        if candidate is None or candidate.metric is None or parent is None or parent.metric is None:
            return []
        gain = candidate.metric.gain_over(parent.metric)
        noise = candidate.metric.noise_against(parent.metric, self.params.min_noise)
        limit = self.params.max_spreads * noise
        if gain <= limit or gain < self.params.min_gain:
            return []
        untrusted = self.untrusted_checks(candidate)
        if self.params.trust_checks and not untrusted:
            return []
        spreads = gain / noise if noise > 0 else float("inf")
        why = (
            f"; not vouched for by the behavioural checks ({'; '.join(untrusted)})"
            if self.params.trust_checks
            else ""
        )
        return [
            self.finding(
                f"{candidate.metric.name} jumped {gain:+.4f} ({spreads:.1f} spreads, limit "
                f"{self.params.max_spreads:g}): suspiciously good, a human should look{why}",
                gain=gain,
                spreads=spreads,
                untrusted_checks=untrusted,
            )
        ]

    def untrusted_checks(self, evaluation: Evaluation) -> list[str]:
        """Why the behavioural checks cannot vouch for this evaluation (empty: they all ran clean)."""
        ran = {check.check: check for check in evaluation.checks}
        reasons = []
        for name in self.params.trust_checks:
            check = ran.get(name)
            if check is None:
                reasons.append(f"{name}: not run")
            elif check.status != "clean":
                reasons.append(
                    f"{name}: {check.status.replace('_', ' ')}{' — ' + check.detail if check.detail else ''}"
                )
        if evaluation.integrity:
            reasons.append(
                "integrity findings: " + ", ".join(sorted({f.rule_id for f in evaluation.integrity}))
            )
        return reasons


class ResourcesParams(Params):
    max_wall_s: float | None = Field(default=None, gt=0)
    """Wall time of the whole evaluation (tests + every seed's train and predict)."""
    max_cpu_s: float | None = Field(default=None, gt=0)
    """CPU seconds of the candidate's commands."""
    max_peak_memory_mb: float | None = Field(default=None, gt=0)
    """Peak memory of the sandbox."""
    max_ratio_to_parent: float | None = Field(default=None, gt=0)
    """Each measured resource may be at most this multiple of the parent's."""


@rule_type
class ResourcesWithinRule(EvaluationRule):
    kind = "resources_within"
    summary = "wall time, CPU seconds and peak memory within limits (absolute, or relative to the parent)"
    Params = ResourcesParams
    params: ResourcesParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        if ctx.evaluation is None:
            return []
        used = ctx.evaluation.resources
        base = ctx.parent.resources if ctx.parent is not None else None
        findings = []
        for name, unit, limit in (
            ("wall_s", "s wall time", self.params.max_wall_s),
            ("cpu_s", " CPU seconds", self.params.max_cpu_s),
            ("peak_memory_mb", " MB peak memory", self.params.max_peak_memory_mb),
        ):
            value = getattr(used, name)
            if value is None:
                continue
            if limit is not None and value > limit:
                findings.append(self.finding(f"{value:.1f}{unit} exceeds the limit {limit:g}", resource=name))
            ratio = self.params.max_ratio_to_parent
            before = getattr(base, name) if base is not None else None
            if ratio is not None and before and value > ratio * before:
                findings.append(
                    self.finding(
                        f"{value:.1f}{unit} is {value / before:.1f}x the parent's {before:.1f} "
                        f"(limit {ratio:g}x)",
                        resource=name,
                    )
                )
        return findings


class IntegrityParams(Params):
    rule_ids: list[str] = Field(default_factory=lambda: ["*"])
    """fnmatch patterns of the harness's integrity finding ids to map (e.g. 'integrity.input-*')."""
    verdict_from: Literal["rule", "finding", "stricter"] = "rule"
    """The verdict of a mapped finding: this rule's, the harness finding's own, or the stricter."""


@rule_type
class IntegrityRule(EvaluationRule):
    kind = "integrity"
    summary = "maps the harness's integrity findings (Evaluation.integrity) by rule id to a verdict"
    Params = IntegrityParams
    params: IntegrityParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        if ctx.evaluation is None:
            return []
        findings = []
        for found in ctx.evaluation.integrity:
            if not any(fnmatch.fnmatchcase(found.rule_id, p) for p in self.params.rule_ids):
                continue
            verdict = {
                "rule": self.spec.verdict,
                "finding": found.verdict,
                "stricter": max(self.spec.verdict, found.verdict, key=VERDICT_ORDER.__getitem__),
            }[self.params.verdict_from]
            findings.append(
                self.finding(
                    f"integrity check {found.rule_id}: {found.message}",
                    file=found.file,
                    line=found.line,
                    verdict=verdict,
                    integrity_rule=found.rule_id,
                    harness_evidence=found.evidence,
                )
            )
        return findings
