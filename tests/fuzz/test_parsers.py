"""Fuzzing every parser of untrusted input: whatever the bytes, only a clear RsiError (or a value).

Untrusted: diffs (from the proposer), policy files and rsi.toml (from users, or a tampering agent),
trajectories (from disk, possibly edited), and the predictions a candidate writes.
"""

from __future__ import annotations

import contextlib
import io
import json
import string
from pathlib import Path

import numpy as np
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError, PatchError, RsiError, TrajectoryError
from core.target import TargetSpec
from core.trajectory import TrajectoryReader, TrajectoryWriter
from policies.engine import parse_policy, resolve_policy_path
from sandbox.heldout import load_predictions, stage_inputs
from sandbox.patch import parse_diff
from tests.conftest import TARGET

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
DEFAULT_POLICY = resolve_policy_path("default").read_text()
TARGET_TOML = (TARGET / "rsi.toml").read_text()

# Diff-shaped text: real header and hunk lines in random order, with random paths and counts.
path_part = st.builds(
    lambda prefix, rest: prefix + rest,
    st.sampled_from(["a/", "b/", "", "../", "/", ".git/", "./", "/dev/null"]),
    st.text(string.ascii_letters + "./_-\\\x00 ", max_size=12),
)
diff_line = st.one_of(
    st.builds(lambda p: f"--- {p}", path_part),
    st.builds(lambda p: f"+++ {p}", path_part),
    st.builds(lambda a, b, c, d: f"@@ -{a},{b} +{c},{d} @@", *(st.integers(-2, 50) for _ in range(4))),
    st.sampled_from(
        [
            "diff --git a/x b/x",
            "new file mode 120000",
            "old mode 100644",
            "new mode 100755",
            "deleted file mode 100644",
            "Binary files a/x and b/x differ",
            "rename from x",
            "rename to ../y",
            "\\ No newline at end of file",
            "index 000..111",
        ]
    ),
    st.builds(lambda c, t: c + t, st.sampled_from(["+", "-", " "]), st.text(max_size=20)),
    st.text(max_size=30),
)


@FUZZ
@given(st.lists(diff_line, max_size=12).map("\n".join))
def test_diff_parser_never_crashes(text: str) -> None:
    try:
        changes = parse_diff(text)
    except PatchError as exc:
        assert str(exc)
        return
    for change in changes:  # whatever parses is inside the tree
        assert not change.path.startswith(("/", "../")) and ".git/" not in f"{change.path}/"


@FUZZ
@given(st.text(max_size=400))
def test_diff_parser_survives_any_text(text: str) -> None:
    with contextlib.suppress(PatchError):
        parse_diff(text)


yaml_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
rule = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["r", "bad id", "x.y"]),
        "type": st.sampled_from(["paths", "size", "tests_pass", "metric_improves", "integrity", "nope"]),
        "verdict": st.sampled_from(["allow", "review", "deny", "maybe"]),
    },
    optional={"params": yaml_value, "examples": yaml_value, "description": yaml_value},
)
policy_doc = st.fixed_dictionaries(
    {"name": st.text(max_size=5), "rules": st.lists(rule, max_size=3)},
    optional={"default": st.sampled_from(["allow", "deny", "x"])},
)


@FUZZ
@given(st.one_of(policy_doc.map(yaml.safe_dump), yaml_value.map(yaml.safe_dump), st.text(max_size=200)))
def test_policy_parser_gives_only_config_errors(text: str) -> None:
    try:
        parse_policy(text, "fuzz.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.yaml")


@FUZZ
@given(st.data())
def test_mutated_default_policy_gives_only_config_errors(data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(DEFAULT_POLICY)))
    end = data.draw(st.integers(start, min(len(DEFAULT_POLICY), start + 60)))
    insert = data.draw(st.text(max_size=20) | st.sampled_from(["\n", ":", "[", "{", "- ", "'", "\t", "*x"]))
    with contextlib.suppress(ConfigError):
        parse_policy(DEFAULT_POLICY[:start] + insert + DEFAULT_POLICY[end:], "fuzz.yaml")


@FUZZ
@given(st.data())
def test_target_contract_parser_gives_only_config_errors(data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(TARGET_TOML)))
    end = data.draw(st.integers(start, min(len(TARGET_TOML), start + 60)))
    insert = data.draw(
        st.text(max_size=20) | st.sampled_from(["\n", "=", "[", "]]", '"', "steps = -1", "x = {"])
    )
    try:
        TargetSpec.parse_text(TARGET_TOML[:start] + insert + TARGET_TOML[end:], source="fuzz.toml")
    except ConfigError as exc:
        assert str(exc).startswith("fuzz.toml")


def _valid_trajectory(path: Path) -> bytes:
    with TrajectoryWriter.open(path, run_id="fuzz") as writer:
        writer.append("run_started", {"a": 1})
        writer.append("proposal", {"diff": "x"}, generation=1)
        writer.append("run_finished", {"status": "completed"})
    return path.read_bytes()


@FUZZ
@given(st.data())
def test_trajectory_reader_gives_only_trajectory_errors(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "trajectory.jsonl"
    path.unlink(missing_ok=True)
    original = _valid_trajectory(path)
    start = data.draw(st.integers(0, len(original)))
    end = data.draw(st.integers(start, min(len(original), start + 40)))
    insert = data.draw(
        st.binary(max_size=20)
        | st.sampled_from(
            [b"\n", b"\xff\xfe", b"{}", b"[]", b"null", json.dumps({"schema_version": 1}).encode()]
        )
    )
    path.write_bytes(original[:start] + insert + original[end:])
    try:
        list(TrajectoryReader(path).events())
        TrajectoryReader(path).verify()
    except TrajectoryError as exc:
        assert str(path) in str(exc)


@FUZZ
@given(st.binary(max_size=300))
def test_predictions_a_candidate_writes_are_parsed_safely(raw: bytes) -> None:
    """What the evaluator does with a candidate's predictions file: load (no pickle), then split."""
    staged = stage_inputs({"selection": np.zeros((3, 2)), "lockbox": np.ones((2, 2))}, seed=0)
    header = io.BytesIO()
    np.save(header, np.zeros(5))
    for payload in (raw, header.getvalue()[:10] + raw, header.getvalue()[: len(raw) % 140]):
        with contextlib.suppress(ValueError):  # the one error the evaluator classifies as bad_predictions
            staged.split(load_predictions(payload))


def test_fuzzed_errors_are_rsi_errors() -> None:
    assert all(issubclass(e, RsiError) for e in (ConfigError, PatchError, TrajectoryError))
