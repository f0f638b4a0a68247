"""Small helpers for the policy tests: one-rule policies and diffs of before/after texts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from core.contracts import Finding, Proposal
from policies.engine import CheckContext, LoadedPolicy, parse_policy
from sandbox.patch import parse_diff
from tests.conftest import file_diff

# A realistic file to edit in the middle of, so hunks start and end inside blocks.
TRAIN = '''"""Training."""

import os
import time

import numpy as np


def should_log(config, step):
    is_last = step + 1 == config.steps
    return is_last or step % config.log_every == 0


def train(config, seed, log=True):
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for step in range(config.steps):
        loss = step * 0.5
        if log and should_log(config, step):
            elapsed = time.perf_counter() - start
            print(f"step {step} loss={loss:.4f} ({elapsed:.2f}s)")
    return loss


def main():
    out = "runs/out"
    os.makedirs(out, exist_ok=True)
    loss = train(None, 0)
    print(f"final_train_loss={loss:.6f}")
'''


def one_rule(kind: str, params: dict[str, Any] | None = None, verdict: str = "deny") -> LoadedPolicy:
    rule = {"id": "r", "type": kind, "verdict": verdict, "params": params or {}}
    return parse_policy(yaml.safe_dump({"name": "t", "rules": [rule]}), "t.yaml")


def findings(
    policy: LoadedPolicy, path: str, before: str | None, after: str | None, whole: bool = False
) -> list[Finding]:
    """Findings on one file's change: from the diff alone, or (whole=True) with the new text known."""
    diff = file_diff(path, before, after)
    if not whole:
        return policy.check(Proposal(diff=diff, rationale="", proposer="test"), None, None).findings
    sources = {path: after} if after is not None else {}
    ctx = CheckContext(diff=diff, changes=parse_diff(diff), new_sources=sources)
    return policy.judge(ctx).findings


def in_tree(policy: LoadedPolicy, tree: Path, path: str, before: str, after: str) -> list[Finding]:
    """Findings with the patched tree given (the file written with its new content)."""
    target = tree / path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(after)
    diff = file_diff(path, before, after)
    return policy.check(Proposal(diff=diff, rationale="", proposer="test"), None, None, tree=tree).findings
