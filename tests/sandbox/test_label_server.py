"""The relabelled control's label server: the answers are computed on the host and asked for over a
Unix socket, so nothing of the relabelling is in the sandbox, and a copy of the label function
taken at train time answers nothing once training ends. Real sockets, real sandboxes."""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sandbox.base import SandboxConfig
from sandbox.heldout import LABEL_COPIES
from sandbox.integrity import served_source
from sandbox.label_server import CLIENT, ERROR_BIT, KEPT_ROWS, SOCKET_NAME, LabelServer, designed_rows
from tests.conftest import IMAGE, IN_CI, TARGET

TEACHER = LABEL_COPIES["teacher-regression"]
ORDER, SIGNS = [3, 0, 7, 1, 6, 2, 5, 4], np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0, 1.0, -1.0])


def relabelled(rows: np.ndarray) -> np.ndarray:
    return np.asarray(TEACHER(rows[:, ORDER] * SIGNS))


def client(path: Path) -> Any:
    """The client the sandbox's label function runs, here on the host."""
    namespace: dict[str, Any] = {}
    exec(compile(CLIENT.format(argument="x", path=str(path)), "<client>", "exec"), namespace)
    return namespace["client"]


def raw(path: Path, payload: bytes) -> tuple[int, bytes]:
    """Send bytes as they are; the reply's length word and body."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as channel:
        channel.connect(str(path))
        channel.sendall(payload)
        head = b""
        while len(head) < 8:
            head += channel.recv(8 - len(head))
        (size,) = struct.unpack("<Q", head)
        body = b""
        while len(body) < size & ~ERROR_BIT:
            chunk = channel.recv(65536)
            if not chunk:
                break
            body += chunk
        return size, body


def npy(values: np.ndarray, allow_pickle: bool = False) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, values, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_the_server_answers_rows_and_refuses_anything_else() -> None:
    rows = np.random.default_rng(0).uniform(-1, 1, size=(300, 8))
    with LabelServer(relabelled, 8, np.dtype("float64"), max_rows=1000) as server:
        path = server.directory / SOCKET_NAME
        ask = client(path)
        np.testing.assert_array_equal(ask(rows), relabelled(rows))
        np.testing.assert_array_equal(ask(rows.astype(np.float32)), relabelled(rows.astype(np.float32)))
        # Several askers at once (a training may use threads or processes).
        answers: list[np.ndarray] = []
        threads = [threading.Thread(target=lambda: answers.append(ask(rows[:50]))) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(answers) == 4 and all(np.array_equal(a, relabelled(rows[:50])) for a in answers)
        for payload, why in [
            (npy(rows[:, :5]), "shape (rows, 8)"),
            (npy(np.array([[len] * 8], dtype=object), allow_pickle=True), "not a readable .npy"),
            (b"PK\x03\x04" + bytes(40), "one .npy array"),
            # Bytes as rows: few bytes, many rows, eight times the memory once answered.
            (npy(np.zeros((300_000, 8), dtype=np.uint8)), "at most 262,144 rows"),
        ]:
            size, body = raw(path, struct.pack("<Q", len(payload)) + payload)
            assert size & ERROR_BIT and why in body.decode(), body
        # A claimed size beyond the limit is refused before anything is read.
        size, body = raw(path, struct.pack("<Q", 2**40))
        assert size & ERROR_BIT and b"at most" in body
        with pytest.raises(ValueError, match="at most 1,000 rows"):
            ask(rows)  # 300 + 200 + 300 asked already, 300 more is over
        assert server.rows == 300 + 300 + 200 and len(server.refused) == 6
    # Closed: the socket and its directory are gone, nobody answers.
    assert not server.directory.exists()
    with pytest.raises(OSError):
        ask(rows)


def test_a_connection_waits_for_a_slot_being_given_back() -> None:
    """A connection's thread holds its slot a moment after its asker has its answer: a training that
    asked its label function over and over (one connection after another) on a loaded machine found
    every slot still held by threads that had answered, was refused, and crashed. Here every slot is
    held by an asker that finishes its request a moment after the next one asks: that one waits for a
    slot and is answered (connections held for long are still refused: the test below)."""
    from sandbox.label_server import MAX_CONNECTIONS

    rows = np.zeros((3, 8))
    request = io.BytesIO()
    np.save(request, rows, allow_pickle=False)
    payload = struct.pack("<Q", request.tell()) + request.getvalue()
    with LabelServer(relabelled, 8, np.dtype("float64")) as server:
        path = str(server.directory / SOCKET_NAME)
        held = []
        for _ in range(MAX_CONNECTIONS):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(path)
            connection.sendall(payload[:5])  # half a request: its thread waits for the rest
            held.append(connection)
        deadline = time.monotonic() + 20.0
        while server._server.slots._value > 0:  # type: ignore[attr-defined]  # every slot taken
            assert time.monotonic() < deadline, "the server never took the connections"
            time.sleep(0.01)
        answers: list[np.ndarray] = []
        asker = threading.Thread(target=lambda: answers.append(client(Path(path))(rows)))
        asker.start()
        time.sleep(0.3)
        for connection in held:  # the held requests complete, are answered, their slots come free
            connection.sendall(payload[5:])
        asker.join(timeout=20.0)
        for connection in held:
            connection.close()
        assert not any("at once" in why for why in server.refused), server.refused
        assert len(answers) == 1
        np.testing.assert_array_equal(answers[0], relabelled(rows))


def test_idle_connections_cannot_hold_the_harness() -> None:
    """Each connection holds a thread of the harness: past the limit, more are closed unanswered,
    and idle ones are dropped after the server's time limit."""
    from sandbox.label_server import MAX_CONNECTIONS

    rows = np.zeros((3, 8))
    with LabelServer(relabelled, 8, np.dtype("float64"), timeout_s=5.0) as server:
        path = str(server.directory / SOCKET_NAME)
        idle = []
        for _ in range(MAX_CONNECTIONS):
            connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            connection.connect(path)
            idle.append(connection)
        # Once the server has taken the idle ones (however busy the machine), a caller is refused
        # (after SLOT_WAIT_S for a slot to come free).
        deadline = time.monotonic() + 20.0
        while not any("connections at once" in why for why in server.refused):
            assert time.monotonic() < deadline, (
                "no caller was refused while the idle connections held every slot"
            )
            with contextlib.suppress(ConnectionError, OSError):
                client(Path(path))(rows)
        deadline = time.monotonic() + 30.0
        while time.monotonic() < deadline:  # the idle ones time out and free their slots
            try:
                np.testing.assert_array_equal(client(Path(path))(rows), relabelled(rows))
                break
            except (ConnectionError, OSError):
                time.sleep(0.2)
        else:
            pytest.fail("the server never answered again after its idle connections timed out")
        for connection in idle:
            connection.close()


def sandbox_backend(name: str) -> Any:
    config = SandboxConfig()
    if name == "docker":
        from sandbox.docker_backend import DockerBackend

        return DockerBackend(config, image=IMAGE, run_id="test-label-server")
    if shutil.which("bwrap") is None:
        if IN_CI:
            pytest.fail("bwrap is not installed (CI=true: bwrap tests must run)")
        pytest.skip("bwrap is not installed")
    from sandbox.bwrap_backend import BwrapBackend

    return BwrapBackend(config, image=IMAGE, run_id="test-label-server")


PROBE = """
import sys
import numpy as np
sys.path.insert(0, "/tmp/tree")
import data
rows = np.linspace(-1, 1, 8 * 5).reshape(5, 8)
np.save("/tmp/answers.npy", data.teacher(rows))
"""


@pytest.mark.parametrize(
    "backend_name",
    [pytest.param("bwrap", marks=pytest.mark.bwrap), pytest.param("docker", marks=pytest.mark.docker)],
)
def test_a_sandboxed_label_function_asks_the_host_until_training_ends(
    backend_name: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend_name == "docker":
        request.getfixturevalue("docker_client")
    backend = sandbox_backend(backend_name)
    served = served_source((TARGET / "data.py").read_text(encoding="utf-8"), "teacher")
    assert served is not None and str(ORDER) not in served and "permut" not in served
    (tmp_path / "tree").mkdir()
    rows = np.linspace(-1, 1, 8 * 5).reshape(5, 8)
    server = LabelServer(relabelled, 8, np.dtype("float64"))
    try:
        with backend.open(
            tmp_path / "tree", None, "labels", user="23456:23456", labels=server.directory
        ) as box:
            setup = box.exec("mkdir -p /tmp/tree", 30.0)
            assert setup.exit_code == 0, setup.output
            box.write_file("/tmp/tree/data.py", served.encode())
            box.write_file("/tmp/tree/config.py", (TARGET / "config.py").read_bytes())
            box.write_file("/tmp/probe.py", PROBE.encode())
            asked = box.exec("python /tmp/probe.py", 60.0)
            assert asked.exit_code == 0, asked.output
            answers = np.load(io.BytesIO(box.read_file("/tmp/answers.npy")))
            np.testing.assert_array_equal(answers, relabelled(rows))
            assert server.rows == 5
            server.close()  # training ended: predict finds no one to ask
            again = box.exec("python /tmp/probe.py", 60.0)
            assert again.exit_code != 0 and ("Error" in again.output), again.output
    finally:
        server.close()


def _lattice(levels: int, width: int = 8) -> np.ndarray:
    axis = np.linspace(-1, 1, levels)
    return np.array(np.meshgrid(*[axis] * width)).reshape(width, -1).T


def _anchored(nodes: int = 11, width: int = 8) -> np.ndarray:
    """The lines and planes through the origin: what a table of pairwise terms reads."""
    axis, rows = np.linspace(-1, 1, nodes), [np.zeros(width)]
    for i in range(width):
        for a in axis:
            rows.append(np.where(np.arange(width) == i, a, 0.0))
        for j in range(i + 1, width):
            for a in axis:
                for b in axis:
                    row = np.zeros(width)
                    row[i], row[j] = a, b
                    rows.append(row)
    return np.array(rows)


DESIGNS = {
    "lattice-5": _lattice(5),
    "lattice-4-shifted-and-scaled": _lattice(4) * 0.37 + 0.2,
    "anchored-planes": _anchored(),
    "anchored-planes-at-another-point": _anchored() * 0.5 + np.linspace(-0.3, 0.3, 8),
}


@pytest.mark.parametrize("design", DESIGNS, ids=str)
@pytest.mark.parametrize("jitter", [0.0, 3e-4, 5e-3])
@pytest.mark.parametrize("among", [0, 100_000])
def test_rows_on_a_design_are_told_from_a_draw(design: str, jitter: float, among: int) -> None:
    """Rows at chosen points (a lattice, lines and planes through a point), each read three times a
    little apart (up to `jitter` of the design's range), alone or among a hundred thousand drawn
    rows, are counted as designed; the drawn rows are not."""
    rng = np.random.default_rng(7)
    chosen = np.repeat(DESIGNS[design], 3, axis=0)
    span = np.ptp(chosen, axis=0)
    chosen = chosen + rng.uniform(-jitter, jitter, chosen.shape) * span
    rows = np.concatenate([rng.uniform(-1, 1, (among, 8)), chosen])
    assert designed_rows(rows) >= 0.8 * len(np.unique(DESIGNS[design], axis=0))


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.uniform(-1, 1, (512, 8)),
        lambda rng: rng.uniform(-0.5, 0.5, (262_144, 8)),
        lambda rng: rng.standard_normal((100_000, 8)),
        lambda rng: np.concatenate([x := rng.uniform(-1, 1, (4096, 8)), -x]),  # antithetic pairs
        lambda rng: np.repeat(rng.uniform(-1, 1, (2048, 8)), 20, axis=0),  # a pool asked again
    ],
    ids=["pool-512", "pool-262k", "normal", "antithetic", "pool-asked-again"],
)
def test_rows_drawn_from_a_smooth_density_are_not_designed(draw: Any) -> None:
    assert designed_rows(draw(np.random.default_rng(3))) == 0


def test_the_server_describes_every_row_it_answered() -> None:
    """Rows asked after the kept sample is full are still described: a design asked last, behind a
    quarter of a million drawn rows, is seen (the sample is a reservoir of every row answered)."""
    rng = np.random.default_rng(5)
    with LabelServer(relabelled, width=8, dtype=np.dtype("float64")) as server:
        ask = client(server.directory / SOCKET_NAME)
        for _ in range(4):
            ask(rng.uniform(-1, 1, (65_536, 8)))
        ask(np.repeat(_anchored(), 3, axis=0))
        evidence = server.evidence()
    assert evidence["answered_rows"] == 4 * 65_536 + 3 * len(_anchored())
    assert evidence["described_rows"] == KEPT_ROWS
    assert evidence["designed_rows"] >= 0.5 * len(_anchored())
