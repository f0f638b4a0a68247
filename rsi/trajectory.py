"""The trajectory: one append-only, hash-chained JSONL file per run.

Each line is one `Event`. Every event carries a monotonic sequence number, a timestamp and the
SHA-256 of the previous line, so an edited, truncated or reordered file is detected at the first
broken link. Every append is flushed and fsynced before the writer returns: a crash loses at most
the event being written, never one that was reported as written.

    with TrajectoryWriter.open(run_dir / "trajectory.jsonl", run_id="r1") as traj:
        traj.append("proposal", generation=1, data=proposal.model_dump())
    for event in TrajectoryReader(path).events():
        ...
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from rsi.contracts import utc_now
from rsi.errors import TrajectoryError

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})
GENESIS_HASH = "0" * 64

EVENT_KINDS = (
    "run_started",
    "run_resumed",
    "baseline",
    "proposal_started",
    "progress",
    "model_call",
    "proposal",
    "evaluation",
    "verdict",
    "decision",
    "commit",
    "error",
    "run_finished",
)


class Event(BaseModel):
    schema_version: int = SCHEMA_VERSION
    seq: int
    ts: str = Field(default_factory=utc_now)
    run_id: str
    kind: str
    generation: int | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    prev_hash: str


def line_hash(line: str) -> str:
    return hashlib.sha256(line.encode("utf-8")).hexdigest()


def _encode(event: Event) -> str:
    return json.dumps(
        event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


class TrajectoryWriter:
    """Appends events to a trajectory file, continuing the chain of an existing one."""

    def __init__(self, path: Path, run_id: str, next_seq: int, prev_hash: str) -> None:
        self.path = path
        self.run_id = run_id
        self._next_seq = next_seq
        self._prev_hash = prev_hash
        self._lock = _exclusive_lock(path)
        self._file = path.open("a", encoding="utf-8")

    @classmethod
    def open(cls, path: Path, run_id: str) -> TrajectoryWriter:
        """Open for appending; an existing file is verified first and continued, never rewritten."""
        path.parent.mkdir(parents=True, exist_ok=True)
        next_seq, prev_hash = 0, GENESIS_HASH
        if path.exists() and path.stat().st_size > 0:
            _truncate_torn_tail(path)
            last = TrajectoryReader(path).verify()
            if last is not None:
                next_seq, prev_hash = last.seq + 1, last.hash
        return cls(path, run_id, next_seq, prev_hash)

    def append(self, kind: str, data: dict[str, Any] | None = None, generation: int | None = None) -> Event:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown trajectory event kind {kind!r}; known: {', '.join(EVENT_KINDS)}")
        event = Event(
            seq=self._next_seq,
            run_id=self.run_id,
            kind=kind,
            generation=generation,
            data=data or {},
            prev_hash=self._prev_hash,
        )
        line = _encode(event)
        self._file.write(line + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self._next_seq += 1
        self._prev_hash = line_hash(line)
        return event

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()
        if not self._lock.closed:
            self._lock.close()  # releases the flock

    def __enter__(self) -> TrajectoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _exclusive_lock(path: Path) -> IO[str]:
    """One writer per trajectory: a second process (a live run and `rsi review`) is refused."""
    lock = (path.parent / (path.name + ".lock")).open("w")
    try:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        raise TrajectoryError(
            f"{path}: another process is writing this run (it is live). Decide in that run's TUI, or wait "
            "until it stops."
        ) from None
    return lock


class ChainLink:
    """The last verified position of a chain: its sequence number and line hash."""

    def __init__(self, seq: int, hash_: str) -> None:
        self.seq = seq
        self.hash = hash_


def _truncate_torn_tail(path: Path) -> None:
    """Drop a final line without a newline: the one event a crash can tear mid-write."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with path.open("r+b") as handle:
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())


class TrajectoryReader:
    """Reads and verifies a trajectory; errors name the line and what is wrong there."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise TrajectoryError(
                f"{path}: no trajectory file here. Pass a run directory's trajectory.jsonl."
            )
        self.path = path

    def _parsed(self) -> Iterator[tuple[int, str, Event]]:
        with self.path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    line = raw.decode("utf-8").rstrip("\n")
                except UnicodeDecodeError as exc:
                    raise TrajectoryError(
                        f"{self.path}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start}); the file "
                        "is corrupted at this line."
                    ) from exc
                if not line.strip():
                    raise TrajectoryError(f"{self.path}:{number}: empty line inside the trajectory.")
                try:
                    payload = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise TrajectoryError(
                        f"{self.path}:{number}: not valid JSON ({exc.msg}); the file is corrupted or "
                        "truncated at this line."
                    ) from exc
                version = payload.get("schema_version") if isinstance(payload, dict) else None
                if version not in SUPPORTED_SCHEMA_VERSIONS:
                    raise TrajectoryError(
                        f"{self.path}:{number}: schema version {version!r} is not readable by this rsi "
                        f"(supports {sorted(SUPPORTED_SCHEMA_VERSIONS)}); use the rsi version that wrote it."
                    )
                try:
                    event = Event.model_validate(payload)
                except ValidationError as exc:
                    raise TrajectoryError(
                        f"{self.path}:{number}: malformed event: {exc.errors()[0]['msg']}"
                    ) from exc
                yield number, line, event

    def events(self) -> Iterator[Event]:
        """Every event, in order, without verifying the chain (fast re-display)."""
        for _, _, event in self._parsed():
            yield event

    def verify(self) -> ChainLink | None:
        """Check sequence numbers and the hash chain; raise at the first broken link."""
        prev_hash, last = GENESIS_HASH, None
        for expected_seq, (number, line, event) in enumerate(self._parsed()):
            if event.seq != expected_seq:
                raise TrajectoryError(
                    f"{self.path}:{number}: sequence number {event.seq}, expected {expected_seq}: an event "
                    "was removed, duplicated or reordered here."
                )
            if event.prev_hash != prev_hash:
                raise TrajectoryError(
                    f"{self.path}:{number}: hash chain broken: this event does not follow the line before "
                    "it (that line, or this one, was edited)."
                )
            prev_hash = line_hash(line)
            last = ChainLink(event.seq, prev_hash)
        return last
