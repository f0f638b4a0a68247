"""Property tests: whatever the diff (or text), the engine gives a Verdict or a clear PatchError."""

from __future__ import annotations

import difflib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contracts import Proposal, Verdict
from core.errors import ConfigError, PatchError
from core.target import TargetSpec
from policies.engine import load_policy, resolve_policy_path
from tests.conftest import TARGET

# More examples for a deeper search: RSI_HYPOTHESIS_EXAMPLES=2000 pytest tests/policies/test_properties.py
EXAMPLES = int(os.environ.get("RSI_HYPOTHESIS_EXAMPLES", "60"))
POLICY = load_policy(resolve_policy_path("strict"), target=TargetSpec.load(TARGET))
FAST = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Python-ish lines that exercise the parsers: keywords, brackets, indentation, tricky names.
TOKENS = st.sampled_from(
    [
        "import socket",
        "from os import *",
        "def test_a():",
        "class Test:",
        "assert x > 0.5",
        "    assert x == pytest.approx(1, rel=1e-3)",
        "@pytest.mark.skip",
        "os.system('x')",
        "eval(",
        ")",
        "]",
        "    return",
        "        if x:",
        "else:",
        "'''",
        '"',
        "\\",
        "# comment",
        "collect_ignore = ['a']",
        "testpaths = x",
        "x = 1",
        "open('/etc/x', 'w')",
        "\t\tpass",
        "lambda: (yield)",
        "€ ünïcode",
        "",
    ]
)
LINES = st.lists(st.one_of(TOKENS, st.text(max_size=30).map(lambda s: s.replace("\r", ""))), max_size=12)
PATHS = st.sampled_from(
    [
        "train.py",
        "tests/test_a.py",
        "conftest.py",
        "pytest.ini",
        "rsi.toml",
        "predict.py",
        "a/b/c.py",
        "README",
    ]
)


def judged(diff: str) -> None:
    try:
        verdict = POLICY.check(Proposal(diff=diff, rationale="", proposer="hypothesis"), None, None)
    except (PatchError, ConfigError):
        return
    assert isinstance(verdict, Verdict)
    assert not [f for f in verdict.findings if "internal_error" in f.evidence], verdict.findings


@FAST
@given(path=PATHS, before=LINES, after=LINES, new=st.booleans(), gone=st.booleans())
def test_random_diffs_never_crash_the_engine(path, before, after, new, gone) -> None:  # type: ignore[no-untyped-def]
    old_text = None if new else "\n".join(before) + "\n"
    new_text = None if gone and not new else "\n".join(after) + "\n"
    diff = "".join(
        difflib.unified_diff(
            (old_text or "").splitlines(keepends=True),
            (new_text or "").splitlines(keepends=True),
            fromfile="/dev/null" if old_text is None else f"a/{path}",
            tofile="/dev/null" if new_text is None else f"b/{path}",
        )
    )
    judged(diff)


@FAST
@given(text=st.text(max_size=400))
def test_random_text_never_crashes_the_engine(text: str) -> None:
    judged(text)


@FAST
@given(body=st.text(alphabet=st.sampled_from("+- @\n-abc0123,/"), max_size=200))
def test_diff_shaped_noise_never_crashes_the_engine(body: str) -> None:
    judged("--- a/train.py\n+++ b/train.py\n" + body)
