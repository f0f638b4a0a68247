"""The trajectory: one append-only, hash-chained JSONL file per run.

Each line is one `Event`. Every event carries a monotonic sequence number, a timestamp and the
SHA-256 of the previous line, so an edited, truncated or reordered file is detected at the first
broken link. Every append is flushed and fsynced before the writer returns: a crash loses at most
the event being written, never one that was reported as written.

The chain protects every line but the last; the last is protected by the head file next to the
trajectory (`trajectory.head`: the sequence number and hash of the newest event, replaced
atomically after each append), so a truncated file or an edited final line is detected too.

Against a deliberate rewriter (someone who edits an event, recomputes every hash and rewrites the
head file) the head is signed: an HMAC-SHA256 of the run id, sequence number and hash under a key
kept outside the run directory — per user, `$XDG_DATA_HOME/rsi-sandbox/trajectory.key` (default
`~/.local/share/rsi-sandbox/trajectory.key`, or the file `RSI_TRAJECTORY_KEY_FILE` names), created
with mode 0600 on first use. `authenticate()` (`rsi replay --check`) requires that signature;
SECURITY.md states what it does and does not promise.
Older schema versions are upgraded on read by the functions in MIGRATIONS (the hash chain is
always checked on the line as written).

    with TrajectoryWriter.open(run_dir / "trajectory.jsonl", run_id="r1") as traj:
        traj.append("proposal", generation=1, data=proposal.model_dump())
    for event in TrajectoryReader(path).events():
        ...
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, Field, ValidationError

from core.contracts import utc_now
from core.errors import TrajectoryError

SCHEMA_VERSION = 1
TRAJECTORY_FILE = "trajectory.jsonl"
"""The name of a run's trajectory inside its run directory."""
GENESIS_HASH = "0" * 64

Migration = Callable[[dict[str, Any]], dict[str, Any]]
MIGRATIONS: dict[int, Migration] = {}
"""version → function turning an event payload of that version into one of version + 1."""


def supported_versions() -> frozenset[int]:
    """The schema versions this rsi reads: its own, and every one a migration upgrades."""
    return frozenset({SCHEMA_VERSION, *MIGRATIONS})


SUPPORTED_SCHEMA_VERSIONS = supported_versions()

EVENT_KINDS = (
    "run_started",
    "run_resumed",
    "baseline",
    "proposal_started",
    "parent_evaluation",
    "progress",
    "model_call",
    "proposal",
    "race",
    "evaluation",
    "verdict",
    "decision",
    "commit",
    "promotion",
    "elite_check",
    "checkpoint",
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


KEY_FILE_ENV = "RSI_TRAJECTORY_KEY_FILE"


def key_path() -> Path:
    """Where this user's trajectory signing key lives (never inside a run directory)."""
    if named := os.environ.get(KEY_FILE_ENV):
        return Path(named).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "rsi-sandbox" / "trajectory.key"


def signing_key(create: bool = True) -> bytes | None:
    """This user's signing key; created (0600, in a 0700 directory) on first use when `create`."""
    path = key_path()
    if not path.is_file():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            pass
        else:
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
    try:
        key = bytes.fromhex(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError) as exc:
        raise TrajectoryError(
            f"{path}: unreadable trajectory signing key ({exc}). Restore it, or point "
            f"{KEY_FILE_ENV} at the key that signed your runs."
        ) from exc
    if len(key) < 16:
        raise TrajectoryError(f"{path}: the trajectory signing key is too short; restore the original.")
    return key


def key_id(key: bytes) -> str:
    """A public name of a key (which key signed a head), revealing nothing of it."""
    return hashlib.sha256(b"rsi-trajectory-key-id\0" + key).hexdigest()[:16]


def head_mac(key: bytes, run_id: str, seq: int, hash_: str) -> str:
    message = f"rsi-trajectory-head\0{run_id}\0{seq}\0{hash_}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def head_path(path: Path) -> Path:
    """Where the writer keeps the position of the newest event of `path`."""
    return path.with_name(path.stem + ".head")


def _write_head(path: Path, head: dict[str, Any], durable: bool = True) -> None:
    """Replace the head file atomically (temp file + fsync + rename): it is old or new, never torn."""
    target = head_path(path)
    temp = target.with_name(target.name + ".tmp")
    with temp.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(head) + "\n")
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    os.replace(temp, target)


def read_head(path: Path) -> ChainLink | None:
    target = head_path(path)
    if not target.is_file():
        return None
    try:
        payload = json.loads(target.read_text(encoding="utf-8"))
        link = ChainLink(int(payload["seq"]), str(payload["hash"]))
        if "mac" in payload:
            link.mac, link.key_id = str(payload["mac"]), str(payload.get("key_id", ""))
        return link
    except (ValueError, KeyError, TypeError) as exc:
        raise TrajectoryError(
            f"{target}: unreadable head file ({exc}); it was edited. Delete it only if you trust the "
            "trajectory as it is."
        ) from exc


def migrate(payload: dict[str, Any]) -> dict[str, Any]:
    """Upgrade an event payload written by an older schema version, one version at a time."""
    while payload.get("schema_version") in MIGRATIONS and payload["schema_version"] != SCHEMA_VERSION:
        payload = MIGRATIONS[payload["schema_version"]](payload)
    return payload


def _encode(event: Event) -> str:
    return json.dumps(
        event.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


class TrajectoryWriter:
    """Appends events to a trajectory file, continuing the chain of an existing one."""

    def __init__(self, path: Path, run_id: str, next_seq: int, prev_hash: str, durable: bool = True) -> None:
        self.path = path
        self.durable = durable
        """fsync every event (and its head); False only to build large fixtures fast (benchmarks)."""
        self.run_id = run_id
        self._next_seq = next_seq
        self._prev_hash = prev_hash
        self._lock = _exclusive_lock(path)
        self._file = path.open("a", encoding="utf-8")
        self._key = signing_key(create=True)

    @classmethod
    def open(cls, path: Path, run_id: str, durable: bool = True) -> TrajectoryWriter:
        """Open for appending; an existing file is verified first and continued, never rewritten."""
        path.parent.mkdir(parents=True, exist_ok=True)
        next_seq, prev_hash = 0, GENESIS_HASH
        if path.exists() and path.stat().st_size > 0:
            _truncate_torn_tail(path)
            last = TrajectoryReader(path).verify()
            if last is not None:
                next_seq, prev_hash = last.seq + 1, last.hash
        return cls(path, run_id, next_seq, prev_hash, durable)

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
        if self.durable:
            os.fsync(self._file.fileno())
        self._prev_hash = line_hash(line)
        head: dict[str, Any] = {"seq": self._next_seq, "hash": self._prev_hash}
        if self._key is not None:
            head["key_id"] = key_id(self._key)
            head["mac"] = head_mac(self._key, self.run_id, self._next_seq, self._prev_hash)
        _write_head(self.path, head, self.durable)
        self._next_seq += 1
        return event

    @property
    def last_hash(self) -> str:
        """SHA-256 of the newest line (the genesis hash before the first event)."""
        return self._prev_hash

    @property
    def next_seq(self) -> int:
        return self._next_seq

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
    """A position in a chain: a sequence number and the hash of that line."""

    def __init__(self, seq: int, hash_: str) -> None:
        self.seq = seq
        self.hash = hash_
        self.mac: str | None = None
        """The head's signature (head files only)."""
        self.key_id: str = ""
        self.run_id: str = ""
        """The run id of the event at this position (what the signature covers)."""

    def __repr__(self) -> str:
        return f"ChainLink(seq={self.seq}, hash={self.hash[:12]})"


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
        self.verified_head: ChainLink | None = None
        """The head file as the last verify() read it (with the run id of its event)."""
        self._head_line = 0

    def _parsed(self) -> Iterator[tuple[int, str, Event]]:
        supported = supported_versions()
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
                if version not in supported:
                    raise TrajectoryError(
                        f"{self.path}:{number}: schema version {version!r} is not readable by this rsi "
                        f"(it reads versions {sorted(supported)}); use the rsi version "
                        "that wrote it, or one that can migrate it."
                    )
                try:
                    event = Event.model_validate(migrate(payload))
                except ValidationError as exc:
                    raise TrajectoryError(
                        f"{self.path}:{number}: malformed event: {exc.errors()[0]['msg']}"
                    ) from exc
                yield number, line, event

    def events(self) -> Iterator[Event]:
        """Every event, in order, without verifying the chain (fast re-display)."""
        for _, _, event in self._parsed():
            yield event

    def verify(self, check_head: bool = True) -> ChainLink | None:
        """Check sequence numbers, the hash chain and the head file; raise at the first broken link."""
        head = read_head(self.path) if check_head else None
        prev_hash, last, head_line = GENESIS_HASH, None, 0
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
            last.run_id = event.run_id
            if head is not None and event.seq == head.seq:
                head_line = number
                head.run_id = event.run_id
                if prev_hash != head.hash:
                    raise TrajectoryError(
                        f"{self.path}:{number}: this event differs from the one the writer recorded in "
                        f"{head_path(self.path).name} (it was edited after it was written)."
                    )
        if head is not None:
            self._check_head(head, last, head_line)
            if head.mac is not None:
                self._check_signature(head, head_line, required=False)
        self.verified_head, self._head_line = head, head_line
        return last

    def authenticate(self) -> tuple[ChainLink | None, str]:
        """verify(), and require the head's signature under this user's key: a file re-chained by
        someone without the key (every hash recomputed, the head file rewritten) fails here.
        Returns the last link and a sentence on what the signature covers."""
        head = read_head(self.path)
        head_file = head_path(self.path).name
        if head is None:
            raise TrajectoryError(
                f"{self.path}: no {head_file} next to it: the newest event cannot be authenticated (the "
                "head file was removed, or the file was re-chained and its head left out)."
            )
        if head.mac is None:
            raise TrajectoryError(
                f"{self.path}: {head_file} is not signed: the chain cannot be authenticated (written by "
                "an rsi older than signed heads, or re-chained and its head rewritten without the key)."
            )
        last = self.verify()
        assert last is not None and self.verified_head is not None  # a head beyond the end is refused
        head = self.verified_head
        self._check_signature(head, self._head_line, required=True)
        covered = f"signed head (key {head.key_id}) covers all {head.seq + 1} events"
        if last.seq > head.seq:
            covered += (
                f"; event {last.seq} was written after the last signed head (the crash window) and is "
                "not covered"
            )
        return last, covered

    def _check_signature(self, head: ChainLink, head_line: int, required: bool) -> None:
        """A signature made with this user's key must match. Without that key (another user's run,
        another machine) only `required` (authenticate) refuses: reading and resuming still work."""
        key = signing_key(create=False)
        name = head_path(self.path).name
        if not required and (key is None or (head.key_id and head.key_id != key_id(key))):
            return
        if key is None:
            raise TrajectoryError(
                f"{self.path}: {name} is signed, but there is no signing key at {key_path()} to check it. "
                f"Check as the user who wrote the run, or point {KEY_FILE_ENV} at that user's key."
            )
        if head.key_id and head.key_id != key_id(key):
            raise TrajectoryError(
                f"{self.path}: {name} is signed with key {head.key_id}, not this user's key {key_id(key)} "
                f"({key_path()}). Check as the user who wrote the run, or point {KEY_FILE_ENV} at its key."
            )
        expected = head_mac(key, head.run_id, head.seq, head.hash)
        if not hmac.compare_digest(expected, head.mac or ""):
            raise TrajectoryError(
                f"{self.path}:{head_line}: the signature in {name} does not match the chain: the "
                "trajectory was re-chained (events edited and every hash recomputed) or its head file "
                "rewritten by someone without the signing key."
            )

    def _check_head(self, head: ChainLink, last: ChainLink | None, head_line: int) -> None:
        count = 0 if last is None else last.seq + 1
        if last is None or last.seq < head.seq:
            raise TrajectoryError(
                f"{self.path}:{count + 1}: the file ends after {count} event(s) but the writer recorded "
                f"{head.seq + 1} ({head_path(self.path).name}): the trajectory was truncated here."
            )
        # One event beyond the head is the crash window between appending a line and its head update.
        if last.seq > head.seq + 1:
            raise TrajectoryError(
                f"{self.path}:{head_line + 1}: {last.seq - head.seq} event(s) follow the last one the "
                f"writer recorded in {head_path(self.path).name}: they were appended by something else."
            )
