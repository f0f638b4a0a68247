"""The relabelled control's answers, served from outside the sandbox.

The relabelled control (`sandbox.integrity`) trains one seed on secretly relabelled answers. Were
the function that computes them in the sandbox, its secret would be too: the train phase could copy
the function (as code, as text, as floats), read the relabelling off its source, or evaluate it a
little off each row to lose the trace. So the control replaces the label function's body with a
client that asks this server, on a Unix socket bound into the sandbox, for the answers to the rows
it is given. The server computes them on the host with the harness's own copy of the label
function. Nothing secret enters the sandbox, and when training ends the server stops: predict, in
the same sandbox, finds no one to ask, so a copy taken at train time answers nothing.

    with LabelServer(answer, width=8, dtype=np.dtype("float64")) as server:
        with backend.open(tree, None, "relabelled", labels=server.directory) as session:
            ...                            # train: the label function asks LABELS_SOCKET
            server.close()                 # before predict
    server.rows, server.requests, server.refused

One request per connection: 8 bytes (little-endian length) then an .npy array of shape (rows, width)
(never a pickle); the reply: 8 bytes then an .npy array of the answers, or, with the length's top
bit set, a UTF-8 message saying why not. What one request and a whole training may ask is bounded,
and every byte is parsed as data: the server runs in the harness's process.
"""

from __future__ import annotations

import ast
import contextlib
import io
import shutil
import socket
import socketserver
import struct
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from core.pysource import parse_module
from sandbox.artifact import load_array
from sandbox.scratch import make_scratch_dir

LABELS_MOUNT = "/rsi-labels"
"""Where the server's directory is bound, read-only, in the relabelled control's sandbox."""
SOCKET_NAME = "labels.sock"
LABELS_SOCKET = f"{LABELS_MOUNT}/{SOCKET_NAME}"
ERROR_BIT = 1 << 63
MAX_REQUEST_BYTES = 16 * 2**20
"""The largest request, and the most its rows may take once converted to the answering type (256k
rows of 8 float64 columns): rows of bytes would otherwise grow eightfold in the harness."""
CHUNK_ROWS = 32_768
"""Rows answered at a time: what one request costs the harness's memory beyond its bytes, and how
soon a request in flight stops once the server is closed."""
MAX_CONNECTIONS = 4
"""Connections answered at once; more are closed unanswered (each holds a thread of the harness
and up to a request's bytes, so a flood of idle connections cannot exhaust the host)."""
SLOT_WAIT_S = 2.0
"""How long a new connection waits for a slot before it is closed unanswered. An answered
connection's thread still holds its slot for a moment after the asker has its answer: on a loaded
machine a label function asked many times in a row (one connection after the other) found all
four slots held by threads that had answered already, and its training crashed."""
MAX_ROWS = 4_000_000
"""The most rows one training may have answered: a fresh batch of 1,024 at every step of a
3,000-step budget, and far more than any training pool (the bundled target's is 512 to 8,192)."""


KEPT_ROWS = 262_144
"""Rows the server keeps to describe what it was asked (`designed_rows`): all of them up to this,
then a uniform sample of every row answered (a reservoir), so rows asked late weigh as early ones."""
BIN_FRACTION = 1e-3
"""The width of the bins `designed_rows` counts a column's values in, as a fraction of its range."""
NEIGHBOURS = 12
"""The bins on each side whose mean is what a bin of a smooth density holds."""


def designed_rows(rows: np.ndarray) -> int:
    """How many distinct rows sit on a design rather than a draw: rows most of whose values fall
    where far more rows put theirs than a draw from a smooth distribution would (a bin of a
    column's range, a thousandth wide, holding more than the bins around it do on average, plus ten
    standard deviations and eight): a lattice, or lines and planes through an anchor, jittered.
    A pool drawn at random from a smooth density (uniform, normal) puts none there; categorical
    inputs put all (the caller compares with the parent's training, which asks the same kind)."""
    rows = np.unique(np.asarray(rows, dtype=np.float64), axis=0)
    rows = rows[np.isfinite(rows).all(axis=1)]
    if len(rows) < 64 or rows.ndim != 2:
        return 0
    low, high = rows.min(axis=0), rows.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    bins = round(1 / BIN_FRACTION)
    placed = np.minimum(((rows - low) / span * bins).astype(np.int64), bins - 1)
    hot = np.zeros(rows.shape, dtype=bool)
    ring = np.ones(2 * NEIGHBOURS + 1)
    ring[NEIGHBOURS - 1 : NEIGHBOURS + 2] = 0  # a bin and its two neighbours (a jittered value's)
    for column in range(rows.shape[1]):
        counts = np.bincount(placed[:, column], minlength=bins).astype(np.float64)
        # What a smooth density puts in a bin: the mean of the bins around it.
        around = np.convolve(counts, ring, mode="same") / np.convolve(np.ones(bins), ring, mode="same")
        limit = around + 10 * np.sqrt(around) + 8
        hot[:, column] = (counts > limit)[placed[:, column]]
    return int((hot.sum(axis=1) * 2 > rows.shape[1]).sum())


class LabelRequestError(ValueError):
    """A request the server will not answer (its message goes back to the asker)."""


class LabelServer:
    """Answers rows with `answer` on a Unix socket in a fresh directory, until closed."""

    def __init__(
        self,
        answer: Callable[[np.ndarray], np.ndarray],
        width: int,
        dtype: np.dtype[Any],
        max_rows: int = MAX_ROWS,
        timeout_s: float = 20.0,
    ) -> None:
        self.answer, self.width, self.dtype = answer, width, dtype
        self.max_rows, self.timeout_s = max_rows, timeout_s
        self.rows = 0
        """Rows answered so far."""
        self.requests = 0
        """Requests answered so far."""
        self.refused: list[str] = []
        """Why requests were refused (the first few)."""
        self._kept = np.empty((0, width), dtype=np.float64)
        self._sampler = np.random.default_rng()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.directory = make_scratch_dir("labels", longest=len(SOCKET_NAME))
        self.directory.chmod(0o755)  # the sandbox's unprivileged user must reach the socket
        path = self.directory / SOCKET_NAME
        try:
            self._server = _Server(str(path), _Handler, owner=self)
            path.chmod(0o777)  # connecting to a Unix socket needs write permission on it
        except BaseException:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="label-server",
            daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> LabelServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop answering (idempotent): the socket goes, requests in flight get no answer."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)
        shutil.rmtree(self.directory, ignore_errors=True)

    def evidence(self) -> dict[str, Any]:
        with self._lock:
            kept = self._kept
        return {
            "answered_rows": self.rows,
            "answered_requests": self.requests,
            "refused": self.refused[:3],
            "designed_rows": designed_rows(kept),
            "described_rows": len(kept),
        }

    def _keep(self, rows: np.ndarray, seen: int) -> None:
        """Add `rows` (the rows answered after the first `seen`) to the kept sample (KEPT_ROWS):
        a reservoir, each row answered so far equally likely to be in it."""
        rows = np.asarray(rows, dtype=np.float64)
        room = max(KEPT_ROWS - len(self._kept), 0)
        if room:
            self._kept = np.concatenate([self._kept, rows[:room]])
            rows, seen = rows[room:], seen + room
        if len(rows):
            places = self._sampler.integers(0, seen + np.arange(1, len(rows) + 1))
            chosen = places < KEPT_ROWS
            self._kept[places[chosen]] = rows[chosen]

    def respond(self, request: bytes) -> bytes:
        """The reply to one request (the answers as .npy), or LabelRequestError saying why not."""
        if self._closed.is_set():
            raise LabelRequestError("the relabelled control's training has ended")
        if request[:6] != b"\x93NUMPY":
            raise LabelRequestError("a request is one .npy array of inputs (numpy.save, no pickle)")
        try:
            rows = load_array(request)
        except (ValueError, OSError, EOFError) as exc:
            raise LabelRequestError(f"the request is not a readable .npy array: {exc}") from exc
        if rows.ndim != 2 or rows.shape[1] != self.width or rows.dtype.kind not in "biuf":
            raise LabelRequestError(
                f"the label function answers arrays of numbers of shape (rows, {self.width}), "
                f"not {rows.dtype} of shape {rows.shape}"
            )
        most = MAX_REQUEST_BYTES // (self.width * max(self.dtype.itemsize, 8))
        if len(rows) > most:
            raise LabelRequestError(f"a request may hold at most {most:,} rows, not {len(rows):,}")
        with self._lock:
            if self.rows + len(rows) > self.max_rows:
                raise LabelRequestError(f"a training may have at most {self.max_rows:,} rows answered")
            self._keep(rows, self.rows)
            self.rows += len(rows)
            self.requests += 1
        parts = []
        for start in range(0, max(len(rows), 1), CHUNK_ROWS):
            if self._closed.is_set():
                raise LabelRequestError("the relabelled control's training has ended")
            chunk = rows[start : start + CHUNK_ROWS].astype(self.dtype)
            try:
                parts.append(np.asarray(self.answer(chunk)))
            except (ArithmeticError, ValueError, TypeError, IndexError) as exc:
                raise LabelRequestError(f"the label function failed on these rows: {exc}") from exc
        answers = np.concatenate(parts) if len(parts) > 1 else parts[0]
        if answers.dtype.kind not in "biuf":
            raise LabelRequestError("the label function gave no numbers")  # the harness's own copy
        buffer = io.BytesIO()
        np.save(buffer, np.ascontiguousarray(answers), allow_pickle=False)
        return buffer.getvalue()

    def _refuse(self, why: str) -> None:
        with self._lock:
            if len(self.refused) < 10:
                self.refused.append(why)


class _Server(socketserver.ThreadingUnixStreamServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, path: str, handler: type[socketserver.BaseRequestHandler], owner: LabelServer) -> None:
        self.owner = owner
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(path, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(timeout=SLOT_WAIT_S):
            self.owner._refuse(f"more than {MAX_CONNECTIONS} connections at once")
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        owner: LabelServer = self.server.owner  # type: ignore[attr-defined]
        connection: socket.socket = self.request
        connection.settimeout(owner.timeout_s)
        try:
            (size,) = struct.unpack("<Q", _received(connection, 8))
            if size > MAX_REQUEST_BYTES:
                raise LabelRequestError(
                    f"a request may hold at most {MAX_REQUEST_BYTES:,} bytes, not {size:,}"
                )
            reply = owner.respond(_received(connection, size))
            connection.sendall(struct.pack("<Q", len(reply)) + reply)
        except LabelRequestError as exc:
            owner._refuse(str(exc))
            message = str(exc).encode("utf-8")
            with contextlib.suppress(OSError):
                connection.sendall(struct.pack("<Q", ERROR_BIT | len(message)) + message)
        except (OSError, struct.error, ConnectionError) as exc:
            owner._refuse(f"the connection failed: {exc}")


def _received(connection: socket.socket, count: int) -> bytes:
    data = bytearray()
    while len(data) < count:
        chunk = connection.recv(min(count - len(data), 2**20))
        if not chunk:
            raise ConnectionError(f"the asker hung up after {len(data)} of {count} bytes")
        data += chunk
    return bytes(data)


CLIENT = """
def client({argument}):
    import io as _io
    import socket as _socket
    import struct as _struct

    import numpy as _numpy

    _request = _io.BytesIO()
    _numpy.save(_request, _numpy.ascontiguousarray({argument}), allow_pickle=False)
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as _channel:
        _channel.connect({path!r})
        _channel.sendall(_struct.pack("<Q", _request.tell()) + _request.getvalue())

        def _received(count):
            data = bytearray()
            while len(data) < count:
                chunk = _channel.recv(min(count - len(data), 1 << 20))
                if not chunk:
                    raise ConnectionError("the harness's label server stopped answering")
                data += chunk
            return bytes(data)

        (_size,) = _struct.unpack("<Q", _received(8))
        if _size >> 63:
            raise ValueError(_received(_size & ~(1 << 63)).decode("utf-8", "replace"))
        return _numpy.load(_io.BytesIO(_received(_size)), allow_pickle=False)
"""
"""The body every definition of the label function gets in the relabelled control's sandbox."""


def client_body(argument: str, path: str = LABELS_SOCKET) -> list[ast.stmt]:
    """The client's statements for a label function whose first argument is `argument`."""
    function = parse_module(CLIENT.format(argument=argument, path=path)).body[0]
    assert isinstance(function, ast.FunctionDef)
    return function.body
