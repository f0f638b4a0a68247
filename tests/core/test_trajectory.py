"""The trajectory: append-only, fsynced, hash-chained; tampering is found at its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import trajectory
from core.errors import TrajectoryError
from core.trajectory import GENESIS_HASH, TrajectoryReader, TrajectoryWriter, head_path


def write_events(path: Path, count: int) -> None:
    with TrajectoryWriter.open(path, run_id="t") as writer:
        for index in range(count):
            writer.append("progress", {"index": index}, generation=index)


def test_events_round_trip_with_chain(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 5)
    events = list(TrajectoryReader(path).events())
    assert [e.seq for e in events] == [0, 1, 2, 3, 4]
    assert events[0].prev_hash == GENESIS_HASH
    assert TrajectoryReader(path).verify().seq == 4


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 2)
    write_events(path, 2)
    assert [e.seq for e in TrajectoryReader(path).events()] == [0, 1, 2, 3]
    TrajectoryReader(path).verify()


def test_edited_event_breaks_the_chain_at_the_next_line(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 4)
    lines = path.read_text().splitlines()
    event = json.loads(lines[1])
    event["data"]["index"] = 99
    lines[1] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TrajectoryError, match=r"trajectory.jsonl:3: hash chain broken"):
        TrajectoryReader(path).verify()


def test_removed_event_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 4)
    lines = path.read_text().splitlines()
    del lines[2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(TrajectoryError, match=r":3: sequence number 3, expected 2"):
        TrajectoryReader(path).verify()


def test_corrupt_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 3)
    with path.open("a") as handle:
        handle.write("{not json\n")
    with pytest.raises(TrajectoryError, match=r":4: not valid JSON"):
        TrajectoryReader(path).verify()


def test_unknown_schema_version_says_which_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    path.write_text(json.dumps({"schema_version": 99, "seq": 0}) + "\n")
    with pytest.raises(TrajectoryError, match="schema version 99"):
        list(TrajectoryReader(path).events())


def test_torn_last_line_is_dropped_on_reopen(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 3)
    with path.open("a") as handle:
        handle.write('{"schema_version":1,"seq":3,"half')
    write_events(path, 1)
    assert [e.seq for e in TrajectoryReader(path).events()] == [0, 1, 2, 3]


def test_unknown_event_kind_is_refused(tmp_path: Path) -> None:
    with TrajectoryWriter.open(tmp_path / "t.jsonl", run_id="t") as writer, pytest.raises(ValueError):
        writer.append("made_up", {})


def test_a_second_writer_is_refused_while_the_first_is_open(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    with TrajectoryWriter.open(path, run_id="a") as writer:
        writer.append("progress", {})
        with pytest.raises(TrajectoryError, match="another process is writing"):
            TrajectoryWriter.open(path, run_id="b")
    with TrajectoryWriter.open(path, run_id="b") as again:
        again.append("progress", {})


# -- the head file protects the last line ---------------------------------------------------------


def test_truncated_file_is_detected_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 5)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]))
    with pytest.raises(
        TrajectoryError, match=r"trajectory.jsonl:4: the file ends after 3 event\(s\).*truncated"
    ):
        TrajectoryReader(path).verify()


def test_edited_last_line_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 3)
    lines = path.read_text().splitlines()
    event = json.loads(lines[-1])
    event["data"]["index"] = 42
    lines[-1] = json.dumps(event, sort_keys=True, separators=(",", ":"))
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        TrajectoryError, match=r"trajectory.jsonl:3: this event differs from the one the writer"
    ):
        TrajectoryReader(path).verify()


def test_events_appended_behind_the_writers_back_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 2)
    saved_head = head_path(path).read_text()
    write_events(path, 2)  # a chained continuation, but the head is put back as it was
    head_path(path).write_text(saved_head)
    with pytest.raises(TrajectoryError, match=r":3: 2 event\(s\) follow the last one"):
        TrajectoryReader(path).verify()


def test_one_event_beyond_the_head_is_the_crash_window_and_accepted(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    write_events(path, 2)
    saved_head = head_path(path).read_text()
    write_events(path, 1)
    head_path(path).write_text(saved_head)  # killed between appending the line and the head update
    assert TrajectoryReader(path).verify().seq == 2
    write_events(path, 1)  # and a writer continues from it
    assert TrajectoryReader(path).verify().seq == 3


def test_older_schema_versions_are_migrated_on_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trajectory.jsonl"
    old = {"schema_version": 0, "seq": 0, "run_id": "t", "type": "progress", "prev_hash": GENESIS_HASH}
    path.write_text(json.dumps(old) + "\n")
    with pytest.raises(TrajectoryError, match=r"schema version 0 is not readable.*reads versions \[1\]"):
        list(TrajectoryReader(path).events())

    def rename_type_to_kind(payload: dict) -> dict:  # type: ignore[type-arg]
        payload = dict(payload, kind=payload.pop("type"), schema_version=1)
        return payload

    monkeypatch.setitem(trajectory.MIGRATIONS, 0, rename_type_to_kind)
    (event,) = TrajectoryReader(path).events()
    assert event.kind == "progress" and event.schema_version == 1
    assert TrajectoryReader(path).verify(check_head=False).seq == 0
