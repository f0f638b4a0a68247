"""The `integrity` rule type: maps the harness's integrity findings (Evaluation.integrity) to a verdict.

The trusted evaluator's reward-hacking checks (sandbox.integrity) report findings with rule ids
"integrity.<check>"; this rule decides what they mean for the candidate.

    - id: integrity
      type: integrity
      verdict: review
      params: {checks: ["integrity.*"]}
      examples:
        match: [{integrity: ["integrity.determinism"]}]
        not_match: [{integrity: []}]
"""

from __future__ import annotations

import fnmatch
from typing import Any

from pydantic import Field

from policies.engine import CheckContext, EvaluationRule, _Params, rule_type
from rsi.contracts import Finding
from rsi.errors import ConfigError


class IntegrityParams(_Params):
    checks: list[str] = Field(default_factory=lambda: ["integrity.*"])
    """Glob patterns over integrity finding ids ("integrity.*", "integrity.budget") this rule judges."""


@rule_type
class IntegrityRule(EvaluationRule):
    kind = "integrity"
    Params = IntegrityParams

    def check(self, ctx: CheckContext) -> list[Finding]:
        params: IntegrityParams = self.params  # type: ignore[assignment]
        if ctx.evaluation is None:
            return []
        return [
            Finding(
                rule_id=self.spec.id,
                verdict=self.spec.verdict,
                message=f"[{flagged.rule_id}] {flagged.message}",
                file=flagged.file,
                line=flagged.line,
                evidence={"check": flagged.rule_id, **flagged.evidence},
            )
            for flagged in ctx.evaluation.integrity
            if any(fnmatch.fnmatchcase(flagged.rule_id, pattern) for pattern in params.checks)
        ]

    def example_context(self, example: Any) -> CheckContext:
        """Examples are mappings like the other evaluation rules', plus `integrity: [finding ids]`."""
        ctx = super().example_context(example)
        ids = example.get("integrity", [])
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ConfigError(
                f"rule {self.spec.id}: an integrity example's `integrity` must be a list of ids"
            )
        assert ctx.evaluation is not None
        ctx.evaluation.integrity = [
            Finding(rule_id=i, verdict="review", message="example finding") for i in ids
        ]
        return ctx
