"""Small hostile diffs that reach a process, the environment or native code through a name the
code rules must resolve as Python binds it (red team round thirteen: a star import, an alias by
assignment, a module re-exported by another, a computed attribute, the standard library's lesser
process runners). Each is judged by the default policy on the patched tree, as the loop judges it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from core.contracts import Proposal
from policies.engine import load_policy, resolve_policy_path
from sandbox.lineage import Lineage
from sandbox.patched import patched_tree
from tests.conftest import TARGET

PROBES = sorted((Path(__file__).parent / "probes").glob("*.diff"))
KNOWN_REVIEW = {"names-marshal"}
"""Code built from marshalled bytes: bandit's medium finding sends it to a human."""


@pytest.fixture(scope="module")
def lineage(tmp_path_factory: pytest.TempPathFactory) -> Lineage:
    return Lineage.create(tmp_path_factory.mktemp("probes") / "lineage", TARGET)


@pytest.mark.parametrize("probe", PROBES, ids=[p.stem for p in PROBES])
def test_each_probe_is_denied(lineage: Lineage, probe: Path) -> None:
    policy = load_policy(resolve_policy_path("default"))
    diff = probe.read_bytes().decode("utf-8")
    with patched_tree(lineage, lineage.head(), diff) as patched:
        assert patched.error is None, patched.error
        verdict = policy.check(Proposal(diff=diff, rationale="", proposer="t"), None, None, patched=patched)
    expected = "review" if probe.stem in KNOWN_REVIEW else "deny"
    assert verdict.verdict == expected, [f.message for f in verdict.findings]


def test_there_are_probes() -> None:
    assert len(PROBES) >= 15
