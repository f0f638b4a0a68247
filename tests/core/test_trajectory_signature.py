"""The signed head against a forger who knows the format: edits an event, recomputes every hash
and rewrites the head file. `rsi replay --check` (a real process) must report it."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import TrajectoryError
from core.trajectory import GENESIS_HASH, KEY_FILE_ENV, TrajectoryReader, TrajectoryWriter, head_path

RSI = [sys.executable, "-m", "rsi"]


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "keys" / "trajectory.key"
    monkeypatch.setenv(KEY_FILE_ENV, str(path))
    return path


def recorded_run(tmp_path: Path) -> Path:
    path = tmp_path / "run" / "trajectory.jsonl"
    with TrajectoryWriter.open(path, run_id="r1") as writer:
        writer.append("run_started", {"config": {}})
        writer.append("decision", {"decision": "reject", "by": "policy", "reason": "worse"}, 1)
        writer.append("run_finished", {"status": "completed", "accepted": 0})
    return path


def forge(path: Path, keep_signature_fields: bool) -> None:
    """What a forger who knows the format does: change an event, re-chain, rewrite the head."""
    events = [json.loads(line) for line in path.read_text().splitlines()]
    events[1]["data"]["decision"] = "accept"
    prev, lines = GENESIS_HASH, []
    for event in events:
        event["prev_hash"] = prev
        line = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        prev = hashlib.sha256(line.encode()).hexdigest()
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    head = json.loads(head_path(path).read_text())
    forged = {"seq": len(events) - 1, "hash": prev}
    if keep_signature_fields:  # the old signature and key id, copied over the new hash
        forged |= {"mac": head["mac"], "key_id": head["key_id"]}
    head_path(path).write_text(json.dumps(forged) + "\n")


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*RSI, "replay", "--check", str(path)], capture_output=True, text=True, env=dict(os.environ)
    )


def test_the_key_is_created_private_outside_the_run(tmp_path: Path, key_file: Path) -> None:
    path = recorded_run(tmp_path)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(key_file.parent.stat().st_mode) == 0o700
    assert not key_file.is_relative_to(path.parent)
    result = check(path)
    assert result.returncode == 0 and "signed head" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("keep_signature_fields", [True, False])
def test_a_rechained_trajectory_is_reported(
    tmp_path: Path, key_file: Path, keep_signature_fields: bool
) -> None:
    path = recorded_run(tmp_path)
    forge(path, keep_signature_fields)
    result = check(path)
    assert result.returncode == 13, result.stdout + result.stderr
    message = " ".join(result.stderr.split())
    assert ("re-chained" in message) and "intact" not in result.stdout, message


def test_a_removed_head_file_is_reported(tmp_path: Path, key_file: Path) -> None:
    path = recorded_run(tmp_path)
    forge(path, keep_signature_fields=False)
    head_path(path).unlink()
    result = check(path)
    assert result.returncode == 13 and "cannot be authenticated" in " ".join(result.stderr.split())


def test_another_users_key_is_named(tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = recorded_run(tmp_path)
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "other" / "trajectory.key"))
    recorded_run(tmp_path / "other-run")  # creates the other user's key
    result = check(path)
    assert result.returncode == 13, result.stdout + result.stderr
    assert "not this user's key" in " ".join(result.stderr.split())


def test_without_the_writers_key_a_run_is_still_read_but_not_authenticated(
    tmp_path: Path, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = recorded_run(tmp_path)
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "nobody" / "trajectory.key"))
    assert TrajectoryReader(path).verify() is not None  # replay and review still open it
    with pytest.raises(TrajectoryError, match="no signing key"):
        TrajectoryReader(path).authenticate()
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    forge(path, keep_signature_fields=True)
    with pytest.raises(TrajectoryError, match="re-chained"):  # with the key, a forgery is refused on read
        TrajectoryReader(path).verify()
