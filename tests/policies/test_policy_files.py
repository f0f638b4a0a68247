"""Policy files: the shipped ones load and test themselves; malformed ones say what, where, how to fix."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.target import TargetSpec
from policies.engine import RULE_TYPES, load_policy, parse_policy, resolve_policy_path
from tests.conftest import TARGET, make_diff
from tests.policies.helpers import findings

SHIPPED = ["default", "strict", "example"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_policies_load_and_every_rule_has_both_kinds_of_example(name: str) -> None:
    policy = load_policy(resolve_policy_path(name), target=TargetSpec.load(TARGET))
    for rule in policy.rules:
        assert rule.spec.examples.get("match") and rule.spec.examples.get("not_match"), rule.spec.id


def test_the_example_policy_documents_every_rule_type() -> None:
    policy = load_policy(resolve_policy_path("example"))
    assert {rule.spec.type for rule in policy.rules} == set(RULE_TYPES)


def test_default_allows_the_offline_proposers_config_changes() -> None:
    policy = load_policy(resolve_policy_path("default"), target=TargetSpec.load(TARGET))
    for old, new in [
        ("input_range: float = 0.5", "input_range: float = 1.0"),
        ("learning_rate: float = 0.02", "learning_rate: float = 0.04"),
        ('optimizer: str = "sgd"', 'optimizer: str = "adam"'),
        ("hidden_size: int = 32", "hidden_size: int = 96"),
    ]:
        diff = make_diff(TARGET, "config.py", old, new)
        from core.contracts import Proposal

        assert policy.check(Proposal(diff=diff, rationale="", proposer="t"), None, None).findings == []


RULE = "name: x\nrules:\n  - id: a\n    type: {type}\n    verdict: deny\n{extra}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: x\nrules: [\n", r"x\.yaml:3: not valid YAML"),
        ("name: x\nname: y\nrules: []\n", r"x\.yaml:2: key 'name' appears twice"),
        (RULE.format(type="nope", extra=""), r"x\.yaml:4: rule a: unknown type 'nope'; known types: bandit"),
        (
            RULE.format(type="paths", extra="").replace("deny", "maybe"),
            r"x\.yaml:5: rule a: rules\.0\.verdict: .*one of allow, review, deny",
        ),
        (
            "name: x\nrules:\n  - id: Bad Id\n    type: size\n    verdict: deny\n",
            r"x\.yaml:3: rule Bad Id: rules\.0\.id",
        ),
        ("name: x\nrulez: []\n", r"x\.yaml:1: rules: Field required"),
        (
            RULE.format(type="size", extra="    params:\n      max_files: 3\n      max_lines: 3\n"),
            r"x\.yaml:8: rule a: params\.max_lines: Extra inputs.*params of a size rule are: max_files",
        ),
        (
            RULE.format(type="size", extra="    params:\n      max_files: many\n"),
            r"x\.yaml:7: rule a: params\.max_files: Input should be a valid integer",
        ),
        (
            RULE.format(type="paths", extra="    params:\n      patterns: ['ok/', '!']\n"),
            r"x\.yaml:7: rule a: params\.patterns: bad gitignore-style pattern '!'",
        ),
        (
            RULE.format(type="code_added", extra="    params: {categories: [telepathy]}\n"),
            r"rule a: params\.categories\.0: Input should be 'network'",
        ),
        (
            RULE.format(type="size", extra="") + "  - id: a\n    type: size\n    verdict: deny\n",
            r"x\.yaml:6: rule a: duplicate rule id",
        ),
        (
            RULE.format(
                type="code_added",
                extra="    examples:\n      match:\n        - {file: a.py, after: 'x = 1'}\n",
            ),
            r"x\.yaml:8: rule a: match example 1 should fire but does not",
        ),
        (
            RULE.format(
                type="code_added",
                extra="    examples:\n      not_match:\n        - {file: a.py, after: 'import socket'}\n",
            ),
            r"x\.yaml:8: rule a: not_match example 1 should not fire but does \(it found: network",
        ),
        (
            RULE.format(type="code_added", extra="    examples:\n      match: [42]\n"),
            r"x\.yaml:7: rule a: match example 1 is invalid: a code_added example must be a unified diff",
        ),
        (
            RULE.format(type="tests_pass", extra="    examples:\n      match: [{tests_faild: 1}]\n"),
            r"rule a: match example 1 is invalid: unknown example keys \['tests_faild'\]",
        ),
        (
            RULE.format(type="paths", extra="    examples:\n      match: ['not a diff']\n"),
            r"rule a: match example 1 is invalid: patch has text but no file changes",
        ),
    ],
)
def test_malformed_policies_name_file_line_rule_and_fix(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(text, "x.yaml")


def test_the_policy_hash_goes_with_every_verdict() -> None:
    text = RULE.format(type="size", extra="    params: {max_files: 0}\n")
    policy = parse_policy(text, "x.yaml")
    assert findings(policy, "a.py", "x\n", "y\n")
    other = parse_policy(text + "# a comment changes the hash\n", "x.yaml")
    assert policy.content_hash != other.content_hash
